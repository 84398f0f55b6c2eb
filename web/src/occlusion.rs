//! What the model reads of a review, and the "Why?" explanation, as byte-range
//! arithmetic on text: no DOM and no model, so all of it is unit-tested natively.
//!
//! The explanation is occlusion: the review is cut into about [`MAX_PHRASES`]
//! phrases, each is removed in turn, and the change in p(positive) is that
//! phrase's effect. A truncated review is explained on the parts the model read.

use std::ops::Range;

/// About this many phrases are removed in turn (each stretch between gaps gets at
/// least one), so that explaining a long review costs a bounded number of forward
/// passes.
pub const MAX_PHRASES: usize = 48;

/// About this many tokens go through the model per run of variants: small runs
/// with a yield between them keep the page responsive while it explains.
const TOKENS_PER_RUN: usize = 256;

/// And at most this many variants per run, however short the review.
const MAX_VARIANTS_PER_RUN: usize = 8;

/// Byte ranges of the whitespace-separated words of `text`.
pub fn word_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                spans.push(s..i);
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push(s..text.len());
    }
    spans
}

/// Group consecutive words into at most `max_groups` phrases of equal word count,
/// so that explaining a long review costs a bounded number of forward passes.
pub fn phrases(words: &[Range<usize>], max_groups: usize) -> Vec<Range<usize>> {
    if words.is_empty() || max_groups == 0 {
        return Vec::new();
    }
    let per = words.len().div_ceil(max_groups);
    words
        .chunks(per)
        .map(|c| c[0].start..c[c.len() - 1].end)
        .collect()
}

/// `text` with `span` removed (occlusion: what the model says without it).
pub fn without(text: &str, span: &Range<usize>) -> String {
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..span.start]);
    out.push(' ');
    out.push_str(&text[span.end..]);
    out
}

/// Byte ranges of `text` of about `target` bytes each, cut just after whitespace,
/// that cover it in order. BERT's tokenizer splits words at whitespace and
/// normalises character by character, so tokenizing the pieces one by one gives
/// the same tokens as tokenizing the whole text (a single "word" longer than
/// `target` is the one exception, and WordPiece maps such a word to `[UNK]` anyway).
pub fn pieces(text: &str, target: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    while text.len() - start > target {
        let mut cut = start + target;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        // Back up to just after the last whitespace of the piece, if there is one.
        if let Some(ws) = text[start..cut].rfind(char::is_whitespace) {
            let ws = start + ws;
            let after = ws + text[ws..].chars().next().map_or(1, char::len_utf8);
            if after > start {
                cut = after;
            }
        }
        out.push(start..cut);
        start = cut;
    }
    if start < text.len() || out.is_empty() {
        out.push(start..text.len());
    }
    out
}

/// The byte ranges of a text that the model reads once it is truncated: the text
/// up to the end of the last head token, and from the start of the first tail
/// token. `offsets` are the content tokens' byte ranges; `head` and `tail` how many
/// of them are kept ([`model_core::Truncation::split`]).
#[allow(clippy::single_range_in_vec_init)] // one range = the whole text, on purpose
pub fn kept_windows(
    offsets: &[(usize, usize)],
    text_len: usize,
    head: usize,
    tail: usize,
) -> Vec<Range<usize>> {
    let n = offsets.len();
    if head + tail >= n {
        return vec![0..text_len];
    }
    let mut windows = Vec::new();
    if head > 0 {
        windows.push(0..offsets[head - 1].1);
    }
    if tail > 0 {
        windows.push(offsets[n - tail].0..text_len);
    }
    windows
}

/// The parts of `review` in `windows`, joined by spaces, and where the result skips
/// text: (byte position, characters left out).
pub fn read_parts(review: &str, windows: &[Range<usize>]) -> (String, Vec<(usize, usize)>) {
    let mut text = String::new();
    let mut gaps = Vec::new();
    let mut prev = 0;
    for w in windows {
        if w.start > prev {
            gaps.push((text.len(), review[prev..w.start].chars().count()));
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&review[w.clone()]);
        prev = w.end;
    }
    if prev < review.len() {
        gaps.push((text.len(), review[prev..].chars().count()));
    }
    (text, gaps)
}

