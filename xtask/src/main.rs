//! `cargo xtask <task>`: the project's automation, in Rust so it runs wherever cargo does.
//!
//! - `serve`: build the page (trunk, release) with the model in `static/model/` and
//!   serve it on `http://127.0.0.1:8080`.
//! - `test`: formatting, clippy, every native test, the web crate's tests in headless
//!   Chromium (flex-wasm and WebGPU through SwiftShader), then the end-to-end test of
//!   the built page.

mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The trunk release this project builds with (0.22 needs a newer rustc).
const TRUNK_VERSION: &str = "0.21.14";

/// The workspace root. `cargo run` sets `CARGO_MANIFEST_DIR` for the process: prefer it
/// to the compile-time value, which names whichever clone built the binary, and a
/// build cache shared between clones can hand this clone another clone's binary.
fn root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().unwrap_or(Path::new(".")).to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where the built page goes.
fn dist_dir() -> PathBuf {
    target_dir().join("dist")
}

/// Run a command from the workspace root; on failure, say which one and stop.
fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    run_in(&root(), program, args, envs)
}

fn run_in(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("\n==> {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// `program --version`'s output, if it runs.
fn version_of(program: &str) -> Option<String> {
    let out = Command::new(program).arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The exact wasm-bindgen version in Cargo.lock: wasm-bindgen-cli must match it.
fn locked_wasm_bindgen() -> Result<String, String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_string());
        }
    }
    Err("Cargo.lock has no wasm-bindgen entry".into())
}

/// Install what building the page needs, once: the wasm target, trunk, and the
/// wasm-bindgen CLI matching Cargo.lock (trunk would otherwise try to download it).
fn ensure_web_tools() -> Result<(), String> {
    if Command::new("rustup").arg("--version").output().is_ok() {
        run("rustup", &["target", "add", "wasm32-unknown-unknown"], &[])?;
    }
    let wb = locked_wasm_bindgen()?;
    if version_of("wasm-bindgen").is_none_or(|v| !v.ends_with(&wb)) {
        eprintln!("installing wasm-bindgen-cli {wb} (once, a few minutes)");
        run(
            "cargo",
            &["install", "wasm-bindgen-cli", "--version", &wb],
            &[],
        )?;
    }
    if version_of("trunk").is_none_or(|v| !v.ends_with(TRUNK_VERSION)) {
        eprintln!("installing trunk {TRUNK_VERSION} (once, a few minutes)");
        run(
            "cargo",
            &["install", "trunk", "--version", TRUNK_VERSION, "--locked"],
            &[],
        )?;
    }
    Ok(())
}

/// Build the page into `dist_dir()`.
fn build_web() -> Result<PathBuf, String> {
    ensure_web_tools()?;
    let model = root().join("static/model/manifest.json");
    if !model.is_file() {
        return Err(format!(
            "{}: no release model; export one with `trainer export --run <run> --out static/model --format web --dtype int8`",
            model.display()
        ));
    }
    let dist = dist_dir();
    let dist_s = dist.to_string_lossy().to_string();
    run(
        "trunk",
        &[
            "build",
            "--release",
            "--config",
            "web/Trunk.toml",
            "--dist",
            &dist_s,
        ],
        &[],
    )?;
    build_relaxed_simd(&dist)?;
    report_sizes(&dist);
    Ok(dist)
}

/// The page module's second build, into `dist/relaxed/`: the CPU engine's GEMM with
/// relaxed SIMD's fused multiply-add (`--features relaxed-simd`). static/boot.js loads
/// it where the browser validates relaxed SIMD, and trunk's plain simd128 build
/// elsewhere. Same profile and target directory as trunk's build, so only model-core
/// and web compile again.
fn build_relaxed_simd(dist: &Path) -> Result<(), String> {
    run(
        "cargo",
        &[
            "build",
            "--package",
            "web",
            "--bin",
            "web",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "web-release",
            "--features",
            "relaxed-simd",
        ],
        &[],
    )?;
    let wasm = target_dir().join("wasm32-unknown-unknown/web-release/web.wasm");
    let out = dist.join("relaxed");
    let s = |p: &Path| p.to_string_lossy().to_string();
    run(
        "wasm-bindgen",
        &[
            &s(&wasm),
            "--target",
            "web",
            "--out-dir",
            &s(&out),
            "--out-name",
            "web",
            "--no-typescript",
        ],
        &[],
    )
}

fn gzip_len(path: &Path) -> Option<u64> {
    let out = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(path)
        .output()
        .ok()?;
    Some(out.stdout.len() as u64)
}

