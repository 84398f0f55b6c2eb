//! A small static file server for the built page, on 127.0.0.1 only.
//!
//! It sends the headers the page is designed for: the same Content-Security-Policy
//! as the page's meta tag, cross-origin isolation (COOP/COEP, for multi-threaded
//! wasm), `nosniff`, and the right MIME type for `.wasm` (streaming compilation
//! needs `application/wasm`). `no-cache` makes the browser revalidate, so a
//! rebuilt page is picked up; offline use is the service worker's job. Files are
//! sent gzip-compressed where the build wrote a `.gz` beside them, as static hosts
//! compress, so what a first visit downloads here is what it downloads there.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use crate::page::build_web;
use crate::workspace::dist_dir;

pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'";

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" | "jsonl" | "csv" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Map a request path onto a file under `root`, refusing anything that escapes it.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let path = url_path.split(['?', '#']).next().unwrap_or("/");
    let mut out = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_dir() {
        out.push("index.html");
    }
    out.is_file().then_some(out)
}

fn respond(mut stream: TcpStream, root: &Path, isolate: bool) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Read the headers; only Accept-Encoding matters here.
    let mut line = String::new();
    let mut gzip_ok = false;
    let mut if_none_match = None;
    while reader.read_line(&mut line)? > 2 {
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("accept-encoding:") {
            gzip_ok |= v.split(',').any(|e| e.trim().starts_with("gzip"));
        }
        if let Some(v) = lower.strip_prefix("if-none-match:") {
            if_none_match = Some(v.trim().to_string());
        }
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("/");
    let isolation = if isolate {
        "Cross-Origin-Opener-Policy: same-origin\r\nCross-Origin-Embedder-Policy: require-corp\r\n"
    } else {
        ""
    };
    let common = format!(
        "Content-Security-Policy: {CSP}\r\n{isolation}X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\nConnection: close\r\n"
    );
    if method != "GET" && method != "HEAD" {
        write!(
            stream,
            "HTTP/1.1 405 Method Not Allowed\r\n{common}Content-Length: 0\r\n\r\n"
        )?;
        return Ok(());
    }
    match resolve(root, target) {
        Some(file) => {
            // As a static host does: the precompressed `.gz` beside a file (`build_web`
            // writes them) when the browser takes gzip.
            let gz = PathBuf::from(format!("{}.gz", file.display()));
            let (sent, encoding) = if gzip_ok && gz.is_file() {
                (gz, "Content-Encoding: gzip\r\n")
            } else {
                (file.clone(), "")
            };
            // `no-cache` revalidates: an unchanged file costs a 304, not its bytes
            // again (the service worker's offline copy of what the page just fetched).
            let etag = etag(&sent)?;
            if if_none_match.as_deref() == Some(etag.as_str()) {
                write!(
                    stream,
                    "HTTP/1.1 304 Not Modified\r\n{common}ETag: {etag}\r\nVary: Accept-Encoding\r\n\r\n"
                )?;
                return stream.flush();
            }
            let body = std::fs::read(&sent)?;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\n{common}Content-Type: {}\r\n{encoding}ETag: {etag}\r\nVary: Accept-Encoding\r\nContent-Length: {}\r\n\r\n",
                content_type(&file),
                body.len()
            )?;
            if method == "GET" {
                stream.write_all(&body)?;
            }
        }
        None => {
            let body = b"not found";
            write!(
                stream,
                "HTTP/1.1 404 Not Found\r\n{common}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )?;
            stream.write_all(body)?;
        }
    }
    stream.flush()
}

/// A validator for `path` as it is now: its size and modification time.
fn etag(path: &Path) -> std::io::Result<String> {
    let meta = std::fs::metadata(path)?;
    let modified = meta
        .modified()?
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Ok(format!("\"{:x}-{modified:x}\"", meta.len()))
}

/// Bind `127.0.0.1:port` (0 picks a free port) and return the listener.
pub fn bind(port: u16) -> Result<TcpListener, String> {
    TcpListener::bind(("127.0.0.1", port))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{port}: {e} (pick another with --port)"))
}

/// Serve `root` forever, one thread per connection; `isolate`: with the COOP/COEP
/// headers (without them, as a static host that cannot set headers serves it).
pub fn serve(listener: TcpListener, root: PathBuf, isolate: bool) {
    for stream in listener.incoming().flatten() {
        let root = root.clone();
        std::thread::spawn(move || {
            let _ = respond(stream, &root, isolate);
        });
    }
}

pub fn serve_cmd(args: &[String]) -> Result<(), String> {
    let mut port = 8080u16;
    let mut build = true;
    let mut isolate = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--port" => {
                port = it
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or("--port needs a number")?
            }
            "--no-build" => build = false,
            "--no-isolation" => isolate = false,
            other => return Err(format!("serve: unknown argument `{other}`")),
        }
    }
    let dist = if build { build_web()? } else { dist_dir() };
    let listener = bind(port)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("\nServing the page on http://{addr}/  (Ctrl+C stops)");
    serve(listener, dist, isolate);
    Ok(())
}
