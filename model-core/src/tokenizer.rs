//! The WordPiece tokenizer, through Hugging Face `tokenizers`, with the two
//! truncation strategies the trainer and the page use, and dynamic padding.
//!
//! Truncation is done here rather than by `tokenizers` because `head+tail` (keep the
//! start and the end of a long review, Sun et al. 2019) is not one of its strategies.
//! The special tokens come from the tokenizer's own post-processor, so a checkpoint
//! with a non-standard template still gets its own `[CLS] … [SEP]`.

use std::str::FromStr;

use burn::prelude::*;
use serde::{Deserialize, Serialize};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};
use crate::input::clean_text;
use crate::model::BertInput;

/// How to shorten a text longer than the maximum length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Truncation {
    /// Keep the first tokens (what `transformers` does with `truncation=True`).
    #[serde(rename = "head")]
    Head,
    /// Keep the first quarter and the last three quarters of the budget:
    /// 128 + 382 tokens at length 512, scaled for other lengths.
    #[default]
    #[serde(rename = "head+tail")]
    HeadTail,
}

impl FromStr for Truncation {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "head" => Ok(Truncation::Head),
            "head+tail" | "head-tail" | "headtail" => Ok(Truncation::HeadTail),
            other => Err(Error::InvalidArgument(format!(
                "unknown truncation `{other}` (expected `head` or `head+tail`)"
            ))),
        }
    }
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Truncation::Head => "head",
            Truncation::HeadTail => "head+tail",
        })
    }
}

impl Truncation {
    /// How many content tokens to keep from the start and from the end, for a budget
    /// of `budget` content tokens (max length minus the special tokens).
    pub fn split(self, budget: usize) -> (usize, usize) {
        match self {
            Truncation::Head => (budget, 0),
            Truncation::HeadTail => {
                // 128 of 510 at max length 512, the setting of Sun et al. (2019).
                let head = ((128.0 * budget as f64) / 510.0).round() as usize;
                (head.min(budget), budget - head.min(budget))
            }
        }
    }
}

/// A token's byte range in the text it came from: `(start, end)`.
pub type Offsets = (usize, usize);

/// One tokenized text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Ids with the special tokens, at most the max length.
    pub ids: Vec<u32>,
    /// Segment ids, same length as `ids`.
    pub type_ids: Vec<u32>,
    /// Number of content tokens before truncation (without special tokens).
    pub content_tokens: usize,
    /// Whether tokens were dropped.
    pub truncated: bool,
}

/// A padded batch on the host, ready to be moved to a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Rows.
    pub batch: usize,
    /// Columns: the longest row's length.
    pub seq: usize,
    /// `batch × seq` ids, row-major, padded with the pad id.
    pub input_ids: Vec<i64>,
    /// `batch × seq` segment ids.
    pub token_type_ids: Vec<i64>,
    /// `batch × seq`, 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<i64>,
}

impl Batch {
    /// Pad `rows` to the longest one (dynamic padding).
    pub fn collate(rows: &[&Encoded], pad_id: u32) -> Batch {
        let batch = rows.len();
        let seq = rows.iter().map(|r| r.ids.len()).max().unwrap_or(0);
        let mut input_ids = vec![pad_id as i64; batch * seq];
        let mut token_type_ids = vec![0; batch * seq];
        let mut attention_mask = vec![0; batch * seq];
        for (r, row) in rows.iter().enumerate() {
            for (c, (&id, &ty)) in row.ids.iter().zip(&row.type_ids).enumerate() {
                input_ids[r * seq + c] = id as i64;
                token_type_ids[r * seq + c] = ty as i64;
                attention_mask[r * seq + c] = 1;
            }
        }
        Batch {
            batch,
            seq,
            input_ids,
            token_type_ids,
            attention_mask,
        }
    }

    /// Move to `device` as model input.
    pub fn to_input(&self, device: &Device) -> BertInput {
        let shape = [self.batch, self.seq];
        let ids =
            |v: &Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v.clone(), shape), device);
        let mask = ids(&self.attention_mask);
        BertInput {
            input_ids: ids(&self.input_ids),
            token_type_ids: ids(&self.token_type_ids),
            padding_mask: mask.equal_elem(0),
        }
    }
}

/// The model's tokenizer.
#[derive(Clone)]
pub struct BertTokenizer {
    inner: Tokenizer,
    prefix: Vec<u32>,
    suffix: Vec<u32>,
    pad_id: u32,
}

impl std::fmt::Debug for BertTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertTokenizer")
            .field("vocab", &self.inner.get_vocab_size(true))
            .field("prefix", &self.prefix)
            .field("suffix", &self.suffix)
            .finish()
    }
}

