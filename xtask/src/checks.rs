//! `cargo xtask test` and its parts: formatting, clippy, cargo deny, the native tests,
//! the web crate's tests in headless Chromium and Firefox, and the end-to-end test.

use std::process::Command;

use crate::page::build_web;
use crate::serve;
use crate::tools::{version_of, version_of_sub};
use crate::workspace::{root, run, run_in, target_dir};

/// The cargo-deny release `.ci/run` installs.
const CARGO_DENY_VERSION: &str = "0.20.2";

fn chromedriver() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

/// The native tests: every crate but the page's, whose tests (unit tests included)
/// run in the browser, where it runs (`test_web`); compiling it natively would build
/// its UI dependencies a second time only for that.
const NATIVE_TESTS: [&str; 4] = ["test", "--workspace", "--exclude", "web"];

pub fn test() -> Result<(), String> {
    let mut stages = Stages::start();
    run("cargo", &["fmt", "--all", "--check"], &[])?;
    deny()?;
    lint_while_building()?;
    stages.end("formatting, cargo deny");
    // Every native target (libraries, binaries, tests, examples, benches) once, with
    // clippy's lints, then the tests.
    run(
        "cargo",
        &[&NATIVE_TESTS[..], &["--all-targets", "--no-run"]].concat(),
        &[],
    )?;
    run("cargo", &NATIVE_TESTS, &[])?;
    stages.end("native build (clippy) and tests");
    test_web()?;
    stages.end("browser tests (Chromium, Firefox)");
    e2e()?;
    crate::pack::pack()?;
    stages.end("end-to-end (page build + Playwright), npm pack");
    stages.print();
    Ok(())
}