/// Where a phrase of `plan.text` (`range`) lies in the review it came from, whose
/// `windows` the model read: the same range for a whole review, else shifted into
/// its window (phrases never straddle a gap, so each lies in one window).
pub fn review_range(plan: &Plan, windows: &[Range<usize>], range: &Range<usize>) -> Range<usize> {
    if plan.whole {
        return range.clone();
    }
    // The windows' starts in `plan.text`, as `read_parts` joins them.
    let mut at = 0;
    for (i, w) in windows.iter().enumerate() {
        if i > 0 && at > 0 {
            at += 1;
        }
        let len = w.end - w.start;
        if range.start >= at && range.end <= at + len {
            return w.start + (range.start - at)..w.start + (range.end - at);
        }
        at += len;
    }
    range.clone()
}

/// Phrases for occlusion that never straddle a gap: each stretch between gaps gets
/// its share of the `max` phrases.
pub fn phrases_between(text: &str, gaps: &[(usize, usize)], max: usize) -> Vec<Range<usize>> {
    let words = word_spans(text);
    let mut bounds: Vec<usize> = gaps.iter().map(|g| g.0).collect();
    bounds.push(usize::MAX);
    let mut out = Vec::new();
    let mut rest = &words[..];
    for b in bounds {
        let n = rest.iter().take_while(|w| w.start < b).count();
        let (stretch, after) = rest.split_at(n);
        let share = (max * stretch.len()).div_ceil(words.len().max(1)).max(1);
        out.extend(phrases(stretch, share));
        rest = after;
    }
    out
}

/// What an explanation runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The text explained: the review, or for a truncated one the parts the model
    /// read, joined by spaces.
    pub text: String,
    /// Where `text` skips part of the review: (byte position, characters left out).
    pub gaps: Vec<(usize, usize)>,
    /// `text` is the whole review, so the prediction already shown for it is the
    /// baseline (no extra forward pass).
    pub whole: bool,
    /// The phrases of `text` to remove in turn.
    pub phrases: Vec<Range<usize>>,
}

/// Plan the explanation of `review`, of which the model read `windows`.
pub fn plan(review: &str, windows: &[Range<usize>]) -> Plan {
    let whole = windows.len() == 1 && windows[0] == (0..review.len());
    // A truncated review is explained on what the model read: its kept parts.
    let (text, gaps) = if whole {
        (review.to_string(), Vec::new())
    } else {
        read_parts(review, windows)
    };
    let phrases = phrases_between(&text, &gaps, MAX_PHRASES);
    Plan {
        text,
        gaps,
        whole,
        phrases,
    }
}

/// How many variants of a text of `tokens` tokens go through the model per run.
pub fn variants_per_run(tokens: usize) -> usize {
    (TOKENS_PER_RUN / tokens.max(1)).clamp(1, MAX_VARIANTS_PER_RUN)
}

/// Occlusion result: each phrase with the change in p(positive) when it is removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    /// The text explained ([`Plan::text`]).
    pub text: String,
    /// Each phrase of `text`, with p(positive) minus p(positive) without it.
    pub spans: Vec<(Range<usize>, f32)>,
    /// The label that "positive" means.
    pub positive: String,
    /// Where `text` skips part of the review ([`Plan::gaps`]).
    pub gaps: Vec<(usize, usize)>,
}

/// A stretch of an explanation as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// Text outside every phrase.
    Plain(String),
    /// A phrase, with its effect on p(positive).
    Phrase(String, f32),
    /// Where a truncated review skips this many characters.
    Gap(usize),
}

