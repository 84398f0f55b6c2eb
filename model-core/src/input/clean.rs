//! Text cleaning: the reviews the release model learned from are plain text with HTML
//! line breaks (`<br />`) in them, and a user pasting a review brings the same tags.
//!
//! The rule lives here, and [`crate::tokenizer::BertTokenizer`] applies it to every
//! text before WordPiece, so training (the trainer's readers), `trainer predict`,
//! `Classifier::predict` and the page cannot disagree: a review read from the IMDb
//! archive and the same review pasted into the page give the same tokens.
//!
//! Each tag becomes as many spaces as it had bytes. The tokenizer splits on any run of
//! whitespace, so the tokens are those of a single space, and byte offsets into the
//! cleaned text are offsets into the original, which the page's explanation relies on.

use std::borrow::Cow;

/// `text` with every `<br>`, `<br/>`, `<br />` (any spaces and slashes inside)
/// blanked to spaces of the same length; borrowed when there is none.
pub fn clean_text(text: &str) -> Cow<'_, str> {
    if !text.contains("<br") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("<br") {
        let after = &rest[pos + 3..];
        match after.find('>') {
            Some(end) if after[..end].chars().all(|c| c == ' ' || c == '/') => {
                out.push_str(&rest[..pos]);
                // `<br` + the spaces and slashes + `>`: all ASCII, one space per byte.
                out.extend(std::iter::repeat_n(' ', 3 + end + 1));
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..pos + 3]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_break_tags_become_spaces_of_the_same_length() {
        let text = "Good.<br /><br />Bad<br/>end<br>x";
        let cleaned = clean_text(text);
        assert_eq!(cleaned, "Good.            Bad     end    x");
        assert_eq!(cleaned.len(), text.len(), "offsets stay valid");
    }

    #[test]
    fn other_text_is_left_alone_and_borrowed() {
        for text in ["a <bread> b", "a <br", "x <br class=\"a\"> y", "plain", ""] {
            assert_eq!(clean_text(text), text);
        }
        assert!(matches!(clean_text("plain"), Cow::Borrowed(_)));
    }
}
