//! The IdP's OIDC discovery document failing under load, from the start: slow (a byte every
//! 2 s), 500, garbage, a 50 MB body, then healthy. Throughout, one client keeps starting a
//! browser login and another calls the API with a bearer token of a provider that needs no
//! IdP. Checked: a login gets the contract's `503 LOGIN_UNAVAILABLE` with `Retry-After` at once
//! (it never waits for the IdP, never redirects to an endpoint the gateway does not know); API
//! calls are untouched; never more than one discovery fetch open at the IdP; Envoy's memory
//! stays flat; once the document is served, logins redirect without a restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use test_harness::faulty::{FaultyJwks, JwksFault};
use test_harness::tokens::{claims, jwks, Hs256Key, RsaKey};
use test_harness::{Envoy, Request, Upstream};

const ISSUER: &str = "https://idp.test";
const DISCOVERY: &str = "/.well-known/openid-configuration";
const SECRET: &str = "discovery-faults-secret-32-bytes!";
const PHASE: Duration = Duration::from_millis(3000);

fn config() -> String {
    json!({
        "providers": [{"name": "api", "issuer": "https://api.test", "audiences": ["gw"],
                       "hs256_secret": {"inline": SECRET}}],
        "oauth2": {"cluster": "idp", "authority": "idp.test", "issuer": ISSUER,
                   "client_id": "gw", "client_secret": {"inline": "client-secret"},
                   "redirect_uri": "http://127.0.0.1:9/oauth2/callback",
                   "allow_insecure_cookies": true, "timeout_ms": 1000,
                   "session": {"secret": {"inline": SECRET}}}
    })
    .to_string()
}

#[derive(Default)]
struct Seen {
    failures: Vec<String>,
    slowest_login: Duration,
    logins: usize,
    redirects: usize,
}

#[test]
fn discovery_faults_under_load_refuse_logins_cleanly_and_recover() {
    let key = RsaKey::generate("idp-key", 2048);
    let document = json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.test/authorize",
        "token_endpoint": "https://idp.test/token",
        "jwks_uri": "https://idp.test/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"]
    });
    let idp = FaultyJwks::document(
        DISCOVERY,
        document,
        vec![("/jwks".to_string(), jwks(&[key.jwk()]))],
    );
    idp.set_fault(JwksFault::Trickle {
        every: Duration::from_secs(2),
    });
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config())
        .upstream(upstream.addr())
        .idp(idp.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let api_token =
        Hs256Key::new(SECRET.as_bytes()).mint(&claims("https://api.test", "gw", "alice", ""));
    let memory_before = envoy.memory_allocated();
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(Seen::default());
    let mut peak = memory_before;
    thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let login = Request::get("/oauth2/login").send(envoy.addr());
                let took = started.elapsed();
                let mut seen = seen.lock().unwrap();
                seen.logins += 1;
                seen.slowest_login = seen.slowest_login.max(took);
                match login {
                    Ok(r) if r.status == 503 && r.json_code() == "LOGIN_UNAVAILABLE" => {
                        if r.header("retry-after").is_none() {
                            seen.failures.push("503 without Retry-After".into());
                        }
                    }
                    Ok(r) if r.status == 302 => seen.redirects += 1,
                    Ok(r) => seen
                        .failures
                        .push(format!("login: {} {}", r.status, r.text())),
                    Err(e) => seen.failures.push(format!("login: no response: {e}")),
                }
                drop(seen);
                thread::sleep(Duration::from_millis(20));
            }
        });
        scope.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let api = Request::get("/v1/models")
                    .bearer(&api_token)
                    .send(envoy.addr());
                if !matches!(&api, Ok(r) if r.status == 200) {
                    let what = api.map(|r| format!("{} {}", r.status, r.text()));
                    seen.lock().unwrap().failures.push(format!("api: {what:?}"));
                }
            }
        });
        for fault in [
            JwksFault::Trickle {
                every: Duration::from_secs(2),
            },
            JwksFault::Status(500),
            JwksFault::Garbage,
            JwksFault::Huge(50 * 1024 * 1024),
        ] {
            idp.set_fault(fault);
            let until = Instant::now() + PHASE;
            while Instant::now() < until {
                peak = peak.max(envoy.memory_allocated());
                thread::sleep(Duration::from_millis(200));
            }
        }
        let faulted = seen.lock().unwrap().redirects;
        assert_eq!(
            faulted, 0,
            "a login redirected while discovery had never succeeded"
        );
        idp.set_fault(JwksFault::Serve);
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.lock().unwrap().redirects == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(100));
        }
        stop.store(true, Ordering::SeqCst);
    });
    let seen = seen.into_inner().unwrap();
    assert!(
        seen.failures.is_empty(),
        "{:?}",
        &seen.failures[..seen.failures.len().min(5)]
    );
    assert!(
        seen.redirects > 0,
        "logins redirect once discovery is served, without a restart"
    );
    assert!(
        seen.slowest_login < Duration::from_millis(500),
        "a login never waits for the IdP: slowest {:?}",
        seen.slowest_login
    );
    assert!(
        idp.max_open() <= 1,
        "{} discovery fetches open at once",
        idp.max_open()
    );
    assert!(
        idp.fetches() >= 4,
        "retried while failing: {} fetches",
        idp.fetches()
    );
    let growth = peak.saturating_sub(memory_before);
    assert!(
        growth < 8 * 1024 * 1024,
        "memory grew {growth} bytes under the faults"
    );
    eprintln!(
        "logins {} (redirects {}), slowest {:?}, fetches {}, memory +{growth}",
        seen.logins,
        seen.redirects,
        seen.slowest_login,
        idp.fetches()
    );
}
