//! The official `openai` Python SDK (from the repo's `.venv`), run unmodified against the gateway
//! through `test-harness/py/openai_driver.py`: one scenario per run, one JSON line back.

use std::net::SocketAddr;
use std::process::Command;

use serde_json::Value;

use crate::paths::repo_root;

/// Runs `scenario` (`chat`, `stream`, `models`, `model`) with `api_key` against the gateway at
/// `addr`; the driver's JSON line (`{"ok": true, ...}` or the SDK's error class and body).
/// Panics with the driver's output when it printed no JSON.
pub fn run(addr: SocketAddr, api_key: &str, scenario: &str, extra: &[&str]) -> Value {
    let root = repo_root();
    let output = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("test-harness/py/openai_driver.py"))
        .args(["--base-url", &format!("http://{addr}/v1")])
        .args(["--api-key", api_key])
        .arg(scenario)
        .args(extra)
        .output()
        .expect("run the openai driver (make setup installs .venv)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
