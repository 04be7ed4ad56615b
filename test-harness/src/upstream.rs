//! A recording upstream: an HTTP/1.1 server on an ephemeral loopback port that records every
//! request it receives (method, path, headers, body) and answers from a script: a fixed body or
//! chunks sent with delays (for streaming). It also serves as the IdP's JWKS endpoint.

use std::io::{BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::http::{read_body, read_head};

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-cased names, in order, duplicates kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// False when the connection ended before the body was complete (the request was cut off,
    /// e.g. reset by Envoy after a refusal). Such requests are recorded too: "the upstream
    /// received nothing" means not even headers.
    pub complete: bool,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: ReplyBody,
}

#[derive(Debug, Clone)]
pub enum ReplyBody {
    /// Sent at once with `content-length`.
    Full(Vec<u8>),
    /// Sent with `transfer-encoding: chunked`: each piece after its delay, flushed.
    Chunks(Vec<(Duration, Vec<u8>)>),
}

impl Reply {
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: ReplyBody::Full(value.to_string().into_bytes()),
        }
    }

    pub fn text(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: ReplyBody::Full(text.as_bytes().to_vec()),
        }
    }

    pub fn chunked(status: u16, content_type: &str, chunks: Vec<(Duration, Vec<u8>)>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: ReplyBody::Chunks(chunks),
        }
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The running server. Stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
}

impl Upstream {
    /// An upstream that answers every request with `200 {"ok": true}`.
    pub fn start() -> Self {
        Self::with_handler(|_| Reply::json(200, &serde_json::json!({"ok": true})))
    }

    /// An upstream that answers with `handler`.
    pub fn with_handler(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let recorded = Arc::clone(&recorded);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let recorded = Arc::clone(&recorded);
                    let handler = Arc::clone(&handler);
                    thread::spawn(move || serve_connection(stream, Some(&recorded), &*handler));
                }
            });
        }
        Self {
            addr,
            recorded,
            stop,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Requests received for `path` (query included in the comparison).
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Serves `listener` with `handler` on this thread for as long as the process runs, recording
/// nothing (the demo's `ollama-standin`).
pub fn serve_forever(
    listener: TcpListener,
    handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) {
    let handler: Arc<Handler> = Arc::new(handler);
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let handler = Arc::clone(&handler);
        thread::spawn(move || serve_connection(stream, None, &*handler));
    }
}

/// One connection, keep-alive (Envoy reuses upstream connections) until the client closes it
/// or asks to. Requests go to `recorded` when given, incomplete ones too.
fn serve_connection(stream: TcpStream, recorded: Option<&Mutex<Vec<Recorded>>>, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    // As Go's net/http (Ollama) does: without it, a small streamed piece can wait for a
    // delayed ACK (40 ms) behind the one before it.
    let _ = stream.set_nodelay(true);
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(write_half);
    while let Ok(Some((request_line, headers))) = read_head(&mut reader) {
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let (body, complete) = match read_body(&mut reader, &headers, false) {
            Ok(body) => (body, true),
            Err(_) => (Vec::new(), false),
        };
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        let request = Recorded {
            method,
            path,
            headers,
            body,
            complete,
        };
        if let Some(recorded) = recorded {
            recorded
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(request.clone());
        }
        if !complete || write_reply(&mut writer, &handler(&request), close).is_err() || close {
            return;
        }
    }
}

fn write_reply(writer: &mut impl Write, reply: &Reply, close: bool) -> std::io::Result<()> {
    write!(
        writer,
        "HTTP/1.1 {} {}\r\n",
        reply.status,
        reason(reply.status)
    )?;
    for (name, value) in &reply.headers {
        write!(writer, "{name}: {value}\r\n")?;
    }
    if close {
        writer.write_all(b"connection: close\r\n")?;
    }
    write_body(writer, &reply.body)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Writes the framing headers' end and the body: `content-length` for a full body, chunked
/// transfer encoding (each piece after its delay, flushed) for chunks.
fn write_body(writer: &mut impl Write, body: &ReplyBody) -> std::io::Result<()> {
    match body {
        ReplyBody::Full(body) => {
            write!(writer, "content-length: {}\r\n\r\n", body.len())?;
            writer.write_all(body)?;
            writer.flush()
        }
        ReplyBody::Chunks(chunks) => {
            writer.write_all(b"transfer-encoding: chunked\r\n\r\n")?;
            writer.flush()?;
            for (delay, chunk) in chunks {
                thread::sleep(*delay);
                if chunk.is_empty() {
                    continue;
                }
                write!(writer, "{:x}\r\n", chunk.len())?;
                writer.write_all(chunk)?;
                writer.write_all(b"\r\n")?;
                writer.flush()?;
            }
            writer.write_all(b"0\r\n\r\n")?;
            writer.flush()
        }
    }
}
