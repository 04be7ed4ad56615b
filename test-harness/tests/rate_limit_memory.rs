//! 100,000 distinct verified subjects through a rate limit: Envoy's heap (where proxy-wasm
//! shared data lives) stays within the limit's documented bound (README: `slots` × 96 bytes)
//! instead of growing per caller.

use std::thread;
use std::time::Duration;

use serde_json::json;
use test_harness::http::Connection;
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "memory-test-secret-of-32-bytes!!";
const SUBJECTS: usize = 100_000;
const CLIENTS: usize = 8;
/// The limit's slots: 100,000 subjects are 24 per slot, so the shared overflow counts are in
/// use too (the limit itself is high enough never to refuse, even with one slot).
const SLOTS: u64 = 4096;
/// The documented bound of Envoy heap per slot (README, "Rate limits"; measured about 72 with
/// this limit name: a 136-byte value and a 30-byte key per bucket of four slots, plus Envoy's
/// map entry).
const BYTES_PER_SLOT: u64 = 96;
/// Allocator noise between two Envoys and two readings (usually below 16 KB, once 64 KB on
/// the CI machine).
const MARGIN: u64 = 64 * 1024;
/// Noise allowed when comparing growth under the same traffic with and without the slots:
/// the two Envoys' connection and stats allocations differ by up to 64 KB between runs, and a
/// key per subject would cost about 12 MB, so a quarter of a megabyte still tells them apart.
const TRAFFIC_MARGIN: u64 = 256 * 1024;

/// Envoy's heap once its start-up allocations are done: the first stats flush (5 s after
/// start) allocates about 270 KB once, so wait for it and then for two equal readings.
fn settled_heap(envoy: &Envoy) -> u64 {
    thread::sleep(Duration::from_secs(6));
    let mut last = envoy.memory_allocated();
    for _ in 0..20 {
        thread::sleep(Duration::from_millis(500));
        let now = envoy.memory_allocated();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

fn gateway(upstream: &Upstream, slots: u64) -> Envoy {
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "rate_limits": [{"name": "per-user", "key": "sub", "requests": 1_000_000, "window_s": 60,
                         "slots": slots}]
    });
    Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log))
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

fn slots_gauge(envoy: &Envoy) -> u64 {
    envoy
        .admin_get("/stats?filter=ratelimit_slots")
        .text()
        .lines()
        .find_map(|l| l.split_once(": ")?.1.trim().parse().ok())
        .expect("ratelimit_slots gauge")
}

#[test]
fn a_hundred_thousand_subjects_stay_within_the_documented_bound() {
    let upstream = Upstream::start();
    // The same Envoy with a one-slot limit, through the same traffic: what the heap does
    // anyway (connections, workers, stats), without the limit's slots.
    let (without_start, without_after) = {
        let envoy = gateway(&upstream, 1);
        let start = settled_heap(&envoy);
        drive(&envoy, 0..SUBJECTS);
        (start, settled_heap(&envoy))
    };
    let envoy = gateway(&upstream, SLOTS);
    let baseline = settled_heap(&envoy);
    drive(&envoy, 0..SUBJECTS);
    let after = settled_heap(&envoy);
    let traffic = without_after.saturating_sub(without_start);
    let growth = after.saturating_sub(baseline);
    let held = after.saturating_sub(without_after);
    let bound = SLOTS * BYTES_PER_SLOT;
    eprintln!(
        "one slot: {without_start} -> {without_after} (+{traffic}); {SLOTS} slots: \
         {baseline} -> {after} (+{growth}); held by the slots {held}, bound {bound}"
    );
    // From before the first subject, the heap grows by no more than the documented bound plus
    // what the same traffic costs without the slots (they are all created at start).
    assert!(
        growth <= bound + traffic + MARGIN,
        "heap grew {growth} bytes over {SUBJECTS} subjects (baseline {baseline}, after {after})"
    );
    // Per subject it grows by nothing: no more than the one-slot Envoy under the same traffic
    // (a key per subject would be about 12 MB here).
    assert!(
        growth <= traffic + TRAFFIC_MARGIN,
        "{growth} bytes against {traffic} with one slot: the slots grow per subject"
    );
    // Everything the limit holds is within the documented bound, and measured at all.
    assert!(
        held <= bound + MARGIN,
        "the limit holds {held} bytes, over {SLOTS} x {BYTES_PER_SLOT} + {MARGIN}"
    );
    assert!(
        held >= bound / 2,
        "the comparison does not see the slots: {held} bytes for {SLOTS} slots"
    );
    assert_eq!(slots_gauge(&envoy), SLOTS, "no slot was added");
}