impl BertTokenizer {
    /// From the bytes of a `tokenizer.json`.
    pub fn from_bytes(bytes: &[u8], source_name: &str) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| Error::Tokenizer {
            source_name: source_name.into(),
            message: format!("not a valid tokenizer.json: {e}"),
        })?;
        Self::new(inner, source_name)
    }

    /// From a `tokenizer.json` file.
    #[cfg(feature = "native")]
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// From a BERT `vocab.txt`, for checkpoints that predate `tokenizer.json`:
    /// the standard BERT normaliser, pre-tokenizer and `[CLS] … [SEP]` template.
    pub fn from_vocab(vocab: &str, lowercase: bool, source_name: &str) -> Result<Self> {
        let vocab_map: serde_json::Map<String, serde_json::Value> = vocab
            .lines()
            .enumerate()
            .map(|(i, tok)| (tok.trim_end_matches('\r').to_string(), i.into()))
            .collect();
        let id = |t: &str| {
            vocab_map.get(t).cloned().ok_or_else(|| Error::Tokenizer {
                source_name: source_name.into(),
                message: format!("vocab has no `{t}` token"),
            })
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        id("[UNK]")?;
        let added: Vec<serde_json::Value> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .iter()
            .filter_map(|t| {
                vocab_map.get(*t).map(|id| {
                    serde_json::json!({"id": id, "content": t, "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": false, "special": true})
                })
            })
            .collect();
        // The same pipeline `transformers` converts a slow `BertTokenizer` into.
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": lowercase},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", sep], "cls": ["[CLS]", cls]},
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": vocab_map},
        });
        Self::from_bytes(json.to_string().as_bytes(), source_name)
    }

    fn new(mut inner: Tokenizer, source_name: &str) -> Result<Self> {
        let err = |message: String| Error::Tokenizer {
            source_name: source_name.into(),
            message,
        };
        // The file may carry its own truncation/padding (MiniLM's caps at 128): we do both.
        inner
            .with_truncation(None)
            .map_err(|e| err(e.to_string()))?;
        inner.with_padding(None);
        let probe = "a";
        let bare = inner
            .encode_fast(probe, false)
            .map_err(|e| err(e.to_string()))?;
        let full = inner
            .encode_fast(probe, true)
            .map_err(|e| err(e.to_string()))?;
        let (bare, full) = (bare.get_ids(), full.get_ids());
        let pos = (0..=full.len().saturating_sub(bare.len()))
            .find(|&p| full[p..].starts_with(bare))
            .ok_or_else(|| err("cannot find the special-token template".into()))?;
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("[PAD]"))
            .unwrap_or(0);
        Ok(Self {
            prefix: full[..pos].to_vec(),
            suffix: full[pos + bare.len()..].to_vec(),
            pad_id,
            inner,
        })
    }

    /// Id used for padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Number of special tokens around a single text (2 for BERT).
    pub fn num_special(&self) -> usize {
        self.prefix.len() + self.suffix.len()
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` object, e.g. to save it.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }

    /// Content token ids, without special tokens or truncation, of the cleaned text
    /// ([`clean_text`]; every method here cleans first).
    pub fn content_ids(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(clean_text(text).as_ref(), false)
            .map_err(encode_error)?;
        Ok(enc.get_ids().to_vec())
    }

    /// Content token ids with the byte range of `text` each one came from, so a
    /// caller can tell which part of a long text the model reads.
    /// Cleaning keeps every byte's position, so the offsets index `text` itself.
    pub fn content_ids_with_offsets(&self, text: &str) -> Result<(Vec<u32>, Vec<Offsets>)> {
        let enc = self
            .inner
            .encode(clean_text(text).as_ref(), false)
            .map_err(encode_error)?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    /// Tokenize one text to at most `max_len` ids, special tokens included.
    pub fn encode(&self, text: &str, max_len: usize, truncation: Truncation) -> Result<Encoded> {
        let content = self.content_ids(text)?;
        self.wrap(content, max_len, truncation)
    }

    /// Tokenize many texts (in parallel natively).
    pub fn encode_batch(
        &self,
        texts: &[&str],
        max_len: usize,
        truncation: Truncation,
    ) -> Result<Vec<Encoded>> {
        #[cfg(not(target_arch = "wasm32"))]
        {
            let cleaned: Vec<_> = texts.iter().map(|t| clean_text(t)).collect();
            let cleaned: Vec<&str> = cleaned.iter().map(|t| t.as_ref()).collect();
            let encs = self
                .inner
                .encode_batch_fast(cleaned, false)
                .map_err(encode_error)?;
            encs.into_iter()
                .map(|e| self.wrap(e.get_ids().to_vec(), max_len, truncation))
                .collect()
        }
        #[cfg(target_arch = "wasm32")]
        {
            texts
                .iter()
                .map(|t| self.encode(t, max_len, truncation))
                .collect()
        }
    }

    /// Truncate content ids to the budget and add the special tokens.
    pub fn wrap(
        &self,
        content: Vec<u32>,
        max_len: usize,
        truncation: Truncation,
    ) -> Result<Encoded> {
        let special = self.num_special();
        if max_len <= special {
            return Err(Error::InvalidArgument(format!(
                "max length {max_len} leaves no room for text after {special} special tokens"
            )));
        }
        let budget = max_len - special;
        let content_tokens = content.len();
        let truncated = content_tokens > budget;
        let mut ids = Vec::with_capacity(content_tokens.min(budget) + special);
        ids.extend_from_slice(&self.prefix);
        if truncated {
            let (head, tail) = truncation.split(budget);
            ids.extend_from_slice(&content[..head]);
            ids.extend_from_slice(&content[content_tokens - tail..]);
        } else {
            ids.extend_from_slice(&content);
        }
        ids.extend_from_slice(&self.suffix);
        let type_ids = vec![0; ids.len()];
        Ok(Encoded {
            ids,
            type_ids,
            content_tokens,
            truncated,
        })
    }
}

/// A failure of the `tokenizers` library while encoding text.
fn encode_error(e: tokenizers::Error) -> Error {
    Error::Tokenizer {
        source_name: "tokenizer".into(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BertTokenizer {
        let vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nmovie\nwas\ngreat\nbad\n!\n##s\n";
        BertTokenizer::from_vocab(vocab, true, "vocab.txt").unwrap()
    }

    #[test]
    fn wraps_with_cls_and_sep_and_lowercases() {
        let t = tiny();
        let e = t
            .encode("The MOVIE was great!", 16, Truncation::Head)
            .unwrap();
        assert_eq!(e.ids, vec![2, 4, 5, 6, 7, 9, 3]);
        assert!(!e.truncated);
        assert_eq!(t.encode("", 16, Truncation::Head).unwrap().ids, vec![2, 3]);
    }

    #[test]
    fn head_and_head_tail_keep_different_ends() {
        let t = tiny();
        let text = "the movie was great bad bad bad !";
        let head = t.encode(text, 6, Truncation::Head).unwrap();
        assert_eq!(head.ids, vec![2, 4, 5, 6, 7, 3]);
        assert!(head.truncated);
        assert_eq!(head.content_tokens, 8);
        // budget 4: head = round(128*4/510) = 1, tail = 3
        let ht = t.encode(text, 6, Truncation::HeadTail).unwrap();
        assert_eq!(ht.ids, vec![2, 4, 8, 8, 9, 3]);
    }

    #[test]
    fn head_tail_split_matches_the_paper_at_512() {
        assert_eq!(Truncation::HeadTail.split(510), (128, 382));
        assert_eq!(Truncation::HeadTail.split(254), (64, 190));
        assert_eq!(Truncation::Head.split(254), (254, 0));
    }

    #[test]
    fn collate_pads_to_longest() {
        let t = tiny();
        let a = t.encode("the movie", 16, Truncation::Head).unwrap();
        let b = t.encode("bad", 16, Truncation::Head).unwrap();
        let batch = Batch::collate(&[&a, &b], t.pad_id());
        assert_eq!((batch.batch, batch.seq), (2, 4));
        assert_eq!(batch.input_ids, vec![2, 4, 5, 3, 2, 8, 3, 0]);
        assert_eq!(batch.attention_mask, vec![1, 1, 1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn max_len_too_small_is_an_error() {
        assert!(tiny().encode("the", 2, Truncation::Head).is_err());
    }

    /// The train/serve rule: a review with HTML line breaks, as IMDb's files and a
    /// user's paste have them, reads as the same review with spaces.
    #[test]
    fn line_break_tags_tokenize_as_spaces() {
        let t = tiny();
        let tagged = "the movie<br /><br />bad";
        let spaced = "the movie bad";
        let a = t.encode(tagged, 16, Truncation::Head).unwrap();
        let b = t.encode(spaced, 16, Truncation::Head).unwrap();
        assert_eq!(a.ids, b.ids);
        let batch = t
            .encode_batch(&[tagged, spaced], 16, Truncation::Head)
            .unwrap();
        assert_eq!(batch[0].ids, batch[1].ids);
        let (ids, offsets) = t.content_ids_with_offsets(tagged).unwrap();
        assert_eq!(ids, t.content_ids(spaced).unwrap());
        let last = offsets.last().unwrap();
        assert_eq!(
            &tagged[last.0..last.1],
            "bad",
            "offsets index the original text"
        );
    }
}
