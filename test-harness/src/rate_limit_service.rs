//! The shared rate-limit service (`ai-gateway-rls`, crate `ratelimit-service/`: Envoy's
//! `RateLimitService` over gRPC, counting with limitador in a [`Redis`]) on `127.0.0.1` with an
//! ephemeral port, in its own process group, stopped by pid.
//!
//! The binary is `RLS_BIN` when set, else the workspace's release build, built on first use
//! (`cargo build --release -p ai-gateway-rls`, once per test process).
//!
//! ```no_run
//! use test_harness::rate_limit_service::RateLimitService;
//! use test_harness::redis::Redis;
//! let redis = Redis::start();
//! let mut rls = RateLimitService::start(&redis);
//! println!("gRPC at {}", rls.addr());
//! rls.suspend(); // a hung service: calls time out
//! rls.resume();
//! ```

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::paths::repo_root;
use crate::redis::Redis;

/// How long the service may take to print its `listening on` line (it connects to Redis
/// first).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The running service. Dropping it stops the process group.
pub struct RateLimitService {
    binary: PathBuf,
    redis_url: String,
    delay_ms: u64,
    addr: SocketAddr,
    child: Option<Child>,
    suspended: bool,
    stderr: Arc<Mutex<String>>,
}

impl RateLimitService {
    /// Starts the service on a free loopback port with its counters in `redis`. Panics with
    /// its stderr when it does not come up.
    pub fn start(redis: &Redis) -> Self {
        Self::start_with_delay(redis, 0)
    }

    /// Like [`RateLimitService::start`], but each call waits `delay_ms` before it is answered
    /// (a slow service).
    pub fn start_with_delay(redis: &Redis, delay_ms: u64) -> Self {
        Self::start_binary(&binary(), redis, delay_ms)
    }

    /// Like [`RateLimitService::start_with_delay`], with this binary (e.g. the crate's own
    /// integration test passes the one cargo built for it).
    pub fn start_binary(binary: &Path, redis: &Redis, delay_ms: u64) -> Self {
        let mut service = Self {
            binary: binary.to_path_buf(),
            redis_url: redis.url(),
            delay_ms,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: None,
            suspended: false,
            stderr: Arc::new(Mutex::new(String::new())),
        };
        service.spawn();
        service
    }

    /// The gRPC address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Freezes the process (SIGSTOP): connections are accepted by the kernel, nothing is
    /// answered.
    pub fn suspend(&mut self) {
        self.signal(libc::SIGSTOP);
        self.suspended = true;
    }

    /// Lets a suspended process run again (SIGCONT).
    pub fn resume(&mut self) {
        self.signal(libc::SIGCONT);
        self.suspended = false;
    }

    /// Stops the service (SIGTERM to its process group, SIGKILL after 5 s). Idempotent.
    pub fn stop(&mut self) {
        if self.suspended {
            // A stopped process would only take SIGTERM once continued.
            self.resume();
        }
        if let Some(mut child) = self.child.take() {
            crate::process::stop_group(&mut child);
        }
    }

    /// Starts the service again on the same port, with the same Redis and delay.
    pub fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }

    /// What the service wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            // SAFETY: kill(2) on our own child's pid; no memory is involved.
            unsafe {
                libc::kill(child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Spawns the binary on `self.addr` (port 0 the first time) and waits for its
    /// `listening on` line; panics with its stderr when it does not come.
    fn spawn(&mut self) {
        let begun = Instant::now();
        let mut child = Command::new(&self.binary)
            .args(["--listen", &self.addr.to_string()])
            .args(["--redis", &self.redis_url])
            .args(["--delay-ms", &self.delay_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        if let Some(pipe) = child.stderr.take() {
            let stderr = Arc::clone(&self.stderr);
            thread::spawn(move || crate::process::drain(pipe, &stderr));
        }
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        if let Some(pipe) = child.stdout.take() {
            thread::spawn(move || {
                // Keeps reading after the ready line so the child never blocks on a full pipe.
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let _ = lines_tx.send(line);
                }
            });
        }
        self.child = Some(child);
        let deadline = begun + START_TIMEOUT;
        let failure = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = line
                        .strip_prefix("listening on ")
                        .and_then(|a| a.trim().parse().ok())
                    {
                        self.addr = addr;
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break "did not print `listening on` in time"
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break "exited before listening",
            }
        };
        self.stop();
        panic!(
            "ai-gateway-rls {failure} ({:.1} s after spawn)\n--- ai-gateway-rls stderr ---\n{}",
            begun.elapsed().as_secs_f64(),
            self.stderr()
        );
    }
}

impl Drop for RateLimitService {
    fn drop(&mut self) {
        if thread::panicking() && self.child.is_some() {
            crate::process::print_tail("ai-gateway-rls stderr", &self.stderr(), 40);
        }
        self.stop();
    }
}

/// The service binary: `RLS_BIN`, else the release build in `target/`, built on first use
/// (cargo rebuilds only what changed).
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RLS_BIN") {
        return PathBuf::from(path);
    }
    static BUILD: Mutex<bool> = Mutex::new(false);
    let root = repo_root();
    let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let status = Command::new(env!("CARGO"))
            .current_dir(&root)
            .args(["build", "--release", "-p", "ai-gateway-rls"])
            .status()
            .expect("run cargo build for ai-gateway-rls");
        assert!(status.success(), "building ai-gateway-rls failed");
        *built = true;
    }
    target_dir(&root).join("release/ai-gateway-rls")
}

/// Where cargo puts the build: `CARGO_TARGET_DIR` (relative to the workspace), else
/// `target/`.
fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}
