//! The official `openai` Python SDK (from the repo's `.venv`), run unmodified against the gateway
//! through `test-harness/py/openai_driver.py`: one scenario per run, one JSON line back.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

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

/// [`run`] against any `base_url` (`https://127.0.0.1:<port>/v1` too), trusting only the CA
/// certificate(s) in `ca` when given (the driver's `--ca`), else the SDK's default trust: the
/// system's CAs (`SSL_CERT_FILE` and `SSL_CERT_DIR` are taken out of the driver's environment,
/// so the caller's cannot change the outcome).
pub fn run_with(
    base_url: &str,
    api_key: &str,
    scenario: &str,
    extra: &[&str],
    ca: Option<&Path>,
) -> Value {
    parse(&driver(base_url, api_key, scenario, extra, ca, &[], false))
}

/// [`run_with`] with `env` added to the driver's environment, and the debug log of the SDK and
/// its HTTP transport (connection, TLS handshake and how it failed: `ConnectError` alone says
/// little) as second value. The driver itself runs unchanged, under `logging.basicConfig` at
/// DEBUG level.
pub fn run_traced(
    base_url: &str,
    api_key: &str,
    scenario: &str,
    extra: &[&str],
    ca: Option<&Path>,
    env: &[(&str, &str)],
) -> (Value, String) {
    let output = driver(base_url, api_key, scenario, extra, ca, env, true);
    (
        parse(&output),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs the driver against `base_url`; with `traced`, under a DEBUG-level `logging` setup.
fn driver(
    base_url: &str,
    api_key: &str,
    scenario: &str,
    extra: &[&str],
    ca: Option<&Path>,
    env: &[(&str, &str)],
    traced: bool,
) -> Output {
    let root = repo_root();
    let mut command = Command::new(root.join(".venv/bin/python"));
    if traced {
        command.args([
            "-c",
            "import logging, runpy, sys\n\
             logging.basicConfig(level=logging.DEBUG, format='%(name)s %(levelname)s %(message)s')\n\
             sys.argv = sys.argv[1:]\n\
             runpy.run_path(sys.argv[0], run_name='__main__')",
        ]);
    }
    command
        .arg(root.join("test-harness/py/openai_driver.py"))
        .args(["--base-url", base_url])
        .args(["--api-key", api_key])
        .arg(scenario)
        .args(extra)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied());
    if let Some(ca) = ca {
        command.arg("--ca").arg(ca);
    }
    command
        .output()
        .expect("run the openai driver (make setup installs .venv)")
}

/// The driver's JSON line; panics with its output when there is none.
fn parse(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "driver output is not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}
