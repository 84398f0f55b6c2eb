//! What the JSONL and CSV readers look for in a row: which fields or columns hold the
//! text, the label and the id ([`Columns`]), and whether a label must be there
//! ([`Labels`]). Both formats follow the same names and the same label rule.

/// Whether rows must carry a label (training, evaluation) or may go without
/// (classifying a file, where a label is only compared against).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// Every row has a label; a missing or invalid one is an error.
    Required,
    /// A row may have none (absent, `null` or empty); an invalid one is an error.
    Optional,
    /// Labels are not read (classifying a file: whatever is in a label field is no
    /// error).
    Ignored,
}

/// Which fields (JSONL) or columns (CSV) hold the text, the label and the id; `None`
/// takes the defaults.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// The text; default `text`, else `review`.
    pub text: Option<String>,
    /// The label; default `label`, else `sentiment`.
    pub label: Option<String>,
    /// The row's id, copied to its prediction; default `id`.
    pub id: Option<String>,
}

impl Columns {
    /// The names looked for, in order, for the text.
    pub fn text_names(&self) -> Vec<String> {
        Self::names(&self.text, &["text", "review"])
    }

    /// The names looked for, in order, for the label.
    pub fn label_names(&self) -> Vec<String> {
        Self::names(&self.label, &["label", "sentiment"])
    }

    /// The name of the id.
    pub fn id_name(&self) -> &str {
        self.id.as_deref().unwrap_or("id")
    }

    fn names(wanted: &Option<String>, defaults: &[&str]) -> Vec<String> {
        match wanted {
            Some(w) => vec![w.clone()],
            None => defaults.iter().map(|d| d.to_string()).collect(),
        }
    }
}
