//! The command line: `--listen ADDR --redis URL [--delay-ms N]`.

use std::net::SocketAddr;
use std::time::Duration;

pub const USAGE: &str =
    "usage: ai-gateway-rls --listen 127.0.0.1:0 --redis redis://127.0.0.1:6379 [--delay-ms N]";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to listen (port 0: any free port, printed once bound).
    pub listen: SocketAddr,
    /// The Redis holding the counters.
    pub redis: String,
    /// Waited before answering each call.
    pub delay: Duration,
}

/// The options in `args` (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut listen = None;
    let mut redis = None;
    let mut delay = Duration::ZERO;
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => {
                let text = value()?;
                let addr = text.parse().map_err(|e| format!("--listen {text}: {e}"))?;
                listen = Some(addr);
            }
            "--redis" => redis = Some(value()?),
            "--delay-ms" => {
                let text = value()?;
                let ms: u64 = text
                    .parse()
                    .map_err(|e| format!("--delay-ms {text}: {e}"))?;
                delay = Duration::from_millis(ms);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        listen: listen.ok_or("--listen is required")?,
        redis: redis.ok_or("--redis is required")?,
        delay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn reads_every_option() {
        let options = parse(args(
            "--listen 127.0.0.1:0 --redis redis://127.0.0.1:7 --delay-ms 250",
        ))
        .unwrap();
        assert_eq!(options.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(options.redis, "redis://127.0.0.1:7");
        assert_eq!(options.delay, Duration::from_millis(250));
    }

    #[test]
    fn delay_defaults_to_none() {
        let options = parse(args("--redis redis://x --listen 127.0.0.1:9")).unwrap();
        assert_eq!(options.delay, Duration::ZERO);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        assert!(parse(args("--listen 127.0.0.1:0")).is_err());
        assert!(parse(args("--redis redis://x")).is_err());
        assert!(parse(args("--listen nowhere --redis redis://x")).is_err());
        assert!(parse(args("--listen 127.0.0.1:0 --redis")).is_err());
        assert!(parse(args("--listen 127.0.0.1:0 --redis r --delay-ms -1")).is_err());
        assert!(parse(args("--listen 127.0.0.1:0 --redis r --verbose")).is_err());
    }
}
