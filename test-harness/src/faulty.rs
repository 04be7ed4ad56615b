//! Misbehaving servers for fault tests, raw on purpose (the well-behaved stand-ins cannot send
//! a byte at a time, reset a connection or break UTF-8):
//!
//! - [`FaultyJwks`]: a JWKS endpoint switchable at run time between serving keys, trickling
//!   (headers, then one byte every so often), 500, garbage and a huge body; it counts how many
//!   fetches are open at once, so "at most one fetch in flight" can be checked from outside.
//! - [`FaultyModel`]: an Ollama `/api/chat` stand-in whose fault is chosen per request by the
//!   last message's content (`fault:reset`, `fault:stall`, `fault:long-line`, `fault:utf8`), so
//!   tests need no shared switch and stay parallel-safe. Streamed requests get NDJSON (chunked),
//!   `"stream": false` ones one JSON object (`content-length`), each with the fault.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{read_body, read_head};
use crate::tokens::jwks;

/// How [`FaultyJwks`] answers the next fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksFault {
    /// 200 with the current keys.
    Serve,
    /// 200 headers announcing a body, then one byte of it per `every`, until the peer leaves.
    Trickle { every: Duration },
    /// This status with a short text body.
    Status(u16),
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a body of this many bytes (JSON-looking whitespace, then `{}`).
    Huge(usize),
}

struct JwksShared {
    path: String,
    keys: Mutex<Vec<Value>>,
    /// Served at `path` instead of the key set (a discovery document).
    document: Option<Value>,
    /// Other paths, always answered well (e.g. the JWKS a discovery document names).
    extra: Vec<(String, Value)>,
    fault: Mutex<JwksFault>,
    fetches: AtomicUsize,
    open: AtomicUsize,
    max_open: AtomicUsize,
    stop: AtomicBool,
}

/// A JWKS server that can be made to fail in the ways an IdP does. Stops when dropped.
pub struct FaultyJwks {
    addr: SocketAddr,
    shared: Arc<JwksShared>,
}

impl FaultyJwks {
    pub fn start(path: &str, keys: Vec<Value>) -> Self {
        Self::serve(path, keys, None, Vec::new())
    }

    /// A faulty endpoint serving `document` at `path` (when not failing), and `extra` paths
    /// with their JSON bodies, never failing: an OIDC discovery document that fails while the
    /// key set it names does not.
    pub fn document(path: &str, document: Value, extra: Vec<(String, Value)>) -> Self {
        Self::serve(path, Vec::new(), Some(document), extra)
    }

    fn serve(
        path: &str,
        keys: Vec<Value>,
        document: Option<Value>,
        extra: Vec<(String, Value)>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind faulty JWKS");
        let addr = listener.local_addr().expect("faulty JWKS address");
        let shared = Arc::new(JwksShared {
            path: path.to_string(),
            keys: Mutex::new(keys),
            document,
            extra,
            fault: Mutex::new(JwksFault::Serve),
            fetches: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            max_open: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let accept = Arc::clone(&shared);
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept);
                thread::spawn(move || serve_jwks(stream, &shared));
            }
        });
        Self { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_fault(&self, fault: JwksFault) {
        *self.shared.fault.lock().unwrap_or_else(|e| e.into_inner()) = fault;
    }

    pub fn set_keys(&self, keys: Vec<Value>) {
        *self.shared.keys.lock().unwrap_or_else(|e| e.into_inner()) = keys;
    }

    /// JWKS fetches received so far (counted when their head arrives).
    pub fn fetches(&self) -> usize {
        self.shared.fetches.load(Ordering::SeqCst)
    }

    /// Fetches open right now: head received, answer not yet fully written nor abandoned.
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// The most fetches that were ever open at the same time.
    pub fn max_open(&self) -> usize {
        self.shared.max_open.load(Ordering::SeqCst)
    }

    /// Waits until `fetches() >= n` (polling, up to `timeout`); returns `fetches()`.
    pub fn wait_for_fetches(&self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.fetches() < n && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        self.fetches()
    }
}

impl Drop for FaultyJwks {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Decrements the open count however the answer ends.
struct OpenFetch<'a>(&'a JwksShared);

