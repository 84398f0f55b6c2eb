//! The page's text handling that does not touch the DOM, so it is unit-tested
//! natively: which label is "positive", and text ranges in bytes and in UTF-16
//! units. (Words and phrases for occlusion are in [`crate::occlusion`]; batch input
//! and results in [`crate::batch`].)

/// Index of the label that "positive" means: one named so, else the last.
pub fn positive_index(labels: &[String]) -> usize {
    labels
        .iter()
        .position(|l| l.eq_ignore_ascii_case("positive") || l.eq_ignore_ascii_case("pos"))
        .unwrap_or(labels.len().saturating_sub(1))
}

/// A probability as the page shows it, to one decimal: `0.9957` → `99.6%`. The page
/// shows what the model computed, so a probability below 1 never reads `100%` (it
/// reads `>99.9%`) and one above 0 never reads `0%` (`<0.1%`).
pub fn percent(p: f32) -> String {
    let shown = format!("{:.1}", p * 100.0);
    if shown == "100.0" && p < 1.0 {
        ">99.9%".into()
    } else if shown == "0.0" && p > 0.0 {
        "<0.1%".into()
    } else {
        format!("{shown}%")
    }
}

/// "Positive" from "positive".
pub fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A byte range of `text` as UTF-16 code units (what JS's `String.slice` takes).
pub fn utf16_range(text: &str, range: &std::ops::Range<usize>) -> std::ops::Range<usize> {
    let units = |s: &str| s.encode_utf16().count();
    let start = units(&text[..range.start]);
    start..start + units(&text[range.clone()])
}

/// The byte range of `text` that UTF-16 range `[start, end)` covers (clamped to the
/// text; an index inside a character moves to that character's end).
pub fn byte_range(text: &str, [start, end]: [usize; 2]) -> std::ops::Range<usize> {
    let mut units = 0;
    let (mut from, mut to) = (text.len(), text.len());
    for (i, ch) in text.char_indices() {
        if units >= start && from == text.len() {
            from = i;
        }
        if units >= end {
            to = i;
            break;
        }
        units += ch.len_utf16();
    }
    from.min(to)..to
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn ranges_convert_between_bytes_and_utf16_units() {
        let text = "Très 😀 bien";
        let bien = text.find("bien").unwrap();
        let r = utf16_range(text, &(bien..text.len()));
        // "Très " is 5 units, the emoji 2, the space 1.
        assert_eq!(r, 8..12);
        assert_eq!(byte_range(text, [r.start, r.end]), bien..text.len());
        assert_eq!(byte_range(text, [0, 5]), 0.."Très ".len());
        assert_eq!(byte_range(text, [0, 99]), 0..text.len());
    }

    fn labels() -> Vec<String> {
        vec!["negative".into(), "positive".into()]
    }

    #[wasm_bindgen_test]
    fn the_positive_label_and_capitals() {
        assert_eq!(positive_index(&labels()), 1);
        assert_eq!(positive_index(&["pos".into(), "neg".into()]), 0);
        assert_eq!(capitalize("positive"), "Positive");
    }

    #[wasm_bindgen_test]
    fn percentages_show_what_was_computed() {
        assert_eq!(percent(0.99574), "99.6%");
        assert_eq!(percent(0.5), "50.0%");
        assert_eq!(percent(1.0), "100.0%");
        assert_eq!(percent(0.99996), ">99.9%");
        assert_eq!(percent(0.00004), "<0.1%");
        assert_eq!(percent(0.0), "0.0%");
    }
}
