//! Running the model for a review's reading and its explanation: what the page's
//! panels and the JS library's worker both call, so "Why?" means the same in both.
//! The arithmetic on text is [`crate::occlusion`]'s; this module adds the model.

use std::future::Future;
use std::ops::Range;

use model_core::tokenizer::Encoded;
use model_core::{Classifier, Prediction};

use crate::occlusion::{Plan, kept_windows, pieces, plan, review_range, variants_per_run, without};
use crate::text::positive_index;

/// A review is tokenized in pieces of this many bytes, with a pause (a yield to the
/// browser, in the page) between pieces, so that a pasted novel never freezes it.
const PIECE_BYTES: usize = 16 * 1024;

/// Tokenize `text` piece by piece, awaiting `between()` after each piece of a long
/// one, and work out which byte ranges of it the model reads.
pub async fn read_review<Y: Future<Output = ()>>(
    c: &Classifier,
    text: &str,
    mut between: impl FnMut() -> Y,
) -> Result<(Encoded, Vec<Range<usize>>), String> {
    let parts = pieces(text, PIECE_BYTES);
    let many = parts.len() > 1;
    let (mut ids, mut offsets) = (Vec::new(), Vec::new());
    for r in parts {
        let (i, o) = c
            .tokenizer
            .content_ids_with_offsets(&text[r.clone()])
            .map_err(|e| e.to_string())?;
        ids.extend(i);
        offsets.extend(o.into_iter().map(|(a, b)| (a + r.start, b + r.start)));
        if many {
            between().await;
        }
    }
    let (max_len, truncation) = (c.options.max_len, c.options.truncation);
    let (head, tail) = truncation.split(max_len.saturating_sub(c.tokenizer.num_special()));
    let windows = kept_windows(&offsets, text.len(), head, tail);
    let encoded = c
        .tokenizer
        .wrap(ids, max_len, truncation)
        .map_err(|e| e.to_string())?;
    Ok((encoded, windows))
}

/// Occlusion over `plan`: each phrase removed in turn, a few variants per call of
/// `predict`, and the change in p(`labels[pos]`). `base` is p(positive) of the
/// plan's text when already known (the review's own answer), else one more pass
/// computes it. `progress(done, total)` after each run. Returns each phrase of
/// `plan.text` with p(positive) minus p(positive) without it.
pub async fn occlude<F, Fut>(
    plan: &Plan,
    base: Option<f32>,
    pos: usize,
    per_run: usize,
    mut predict: F,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<(Range<usize>, f32)>, String>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<Prediction>, String>>,
{
    let base = match base {
        Some(b) => b,
        None => predict(vec![plan.text.clone()]).await?[0].probabilities[pos].1,
    };
    let total = plan.phrases.len();
    let mut spans = Vec::with_capacity(total);
    for chunk in plan.phrases.chunks(per_run.max(1)) {
        let variants = chunk.iter().map(|g| without(&plan.text, g)).collect();
        let preds = predict(variants).await?;
        for (g, p) in chunk.iter().zip(preds) {
            spans.push((g.clone(), base - p.probabilities[pos].1));
        }
        progress(spans.len(), total);
    }
    Ok(spans)
}

/// One phrase of a review and its effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Phrase {
    /// Byte range in the review.
    pub range: Range<usize>,
    /// p(positive) with the phrase minus p(positive) without it.
    pub delta: f32,
}

/// Explain `review` start to finish (the library's `explain`): read it, plan the
/// phrases, occlude them through `predict`, and map the phrases back into the
/// review (a truncated review is explained on the parts the model reads).
pub async fn explain_review<F, Fut>(
    c: &Classifier,
    review: &str,
    predict: F,
) -> Result<Vec<Phrase>, String>
where
    F: FnMut(Vec<String>) -> Fut,
    Fut: Future<Output = Result<Vec<Prediction>, String>>,
{
    let (encoded, windows) = read_review(c, review, || async {}).await?;
    let planned = plan(review, &windows);
    let pos = positive_index(&c.labels);
    let per_run = variants_per_run(encoded.ids.len());
    let spans = occlude(&planned, None, pos, per_run, predict, |_, _| {}).await?;
    Ok(spans
        .into_iter()
        .map(|(range, delta)| Phrase {
            range: review_range(&planned, &windows, &range),
            delta,
        })
        .collect())
}