/// The explained text in order: plain text, phrases, and markers where a
/// truncated review skips text.
pub fn segments(e: &Explanation) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut gaps = e.gaps.iter().peekable();
    // Phrases never straddle a gap, so each gap falls in a stretch of plain text.
    let mut plain = |out: &mut Vec<Segment>, from: usize, to: usize| {
        let mut at = from;
        while let Some(&&(pos, chars)) = gaps.peek() {
            if pos > to {
                break;
            }
            if pos > at {
                out.push(Segment::Plain(e.text[at..pos].to_string()));
                at = pos;
            }
            out.push(Segment::Gap(chars));
            gaps.next();
        }
        if to > at {
            out.push(Segment::Plain(e.text[at..to].to_string()));
        }
    };
    let mut at = 0;
    for (range, delta) in &e.spans {
        plain(&mut out, at, range.start);
        out.push(Segment::Phrase(e.text[range.clone()].to_string(), *delta));
        at = range.end;
    }
    plain(&mut out, at, e.text.len());
    out
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn phrases_of_a_truncated_review_map_back_into_it() {
        let review = "good start here, a very long and dull middle, bad ending now";
        let head_end = review.find(',').unwrap();
        let tail_start = review.rfind(',').unwrap() + 2;
        let windows = vec![0..head_end, tail_start..review.len()];
        let p = plan(review, &windows);
        assert!(!p.whole);
        for range in &p.phrases {
            let back = review_range(&p, &windows, range);
            assert_eq!(&review[back], &p.text[range.clone()]);
        }
        // A whole review's phrases are its own ranges.
        let whole = plan(review, &[0..review.len()]);
        let r = whole.phrases[1].clone();
        assert_eq!(review_range(&whole, &[0..review.len()], &r), r);
    }

    #[wasm_bindgen_test]
    fn words_and_phrases_cover_the_text() {
        let t = "  A truly  great\nfilm! ";
        let w = word_spans(t);
        let words: Vec<&str> = w.iter().map(|r| &t[r.clone()]).collect();
        assert_eq!(words, ["A", "truly", "great", "film!"]);
        let p = phrases(&w, 2);
        let ps: Vec<&str> = p.iter().map(|r| &t[r.clone()]).collect();
        assert_eq!(ps, ["A truly", "great\nfilm!"]);
        assert_eq!(phrases(&w, 10).len(), 4);
        assert_eq!(
            without(t, &w[2]).split_whitespace().collect::<Vec<_>>(),
            ["A", "truly", "film!"]
        );
        assert!(phrases(&[], 5).is_empty());
        let multi = "café über naïve";
        let w = word_spans(multi);
        assert_eq!(&multi[w[2].clone()], "naïve");
    }

    #[wasm_bindgen_test]
    fn pieces_cover_the_text_and_end_after_whitespace() {
        let t = "héllo wörld, a fine film ".repeat(50) + &"x".repeat(300) + " end";
        let p = pieces(&t, 64);
        assert_eq!(p.first().unwrap().start, 0);
        assert_eq!(p.last().unwrap().end, t.len());
        for w in p.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        // Every piece but the unsplittable run of x's ends just after whitespace.
        for r in &p[..p.len() - 1] {
            let piece = &t[r.clone()];
            assert!(
                piece.ends_with(' ') || piece.chars().all(|c| c == 'x'),
                "{piece:?}"
            );
            assert!(piece.len() <= 64 + 3);
        }
        assert_eq!(pieces("", 8), vec![0..0]);
        assert_eq!(pieces("short", 8), vec![0..5]);
    }

    #[wasm_bindgen_test]
    fn kept_windows_follow_the_token_offsets() {
        // "aa bb cc dd ee": five tokens.
        let offsets = [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)];
        assert_eq!(kept_windows(&offsets, 14, 2, 1), vec![0..5, 12..14]);
        assert_eq!(kept_windows(&offsets, 14, 3, 0), vec![0..8]);
        assert_eq!(kept_windows(&offsets, 14, 0, 2), vec![9..14]);
        assert_eq!(kept_windows(&offsets, 14, 4, 1), vec![0..14]);
    }

    #[wasm_bindgen_test]
    fn word_spans_cover_every_non_space_character_once() {
        let t = "\tUn film  très\u{a0}bon,\r\nvraiment ";
        let spans = word_spans(t);
        let mut covered = vec![false; t.len()];
        for w in &spans {
            assert!(!t[w.clone()].contains(char::is_whitespace), "{w:?}");
            for c in &mut covered[w.clone()] {
                assert!(!*c, "{w:?} overlaps");
                *c = true;
            }
        }
        for (i, c) in t.char_indices() {
            assert_eq!(covered[i], !c.is_whitespace(), "byte {i} ({c:?})");
        }
        for pair in spans.windows(2) {
            assert!(pair[0].end < pair[1].start);
        }
    }

    #[wasm_bindgen_test]
    fn removing_a_phrase_removes_exactly_its_words() {
        let t = "It was, frankly, a triumph — of editing.";
        let words = word_spans(t);
        assert_eq!(words.len(), 8);
        let groups = phrases(&words, 3);
        assert_eq!(groups.len(), 3);
        for p in &groups {
            let kept: Vec<&str> = words
                .iter()
                .filter(|w| w.end <= p.start || w.start >= p.end)
                .map(|w| &t[w.clone()])
                .collect();
            let v = without(t, p);
            assert_eq!(v.split_whitespace().collect::<Vec<_>>(), kept);
            assert_eq!(v.len(), t.len() - (p.end - p.start) + 1);
        }
    }

    #[wasm_bindgen_test]
    fn a_truncated_review_is_explained_on_what_the_model_read() {
        // The model read "aa bb" and "ee" of "aa bb cc dd ee".
        let review = "aa bb cc dd ee";
        let (text, gaps) = read_parts(review, &[0..5, 12..14]);
        assert_eq!(text, "aa bb ee");
        assert_eq!(gaps, [(5, 7)]);
        let p = plan(review, &[0..5, 12..14]);
        assert!(!p.whole);
        assert_eq!(
            (p.text.as_str(), p.gaps.as_slice()),
            ("aa bb ee", &gaps[..])
        );
        assert_eq!(p.phrases, [0..2, 3..5, 6..8]);
        // Skipping the start and the end too.
        assert_eq!(
            read_parts(review, &[3..5]),
            ("bb".to_string(), vec![(0, 3), (2, 9)])
        );

        let whole = plan("good film", &[0..9]);
        assert!(whole.whole && whole.gaps.is_empty());
        assert_eq!(whole.phrases, [0..4, 5..9]);
    }

    #[wasm_bindgen_test]
    fn phrases_never_straddle_a_gap() {
        let text = "aa bb ee";
        let gaps = [(5, 7)];
        // One phrase allowed, but each stretch between gaps gets at least one.
        let p = phrases_between(text, &gaps, 1);
        assert_eq!(p, [0..5, 6..8]);
        for r in &p {
            assert!(gaps.iter().all(|g| g.0 <= r.start || g.0 >= r.end), "{r:?}");
        }
        assert!(phrases_between("", &[], MAX_PHRASES).is_empty());
        let long = "word ".repeat(500);
        assert!(phrases_between(&long, &[], MAX_PHRASES).len() <= MAX_PHRASES);
    }

    #[wasm_bindgen_test]
    fn segments_put_the_gaps_in_the_plain_text() {
        let e = Explanation {
            text: "aa bb cc".into(),
            spans: vec![(3..5, 0.25)],
            positive: "positive".into(),
            gaps: vec![(0, 4), (8, 2)],
        };
        assert_eq!(
            segments(&e),
            [
                Segment::Gap(4),
                Segment::Plain("aa ".into()),
                Segment::Phrase("bb".into(), 0.25),
                Segment::Plain(" cc".into()),
                Segment::Gap(2),
            ]
        );
    }

    #[wasm_bindgen_test]
    fn runs_hold_about_256_tokens() {
        assert_eq!(variants_per_run(0), MAX_VARIANTS_PER_RUN);
        assert_eq!(variants_per_run(10), MAX_VARIANTS_PER_RUN);
        assert_eq!(variants_per_run(64), 4);
        assert_eq!(variants_per_run(512), 1);
    }
}
