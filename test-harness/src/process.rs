//! Stopping a child started in its own process group (`process_group(0)`), by its pid.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// SIGTERM to the child's process group (it and anything it spawned), up to 5 s to exit, then
/// SIGKILL; always reaped.
pub fn stop_group(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals that process group; no memory is involved.
    unsafe {
        libc::kill(-pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: as above.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Appends a child's output pipe to `into`, line by line, until it closes (run on a thread, so
/// the child never blocks on a full pipe and a failure can show what it said).
pub fn drain(pipe: impl Read, into: &Mutex<String>) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => into
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_str(&String::from_utf8_lossy(&line)),
        }
    }
}

/// Prints the last `lines` of a child's `log` under a `--- what (tail) ---` heading (when a
/// test panics, before the child is stopped).
pub fn print_tail(what: &str, log: &str, lines: usize) {
    let all: Vec<&str> = log.lines().collect();
    eprintln!(
        "--- {what} (tail) ---\n{}",
        all[all.len().saturating_sub(lines)..].join("\n")
    );
}
