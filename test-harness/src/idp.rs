//! A controllable IdP stand-in: an HTTP/1.1 server on loopback serving a JWKS document at one
//! path, whose answer tests can change at any time (key rotation, error statuses, garbage
//! bodies, slow answers), and which can be started late on a port reserved in advance (an IdP
//! that is down when Envoy starts and comes up afterwards).
//!
//! It has its own accept loop rather than wrapping [`crate::upstream::Upstream`] because it must
//! be able to bind a given address (see [`JwksServer::start_on`]). Requests are recorded the same
//! way, as [`Recorded`].
//!
//! ```no_run
//! use std::time::Duration;
//! use test_harness::idp::{JwksBehaviour, JwksServer};
//! use test_harness::tokens::RsaKey;
//!
//! let key = RsaKey::generate("k1", 2048);
//! let idp = JwksServer::start("/.well-known/jwks.json", vec![key.jwk()]);
//! // ... start Envoy with `.idp(idp.addr())` ...
//! idp.set_behaviour(JwksBehaviour::Status(503));
//! idp.wait_for_fetches(1, Duration::from_secs(10));
//! ```

use std::collections::HashMap;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{read_body, read_head};
use crate::tokens::jwks;
use crate::upstream::Recorded;

/// How long [`JwksServer::start_on`] keeps retrying to bind a briefly unavailable port.
const BIND_RETRY: Duration = Duration::from_secs(5);

/// How the server answers JWKS fetches right now. Requests to other paths always get a 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksBehaviour {
    /// 200 with the current key set (the default).
    Serve,
    /// Connection accepted, then an HTTP error status with a short text body.
    Status(u16),
    /// 200 with this exact body (garbage JSON, a JWKS with no usable keys, a huge body...),
    /// sent as `content-type: application/json`.
    Body(Vec<u8>),
    /// Wait this long before answering (for timeouts), then behave as Serve (with the keys
    /// current when the answer is sent). Only the connection being answered waits.
    Delay(Duration),
}

/// What the tests control and what the server saw.
struct State {
    keys: Vec<Value>,
    behaviour: JwksBehaviour,
    recorded: Vec<Recorded>,
    fetches: usize,
    /// When each JWKS fetch's head arrived, in arrival order (one per counted fetch).
    fetch_times: Vec<Instant>,
}

struct Shared {
    path: String,
    state: Mutex<State>,
    /// Signalled whenever a request is recorded.
    changed: Condvar,
    stop: AtomicBool,
    /// Open connections (clones), shut down on drop so that keep-alive connections Envoy pooled
    /// do not keep being answered by a server the test considers gone.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Whether `target` (path and query as received) names the JWKS path. The query is ignored.
    fn is_jwks(&self, target: &str) -> bool {
        target.split('?').next() == Some(self.path.as_str())
    }
}

/// The running IdP stand-in. Stops when dropped: the listening socket is closed and open
/// connections are shut down.
pub struct JwksServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

/// Reserves a loopback port with nothing listening on it: binds `127.0.0.1:0`, notes the port
/// the kernel picked and closes the socket again. Connections to it are refused until
/// [`JwksServer::start_on`] binds it. (The kernel could in principle hand the port to someone
/// else in between; on a test machine that is vanishingly rare.)
pub fn reserve_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port to reserve");
    listener.local_addr().expect("reserved port address")
}

impl JwksServer {
    /// Serves `keys` (JWK JSON values) as `{"keys": [...]}` at `path` (e.g.
    /// "/.well-known/jwks.json") on an ephemeral loopback port.
    pub fn start(path: &str, keys: Vec<Value>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind JWKS server");
        Self::run(listener, path, keys)
    }

