//! `ollama-standin [--port N] [--delay-ms N] [--model NAME]...`: the Ollama stand-in of
//! `test_harness::ollama` on a fixed loopback port (default 11434), for demos. Runs until
//! killed; SIGTERM and SIGINT end it with status 0.

use std::io::Write;
use std::net::TcpListener;
use std::process::exit;
use std::time::Duration;

use test_harness::ollama::{ollama_handler, OllamaConfig};
use test_harness::upstream::{serve_forever, Recorded};

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
    let answer = ollama_handler(config);
    serve_forever(listener, move |request: &Recorded| {
        let reply = answer(request);
        eprintln!("{} {} -> {}", request.method, request.path, reply.status);
        reply
    });
}

fn number<T: std::str::FromStr>(text: &str) -> T {
    text.parse().unwrap_or_else(|_| {
        eprintln!("not a number: {text:?}\n{USAGE}");
        exit(2)
    })
}
