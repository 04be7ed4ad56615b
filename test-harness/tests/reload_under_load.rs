//! Changing the gateway's configuration while it serves: Envoy reads its listener (with the
//! wasm filter and its plugin config) from a watched file through LDS, and a bounded load runs
//! during each change (valid tokens, a token whose scope the change takes away, forged tokens).
//! No request may fail (no 5xx, no reset) and none may be served unchecked, before, during or
//! after a switch; after it, the new rule applies. An invalid new config is refused by Envoy
//! (the old listener keeps serving) with the plugin's `config: <path>: <reason>` line in the
//! log. Envoy's hot restart (epoch 1 takes the sockets over, the parent drains) is checked the
//! same way.
//!
//! What a plugin config change keeps and resets (measured below, Envoy 1.40): Envoy builds new
//! root contexts for the new config in the same VM id, so everything in proxy-wasm shared data
//! (scoped by VM id, process-wide) is kept: rate-limit counters go on counting across the
//! change (a limit whose `requests` changes applies the new maximum to the count so far), and
//! the fetched JWKS is reused without a new fetch. What lives in a root context is reset: the
//! verified-token cache (each token is verified once more). A hot restart is a new process:
//! shared data starts empty, counters start from zero and the keys are fetched again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::http::Connection;
use test_harness::idp::{reserve_port, JwksServer};
use test_harness::tokens::{claims, Hs256Key, RsaKey};
use test_harness::xds::LdsFile;
use test_harness::{Envoy, Request, Response, Upstream};

const SECRET: &str = "reload-under-load-secret-32-byte!";
const ISSUER: &str = "https://idp.test";
const JWKS_PATH: &str = "/jwks";
/// How long the load runs around each change.
const LOAD_AROUND: Duration = Duration::from_millis(1500);

/// The plugin config: `/v1/models` needs `models_scopes`; a `probe` limit of `probe_limit`
/// requests a minute per `x-probe` header value; HS256 tokens and RS256 ones from a JWKS.
fn plugin_config(models_scopes: &[&str], probe_limit: u64, idp: bool) -> Value {
    let mut providers = vec![json!({"name": "sso", "issuer": ISSUER, "audiences": ["gw"],
                                    "hs256_secret": {"env": "JWT_SECRET"}})];
    if idp {
        providers.push(
            json!({"name": "rs", "issuer": "https://rs.test", "audiences": ["gw"],
            "algorithms": ["RS256"],
            "jwks": {"remote": {"cluster": "idp", "authority": "idp.test", "path": JWKS_PATH,
                                "min_refresh_interval_s": 30}}}),
        );
    }
    json!({
        "providers": providers,
        "rules": [{"match": {"prefix": "/v1/models"}, "scopes": models_scopes}],
        "default_rule": {"auth": "required"},
        "rate_limits": [{"name": "probe", "key": "header:x-probe", "requests": probe_limit,
                         "window_s": 60}]
    })
}

fn hs(sub: &str, scope: &str) -> String {
    Hs256Key::new(SECRET.as_bytes()).mint(&claims(ISSUER, "gw", sub, scope))
}

/// A token signed with the wrong secret: must never get through.
fn forged(sub: &str) -> String {
    Hs256Key::new(b"not-the-gateway-secret-32-bytes!!").mint(&claims(
        ISSUER,
        "gw",
        sub,
        "chat:read models:read",
    ))
}

/// The kinds of request the load sends, and what each may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Both scopes: 200 under every config.
    Full,
    /// `chat:read` only: 200 before the change, 403 after it.
    ChatOnly,
    /// Bad signature: 401 always.
    Forged,
    /// Both scopes, on the `probe` limit's caller `spent`, whose count is used up before the
    /// load and stays so under both limits (kept counter): 429 always.
    Spent,
}

/// How long a replaced listener's connections drain (`--drain-time-s`): until then they may
/// be served under the old config (Envoy's gradual drain closes them one by one).
const DRAIN_S: u64 = 2;