/// Clippy's lints, warnings as errors, on the workspace's own crates in every build
/// `test` makes from here on: clippy-driver is a rustc that also lints, so it becomes
/// the workspace's compiler (what `cargo clippy` does, with its arguments passed the
/// way it passes them) instead of `cargo clippy` type-checking every dependency a
/// second time, which was a tenth of a cold CI run. The web crate is linted for the
/// target it runs on, wasm32, by the browser tests' build.
fn lint_while_building() -> Result<(), String> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot start rustc: {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let driver = std::path::Path::new(&sysroot)
        .join("bin")
        .join(format!("clippy-driver{}", std::env::consts::EXE_SUFFIX));
    if !driver.is_file() {
        return Err(format!(
            "{} not found: install clippy (rustup component add clippy)",
            driver.display()
        ));
    }
    // SAFETY: nothing else runs in this process yet; only the cargo processes started
    // after this read the variables.
    unsafe {
        std::env::set_var("RUSTC_WORKSPACE_WRAPPER", &driver);
        std::env::set_var(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    }
    eprintln!(
        "\n==> clippy lints (-D warnings) through {}",
        driver.display()
    );
    Ok(())
}

/// Wall time of each stage of `test`, printed at the end so a CI log says where the
/// time went.
struct Stages {
    done: Vec<(&'static str, f64)>,
    last: std::time::Instant,
}

impl Stages {
    fn start() -> Self {
        Self {
            done: Vec::new(),
            last: std::time::Instant::now(),
        }
    }

    fn end(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((name, (now - self.last).as_secs_f64()));
        self.last = now;
    }

    fn print(&self) {
        eprintln!("\nstage times:");
        for (name, secs) in &self.done {
            eprintln!("  {name:<40} {secs:>7.0} s");
        }
    }
}

/// `cargo deny` over the dependency graph with `.ci/deny.toml`: licenses, bans and
/// sources always; RustSec advisories when the advisory database can be fetched
/// (it lives on GitHub, which some machines cannot reach: then it says so).
pub fn deny() -> Result<(), String> {
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

/// The web crate's tests in a headless browser: `cargo test` for wasm with
/// wasm-bindgen's test runner (what `wasm-pack test` does, without installing it), in
/// the page's own profile, so most dependencies compiled here are the ones the page
/// build then reuses (a second profile would be a second build of every crate; only
/// what the tests' `train` feature of model-core reaches, burn's autodiff and
/// optimizers, is built twice). `driver` is
/// `("CHROMEDRIVER", path)` or `("GECKODRIVER", path)`.
fn browser_tests(driver: (&str, &str), extra: &[&str]) -> Result<(), String> {
    let mut args = vec![
        "test",
        "--package",
        "web",
        "--tests",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        crate::page::WEB_PROFILE,
    ];
    args.extend_from_slice(extra);
    let other = if driver.0 == "CHROMEDRIVER" {
        "GECKODRIVER"
    } else {
        "CHROMEDRIVER"
    };
    let env = [
        (
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        ),
        ("WASM_BINDGEN_TEST_TIMEOUT", "300"),
        driver,
        (other, ""),
        ("NO_HEADLESS", ""),
    ];
    // From web/: the runner reads its browser capabilities from web/webdriver.json.
    run_in(&root().join("web"), "cargo", &args, &env)
}

/// The web crate's tests in headless Chromium (and Firefox where installed).
pub fn test_web() -> Result<(), String> {
    let chrome = chromedriver();
    // All the tests (the unit tests too), then the browser-inference ones again in the page's second module
    // (relaxed SIMD: the f32 kernel's fused multiply-add and the int8 kernel's dot
    // product), in Chromium, which has relaxed SIMD.
    browser_tests(("CHROMEDRIVER", &chrome), &["--lib"])?;
    browser_tests(
        ("CHROMEDRIVER", &chrome),
        &["--test", "inference", "--features", "relaxed-simd"],
    )?;
    // Firefox too, where it is installed (`.ci/run` installs firefox-esr and geckodriver).
    match firefox() {
        Ok((_, gecko)) => browser_tests(("GECKODRIVER", &gecko), &["--lib"]),
        Err(missing) => {
            eprintln!("\nskipped the Firefox run of the web tests: {missing} not found");
            Ok(())
        }
    }
}

/// Firefox's path and geckodriver's (`GECKODRIVER` overrides it), or which is missing.
fn firefox() -> Result<(String, String), &'static str> {
    let firefox = ["firefox-esr", "firefox"]
        .into_iter()
        .find_map(on_path)
        .ok_or("firefox-esr")?;
    let gecko = std::env::var("GECKODRIVER").unwrap_or_else(|_| "geckodriver".into());
    version_of(&gecko).ok_or("geckodriver")?;
    Ok((firefox.to_string_lossy().into_owned(), gecko))
}

/// Where `name` is on `PATH`.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Build the page, serve it on a free port, and run the end-to-end tests
/// (Playwright driving headless Chromium): the page (`tests/e2e/e2e.mjs`) and the JS
/// library (`tests/e2e/library.mjs`), then the library's checks in headless Firefox
/// through geckodriver (`tests/e2e/firefox.mjs`) where both are installed.
pub fn e2e() -> Result<(), String> {
    let dist = build_web()?;
    let e2e_dir = root().join("tests/e2e");
    if !e2e_dir.join("node_modules/playwright-core").is_dir() {
        run_in(&e2e_dir, "npm", &["ci", "--no-audit", "--no-fund"], &[])?;
    }
    check_types(&e2e_dir)?;
    let listener = serve::bind(0)?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let plain = serve::bind(0)?;
    let plain_url = format!("http://{}/", plain.local_addr().map_err(|e| e.to_string())?);
    let plain_dist = dist.clone();
    std::thread::spawn(move || serve::serve(listener, dist, true));
    // The same site as a static host without COOP/COEP serves it: the page's service
    // worker has to isolate it.
    std::thread::spawn(move || serve::serve(plain, plain_dist, false));
    let artifacts = target_dir().join("e2e-artifacts");
    std::fs::create_dir_all(&artifacts).map_err(|e| e.to_string())?;
    let url = format!("http://{addr}/");
    let artifacts_s = artifacts.to_string_lossy().to_string();
    run_in(
        &e2e_dir,
        "node",
        &["e2e.mjs"],
        &[
            ("PAGE_URL", &url),
            ("PLAIN_URL", &plain_url),
            ("ARTIFACTS", &artifacts_s),
        ],
    )?;
    // The JS library, with what `trainer predict` says for the same texts.
    let texts = e2e_dir.join("texts.txt");
    let expected = artifacts.join("trainer-predict.jsonl");
    trainer_predict(&texts, &expected)?;
    let (texts, expected) = (texts.to_string_lossy(), expected.to_string_lossy());
    // The trainer also opens the bundle the browser fine-tuned and exported.
    let trainer = trainer()?;
    let trainer_s = trainer.to_string_lossy().to_string();
    run_in(
        &e2e_dir,
        "node",
        &["library.mjs"],
        &[
            ("PAGE_URL", &url),
            ("ARTIFACTS", &artifacts_s),
            ("TEXTS", &texts),
            ("EXPECTED", &expected),
            ("TRAINER", &trainer_s),
        ],
    )?;
    // The library's API again, in Firefox (the CPU engine), where it is installed.
    match firefox() {
        Ok((firefox, gecko)) => run_in(
            &e2e_dir,
            "node",
            &["firefox.mjs"],
            &[
                ("PAGE_URL", &url),
                ("ARTIFACTS", &artifacts_s),
                ("TEXTS", &texts),
                ("EXPECTED", &expected),
                ("FIREFOX", &firefox),
                ("GECKODRIVER", &gecko),
                ("TRAINER", &trainer_s),
            ],
        )?,
        Err(missing) => {
            eprintln!("\nskipped the JS library's checks in Firefox: {missing} not found")
        }
    }
    // Many reviews in the page against `trainer predict` on the same file.
    crate::many_reviews::many_reviews(
        &url,
        &artifacts,
        crate::many_reviews::E2E_REVIEWS,
        &trainer,
    )?;
    // The release model learns a new task in the page (IMDb, where it is).
    crate::tune_imdb::tune_imdb(&url, &artifacts, None)?;
    eprintln!("screenshots and logs: {}", artifacts.display());
    Ok(())
}

/// The `trainer` binary the native tests build (the same build graph, so after
/// `cargo test --workspace` this compiles nothing; `cargo build -p trainer` would build
/// the dependencies again with another feature set).
pub fn trainer() -> Result<std::path::PathBuf, String> {
    run(
        "cargo",
        &[&NATIVE_TESTS[..], &["--no-run", "--quiet"]].concat(),
        &[],
    )?;
    Ok(target_dir().join("debug/trainer"))
}

/// `trainer predict --model static/model --products int8` (on the CPU) on the lines of `texts`,
/// its JSONL into `out`: what the library's answers must equal.
fn trainer_predict(texts: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let trainer = trainer()?;
    let input = std::fs::File::open(texts).map_err(|e| format!("{}: {e}", texts.display()))?;
    let output = std::fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let model = root().join("static/model");
    let status = Command::new(trainer)
        .args(["predict", "--model"])
        .arg(&model)
        .args(["--products", "int8", "--backend", "flex"])
        .stdin(input)
        .stdout(output)
        .status()
        .map_err(|e| format!("cannot start trainer: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("trainer predict failed ({status})"))
    }
}

/// The JS library's TypeScript declarations are generated from its JSDoc (and its
/// JSDoc types checked): the committed `static/lib/bert-sentiment.d.ts` must be what
/// `npm run types` writes now.
fn check_types(e2e_dir: &std::path::Path) -> Result<(), String> {
    let out = target_dir().join("lib-types");
    let out_s = out.to_string_lossy();
    run_in(
        e2e_dir,
        "npx",
        &["tsc", "-p", "tsconfig.lib.json", "--outDir", &out_s],
        &[],
    )?;
    let name = "bert-sentiment.d.ts";
    let fresh = std::fs::read(out.join(name)).map_err(|e| format!("{out_s}/{name}: {e}"))?;
    let committed_path = root().join("static/lib").join(name);
    let committed = std::fs::read(&committed_path).unwrap_or_default();
    if fresh == committed {
        Ok(())
    } else {
        Err(format!(
            "{} is out of date: run `npm run types` in tests/e2e and commit it",
            committed_path.display()
        ))
    }
}
