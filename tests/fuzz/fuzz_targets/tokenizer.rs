//! The tokenizer path with arbitrary bytes (decoded as the page and the CLI do,
//! lossily): `[CLS] … [SEP]`, never longer than the budget, for any max length and
//! both truncations, one text or a batch.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use model_core::{BertTokenizer, Truncation};

const TOKENIZER: &[u8] =
    include_bytes!("../../../model-core/tests/fixtures/tiny/finetuned/tokenizer.json");

fuzz_target!(|data: &[u8]| {
    static TOK: OnceLock<BertTokenizer> = OnceLock::new();
    let tok = TOK.get_or_init(|| BertTokenizer::from_bytes(TOKENIZER, "tokenizer.json").unwrap());
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let max_len = 3 + (flags as usize >> 1);
    let truncation = if flags & 1 == 0 {
        Truncation::Head
    } else {
        Truncation::HeadTail
    };
    let text = String::from_utf8_lossy(rest);
    let one = tok.encode(&text, max_len, truncation).unwrap();
    assert!(one.ids.len() <= max_len && one.ids.len() >= 2);
    assert_eq!(one.truncated, one.content_tokens + 2 > max_len);
    assert_eq!(one.ids.len(), one.type_ids.len());
    let halves: Vec<&str> = text.splitn(2, '\n').collect();
    let batch = tok.encode_batch(&halves, max_len, truncation).unwrap();
    assert_eq!(batch.len(), halves.len());
    assert_eq!(batch[0].ids, tok.encode(halves[0], max_len, truncation).unwrap().ids);
});
