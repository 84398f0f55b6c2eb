//! A tar archive (POSIX ustar, uncompressed) of a few files in one folder: how the page
//! hands over a model bundle as one download that every system extracts (`tar -xf`,
//! and the file managers of Windows 11, macOS and Linux).

/// The archive of `files` under `folder/` (names, folder included, at most 100 bytes).
pub fn tar(folder: &str, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for (name, bytes) in files {
        let path = format!("{folder}/{name}");
        if path.len() > 100 {
            return Err(format!("{path}: a name too long for a tar archive"));
        }
        let mut header = [0u8; 512];
        header[..path.len()].copy_from_slice(path.as_bytes());
        octal(&mut header[100..108], 0o644);
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], bytes.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = b'0';
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is the header's byte sum with its own field read as spaces.
        header[148..156].fill(b' ');
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        octal(&mut header[148..155], sum);
        out.extend_from_slice(&header);
        out.extend_from_slice(bytes);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    // The end: two empty blocks.
    out.resize(out.len() + 1024, 0);
    Ok(out)
}

/// `value` in octal, zero-padded, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}", width = field.len() - 1);
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn field(h: &[u8], range: std::ops::Range<usize>) -> u64 {
        let s = std::str::from_utf8(&h[range]).unwrap();
        u64::from_str_radix(s.trim_end_matches('\0').trim(), 8).unwrap()
    }

    #[wasm_bindgen_test]
    fn the_archive_holds_each_file_after_a_valid_header() {
        let files = vec![
            ("manifest.json".to_string(), b"{}".to_vec()),
            ("model.safetensors".to_string(), vec![7u8; 1000]),
        ];
        let t = tar("my-model", &files).unwrap();
        assert_eq!(t.len() % 512, 0);
        let mut at = 0;
        for (name, bytes) in &files {
            let h = &t[at..at + 512];
            let path = format!("my-model/{name}");
            assert_eq!(&h[..path.len()], path.as_bytes());
            assert_eq!(h[path.len()], 0);
            assert_eq!(field(h, 124..136), bytes.len() as u64);
            let mut blank = h.to_vec();
            blank[148..156].fill(b' ');
            let sum: u64 = blank.iter().map(|&b| u64::from(b)).sum();
            assert_eq!(field(h, 148..155), sum);
            assert_eq!(&t[at + 512..at + 512 + bytes.len()], bytes.as_slice());
            at += 512 + bytes.len().next_multiple_of(512);
        }
        assert!(t[at..].iter().all(|&b| b == 0) && t.len() - at == 1024);
        assert!(tar(&"x".repeat(95), &files).is_err());
    }
}