impl<'a> OpenFetch<'a> {
    fn begin(shared: &'a JwksShared) -> Self {
        shared.fetches.fetch_add(1, Ordering::SeqCst);
        let now = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_open.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for OpenFetch<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_jwks(stream: TcpStream, shared: &JwksShared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some((line, headers))) = read_head(&mut reader) {
        if read_body(&mut reader, &headers, false).is_err() || shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("");
        let bare = path.split('?').next().unwrap_or("");
        if let Some((_, body)) = shared.extra.iter().find(|(p, _)| p == bare) {
            let body = body.to_string();
            if write_full(&mut writer, 200, "application/json", body.as_bytes()).is_err() {
                return;
            }
            continue;
        }
        if path.split('?').next() != Some(shared.path.as_str()) {
            if write_full(&mut writer, 404, "text/plain", b"not found").is_err() {
                return;
            }
            continue;
        }
        let _open = OpenFetch::begin(shared);
        let fault = shared
            .fault
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let written = match fault {
            JwksFault::Serve => {
                let keys = shared
                    .keys
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let body = match &shared.document {
                    Some(document) => document.to_string(),
                    None => jwks(&keys).to_string(),
                };
                write_full(&mut writer, 200, "application/json", body.as_bytes())
            }
            JwksFault::Status(status) => write_full(&mut writer, status, "text/plain", b"failing"),
            JwksFault::Garbage => write_full(
                &mut writer,
                200,
                "application/json",
                b"\xff\xfe<html>not a key set",
            ),
            JwksFault::Huge(size) => {
                let mut body = vec![b' '; size.saturating_sub(2)];
                body.extend_from_slice(b"{}");
                write_full(&mut writer, 200, "application/json", &body)
            }
            JwksFault::Trickle { every } => {
                // The connection is given up by Envoy (its timeout) long before this ends.
                trickle(&mut writer, reader.get_ref(), every, shared);
                return;
            }
        };
        if written.is_err() {
            return;
        }
    }
}

/// Headers for a 1 MB body, then a byte per `every` until the peer closes or the server stops.
/// The peer's close is noticed within 20 ms (a peek), so the open count is accurate.
fn trickle(writer: &mut TcpStream, reader: &TcpStream, every: Duration, shared: &JwksShared) {
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n";
    if writer.write_all(head.as_bytes()).is_err() {
        return;
    }
    let _ = reader.set_read_timeout(Some(Duration::from_millis(20)));
    let mut next_byte = Instant::now();
    let mut probe = [0u8; 1];
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            let _ = writer.shutdown(Shutdown::Both);
            return;
        }
        if Instant::now() >= next_byte {
            if writer.write_all(b" ").is_err() {
                return;
            }
            next_byte = Instant::now() + every;
        }
        match reader.peek(&mut probe) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn write_full(
    writer: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    writer.write_all(head.as_bytes())?;
    writer.write_all(body)?;
    writer.flush()
}

/// The fault a [`FaultyModel`] request asks for (its last message's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFault {
    /// A normal streamed answer: three content lines and the `done` line.
    None,
    /// Two content lines, then the connection is reset (RST, `SO_LINGER` 0).
    Reset,
    /// Two content lines, then silence until the peer leaves.
    Stall,
    /// One content line, then a single 2 MB line (and, if still read, the `done` line).
    LongLine,
    /// One content line, then a line whose content holds bytes that are not UTF-8.
    InvalidUtf8,
    /// Non-streamed only: a 64 MB answer (over Envoy's buffer for the gateway's own fetch).
    Huge,
}

impl ModelFault {
    fn from_prompt(prompt: &str) -> Self {
        match prompt {
            "fault:reset" => Self::Reset,
            "fault:stall" => Self::Stall,
            "fault:long-line" => Self::LongLine,
            "fault:utf8" => Self::InvalidUtf8,
            "fault:huge" => Self::Huge,
            _ => Self::None,
        }
    }
}

/// The model server. Stops accepting when dropped (stalled connections end with the peer).
pub struct FaultyModel {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
}

impl FaultyModel {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind faulty model");
        let addr = listener.local_addr().expect("faulty model address");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (accept_stop, accept_served) = (Arc::clone(&stop), Arc::clone(&served));
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (stop, served) = (Arc::clone(&accept_stop), Arc::clone(&accept_served));
                thread::spawn(move || serve_model(stream, &stop, &served));
            }
        });
        Self { addr, stop, served }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyModel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// One NDJSON answer line (Ollama's `/api/chat` shape) with this content, and its newline.
