//! Any bytes as a CSV or TSV dataset (the first byte picks the delimiter and
//! whether custom column names are asked for): never a panic; errors name the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trainer::data::{Columns, read_csv};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let delimiter = if flags & 1 == 0 { b',' } else { b'\t' };
    let columns = if flags & 2 == 0 {
        Columns::default()
    } else {
        Columns {
            text: Some("body".into()),
            label: Some("stars".into()),
            id: None,
        }
    };
    match read_csv(rest, delimiter, &columns, Path::new("fuzz.csv")) {
        Ok(d) => assert!(d.examples.iter().all(|e| e.label < d.labels.len())),
        Err(e) => assert!(format!("{e:#}").contains("fuzz.csv"), "{e:#}"),
    }
});
