//! Where the built filter and the Envoy binary are.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::SystemTime;

/// The repository root (the workspace).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The Envoy binary: `ENVOY_BIN`, else the repo's `.venv/bin/envoy` (installed by `make setup`).
pub fn envoy_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("ENVOY_BIN") {
        return PathBuf::from(path);
    }
    let venv = repo_root().join(".venv/bin/envoy");
    assert!(
        venv.exists(),
        "no Envoy: set ENVOY_BIN or run `make setup` (expected {})",
        venv.display()
    );
    venv
}

/// The filter's `.wasm`: `GATEWAY_WASM`, else the release build in `target/`, built (or rebuilt
/// when a source file is newer) on first use.
pub fn gateway_wasm() -> PathBuf {
    if let Some(path) = std::env::var_os("GATEWAY_WASM") {
        return PathBuf::from(path);
    }
    static BUILD: Mutex<bool> = Mutex::new(false);
    let root = repo_root();
    let wasm = root.join("target/wasm32-wasip1/release/ai_gateway.wasm");
    let mut checked = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !*checked {
        if is_stale(&wasm, &root) {
            let status = Command::new(env!("CARGO"))
                .current_dir(&root)
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip1",
                    "-p",
                    "ai-gateway",
                ])
                .status()
                .expect("run cargo build for the wasm");
            assert!(status.success(), "building the wasm failed");
        }
        *checked = true;
    }
    wasm
}

fn is_stale(wasm: &Path, root: &Path) -> bool {
    let Ok(built) = wasm.metadata().and_then(|m| m.modified()) else {
        return true;
    };
    newest_mtime(&root.join("src")).max(mtime(&root.join("Cargo.toml"))) > built
}

fn mtime(path: &Path) -> SystemTime {
    path.metadata()
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn newest_mtime(dir: &Path) -> SystemTime {
    let mut newest = SystemTime::UNIX_EPOCH;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let t = if path.is_dir() {
                newest_mtime(&path)
            } else {
                mtime(&path)
            };
            newest = newest.max(t);
        }
    }
    newest
}