pub fn ndjson_line(content: &str) -> Vec<u8> {
    let mut line = json!({"model": "qwen3:32b", "created_at": "2026-01-01T00:00:00Z",
                          "message": {"role": "assistant", "content": content}, "done": false})
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

/// The closing `done` line.
pub fn ndjson_done() -> Vec<u8> {
    let mut line = json!({"model": "qwen3:32b", "created_at": "2026-01-01T00:00:01Z",
                          "message": {"role": "assistant", "content": ""}, "done": true,
                          "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 4})
    .to_string()
    .into_bytes();
    line.push(b'\n');
    line
}

fn serve_model(stream: TcpStream, stop: &AtomicBool, served: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    while let Ok(Some((_line, headers))) = read_head(&mut reader) {
        let Ok(body) = read_body(&mut reader, &headers, false) else {
            return;
        };
        served.fetch_add(1, Ordering::SeqCst);
        let request = serde_json::from_slice::<Value>(&body).unwrap_or_default();
        let prompt = request["messages"]
            .as_array()
            .and_then(|m| m.last()?["content"].as_str().map(String::from))
            .unwrap_or_default();
        let fault = ModelFault::from_prompt(&prompt);
        // Ollama streams unless told not to.
        if request["stream"] == Value::Bool(false) {
            if !whole_answer(&mut writer, reader.get_ref(), fault, stop) {
                return;
            }
            continue;
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        let go_on = match fault {
            ModelFault::None | ModelFault::Huge => chunks(
                &mut writer,
                &[
                    ndjson_line("Hello"),
                    ndjson_line(" world"),
                    ndjson_line("!"),
                    ndjson_done(),
                ],
            ),
            ModelFault::Reset => {
                let _ = open_chunks(&mut writer, &[ndjson_line("Hello"), ndjson_line(" wor")]);
                // The reader's handle too, or the socket is not closed (and not reset).
                drop(reader);
                reset(writer);
                return;
            }
            ModelFault::Stall => {
                let _ = open_chunks(&mut writer, &[ndjson_line("Hello"), ndjson_line(" wor")]);
                wait_for_peer_close(reader.get_ref(), stop);
                return;
            }
            ModelFault::LongLine => {
                let long = ndjson_line(&"x".repeat(2 * 1024 * 1024));
                chunks(&mut writer, &[ndjson_line("Hello"), long, ndjson_done()])
            }
            ModelFault::InvalidUtf8 => {
                let mut bad = ndjson_line("caf\u{e9}");
                // "café" with its é (c3 a9) replaced by a lone continuation and a bad lead byte.
                let at = bad
                    .windows(2)
                    .position(|w| w == [0xc3, 0xa9])
                    .expect("é in line");
                bad.splice(at..at + 2, [0xa9, 0xff]);
                chunks(&mut writer, &[ndjson_line("Hello"), bad, ndjson_done()])
            }
        };
        if !go_on {
            return;
        }
    }
}

/// A non-streamed answer (one JSON object with `content-length`) with `fault`: cut by a reset
/// or a stall halfway, a 2 MB content, or bytes that are not UTF-8. False: the connection ends.
fn whole_answer(
    writer: &mut TcpStream,
    reader: &TcpStream,
    fault: ModelFault,
    stop: &AtomicBool,
) -> bool {
    let content = match fault {
        ModelFault::LongLine => "x".repeat(2 * 1024 * 1024),
        ModelFault::Huge => "x".repeat(64 * 1024 * 1024),
        ModelFault::InvalidUtf8 => "caf\u{e9}".to_string(),
        _ => "Hello world!".to_string(),
    };
    let mut done = ndjson_done();
    done.pop();
    let mut answer: Value = serde_json::from_slice(&done).expect("done line");
    answer["message"]["content"] = json!(content);
    let mut body = answer.to_string().into_bytes();
    if fault == ModelFault::InvalidUtf8 {
        let at = body
            .windows(2)
            .position(|w| w == [0xc3, 0xa9])
            .expect("é in body");
        body.splice(at..at + 2, [0xa9, 0xff]);
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let cut = match fault {
        ModelFault::Reset | ModelFault::Stall => body.len() / 2,
        _ => body.len(),
    };
    if writer.write_all(head.as_bytes()).is_err() || writer.write_all(&body[..cut]).is_err() {
        return false;
    }
    match fault {
        ModelFault::Reset => {
            // Linger 0 on the socket; it is reset when the last handle closes (on return).
            let _ = writer.try_clone().map(reset);
            false
        }
        ModelFault::Stall => {
            wait_for_peer_close(reader, stop);
            false
        }
        _ => true,
    }
}

/// Writes each piece as a chunk, then the last chunk. False if the peer went away.
fn chunks(writer: &mut TcpStream, pieces: &[Vec<u8>]) -> bool {
    open_chunks(writer, pieces) && writer.write_all(b"0\r\n\r\n").is_ok()
}

/// Writes each piece as a chunk (flushed, a little apart so they arrive as separate reads),
/// leaving the body open. False if the peer went away.
fn open_chunks(writer: &mut TcpStream, pieces: &[Vec<u8>]) -> bool {
    for piece in pieces {
        let mut chunk = format!("{:x}\r\n", piece.len()).into_bytes();
        chunk.extend_from_slice(piece);
        chunk.extend_from_slice(b"\r\n");
        if writer.write_all(&chunk).is_err() {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Closes with a TCP reset: `SO_LINGER` on with a zero timeout, then close.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket this function owns, with a correctly sized linger value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Blocks until the peer closes the connection (or the server stops, or 120 s pass).
fn wait_for_peer_close(stream: &TcpStream, stop: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut buf = [0u8; 512];
    let mut reader = stream;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}
