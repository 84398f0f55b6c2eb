//! The model loaders: arbitrary bytes as `model.safetensors` (first byte even) or
//! as `config.json` (first byte odd), with the tiny model's other files. Loading
//! either fails with an error naming the file or gives a classifier that predicts.
#![no_main]

use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use model_core::open::HfBytes;
use model_core::{Classifier, InferenceOptions, Truncation};

const CONFIG: &[u8] = include_bytes!("../../../model-core/tests/fixtures/tiny/finetuned/config.json");
const TOKENIZER: &[u8] =
    include_bytes!("../../../model-core/tests/fixtures/tiny/finetuned/tokenizer.json");
const WEIGHTS: &[u8] =
    include_bytes!("../../../model-core/tests/fixtures/tiny/finetuned/model.safetensors");

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (config_json, safetensors) = if flags & 1 == 0 {
        (CONFIG, rest)
    } else {
        (rest, WEIGHTS)
    };
    let options = InferenceOptions {
        max_len: 16,
        truncation: Truncation::HeadTail,
        batch_size: 2,
    };
    let files = HfBytes {
        config_json,
        tokenizer_json: TOKENIZER,
        safetensors,
    };
    match Classifier::open(&files, &Device::flex(), Some(options)) {
        Ok((classifier, _)) => {
            // A config the fuzzer made may describe a huge model: only run small ones.
            let c = &classifier.config;
            if c.hidden_size * c.num_hidden_layers <= 4096 && c.intermediate_size <= 4096 {
                let p = classifier.predict(&["a fine film"]).unwrap();
                assert_eq!(p.len(), 1);
            }
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains("model.safetensors") || msg.contains("config.json") || msg.contains("tokenizer.json"),
                "{msg}"
            );
        }
    }
});
