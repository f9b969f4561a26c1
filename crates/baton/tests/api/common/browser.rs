//! Browser tests: Node scripts under `tests/browser/` drive Debian's headless Chromium
//! with Playwright (`playwright-core`) and check pages with `axe-core`, against a node
//! started by the Rust test.
//!
//! What they need is installed on first use by `tests/browser/install.sh` (which
//! `.ci/run` also runs): Chromium (`/usr/bin/chromium`, or `BATON_CHROMIUM`), installed
//! with apt-get when missing and running as root; the npm packages pinned by
//! `tests/browser/package-lock.json`, installed with `npm ci` into
//! `tests/browser/node_modules`. Both steps hold file locks, so parallel tests install
//! once. Without Chromium, Node.js or the registries the tests fail with a message
//! saying what is missing; they never skip.
//!
//! Screenshots go to `target/tmp/browser-screenshots/`, or to `docs/screenshots/` when
//! `BATON_UPDATE_SCREENSHOTS=1` (so an ordinary run leaves the tree clean); a failed
//! scenario leaves screenshots of its pages in `target/tmp/browser-failures/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

/// The directory of the Node side of the browser tests.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("browser")
}

/// Where this run's screenshots are written.
pub fn screenshots_dir() -> PathBuf {
    if std::env::var("BATON_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-screenshots")
    }
}

/// Chromium and the npm packages, ready to run scripts with.
#[derive(Debug)]
pub struct Browser {
    pub chromium: PathBuf,
}

impl Browser {
    /// Finds or installs what the browser tests need (once per test process).
    pub fn get() -> &'static Browser {
        static BROWSER: OnceLock<Browser> = OnceLock::new();
        BROWSER.get_or_init(|| {
            let chromium = chromium();
            node_modules();
            Browser { chromium }
        })
    }

    /// Runs the scenario `tests/browser/<script>` against `base_url` with `input`
    /// (as `BATON_INPUT`) and returns the JSON result it wrote. Panics with the
    /// script's output if it fails.
    pub async fn run(&self, script: &str, base_url: &str, input: &Value) -> Value {
        let started = std::time::Instant::now();
        let result_file = tempfile::NamedTempFile::new().expect("temp file");
        let mut command = Command::new("node");
        command
            .arg(scripts_dir().join(script))
            .current_dir(scripts_dir())
            .env("BATON_URL", base_url)
            .env("BATON_INPUT", input.to_string())
            .env("BATON_RESULT", result_file.path())
            .env("BATON_CHROMIUM", &self.chromium)
            .env("BATON_SCREENSHOTS", screenshots_dir())
            .env("BATON_FAILURES", Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-failures"))
            .stdin(Stdio::null());
        // The node under test runs on this test's runtime: wait for the script on a
        // blocking thread so that the node keeps answering meanwhile.
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("the script's thread")
            .unwrap_or_else(|e| panic!("cannot start node ({e}); the browser tests need Node.js 20 or later"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let took = started.elapsed();
        // Shown by the test harness when the test fails (or with --nocapture).
        eprintln!("browser script {script} took {took:.1?}\n{stdout}{stderr}");
        assert!(
            output.status.success(),
            "browser script {script} failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            output.status
        );
        let text = std::fs::read_to_string(result_file.path()).expect("the script's result file");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("browser script {script} wrote bad JSON ({e}): {text}"))
    }
}

/// The Chromium binary: `BATON_CHROMIUM`, else Debian's `/usr/bin/chromium`, installed
/// by `install.sh` when missing (as root with apt-get; otherwise it explains what to do).
fn chromium() -> PathBuf {
    let wanted = std::env::var_os("BATON_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    if !wanted.is_file() {
        install("chromium");
    }
    assert!(wanted.is_file(), "Chromium is still missing at {} after installing it", wanted.display());
    wanted
}

/// `tests/browser/node_modules`, matching `package-lock.json` (installed by `npm ci`
/// through `install.sh` unless the last install left a copy of the same lock file).
fn node_modules() -> PathBuf {
    let dir = scripts_dir();
    let read = |p: PathBuf| std::fs::read(p).ok();
    let lock = read(dir.join("package-lock.json")).expect("tests/browser/package-lock.json is committed");
    if read(dir.join("node_modules/.baton-package-lock.json")).as_ref() != Some(&lock) {
        install("npm");
    }
    dir.join("node_modules")
}

fn install(step: &str) {
    let script = scripts_dir().join("install.sh");
    let output = Command::new("sh")
        .arg(&script)
        .arg(step)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "the browser tests cannot run: installing {step} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small static web site on 127.0.0.1 (port 0): another origin than the node's, for
/// pages that embed the checkout. Stops when dropped.
pub struct Site {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Serves `files` as `(path, body)`; the content type follows the extension (a path
    /// without one is HTML) and `/` serves `/index.html`.
    pub async fn serve(files: Vec<(String, Vec<u8>)>) -> Site {
        use axum::http::{header, StatusCode, Uri};
        use axum::response::IntoResponse;
        let files: std::sync::Arc<std::collections::HashMap<String, Vec<u8>>> =
            std::sync::Arc::new(files.into_iter().collect());
        let handler = move |uri: Uri| {
            let files = files.clone();
            async move {
                let path = match uri.path() {
                    "/" => "/index.html",
                    p => p,
                };
                let Some(body) = files.get(path) else {
                    return (StatusCode::NOT_FOUND, "not found").into_response();
                };
                let name = path.rsplit('/').next().unwrap_or_default();
                let kind = match name.rsplit_once('.').map(|(_, ext)| ext) {
                    Some("js" | "mjs") => "text/javascript; charset=utf-8",
                    Some("css") => "text/css; charset=utf-8",
                    Some("png") => "image/png",
                    Some("html") | None => "text/html; charset=utf-8",
                    Some(_) => "application/octet-stream",
                };
                ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "no-store")], body.clone()).into_response()
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port for the site");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new().fallback(handler);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the site serves");
        });
        Site { base, server }
    }

    /// Serves the files of `dir` (not its subdirectories).
    pub async fn serve_dir(dir: &Path) -> Site {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_file() {
                let name = format!("/{}", path.file_name().unwrap().to_string_lossy());
                files.push((name, std::fs::read(&path).unwrap()));
            }
        }
        Site::serve(files).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.server.abort();
    }
}
