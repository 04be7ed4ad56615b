//! A real Redis for the rate-limit service's counters: Debian's `redis-server` (installed by
//! `make setup`) on `127.0.0.1` with an ephemeral port, nothing saved to disk, in its own
//! process group, stopped by pid.
//!
//! ```no_run
//! use test_harness::redis::Redis;
//! let mut redis = Redis::start();
//! println!("counters at {}", redis.url()); // redis://127.0.0.1:PORT
//! redis.stop(); // Redis down: the service answers UNAVAILABLE
//! redis.start_again(); // same port, empty
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::idp::reserve_port;

/// How long Redis may take to answer PING after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Ports tried by [`Redis::start`]: another process may take the reserved port first.
const START_ATTEMPTS: u32 = 3;

/// The running `redis-server`. Dropping it stops the process group.
pub struct Redis {
    port: u16,
    child: Option<Child>,
    /// Its log (stdout and stderr), shown when a start fails or a test panics.
    log: Arc<Mutex<String>>,
}

impl Redis {
    /// Starts `redis-server` on a free loopback port and waits until it answers PING. Panics
    /// (with its log) when it does not come up, or telling to run `make setup` when it is not
    /// installed.
    pub fn start() -> Redis {
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            let port = reserve_port().port();
            let mut redis = Redis {
                port,
                child: None,
                log: Arc::new(Mutex::new(String::new())),
            };
            match redis.spawn() {
                Ok(()) => return redis,
                Err(failure) => {
                    eprintln!("Redis start {attempt}/{START_ATTEMPTS} on port {port}: {failure}");
                    failures.push(failure);
                }
            }
        }
        panic!("Redis did not start:\n{}", failures.join("\n"));
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops Redis (SIGTERM to its process group, SIGKILL after 5 s); its data is gone.
    /// Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            crate::process::stop_group(&mut child);
        }
    }

    /// Starts Redis again on the same port, empty. Panics (with its log) when it does not
    /// come up.
    pub fn start_again(&mut self) {
        self.stop();
        if let Err(failure) = self.spawn() {
            panic!("Redis did not start again on port {}: {failure}", self.port);
        }
    }

    /// What Redis logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            // Counters only: nothing written to disk, nothing read back.
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn redis-server ({e}): is it installed? Run `make setup`")
            });
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = Arc::clone(&self.log);
            thread::spawn(move || crate::process::drain(pipe, &log));
        }
        self.child = Some(child);
        match self.wait_ready() {
            Ok(()) => Ok(()),
            Err(failure) => {
                self.stop();
                Err(format!("{failure}\n--- redis log ---\n{}", self.log()))
            }
        }
    }

    /// Waits until Redis answers `PING` with `+PONG`, or it exits, or time runs out.
    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("redis-server exited ({status})"));
                }
            }
            if answers_ping(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no PONG within {READY_TIMEOUT:?}"));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if thread::panicking() && self.child.is_some() {
            crate::process::print_tail("redis log", &self.log(), 20);
        }
        self.stop();
    }
}

fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
}