    /// Like [`JwksServer::start`], but binds the given address (from [`reserve_port`]), retrying
    /// for up to 5 s if the port is briefly unavailable. Panics if it still cannot bind.
    pub fn start_on(addr: SocketAddr, path: &str, keys: Vec<Value>) -> JwksServer {
        let deadline = Instant::now() + BIND_RETRY;
        let listener = loop {
            match TcpListener::bind(addr) {
                Ok(listener) => break listener,
                Err(e) if Instant::now() >= deadline => {
                    panic!("bind JWKS server on {addr}: {e}")
                }
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        };
        Self::run(listener, path, keys)
    }

    fn run(listener: TcpListener, path: &str, keys: Vec<Value>) -> JwksServer {
        let addr = listener.local_addr().expect("JWKS server address");
        let shared = Arc::new(Shared {
            path: path.to_string(),
            state: Mutex::new(State {
                keys,
                behaviour: JwksBehaviour::Serve,
                recorded: Vec::new(),
                fetches: 0,
                fetch_times: Vec::new(),
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(0),
        });
        {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(listener, shared));
        }
        JwksServer { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn path(&self) -> &str {
        &self.shared.path
    }

    /// Replace the served keys (key rotation). Takes effect for the next answer.
    pub fn set_keys(&self, keys: Vec<Value>) {
        self.shared.state().keys = keys;
    }

    /// Change how JWKS fetches are answered. Takes effect for the next request.
    pub fn set_behaviour(&self, behaviour: JwksBehaviour) {
        self.shared.state().behaviour = behaviour;
    }

    /// JWKS fetches received so far: requests to `path` (query ignored, any method), counted
    /// when their head arrives, whatever the answer.
    pub fn fetches(&self) -> usize {
        self.shared.state().fetches
    }

    /// When each JWKS fetch counted by [`JwksServer::fetches`] arrived (its head), in order:
    /// for asserting how fetches are spaced (e.g. that one never starts while another is in
    /// flight).
    pub fn fetch_times(&self) -> Vec<Instant> {
        self.shared.state().fetch_times.clone()
    }

    /// Wait until `fetches() >= n` or the timeout passes; returns `fetches()`.
    pub fn wait_for_fetches(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        while state.fetches < n {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        state.fetches
    }

    /// Every request received (any path), in arrival order, for asserting headers such as
    /// `:authority` / `host` and the method.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state().recorded.clone()
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = TcpStream::connect(self.addr);
        for (_, stream) in self.shared.connections().drain() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
            if let Ok(clone) = stream.try_clone() {
                shared.connections().insert(id, clone);
            }
            // Drop may have drained the table just before the insert.
            if !shared.stopped() {
                serve_connection(stream, &shared);
            }
            shared.connections().remove(&id);
        });
    }
}

fn serve_connection(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(write_half);
    // Keep-alive: Envoy reuses upstream connections.
    while let Ok(Some((request_line, headers))) = read_head(&mut reader) {
        if shared.stopped() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("HTTP/1.1").to_string();
        let (body, complete) = match read_body(&mut reader, &headers, false) {
            Ok(body) => (body, true),
            Err(_) => (Vec::new(), false),
        };
        let is_jwks = shared.is_jwks(&path);
        let close = wants_close(&version, &headers);
        let head_only = method.eq_ignore_ascii_case("HEAD");
        let behaviour = {
            let mut state = shared.state();
            state.recorded.push(Recorded {
                method,
                path,
                headers,
                body,
                complete,
            });
            if is_jwks {
                state.fetches += 1;
                state.fetch_times.push(Instant::now());
            }
            shared.changed.notify_all();
            state.behaviour.clone()
        };
        if !complete {
            return;
        }
        let (status, content_type, body) = if is_jwks {
            match behaviour {
                JwksBehaviour::Serve => serve_keys(shared),
                JwksBehaviour::Status(status) => (
                    status,
                    "text/plain",
                    format!("jwks unavailable ({status})").into_bytes(),
                ),
                JwksBehaviour::Body(body) => (200, "application/json", body),
                JwksBehaviour::Delay(delay) => {
                    if !sleep_unless_stopped(delay, shared) {
                        return;
                    }
                    serve_keys(shared)
                }
            }
        } else {
            (
                404,
                "application/json",
                json!({"error": "not found"}).to_string().into_bytes(),
            )
        };
        if shared.stopped() {
            return;
        }
        let written = write_response(&mut writer, status, content_type, &body, head_only, close);
        if written.is_err() || close {
            return;
        }
    }
}

/// The current key set as a 200 answer.
fn serve_keys(shared: &Shared) -> (u16, &'static str, Vec<u8>) {
    let document = jwks(&shared.state().keys);
    (200, "application/json", document.to_string().into_bytes())
}

/// Sleeps for `delay` in short slices; false if the server was stopped meanwhile.
fn sleep_unless_stopped(delay: Duration, shared: &Shared) -> bool {
    let deadline = Instant::now() + delay;
    loop {
        if shared.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(20)));
    }
}

