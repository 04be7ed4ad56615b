//! Stopping a child started in its own process group (`process_group(0)`), by its pid.

use std::process::Child;
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
