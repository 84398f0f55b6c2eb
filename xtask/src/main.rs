//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `serve`: build the page (release) with the model in `static/model/` and
//!   serve it on `http://127.0.0.1:8080`.
//! - `test`: formatting, cargo deny, every native test, the web crate's tests in headless
//!   Chromium (flex-wasm and WebGPU through SwiftShader), then the end-to-end test of
//!   the built page and the JS library; clippy's lints on every build.
//! - `pack`: the JS library as an npm package.
//! - `bench-web`, `bench-page-batch`, `bench-tune`: the browser benchmarks (dev-only).

mod bench_web;
mod checks;
mod many_reviews;
mod pack;
mod page;
mod serve;
mod tools;
mod tune_imdb;
mod workspace;

use std::process::ExitCode;

const USAGE: &str = "usage: cargo xtask <task>
  serve [--port N] [--no-build] [--no-isolation]
                                 build the page with the release model and serve it on 127.0.0.1
                                 (--no-isolation: without COOP/COEP, as a static host that cannot set headers)
  build-web                      only build the page (into $CARGO_TARGET_DIR/dist)
  test                           fmt, clippy, cargo deny, native tests, browser tests, end-to-end test
  deny                           only cargo deny (licenses, bans, sources; advisories when reachable)
  test-web                       only the web crate's browser tests (headless Chromium and Firefox)
  e2e                            only the end-to-end tests of the built page and the JS library
  pack                           the JS library as an npm package (target/npm/bert-sentiment-0.1.0.tgz)
  bench-web                      browser benchmark: our engine vs Transformers.js (dev-only; needs ../shared)
  bench-page-batch [N]           the page's many-reviews mode on N IMDb test reviews (default 25000) vs trainer predict
  bench-tune                     fine-tuning the release model in the page on 400 IMDb reviews vs the native trainer's step";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().cloned().unwrap_or_default();
    let result = match task.as_str() {
        "serve" => serve::serve_cmd(&args[1..]),
        "build-web" => page::build_web().map(|_| ()),
        "test" => checks::test(),
        "test-web" => checks::test_web(),
        "deny" => checks::deny(),
        "e2e" => checks::e2e(),
        "pack" => pack::pack().map(|_| ()),
        "bench-web" => bench_web::bench_web(),
        "bench-page-batch" => bench_web::bench_page_batch(&args[1..]),
        "bench-tune" => bench_web::bench_tune(),
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
