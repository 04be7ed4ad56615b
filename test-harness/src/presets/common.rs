//! What the four provider stand-ins share: a recording server (the harness's [`Upstream`], so no
//! second HTTP stack) around provider state behind a mutex, single-use codes with an expiry,
//! query/form/JSON parsing that never panics, and the replies every provider builds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::oidc::{form_encode_component, percent_decode, random_token};
use crate::upstream::{Recorded, Reply, Upstream};

/// Query parameter a test adds to the authorize URL to pick which configured user "logs in"
/// (real providers show a login page; ours logs that user in at once). Without it, the first
/// user. Not a provider parameter: real providers ignore unknown ones, and so do the
/// stand-ins for everything else.
pub const TEST_USER_PARAM: &str = "test_user";

/// A running stand-in: the server and its provider state `S`.
pub struct StandIn<S> {
    upstream: Upstream,
    state: Arc<Mutex<S>>,
    down: Arc<AtomicBool>,
}

impl<S: Send + 'static> StandIn<S> {
    /// Serves `state` with `handle` on 127.0.0.1:0 until dropped.
    pub fn start(state: S, handle: fn(&mut S, &Recorded) -> Reply) -> Self {
        let state = Arc::new(Mutex::new(state));
        let down = Arc::new(AtomicBool::new(false));
        let upstream = {
            let state = Arc::clone(&state);
            let down = Arc::clone(&down);
            Upstream::with_handler(move |request| {
                if down.load(Ordering::SeqCst) {
                    // What a provider's load balancer answers while the service behind it is
                    // down. (The shared server cannot refuse connections it already holds.)
                    return Reply::text(503, "Service Unavailable");
                }
                handle(&mut lock(&state), request)
            })
        };
        Self {
            upstream,
            state,
            down,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.upstream.addr()
    }

    /// `http://127.0.0.1:PORT{path}`: for configs naming the browser-facing authorize URL.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Runs `f` on the provider state (tests configure users and faults through it).
    pub fn with<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// While set, every request gets a 503.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.upstream.requests()
    }

    /// Requests received for `path` (the query is ignored).
    pub fn calls(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| path_of(&r.path) == path)
            .collect()
    }
}

fn lock<S>(state: &Mutex<S>) -> MutexGuard<'_, S> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The path of a request target, without its query.
pub fn path_of(target: &str) -> &str {
    target.split('?').next().unwrap_or("")
}

/// The decoded query parameters of a request target (first occurrence wins on lookup).
pub fn query(target: &str) -> Params {
    Params(parse_pairs(target.split_once('?').map_or("", |(_, q)| q)))
}

/// A form body's decoded parameters (`application/x-www-form-urlencoded`).
pub fn form(body: &[u8]) -> Params {
    Params(parse_pairs(&String::from_utf8_lossy(body)))
}

fn parse_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decoded name/value pairs.
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// The first value of `name`; an empty value counts as absent (providers treat it so).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A JSON body's object, or `None` when the body is not a JSON object.
pub fn json_object(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// A string field of a JSON object (an empty string counts as absent).
pub fn json_str<'a>(object: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    object
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// `302 Found` to `location`.
pub fn redirect(location: &str) -> Reply {
    let mut reply = Reply::text(302, "");
    reply.headers = vec![("location".into(), location.into())];
    reply
}

/// `url` with `pairs` appended to its query, percent-encoded.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let encoded = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode_component(v)))
        .collect::<Vec<_>>()
        .join("&");
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{encoded}")
}

/// An HTML error page, as providers show the browser when the authorize request is bad.
pub fn error_page(status: u16, message: &str) -> Reply {
    let mut reply = Reply::text(
        status,
        &format!("<!doctype html><title>Error</title><p>{message}</p>"),
    );
    reply.headers = vec![("content-type".into(), "text/html; charset=utf-8".into())];
    reply
}

/// A fresh opaque credential with a provider-looking prefix.
pub fn token(prefix: &str) -> String {
    format!("{prefix}{}", random_token())
}

/// What a code was issued for: the user, the client, the redirect URI and PKCE challenge given
/// at the authorize step.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: String,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub scope: String,
    /// `(challenge, method)` when the authorize request carried one.
    pub challenge: Option<(String, String)>,
}

/// Why a code was not redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    Unknown,
    Expired,
    Used,
}

/// Single-use authorization codes with a lifetime.
#[derive(Debug, Default)]
pub struct Codes {
    live: HashMap<String, (Grant, Instant)>,
    used: HashMap<String, ()>,
    lifetime: Duration,
}

impl Codes {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            ..Self::default()
        }
    }

    /// A new code for `grant`.
    pub fn issue(&mut self, grant: Grant) -> String {
        let code = token("");
        self.live.insert(code.clone(), (grant, Instant::now()));
        code
    }

    /// Redeems `code` once (a failed check of anything else still spends it, as real
    /// providers do).
    pub fn take(&mut self, code: &str) -> Result<Grant, CodeError> {
        if self.used.contains_key(code) {
            return Err(CodeError::Used);
        }
        let (grant, issued) = self.live.remove(code).ok_or(CodeError::Unknown)?;
        self.used.insert(code.to_string(), ());
        if issued.elapsed() > self.lifetime {
            return Err(CodeError::Expired);
        }
        Ok(grant)
    }

    /// Makes every outstanding code older than its lifetime (a test of expiry without waiting).
    pub fn age_all(&mut self) {
        let past = Instant::now()
            .checked_sub(self.lifetime + Duration::from_secs(1))
            .unwrap_or_else(Instant::now);
        for (_, issued) in self.live.values_mut() {
            *issued = past;
        }
    }
}

/// Whether `verifier` matches a PKCE `(challenge, method)` (RFC 7636 4.6).
pub fn pkce_matches(challenge: &(String, String), verifier: Option<&str>) -> bool {
    let Some(verifier) = verifier else {
        return false;
    };
    match challenge.1.as_str() {
        "S256" => crate::oidc::pkce_challenge(verifier) == challenge.0,
        "plain" => verifier == challenge.0,
        _ => false,
    }
}

/// The user the test picked for this authorize request, or the first configured one.
pub fn chosen_user<'a>(params: &'a Params, first: Option<&'a str>) -> Option<&'a str> {
    params.get(TEST_USER_PARAM).or(first)
}
