//! The reliability diagram (`reliability.svg`): for each confidence bin, how often
//! the model was right against how sure it said it was, before and after its
//! temperature, with the diagonal a calibrated model follows.

use std::path::Path;

use anyhow::Result;
use model_core::calibration::Bin;
use plotters::prelude::*;

/// Draw the bins of each series (name, bins, colour) into `path` under `title`;
/// bins holding nothing are left out.
pub fn plot(path: &Path, title: &str, series: &[(&str, &[Bin], RGBColor)]) -> Result<()> {
    let root = SVGBackend::new(path, (520, 520)).into_drawing_area();
    let draw = || -> std::result::Result<(), Box<dyn std::error::Error>> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..1.0f64, 0.0..1.0f64)?;
        chart
            .configure_mesh()
            .x_desc("confidence (mean of the bin)")
            .y_desc("accuracy")
            .draw()?;
        chart
            .draw_series(LineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            ))?
            .label("calibrated")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.4)));
        for (name, bins, color) in series {
            let points: Vec<(f64, f64)> = bins
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| (b.confidence, b.accuracy))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
        Ok(())
    };
    draw().map_err(|e| anyhow::anyhow!("{}: cannot draw: {e}", path.display()))
}
