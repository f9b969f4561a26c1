//! The `baton` binary as users run it.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_baton");

fn baton(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("BATON_MASTER_KEY")
        .env("BATON_LOG", "warn")
        .output()
        .expect("baton runs")
}

#[test]
fn init_prints_one_json_object_once_and_never_twice() {
    let dir = tempfile::tempdir().unwrap();
    let out = baton(&["init", "--json", "--data-dir", "data"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).expect("exactly one JSON object");
    let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["accountId", "privateKey", "publicKey"]);
    assert_eq!(stdout.trim().lines().count(), 1);

    // The same credentials are in the key file, readable only by the owner.
    let file = dir.path().join("data/initial-account-key.json");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved, value);
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path().join("data/master.key")).unwrap().permissions().mode() & 0o777, 0o600);

    // A second init changes nothing and says why.
    let before = std::fs::read(&file).unwrap();
    let again = baton(&["init", "--json", "--data-dir", "data"], dir.path());
    assert!(!again.status.success());
    assert!(again.stdout.is_empty(), "nothing on stdout");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));
    assert_eq!(std::fs::read(&file).unwrap(), before);

    // A lost development master key is reported, not silently replaced.
    std::fs::remove_file(dir.path().join("data/master.key")).unwrap();
    let lost = baton(&["init", "--json", "--data-dir", "data"], dir.path());
    assert!(!lost.status.success());
    assert!(
        String::from_utf8_lossy(&lost.stderr).contains("master key file"),
        "{}",
        String::from_utf8_lossy(&lost.stderr)
    );
    assert!(!dir.path().join("data/master.key").exists(), "no new key was written");
}

#[test]
fn hmac_prints_the_documented_header() {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(
        &body,
        r#"{"orderRef":"REF1","instructions":[],"metadata":{"someInternalRef2":"another-internal-ref"}}"#,
    )
    .unwrap();
    let out = baton(
        &[
            "hmac",
            "--public-key",
            "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            "--private-key",
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=",
            "--nonce",
            "7c1f0e9a2b4d4e6f8a0b1c2d3e4f5a6b",
            "--epoch",
            "1700000000",
            "--body",
            body.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "Hmac 3f2504e0-4f89-41d3-9a0c-0305e82c3301:7c1f0e9a2b4d4e6f8a0b1c2d3e4f5a6b:1700000000:MhxHGgPoBtfWx8wv4ECPS8dRGzWSPZcxXXpB0N2KOak="
    );
}

#[test]
fn serve_help_documents_every_setting() {
    let out = baton(&["serve", "--help"], std::path::Path::new("."));
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--listen",
        "--data-dir",
        "--database-url",
        "--environment",
        "--tls-cert",
        "--tls-key",
        "--master-key",
        "--master-key-file",
        "--trusted-proxies",
        "--rate-limit-per-second",
        "--token-ttl-seconds",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} missing from serve --help");
    }
    for var in ["BATON_LISTEN", "DATABASE_URL", "BATON_RATE_LIMIT_PER_SECOND", "BATON_ENVIRONMENT", "BATON_MASTER_KEY"]
    {
        assert!(help.contains(var), "{var} missing from serve --help");
    }
}

/// Starts `baton serve` on a free port and waits until it reports that it listens;
/// by then anything it prints on stdout has been written.
fn serve(dir: &std::path::Path) -> (std::process::Child, String) {
    serve_with(dir, &[])
}

/// [`serve`] with extra arguments.
fn serve_with(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", "data"])
        .args(extra)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("BATON_LOG_FORMAT", "json")
        .env("BATON_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if v["message"] == "baton is listening" {
            assert_eq!(v["environment"], "sandbox", "the environment is in the logs");
            addr = v["addr"].as_str().map(String::from);
            break;
        }
    }
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr.expect("server reports its address"))
}

/// Sends SIGTERM, waits for exit, and returns the exit status and everything printed on stdout.
fn terminate(child: std::process::Child) -> (std::process::ExitStatus, String) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    (output.status, String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn serve_prints_the_first_key_once_and_shuts_down_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = serve(dir.path());
    let health = reqwest::blocking_get(&format!("http://{addr}/healthz"));
    assert!(health.contains("\"environment\":\"sandbox\""), "{health}");
    let (status, printed) = terminate(child);
    assert!(status.success(), "SIGTERM is a clean shutdown: {status:?}");
    assert!(printed.contains("STORE THIS PRIVATE KEY NOW"), "first start announces the key: {printed:?}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-account-key.json")).unwrap()).unwrap();
    let private_key = saved["privateKey"].as_str().unwrap();
    assert!(printed.contains(private_key));

    // The second start over the same data prints nothing secret.
    let (child, _) = serve(dir.path());
    let (status, printed) = terminate(child);
    assert!(status.success());
    assert!(!printed.contains(private_key), "a later start must not print the private key");
    assert!(!printed.contains("STORE THIS"));
}

#[test]
fn serve_demo_creates_the_demo_tenant_on_an_empty_database_only() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _) = serve_with(dir.path(), &["--demo"]);
    let (status, printed) = terminate(child);
    assert!(status.success(), "{status:?}");
    assert!(printed.contains("STORE THIS PRIVATE KEY NOW"), "{printed:?}");
    assert!(printed.contains("Demo tenant"), "{printed:?}");
    for label in ["Tenant id:", "Collect scheme id:", "Payout scheme id:", "Reward group id:"] {
        assert!(printed.contains(label), "{label} in {printed:?}");
    }
    // A copy for scripts, readable only by the owner.
    let file = dir.path().join("data/demo-tenant.json");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(printed.contains(saved["privateKey"].as_str().unwrap()));
    assert!(printed.contains(saved["collectSchemeId"].as_str().unwrap()));
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // Started again over the same data: no second demo tenant, nothing secret printed.
    let (child, _) = serve_with(dir.path(), &["--demo"]);
    let (status, printed) = terminate(child);
    assert!(status.success());
    assert!(!printed.contains("Demo tenant"), "{printed:?}");
}

mod reqwest {
    /// A minimal blocking GET over a plain TCP connection (keeps this test synchronous).
    pub fn blocking_get(url: &str) -> String {
        use std::io::{Read, Write};
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }
}