fn report_sizes(dist: &Path) {
    let model: u64 = std::fs::read_dir(dist.join("model"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let mb = |b: u64| b as f64 / 1e6;
    for (dir, what) in [
        (dist.to_path_buf(), "simd128"),
        (dist.join("relaxed"), "relaxed SIMD"),
    ] {
        let (wasm, js) = (dir.join("web_bg.wasm"), dir.join("web.js"));
        if let (Ok(w), Some(wg), Some(jg)) = (wasm.metadata(), gzip_len(&wasm), gzip_len(&js)) {
            eprintln!(
                "page module ({what}): wasm {:.1} MB ({:.2} MB gzipped), js {:.2} MB gzipped",
                mb(w.len()),
                mb(wg),
                mb(jg),
            );
        }
    }
    eprintln!("model files {:.1} MB", mb(model));
}

fn serve_cmd(args: &[String]) -> Result<(), String> {
    let mut port = 8080u16;
    let mut build = true;
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
            other => return Err(format!("serve: unknown argument `{other}`")),
        }
    }
    let dist = if build { build_web()? } else { dist_dir() };
    let listener = serve::bind(port)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("\nServing the page on http://{addr}/  (Ctrl+C stops)");
    serve::serve(listener, dist);
    Ok(())
}

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn test() -> Result<(), String> {
    run("cargo", &["fmt", "--all", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    deny()?;
    run("cargo", &["test", "--workspace"], &[])?;
    test_web()?;
    e2e()
}

/// The cargo-deny release `.ci/run` installs.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// `cargo deny` over the dependency graph with `.ci/deny.toml`: licenses, bans and
/// sources always; RustSec advisories when the advisory database can be fetched
/// (it lives on GitHub, which some machines cannot reach: then it says so).
fn deny() -> Result<(), String> {
    if version_of_sub("cargo", "deny").is_none() {
        eprintln!(
            "\nskipped cargo deny: not installed (cargo install cargo-deny --version {CARGO_DENY_VERSION} --locked)"
        );
        return Ok(());
    }
    let config = root().join(".ci/deny.toml");
    let config = config.to_string_lossy();
    run(
        "cargo",
        &[
            "deny", "--config", &config, "check", "licenses", "bans", "sources",
        ],
        &[],
    )?;
    eprintln!("\n==> cargo deny check advisories");
    let out = Command::new("cargo")
        .args(["deny", "--config", &config, "check", "advisories"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot start cargo deny: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        eprintln!("advisories ok");
        return Ok(());
    }
    let unreachable = [
        "failed to fetch",
        "failed to open advisory database",
        "Could not resolve host",
        "network",
    ]
    .iter()
    .any(|n| stderr.contains(n));
    if unreachable && !stderr.contains("error[vulnerability]") {
        eprintln!(
            "skipped the RustSec advisories: the advisory database (github.com/rustsec/advisory-db) cannot be fetched from this machine"
        );
        Ok(())
    } else {
        eprintln!("{stderr}");
        Err("cargo deny found advisories".into())
    }
}

/// `program sub --version`'s output, if it runs (for cargo subcommands).
fn version_of_sub(program: &str, sub: &str) -> Option<String> {
    let out = Command::new(program)
        .args([sub, "--version"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn test_web() -> Result<(), String> {
    let driver = chromedriver();
    let env = [("WASM_BINDGEN_TEST_TIMEOUT", "300")];
    // All the tests, then the browser-inference ones again in the page's second module
    // (relaxed SIMD: the f32 kernel's fused multiply-add and the int8 kernel's dot
    // product), in Chromium, which has relaxed SIMD.
    let relaxed: &[&str] = &["--test", "inference", "--features", "relaxed-simd"];
    for extra in [&[][..], relaxed] {
        let mut args = vec![
            "test",
            "--headless",
            "--chrome",
            "--chromedriver",
            &driver,
            "web",
        ];
        args.extend_from_slice(extra);
        run("wasm-pack", &args, &env)?;
    }
    // Firefox too, where it is installed (`.ci/run` installs firefox-esr and geckodriver).
    let firefox = ["firefox-esr", "firefox"]
        .into_iter()
        .find(|f| version_of(f).is_some());
    let gecko = std::env::var("GECKODRIVER").unwrap_or_else(|_| "geckodriver".into());
    match (firefox, version_of(&gecko)) {
        (Some(_), Some(_)) => run(
            "wasm-pack",
            &[
                "test",
                "--headless",
                "--firefox",
                "--geckodriver",
                &gecko,
                "web",
            ],
            &env,
        ),
        (firefox, _) => {
            eprintln!(
                "\nskipped the Firefox run of the web tests: {} not found",
                if firefox.is_none() {
                    "firefox-esr"
                } else {
                    "geckodriver"
                }
            );
            Ok(())
        }
    }
}

/// Build the page, serve it on a free port, and run the end-to-end test
/// (`tests/e2e/e2e.mjs`, Playwright driving headless Chromium).
fn e2e() -> Result<(), String> {
    let dist = build_web()?;
    let e2e_dir = root().join("tests/e2e");
    if !e2e_dir.join("node_modules/playwright-core").is_dir() {
        run_in(&e2e_dir, "npm", &["ci", "--no-audit", "--no-fund"], &[])?;
    }
    let listener = serve::bind(0)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    std::thread::spawn(move || serve::serve(listener, dist));
    let artifacts = target_dir().join("e2e-artifacts");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/");
    let artifacts_s = artifacts.to_string_lossy().to_string();
    run_in(
        &e2e_dir,
        "node",
        &["e2e.mjs"],
        &[("PAGE_URL", &url), ("ARTIFACTS", &artifacts_s)],
    )?;
    eprintln!("screenshots and logs: {}", artifacts.display());
    Ok(())
}

/// The browser benchmark (`tests/bench-web/`): our page's engine against Transformers.js on
/// the same model in the same headless Chromium. Dev-only: it needs `../shared` (the review
/// sample) and a Python with `tools/requirements-onnx.txt` (`ONNX_PYTHON`, default `python3`)
/// to make the ONNX files once.
fn bench_web() -> Result<(), String> {
    let dist = build_web()?;
    let dir = root().join("tests/bench-web");
    if !dir.join("node_modules/@huggingface/transformers").is_dir() {
        // --ignore-scripts: onnxruntime-node's install script downloads from nuget.org, and
        // only the browser build is used here.
        run_in(
            &dir,
            "npm",
            &["ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            &[],
        )?;
    }
    let work = target_dir().join("bench-web");
    let models = work.join("models");
    let onnx = models.join("release/onnx/model.onnx");
    let model_hash = std::fs::read_to_string(root().join("static/model/manifest.json"))
        .map_err(|e| format!("static/model/manifest.json: {e}"))?;
    let stamp = work.join("models.manifest.json");
    let stale = std::fs::read_to_string(&stamp).ok().as_deref() != Some(model_hash.as_str());
    if !onnx.is_file() || !models.join("web-f32/manifest.json").is_file() || stale {
        let hf = work.join("hf");
        let hf_s = hf.to_string_lossy().to_string();
        let _ = std::fs::remove_dir_all(&hf);
        let _ = std::fs::remove_dir_all(&models);
        // The release model for `transformers` and ONNX, and, as our page's fp32 contender,
        // the same weights exported again in f32.
        let export = |out: &str, format: &[&str]| {
            let mut args = vec![
                "run",
                "--quiet",
                "-p",
                "trainer",
                "--",
                "export",
                "--run",
                "static/model",
                "--out",
                out,
            ];
            args.extend_from_slice(format);
            run("cargo", &args, &[])
        };
        export(&hf_s, &["--format", "hf"])?;
        let f32_s = models.join("web-f32").to_string_lossy().to_string();
        export(&f32_s, &["--format", "web", "--dtype", "f32"])?;
        let python = std::env::var("ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
        let release = models.join("release").to_string_lossy().to_string();
        run(&python, &["tools/export_onnx.py", &hf_s, &release], &[])?;
        std::fs::write(&stamp, &model_hash).map_err(|e| format!("{}: {e}", stamp.display()))?;
    }
    let texts = work.join("texts.jsonl");
    if !texts.is_file() {
        let texts_s = texts.to_string_lossy().to_string();
        run(
            "python3",
            &["tools/bench_texts.py", "64", "7", &texts_s],
            &[],
        )?;
    }
    let artifacts = target_dir().join("bench-web-artifacts");
    let s = |p: &Path| p.to_string_lossy().to_string();
    run_in(
        &dir,
        "node",
        &["bench.mjs"],
        &[
            ("DIST", &s(&dist)),
            ("MODELS", &s(&models)),
            ("F32_MODEL", &s(&models.join("web-f32"))),
            ("TEXTS", &s(&texts)),
            ("ARTIFACTS", &s(&artifacts)),
        ],
    )?;
    eprintln!("results: {}", artifacts.join("bench-web.json").display());
    Ok(())
}

const USAGE: &str = "usage: cargo xtask <task>
  serve [--port N] [--no-build]  build the page with the release model and serve it on 127.0.0.1
  build-web                      only build the page (into $CARGO_TARGET_DIR/dist)
  test                           fmt, clippy, cargo deny, native tests, browser tests, end-to-end test
  deny                           only cargo deny (licenses, bans, sources; advisories when reachable)
  test-web                       only the web crate's browser tests (wasm-pack, headless Chromium and Firefox)
  e2e                            only the end-to-end test of the built page
  bench-web                      browser benchmark: our engine vs Transformers.js (dev-only; needs ../shared)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().cloned().unwrap_or_default();
    let result = match task.as_str() {
        "serve" => serve_cmd(&args[1..]),
        "build-web" => build_web().map(|_| ()),
        "test" => test(),
        "test-web" => test_web(),
        "deny" => deny(),
        "e2e" => e2e(),
        "bench-web" => bench_web(),
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
