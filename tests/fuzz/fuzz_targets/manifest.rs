//! Any bytes as the web bundle's `manifest.json`: an error naming the file, or a
//! manifest whose checks refuse bytes that do not match it. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use model_core::bundle::Manifest;

fuzz_target!(|data: &[u8]| {
    match Manifest::parse(data, "manifest.json") {
        Ok(m) => {
            let _ = m.total_bytes();
            let _ = m.options(8);
            for f in &m.files {
                // The fuzzer cannot forge a SHA-256: a file of the wrong size or
                // content must always be refused.
                let wrong = vec![0u8; (f.bytes as usize).min(64) + 1];
                assert!(m.verify(&f.name, &wrong).is_err());
            }
            assert!(m.verify("not-in-the-manifest.bin", b"").is_err());
        }
        Err(e) => assert!(e.to_string().contains("manifest.json"), "{e}"),
    }
});
