//! Any bytes as a JSONL dataset: an error or labeled data, never a panic; errors
//! name the file and line.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match trainer::data::read_jsonl(data, Path::new("fuzz.jsonl")) {
        Ok(d) => {
            assert!(d.examples.iter().all(|e| e.label < d.labels.len()));
        }
        Err(e) => assert!(format!("{e:#}").contains("fuzz.jsonl"), "{e:#}"),
    }
});
