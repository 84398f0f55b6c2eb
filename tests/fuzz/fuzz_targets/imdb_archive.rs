//! Archive entries: the input is read as the IMDb `.tar.gz` itself (first byte
//! odd), or gzip-compressed first so the fuzzer explores the tar entries, their
//! paths and contents (first byte even). Never a panic; errors name the archive.
#![no_main]

use std::io::Write;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use trainer::data::{Split, read_imdb_archive};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let gz;
    let stream: &[u8] = if flags & 1 == 1 {
        rest
    } else {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(rest).unwrap();
        gz = enc.finish().unwrap();
        &gz
    };
    let split = if flags & 2 == 0 { Split::Train } else { Split::Test };
    match read_imdb_archive(stream, split, Path::new("fuzz.tar.gz")) {
        Ok(d) => assert!(d.examples.iter().all(|e| e.label < 2)),
        Err(e) => assert!(format!("{e:#}").contains("fuzz.tar.gz"), "{e:#}"),
    }
});
