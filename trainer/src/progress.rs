//! Progress of a long classification (`predict`, `evaluate`) on stderr: texts done,
//! texts per second and the time left, as a bar on a terminal and as a line every
//! half minute in a log (a batch system's job output), never on stdout.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a log (stderr that is not a terminal) gets a progress line.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Progress through an input of `total` positions (lines), when that is known.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: Option<usize>,
    start: Instant,
    last_log: Instant,
    first: usize,
    /// Texts done.
    pub texts: usize,
}

impl Progress {
    /// Progress from position `first` of `total`.
    pub fn new(total: Option<usize>, first: usize) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(n) => ProgressBar::new(n as u64),
                None => ProgressBar::new_spinner(),
            };
            let template = if total.is_some() {
                "[{elapsed_precise}] [{bar:30}] line {pos}/{len} {msg} ({eta} left)"
            } else {
                "[{elapsed_precise}] {spinner} line {pos} {msg}"
            };
            bar.set_style(ProgressStyle::with_template(template).expect("static template"));
            bar.set_position(first.saturating_sub(1) as u64);
            bar.reset_eta();
            bar
        });
        let now = Instant::now();
        Self {
            bar,
            total,
            start: now,
            last_log: now,
            first,
            texts: 0,
        }
    }

    /// `texts` more texts done, the last of them at position `line`.
    pub fn advance(&mut self, texts: usize, line: usize) {
        self.texts += texts;
        let rate = self.texts as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        match &self.bar {
            Some(bar) => {
                bar.set_message(format!("{} texts, {rate:.1}/s", self.texts));
                bar.set_position(line as u64);
            }
            None if self.last_log.elapsed() >= LOG_EVERY => {
                self.last_log = Instant::now();
                let left = match self.total {
                    Some(total) if line >= self.first => {
                        let done = (line + 1 - self.first) as f64;
                        let secs = self.start.elapsed().as_secs_f64() / done
                            * total.saturating_sub(line) as f64;
                        format!(", {} left", human(secs))
                    }
                    _ => String::new(),
                };
                let of = self.total.map_or(String::new(), |t| format!("/{t}"));
                eprintln!("line {line}{of}: {} texts, {rate:.1}/s{left}", self.texts);
            }
            None => {}
        }
    }

    /// Clear the bar; the caller prints the summary.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

/// `1h 02m`, `3m 20s`, `12s`.
fn human(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_a_person_writes_them() {
        assert_eq!(super::human(12.4), "12s");
        assert_eq!(super::human(200.0), "3m 20s");
        assert_eq!(super::human(3720.0), "1h 02m");
    }
}