fn wants_close(version: &str, headers: &[(String, String)]) -> bool {
    let connection = headers
        .iter()
        .filter(|(n, _)| n == "connection")
        .map(|(_, v)| v.to_ascii_lowercase())
        .collect::<Vec<_>>();
    if connection.iter().any(|v| v.contains("close")) {
        return true;
    }
    version.eq_ignore_ascii_case("HTTP/1.0") && !connection.iter().any(|v| v.contains("keep-alive"))
}

fn write_response(
    writer: &mut impl Write,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    close: bool,
) -> io::Result<()> {
    write!(writer, "HTTP/1.1 {status} {}\r\n", reason(status))?;
    write!(writer, "content-type: {content_type}\r\n")?;
    write!(writer, "content-length: {}\r\n", body.len())?;
    if close {
        writer.write_all(b"connection: close\r\n")?;
    }
    writer.write_all(b"\r\n")?;
    if !head_only {
        writer.write_all(body)?;
    }
    writer.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{read_body, read_head, Request};
    use std::io::BufRead;

    const PATH: &str = "/.well-known/jwks.json";

    fn key(kid: &str) -> Value {
        json!({"kty": "oct", "kid": kid, "k": "c2VjcmV0"})
    }

    fn kids(document: &Value) -> Vec<String> {
        document["keys"]
            .as_array()
            .expect("keys array")
            .iter()
            .map(|k| k["kid"].as_str().expect("kid").to_string())
            .collect()
    }

    /// Reads one response off a kept-alive connection.
    fn read_one(reader: &mut impl BufRead) -> io::Result<Option<(String, Vec<u8>)>> {
        let Some((status_line, headers)) = read_head(reader)? else {
            return Ok(None);
        };
        let body = read_body(reader, &headers, false)?;
        Ok(Some((status_line, body)))
    }

    #[test]
    fn serves_the_keys() {
        let server = JwksServer::start(PATH, vec![key("a"), key("b")]);
        assert_eq!(server.path(), PATH);
        let response = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json(), jwks(&[key("a"), key("b")]));
        assert_eq!(server.fetches(), 1);
        let requests = server.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].method, "GET");
        assert_eq!(requests[0].path, PATH);
        assert_eq!(requests[0].header("host"), Some("gateway.test"));
        assert!(requests[0].complete);
    }

    #[test]
    fn serves_real_rsa_jwks() {
        let rsa = crate::tokens::RsaKey::generate("rsa-1", 1024);
        let server = JwksServer::start(PATH, vec![rsa.jwk()]);
        let response = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(response.json()["keys"][0], rsa.jwk());
    }

    #[test]
    fn set_keys_changes_the_answer() {
        let server = JwksServer::start(PATH, vec![key("old")]);
        let first = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(kids(&first.json()), ["old"]);
        server.set_keys(vec![key("new-1"), key("new-2")]);
        let second = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(kids(&second.json()), ["new-1", "new-2"]);
        server.set_keys(Vec::new());
        let third = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(third.json(), json!({"keys": []}));
    }

    #[test]
    fn status_answers_the_error() {
        let server = JwksServer::start(PATH, vec![key("a")]);
        server.set_behaviour(JwksBehaviour::Status(503));
        let response = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(response.status, 503);
        assert!(!response.body.is_empty());
        assert_eq!(server.fetches(), 1);
        server.set_behaviour(JwksBehaviour::Serve);
        let response = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(response.status, 200);
        assert_eq!(kids(&response.json()), ["a"]);
    }

    #[test]
    fn body_answers_the_exact_bytes() {
        let server = JwksServer::start(PATH, vec![key("a")]);
        let garbage = b"{\"keys\": [not json \xff\x00".to_vec();
        server.set_behaviour(JwksBehaviour::Body(garbage.clone()));
        let response = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, garbage);

        let huge = vec![b'x'; 3 * 1024 * 1024];
        server.set_behaviour(JwksBehaviour::Body(huge.clone()));
        let response = Request::get(PATH).send(server.addr()).expect("fetch");
        assert_eq!(response.body.len(), huge.len());
        assert_eq!(response.body, huge);
    }

    #[test]
    fn delay_delays_without_blocking_other_connections() {
        let server = Arc::new(JwksServer::start(PATH, vec![key("a")]));
        let delay = Duration::from_millis(600);
        server.set_behaviour(JwksBehaviour::Delay(delay));
        let slow = {
            let server = Arc::clone(&server);
            thread::spawn(move || {
                let started = Instant::now();
                let response = Request::get(PATH).send(server.addr()).expect("fetch");
                (started.elapsed(), response)
            })
        };
        // The fetch is counted as soon as it arrives, before the answer.
        assert_eq!(server.wait_for_fetches(1, Duration::from_secs(5)), 1);
        // Another connection is answered meanwhile.
        let started = Instant::now();
        let other = Request::get("/other").send(server.addr()).expect("other");
        assert_eq!(other.status, 404);
        assert!(started.elapsed() < delay / 2, "{:?}", started.elapsed());

        let (elapsed, response) = slow.join().expect("slow fetch");
        assert!(elapsed >= delay, "answered after {elapsed:?}");
        assert_eq!(response.status, 200);
        assert_eq!(kids(&response.json()), ["a"]);
    }

    #[test]
    fn fetches_count_only_the_jwks_path() {
        let server = JwksServer::start(PATH, vec![key("a")]);
        Request::get("/").send(server.addr()).expect("root");
        Request::get("/.well-known/openid-configuration")
            .send(server.addr())
            .expect("other");
        assert_eq!(server.fetches(), 0);
        Request::get(PATH).send(server.addr()).expect("fetch");
        Request::get(&format!("{PATH}?x=1"))
            .send(server.addr())
            .expect("fetch with query");
        server.set_behaviour(JwksBehaviour::Status(500));
        Request::get(PATH)
            .send(server.addr())
            .expect("failed fetch");
        assert_eq!(server.fetches(), 3);
        assert_eq!(server.requests().len(), 5);
        assert_eq!(server.wait_for_fetches(3, Duration::from_millis(10)), 3);
        let started = Instant::now();
        assert_eq!(server.wait_for_fetches(4, Duration::from_millis(200)), 3);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn other_paths_answer_404_json() {
        let server = JwksServer::start(PATH, vec![key("a")]);
        let response = Request::get("/nope").send(server.addr()).expect("send");
        assert_eq!(response.status, 404);
        assert_eq!(response.json(), json!({"error": "not found"}));
        // Behaviour applies to the JWKS path only.
        server.set_behaviour(JwksBehaviour::Status(503));
        let response = Request::post("/token")
            .body("x=1")
            .send(server.addr())
            .expect("send");
        assert_eq!(response.status, 404);
        let requests = server.requests();
        assert_eq!(requests[1].method, "POST");
        assert_eq!(requests[1].body, b"x=1");
    }

    #[test]
    fn reserve_port_then_start_on() {
        let addr = reserve_port();
        assert!(addr.ip().is_loopback());
        assert!(TcpStream::connect(addr).is_err(), "nothing listens yet");
        assert!(Request::get(PATH).send(addr).is_err());

        let server = JwksServer::start_on(addr, PATH, vec![key("late")]);
        assert_eq!(server.addr(), addr);
        let response = Request::get(PATH).send(addr).expect("fetch");
        assert_eq!(kids(&response.json()), ["late"]);

        // Down again, then back up on the same port.
        drop(server);
        assert!(Request::get(PATH).send(addr).is_err());
        let server = JwksServer::start_on(addr, PATH, vec![key("again")]);
        let response = Request::get(PATH).send(addr).expect("fetch");
        assert_eq!(kids(&response.json()), ["again"]);
        assert_eq!(server.fetches(), 1);
    }

    #[test]
    fn keep_alive_and_drop_closes_open_connections() {
        let server = JwksServer::start(PATH, vec![key("a")]);
        let stream = TcpStream::connect(server.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        for _ in 0..2 {
            writer
                .write_all(format!("GET {PATH} HTTP/1.1\r\nhost: idp\r\n\r\n").as_bytes())
                .unwrap();
            let (status_line, body) = read_one(&mut reader).unwrap().expect("a response");
            assert!(status_line.starts_with("HTTP/1.1 200"), "{status_line}");
            let document: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(kids(&document), ["a"]);
        }
        assert_eq!(server.fetches(), 2);
        assert!(server
            .requests()
            .iter()
            .all(|r| r.header("host") == Some("idp")));

        drop(server);
        // The pooled connection is closed rather than answered by a stopped server.
        let _ = writer.write_all(format!("GET {PATH} HTTP/1.1\r\nhost: idp\r\n\r\n").as_bytes());
        assert!(!matches!(read_one(&mut reader), Ok(Some(_))));
    }
}