/// One answer the load got: what, when sent (and when its connection was opened), status (0:
/// no response) and the error if any.
struct Outcome {
    kind: Kind,
    sent: Instant,
    opened: Instant,
    status: u16,
    error: String,
}

/// A bounded load of `clients` threads on keep-alive connections (reopened when Envoy answers
/// `connection: close`, as it does while a replaced listener drains) until `stop`.
fn load(addr: SocketAddr, clients: usize, stop: &AtomicBool) -> Vec<Outcome> {
    let outcomes = Mutex::new(Vec::new());
    let n = AtomicUsize::new(0);
    thread::scope(|scope| {
        for client in 0..clients {
            let (outcomes, n) = (&outcomes, &n);
            scope.spawn(move || {
                let get = |token: String| Request::get("/v1/models").bearer(&token);
                let full = hs(&format!("full-{client}"), "chat:read models:read");
                let requests = [
                    (Kind::Full, get(full.clone())),
                    (
                        Kind::ChatOnly,
                        get(hs(&format!("chat-{client}"), "chat:read")),
                    ),
                    (Kind::Forged, get(forged(&format!("forged-{client}")))),
                    (Kind::Spent, get(full).header("x-probe", "spent")),
                ];
                let mut connection: Option<(Connection, Instant)> = None;
                while !stop.load(Ordering::SeqCst) {
                    let (kind, request) = &requests[n.fetch_add(1, Ordering::SeqCst) % 4];
                    let sent = Instant::now();
                    let (result, opened) = match connection.as_mut() {
                        Some((c, opened)) => (c.send(request), *opened),
                        None => {
                            let opened = Instant::now();
                            let result = Connection::open(addr).and_then(|mut c| {
                                let r = c.send(request);
                                connection = Some((c, opened));
                                r
                            });
                            (result, opened)
                        }
                    };
                    let (status, error) = match &result {
                        Ok(r) => (
                            r.status,
                            if r.status >= 500 {
                                r.text()
                            } else {
                                String::new()
                            },
                        ),
                        Err(e) => (0, e.to_string()),
                    };
                    if result.as_ref().map_or(true, closes) {
                        connection = None;
                    }
                    outcomes.lock().unwrap().push(Outcome {
                        kind: *kind,
                        sent,
                        opened,
                        status,
                        error,
                    });
                }
            });
        }
    });
    outcomes.into_inner().unwrap()
}

fn closes(response: &Response) -> bool {
    response
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
}

/// Every outcome is an answer the config in force allowed: `switched` is when the new rule
/// was seen on a new connection (None: no change of rule during this load); the spent caller
/// got at most `spent_allowed` requests through (0 while its counter is kept).
fn check(outcomes: &[Outcome], switched: Option<Instant>, spent_allowed: usize) {
    assert!(outcomes.len() > 30, "the load ran: {}", outcomes.len());
    let spent_through = outcomes
        .iter()
        .filter(|o| o.kind == Kind::Spent && o.status == 200)
        .count();
    assert!(
        spent_through <= spent_allowed,
        "spent caller: {spent_through} let through"
    );
    for o in outcomes {
        let allowed: &[u16] = match (o.kind, switched) {
            (Kind::Full, _) => &[200],
            (Kind::Forged, _) => &[401],
            (Kind::Spent, _) => &[429, 200],
            (Kind::ChatOnly, None) => &[200],
            // A connection opened after the switch (seen on one worker; the other follows
            // within moments) is under the new config; one opened before may be served under
            // the old one until its drain ends, never later.
            (Kind::ChatOnly, Some(at))
                if o.opened > at + Duration::from_millis(300)
                    || o.sent > at + Duration::from_secs(DRAIN_S + 1) =>
            {
                &[403]
            }
            (Kind::ChatOnly, Some(_)) => &[200, 403],
        };
        assert!(
            allowed.contains(&o.status),
            "{:?} got {} ({}) allowed {allowed:?}",
            o.kind,
            o.status,
            o.error
        );
    }
}

