//! 100,000 distinct verified subjects through a rate limit: Envoy's heap (where proxy-wasm
//! shared data lives) stays within the limit's documented bound instead of growing per caller.

use std::thread;

use serde_json::json;
use test_harness::http::Connection;
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "memory-test-secret-of-32-bytes!!";
const SUBJECTS: usize = 100_000;
const CLIENTS: usize = 8;

fn heap_bytes(envoy: &Envoy) -> u64 {
    let stats = envoy
        .admin_get("/stats?filter=server.memory_allocated")
        .text();
    stats
        .lines()
        .find_map(|l| {
            l.strip_prefix("server.memory_allocated: ")?
                .trim()
                .parse()
                .ok()
        })
        .expect("server.memory_allocated in stats")
}

/// Sends one request per subject in `range`, over keep-alive connections.
fn drive(envoy: &Envoy, range: std::ops::Range<usize>) {
    let addr = envoy.addr();
    let per = range.len() / CLIENTS;
    let handles: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let start = range.start + c * per;
            thread::spawn(move || {
                let key = Hs256Key::new(SECRET.as_bytes());
                let mut connection = Connection::open(addr).expect("connect");
                for i in start..start + per {
                    let token = key.mint(&claims(
                        "https://idp.test",
                        "gw",
                        &format!("subject-{i}"),
                        "",
                    ));
                    let response = connection
                        .send(&Request::get("/v1/models").bearer(&token))
                        .expect("response");
                    assert_eq!(response.status, 200, "{}", response.text());
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("client");
    }
}

#[test]
fn a_hundred_thousand_subjects_do_not_grow_shared_data() {
    let upstream = Upstream::start();
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "rate_limits": [{"name": "per-user", "key": "sub", "requests": 1000, "window_s": 60, "slots": 4096}]
    });
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    // Warm up: connections, caches and every slot in use.
    drive(&envoy, 0..20_000);
    let before = heap_bytes(&envoy);
    drive(&envoy, 20_000..SUBJECTS);
    let after = heap_bytes(&envoy);
    let growth = after.saturating_sub(before);
    // A shared-data key costs about 156 bytes of Envoy heap (measured: startup heap with 65,536
    // slots against 1). One key per subject would add ~12 MB for these 80,000 subjects; the
    // bounded design adds nothing per subject. Allow a quarter of a 100-byte-per-key design.
    let per_subject_design = 80_000 * 100;
    eprintln!("heap before {before}, after {after}, growth {growth}");
    assert!(
        growth < per_subject_design / 4,
        "heap grew {growth} bytes over 80,000 new subjects (before {before}, after {after})"
    );
}
