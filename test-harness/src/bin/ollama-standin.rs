//! `ollama-standin [--port N] [--delay-ms N] [--model NAME]...`: the Ollama stand-in of
//! `test_harness::ollama` on a fixed loopback port (default 11434), for demos. Runs until
//! killed; SIGTERM and SIGINT end it with status 0.

use std::io::{BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::process::exit;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use test_harness::http::{read_body, read_head};
use test_harness::ollama::{ollama_handler, OllamaConfig};
use test_harness::upstream::{Recorded, Reply};

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

const USAGE: &str = "usage: ollama-standin [--port N] [--delay-ms N] [--model NAME]...";

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: end the process at once, successfully.
    unsafe { libc::_exit(0) }
}

fn main() {
    let mut port: u16 = 11434;
    let mut config = OllamaConfig::default();
    let mut models = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("{name} needs a value\n{USAGE}");
                exit(2)
            })
        };
        match arg.as_str() {
            "--port" => port = number(&value("--port")),
            "--delay-ms" => config.delay = Duration::from_millis(number(&value("--delay-ms"))),
            "--model" => models.push(value("--model")),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                exit(2)
            }
        }
    }
    if !models.is_empty() {
        config.models = models;
    }
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap_or_else(|e| {
        eprintln!("cannot listen on 127.0.0.1:{port}: {e}");
        exit(1)
    });
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    println!("ollama stand-in listening on http://127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    let handler: Arc<Handler> = Arc::new(ollama_handler(config));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let handler = Arc::clone(&handler);
        thread::spawn(move || serve(stream, &*handler));
    }
}

fn number<T: std::str::FromStr>(text: &str) -> T {
    text.parse().unwrap_or_else(|_| {
        eprintln!("not a number: {text:?}\n{USAGE}");
        exit(2)
    })
}

/// One connection, keep-alive until the client closes it or asks to.
fn serve(stream: TcpStream, handler: &Handler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut writer = BufWriter::new(write_half);
    while let Ok(Some((request_line, headers))) = read_head(&mut reader) {
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let Ok(body) = read_body(&mut reader, &headers, false) else {
            return;
        };
        let close = headers
            .iter()
            .any(|(n, v)| n == "connection" && v.eq_ignore_ascii_case("close"));
        let request = Recorded {
            method,
            path,
            headers,
            body,
            complete: true,
        };
        let reply = handler(&request);
        eprintln!("{} {} -> {}", request.method, request.path, reply.status);
        if write_reply(&mut writer, &reply, close).is_err() || close {
            return;
        }
    }
}

fn write_reply(writer: &mut impl Write, reply: &Reply, close: bool) -> std::io::Result<()> {
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    write!(writer, "HTTP/1.1 {} {reason}\r\n", reply.status)?;
    for (name, value) in &reply.headers {
        write!(writer, "{name}: {value}\r\n")?;
    }
    if close {
        writer.write_all(b"connection: close\r\n")?;
    }
    test_harness::upstream::write_body(writer, &reply.body)?;
    writer.flush()
}
