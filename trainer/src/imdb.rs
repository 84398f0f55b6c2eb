//! Finding the IMDb archive (Maas et al., 2011): `$IMDB_ARCHIVE`, then the user
//! cache, then the official download into that cache.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// The official address of the Large Movie Review Dataset.
pub const IMDB_URL: &str = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz";

/// `~/.cache/bert-sentiment` (or `$XDG_CACHE_HOME/bert-sentiment`).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("bert-sentiment")
}

/// The archive's path, downloading it on first use.
pub fn locate_or_download() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("IMDB_ARCHIVE") {
        let p = PathBuf::from(p);
        if !p.exists() {
            bail!("IMDB_ARCHIVE={}: no such file", p.display());
        }
        return Ok(p);
    }
    let cached = cache_dir().join("aclImdb_v1.tar.gz");
    if cached.is_file() {
        return Ok(cached);
    }
    download(&cached).with_context(|| {
        format!(
            "the IMDb archive is not cached at {} and downloading {IMDB_URL} failed; \
             download it yourself and pass --data <archive> or set IMDB_ARCHIVE",
            cached.display()
        )
    })?;
    Ok(cached)
}

fn download(dest: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dest.parent().expect("cache file has a folder"))?;
    eprintln!("downloading {IMDB_URL}");
    let response = ureq::get(IMDB_URL).call().context("request failed")?;
    let total: Option<u64> = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    let bar = indicatif::ProgressBar::new(total.unwrap_or(0));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({eta} left)",
        )
        .expect("static template"),
    );
    let tmp = dest.with_extension("part");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
    std::io::copy(&mut bar.wrap_read(response.into_reader()), &mut file)
        .context("download interrupted")?;
    file.sync_all()?;
    bar.finish_and_clear();
    std::fs::rename(&tmp, dest)?;
    Ok(())
}