/// Sends on new connections until `/v1/models` with a `chat:read`-only token gets `status`
/// eight times in a row (so on both workers, almost surely); returns when.
fn wait_for_rule(envoy: &Envoy, status: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut in_a_row = 0;
    loop {
        let r = envoy.send(Request::get("/v1/models").bearer(&hs("probe-rule", "chat:read")));
        in_a_row = if r.status == status { in_a_row + 1 } else { 0 };
        if in_a_row == 8 {
            return Instant::now();
        }
        if in_a_row > 0 {
            continue;
        }
        assert!(
            Instant::now() < deadline,
            "the rule never changed: {}",
            r.status
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Requests with `x-probe: value` allowed before the first 429 (at most `most`).
fn probes_allowed(envoy: &Envoy, value: &str, most: usize) -> usize {
    let token = hs("prober", "chat:read models:read");
    for i in 0..most {
        let r = envoy.send(
            Request::get("/v1/models")
                .bearer(&token)
                .header("x-probe", value),
        );
        if r.status == 429 {
            return i;
        }
        assert_eq!(r.status, 200, "{}", r.text());
    }
    most
}

/// Sends `token` on `n` new connections (each must get 200); returns how many of them missed
/// the workers' verified-token caches.
fn token_cache_misses(envoy: &Envoy, token: &str, n: usize) -> u64 {
    let misses = || {
        envoy
            .gateway_counters()
            .get("token_cache_misses")
            .copied()
            .unwrap_or(0)
    };
    let before = misses();
    for _ in 0..n {
        assert_eq!(envoy.send(Request::get("/").bearer(token)).status, 200);
    }
    misses() - before
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .admin_get(&format!("/stats?filter=^{name}$"))
        .text()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: "))?.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn plugin_config_changes_under_load_never_fail_or_serve_unchecked() {
    let upstream = Upstream::start();
    let rs = RsaKey::generate("rs-1", 2048);
    let idp = JwksServer::start(JWKS_PATH, vec![rs.jwk()]);
    let lds = LdsFile::new();
    let envoy = Envoy::builder(&plugin_config(&["chat:read"], 5, true).to_string())
        .upstream(upstream.addr())
        .idp(idp.addr())
        .env("JWT_SECRET", SECRET)
        .drain_time_s(DRAIN_S as u32)
        .bootstrap_override(lds.take_listeners())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let rs_token = rs.mint(&claims("https://rs.test", "gw", "rs-user", "chat:read"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while envoy
        .send(Request::get("/v1/models").bearer(&rs_token))
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "the JWKS never arrived");
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(probes_allowed(&envoy, "p1", 3), 3);
    assert_eq!(probes_allowed(&envoy, "spent", 10), 5);
    // Both workers verify and cache the RS256 token (20 connections reach both).
    token_cache_misses(&envoy, &rs_token, 20);
    assert_eq!(
        token_cache_misses(&envoy, &rs_token, 10),
        0,
        "cached by every worker"
    );
    let fetches_before = idp.fetches();

    // The change: /v1/models also needs models:read; the probe limit goes from 5 to 4.
    let stop = AtomicBool::new(false);
    let (outcomes, switched) = thread::scope(|scope| {
        let running = scope.spawn(|| load(envoy.addr(), 3, &stop));
        thread::sleep(LOAD_AROUND);
        let new_config = plugin_config(&["chat:read", "models:read"], 4, true).to_string();
        lds.set_plugin_config(&new_config);
        let switched = wait_for_rule(&envoy, 403);
        // Past the drain, so that the old connections' end is under load too.
        thread::sleep(Duration::from_secs(DRAIN_S) + LOAD_AROUND);
        stop.store(true, Ordering::SeqCst);
        (running.join().expect("load"), switched)
    });
    check(&outcomes, Some(switched), 0);
    let old_after_switch = outcomes
        .iter()
        .filter(|o| o.kind == Kind::ChatOnly && o.status == 200 && o.sent > switched)
        .count();
    eprintln!(
        "{} requests around the change; {old_after_switch} answered under the old config on \
         connections opened before it",
        outcomes.len()
    );
    assert!(stat(&envoy, "listener_manager.lds.update_success") >= 2);

    // Kept: the probe count (3 of the old 5) goes on under the new limit of 4: 1 more (a reset
    // counter would allow 4). The `spent` caller stayed refused throughout (checked above).
    assert_eq!(probes_allowed(&envoy, "p1", 10), 1, "the counter was kept");
    // Kept: the keys. The RS256 token verifies at once, without a fetch. Reset: the
    // verified-token cache: the token is verified again, once per worker.
    let misses = token_cache_misses(&envoy, &rs_token, 20);
    assert!(
        (1..=2).contains(&misses),
        "verified again per worker: {misses}"
    );
    assert_eq!(idp.fetches(), fetches_before, "no new JWKS fetch");

    // An invalid config: refused by Envoy, logged by field, and the last good one serves on.
    let rejected_before = stat(&envoy, "listener_manager.lds.update_rejected");
    let stop = AtomicBool::new(false);
    let outcomes = thread::scope(|scope| {
        let running = scope.spawn(|| load(envoy.addr(), 3, &stop));
        thread::sleep(LOAD_AROUND);
        let mut bad = plugin_config(&["chat:read"], 5, true);
        bad["bogus_field"] = json!(true);
        lds.set_plugin_config(&bad.to_string());
        let deadline = Instant::now() + Duration::from_secs(15);
        while stat(&envoy, "listener_manager.lds.update_rejected") == rejected_before {
            assert!(
                Instant::now() < deadline,
                "the bad config was never rejected"
            );
            thread::sleep(Duration::from_millis(50));
        }
        thread::sleep(LOAD_AROUND);
        stop.store(true, Ordering::SeqCst);
        running.join().expect("load")
    });
    // The rule in force stays the second config's: chat-only tokens get 403 throughout.
    check(
        &outcomes,
        Some(Instant::now() - Duration::from_secs(3600)),
        0,
    );
    let log = envoy.log();
    assert!(
        log.contains("config: bogus_field: unknown field"),
        "{}",
        envoy.log_tail(40)
    );
}

#[test]
fn hot_restart_under_load_hands_over_without_failures() {
    let upstream = Upstream::start();
    let port = reserve_port().port();
    let parent = Envoy::builder(&plugin_config(&["chat:read"], 5, false).to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .listener_port(port)
        .drain_time_s(2)
        .hot_restartable()
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    assert_eq!(probes_allowed(&parent, "hr", 3), 3);
    assert_eq!(probes_allowed(&parent, "spent", 10), 5);
    let mut parent = parent;
    let stop = AtomicBool::new(false);
    let addr = parent.addr();
    let (outcomes, child, handover, parent_exit) = thread::scope(|scope| {
        let running = scope.spawn(|| load(addr, 3, &stop));
        thread::sleep(LOAD_AROUND);
        let handover = Instant::now();
        let child = parent
            .hot_restart(4)
            .unwrap_or_else(|e| panic!("epoch 1 did not start: {}", e.log));
        let deadline = Instant::now() + Duration::from_secs(20);
        while parent.is_running() {
            assert!(Instant::now() < deadline, "the parent never exited");
            thread::sleep(Duration::from_millis(50));
        }
        let parent_exit = Instant::now();
        thread::sleep(LOAD_AROUND);
        stop.store(true, Ordering::SeqCst);
        (running.join().expect("load"), child, handover, parent_exit)
    });
    // The child is a new process with its own (empty) counters: the spent caller gets one
    // fresh window of 5 from it, no more.
    check(&outcomes, None, 5);
    let during = outcomes
        .iter()
        .filter(|o| o.sent > handover && o.sent < parent_exit)
        .count();
    eprintln!("{} requests, {during} during the handover", outcomes.len());
    assert!(during > 30, "requests during the handover: {during}");
    assert!(
        outcomes.iter().any(|o| o.sent > parent_exit),
        "requests after the parent left"
    );
    let log = child.log();
    for line in ["initializing epoch 1", "shutting down parent after drain"] {
        assert!(log.contains(line), "{line}: {}", child.log_tail(40));
    }
    // A new process: the probe counter starts again from zero (shared data is per process).
    assert_eq!(probes_allowed(&child, "hr", 10), 5);
}
