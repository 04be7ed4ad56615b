//! `ai-gateway-rls --listen 127.0.0.1:0 --redis redis://127.0.0.1:PORT [--delay-ms N]`: see
//! the library's doc. Prints `listening on ADDR` once bound; logs go to stderr.

use std::io::Write;
use std::process::ExitCode;

use ai_gateway_rls::cli;
use ai_gateway_rls::decider::Decider;
use ai_gateway_rls::grpc::RateLimitServer;
use ai_gateway_rls::limiter::Limiter;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match cli::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(why) => {
            eprintln!("ai-gateway-rls: {why}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("ai-gateway-rls: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: cli::Options) -> Result<(), String> {
    let limiter = Limiter::redis(&options.redis)
        .await
        .map_err(|e| format!("Redis at {}: {e}", options.redis))?;
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", options.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("the bound address: {e}"))?;
    // The one line on stdout: the harness waits for it to learn the port.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {bound}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(stdout);
    eprintln!(
        "ai-gateway-rls: listening on {bound}, counters in {}, delay {:?}",
        options.redis, options.delay
    );
    let service = RateLimitServer::new(Decider::new(limiter), options.delay);
    Server::builder()
        .serve_with_incoming(service, TcpIncoming::from(listener))
        .await
        .map_err(|e| format!("serving: {e}"))
}
