//! A real Envoy process running the filter: started in its own process group with a dynamic
//! base id (so tests run in parallel), ready once admin `/ready` says so, stopped by pid on drop.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::bootstrap::{bootstrap, BootstrapParams};
use crate::http::{Request, Response};
use crate::paths;

/// How long Envoy may take to become ready (it compiles the wasm on start).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The buffer filter's limit: above any `limits.max_request_body_bytes` a test uses, so the
/// gateway's own 413 answers first.
const BUFFER_FILTER_MAX_BYTES: u64 = 48 * 1024 * 1024;

/// Envoy exited (or never became ready) instead of serving.
#[derive(Debug)]
pub struct EnvoyExit {
    pub status: Option<ExitStatus>,
    pub log: String,
}

/// How to start Envoy for one test.
pub struct EnvoyBuilder {
    plugin_config: String,
    upstream: Option<SocketAddr>,
    idp: Option<SocketAddr>,
    concurrency: u32,
    normalize_path: bool,
    env: Vec<(String, String)>,
    log_level: String,
    buffer_filter: bool,
    listener_port: u16,
    bootstrap_override: Option<BootstrapEdit>,
    drain_time_s: u32,
    hot_restartable: bool,
    rate_limit_service: Option<SocketAddr>,
}

/// An edit of the generated bootstrap (see [`EnvoyBuilder::bootstrap_override`]).
pub type BootstrapEdit = Box<dyn FnOnce(&mut serde_json::Value)>;

impl EnvoyBuilder {
    /// A fixed listener port (from `idp::reserve_port`), for configs that must name the
    /// gateway's own URL (an OAuth2 redirect_uri).
    pub fn listener_port(mut self, port: u16) -> Self {
        self.listener_port = port;
        self
    }

    /// Envoy's buffer filter after the gateway (on by default, as in the demo `envoy.yaml`).
    pub fn buffer_filter(mut self, on: bool) -> Self {
        self.buffer_filter = on;
        self
    }

    /// The upstream cluster (`upstream`) the listener routes to. Without one, a closed port.
    pub fn upstream(mut self, addr: SocketAddr) -> Self {
        self.upstream = Some(addr);
        self
    }

    /// The rate-limit service's cluster (`rls`, HTTP/2) for the gateway's gRPC calls.
    pub fn rate_limit_service(mut self, addr: SocketAddr) -> Self {
        self.rate_limit_service = Some(addr);
        self
    }

    /// The IdP cluster (`idp`) for dispatched calls.
    pub fn idp(mut self, addr: SocketAddr) -> Self {
        self.idp = Some(addr);
        self
    }

    /// Worker threads (`--concurrency`); 2 by default, so cross-worker behaviour is exercised.
    pub fn concurrency(mut self, workers: u32) -> Self {
        self.concurrency = workers;
        self
    }

    /// Envoy's `normalize_path` and `merge_slashes` (on by default, as in the demo).
    pub fn normalize_path(mut self, on: bool) -> Self {
        self.normalize_path = on;
        self
    }

    /// A host environment variable, readable by the VM (`host_env_keys`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.to_string();
        self
    }

    /// Edits the generated bootstrap before Envoy starts (e.g. a `direct_response` route, other
    /// HTTP filters), for setups the other options do not cover (benchmarks).
    pub fn bootstrap_override(mut self, f: impl FnOnce(&mut serde_json::Value) + 'static) -> Self {
        self.bootstrap_override = Some(Box::new(f));
        self
    }

    /// `--drain-time-s` (0 by default): how long listeners replaced by LDS, or a hot-restart
    /// parent's, drain their connections before closing them.
    pub fn drain_time_s(mut self, seconds: u32) -> Self {
        self.drain_time_s = seconds;
        self
    }

    /// Makes [`Envoy::hot_restart`] possible: the dynamic base id is written down for the
    /// next epoch. Use a fixed [`EnvoyBuilder::listener_port`]: the child takes the parent's
    /// listening sockets by address.
    pub fn hot_restartable(mut self) -> Self {
        self.hot_restartable = true;
        self
    }

    /// Starts Envoy and waits until it is ready, or returns how it failed.
    pub fn start(mut self) -> Result<Envoy, EnvoyExit> {
        let dir = tempfile::Builder::new()
            .prefix("gateway-envoy-")
            .tempdir()
            .map_err(|e| failed(format!("tempdir: {e}")))?;
        let wasm = paths::gateway_wasm();
        // Without an upstream, point at a port nothing listens on (this test's own, now closed).
        let upstream = self.upstream.unwrap_or_else(closed_port);
        let access_log = dir.path().join("access.log");
        let params = BootstrapParams {
            wasm: &wasm,
            plugin_config: &self.plugin_config,
            upstream,
            idp: self.idp,
            normalize_path: self.normalize_path,
            host_env_keys: self.env.iter().map(|(k, _)| k.clone()).collect(),
            route_timeout_s: 30,
            buffer_max_bytes: self.buffer_filter.then_some(BUFFER_FILTER_MAX_BYTES),
            rate_limit_service: self.rate_limit_service,
            listener_port: self.listener_port,
            access_log: &access_log,
        };
        let config_path = dir.path().join("envoy.json");
        let mut config = bootstrap(&params);
        if let Some(edit) = self.bootstrap_override.take() {
            edit(&mut config);
        }
        std::fs::write(&config_path, config.to_string())
            .map_err(|e| failed(format!("write config: {e}")))?;
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");

        let base_id_path = dir.path().join("base-id");
        let restart = RestartArgs {
            config: config.to_string(),
            base_id_path: self.hot_restartable.then_some(base_id_path),
            args: vec![
                "--concurrency".into(),
                self.concurrency.to_string(),
                "-l".into(),
                self.log_level.clone(),
                "--drain-time-s".into(),
                self.drain_time_s.to_string(),
                // The access log carries the audit records: written out within 50 ms, not 10 s.
                "--file-flush-interval-msec".into(),
                "50".into(),
            ],
            env: self.env.clone(),
        };
        let mut epoch_args = vec!["--use-dynamic-base-id".to_string()];
        if let Some(path) = &restart.base_id_path {
            epoch_args.extend(["--base-id-path".into(), path.to_string_lossy().into_owned()]);
        }
        let child = spawn(&restart, &config_path, &admin_path, &log_path, &epoch_args)?;
        let mut envoy = Envoy {
            child,
            admin: None,
            listener: None,
            log_path,
            restart,
            _dir: dir,
        };
        envoy.wait_ready(&admin_path)?;
        Ok(envoy)
    }
}

/// What starting the next hot-restart epoch needs from the first.
struct RestartArgs {
    config: String,
    base_id_path: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn spawn(
    restart: &RestartArgs,
    config_path: &std::path::Path,
    admin_path: &std::path::Path,
    log_path: &std::path::Path,
    epoch_args: &[String],
) -> Result<Child, EnvoyExit> {
    let log_file = File::create(log_path).map_err(|e| failed(format!("log file: {e}")))?;
    let log_file_err = log_file
        .try_clone()
        .map_err(|e| failed(format!("log file: {e}")))?;
    Command::new(paths::envoy_bin())
        .arg("-c")
        .arg(config_path)
        .args(epoch_args)
        .arg("--admin-address-path")
        .arg(admin_path)
        .args(&restart.args)
        .envs(restart.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log_file))
        .stderr(Stdio::from(log_file_err))
        .process_group(0)
        .spawn()
        .map_err(|e| failed(format!("spawn envoy: {e}")))
}

fn failed(log: String) -> EnvoyExit {
    EnvoyExit { status: None, log }
}

fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

/// A running Envoy. Dropping it stops the process group.
pub struct Envoy {
    child: Child,
    admin: Option<SocketAddr>,
    listener: Option<SocketAddr>,
    log_path: PathBuf,
    restart: RestartArgs,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Starts the next epoch of a [`EnvoyBuilder::hot_restartable`] Envoy (`--restart-epoch 1`,
    /// the same base id and config): it takes over the listening sockets and this process
    /// drains for `--drain-time-s`, then exits after `parent_shutdown_s`. Returns once the new
    /// epoch is ready.
    pub fn hot_restart(&self, parent_shutdown_s: u32) -> Result<Envoy, EnvoyExit> {
        let base_id_path = self.restart.base_id_path.as_ref().ok_or_else(|| {
            failed("hot_restart needs an Envoy built with .hot_restartable()".into())
        })?;
        let base_id =
            std::fs::read_to_string(base_id_path).map_err(|e| failed(format!("base id: {e}")))?;
        let dir = tempfile::Builder::new()
            .prefix("gateway-envoy-epoch1-")
            .tempdir()
            .map_err(|e| failed(format!("tempdir: {e}")))?;
        let config_path = dir.path().join("envoy.json");
        std::fs::write(&config_path, &self.restart.config)
            .map_err(|e| failed(format!("write config: {e}")))?;
        let admin_path = dir.path().join("admin-address");
        let log_path = dir.path().join("envoy.log");
        let epoch_args = [
            "--base-id".to_string(),
            base_id.trim().to_string(),
            "--restart-epoch".into(),
            "1".into(),
            "--parent-shutdown-time-s".into(),
            parent_shutdown_s.to_string(),
        ];
        let child = spawn(
            &self.restart,
            &config_path,
            &admin_path,
            &log_path,
            &epoch_args,
        )?;
        let mut envoy = Envoy {
            child,
            admin: None,
            listener: None,
            log_path,
            restart: RestartArgs {
                config: self.restart.config.clone(),
                base_id_path: None,
                args: self.restart.args.clone(),
                env: self.restart.env.clone(),
            },
            _dir: dir,
        };
        envoy.wait_ready(&admin_path)?;
        Ok(envoy)
    }

    /// Starts describing an Envoy whose filter gets `plugin_config`.
    pub fn builder(plugin_config: &str) -> EnvoyBuilder {
        EnvoyBuilder {
            plugin_config: plugin_config.to_string(),
            upstream: None,
            idp: None,
            concurrency: 2,
            normalize_path: true,
            env: Vec::new(),
            log_level: "info".to_string(),
            buffer_filter: true,
            listener_port: 0,
            bootstrap_override: None,
            drain_time_s: 0,
            hot_restartable: false,
            rate_limit_service: None,
        }
    }

    /// The listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.expect("listener known once ready")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.expect("admin known once ready")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a request to the listener; panics (with Envoy's log) if no response comes.
    pub fn send(&self, request: Request) -> Response {
        match request.send(self.addr()) {
            Ok(response) => response,
            Err(e) => panic!(
                "no response from Envoy for {} {}: {e}\n--- envoy log (tail) ---\n{}",
                request.method,
                request.target,
                self.log_tail(60)
            ),
        }
    }

    /// GET on the admin endpoint.
    pub fn admin_get(&self, path: &str) -> Response {
        Request::get(path)
            .send(self.admin_addr())
            .expect("admin request")
    }

    /// The gateway's metrics (counters and gauges) from Envoy's stats, by their short name
    /// (`requests_allowed`, ...).
    pub fn gateway_counters(&self) -> std::collections::HashMap<String, u64> {
        self.admin_get("/stats?filter=ai_gateway")
            .text()
            .lines()
            .filter_map(|line| {
                let (name, value) = line.split_once(": ")?;
                let name = name.rsplit("ai_gateway.").next()?;
                Some((name.to_string(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// Connections each worker of the gateway's listener accepted, in worker order (from the
    /// per-worker listener stats).
    pub fn connections_per_worker(&self) -> Vec<u64> {
        self.admin_get("/stats?filter=downstream_cx_total")
            .text()
            .lines()
            .filter(|l| l.starts_with("listener.127") && l.contains(".worker_"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    }

    /// Asserts that every worker took connections, so what a test proved held across workers.
    pub fn assert_every_worker_served(&self, workers: usize) {
        let per_worker = self.connections_per_worker();
        assert_eq!(per_worker.len(), workers, "workers: {per_worker:?}");
        assert!(
            per_worker.iter().all(|n| *n > 0),
            "every worker took connections: {per_worker:?}"
        );
    }

    /// Envoy's heap (`server.memory_allocated`; proxy-wasm shared data lives there).
    pub fn memory_allocated(&self) -> u64 {
        self.admin_get("/stats?filter=^server.memory_allocated$")
            .text()
            .lines()
            .find_map(|l| {
                l.strip_prefix("server.memory_allocated: ")?
                    .trim()
                    .parse()
                    .ok()
            })
            .expect("server.memory_allocated in /stats")
    }

    /// Envoy's access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.log_path.with_file_name("access.log")).unwrap_or_default()
    }

    /// Envoy's whole log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The gateway's audit records from Envoy's access log (`audit=%FILTER_STATE(...)%`), in
    /// the order requests ended.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        self.access_log()
            .lines()
            .filter_map(|line| line.split_once(" audit=").map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }

    /// The records of the plugin's own log line (`ai-gateway audit {...}`, with
    /// `audit.log_line`), in order.
    pub fn audit_log_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|line| line.split_once("ai-gateway audit ").map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str(json).ok())
            .collect()
    }

    /// Waits (up to 10 s) until there are at least `n` audit records; returns them all.
    pub fn wait_for_audit_records(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let records = self.audit_records();
            if records.len() >= n || Instant::now() > deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_ready(&mut self, admin_path: &std::path::Path) -> Result<(), EnvoyExit> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(EnvoyExit {
                    status: Some(status),
                    log: self.log(),
                });
            }
            if self.admin.is_none() {
                self.admin = std::fs::read_to_string(admin_path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
            }
            if let Some(admin) = self.admin {
                let ready = Request::get("/ready")
                    .send(admin)
                    .is_ok_and(|r| r.status == 200);
                if ready {
                    if let Some(listener) = self.find_listener(admin) {
                        self.listener = Some(listener);
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = self.log();
        self.stop();
        Err(EnvoyExit { status: None, log })
    }

    /// The bound address of listener `main`, from admin `/listeners`.
    fn find_listener(&self, admin: SocketAddr) -> Option<SocketAddr> {
        let response = Request::get("/listeners?format=json").send(admin).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
        value["listener_statuses"]
            .as_array()?
            .iter()
            .find(|l| l["name"] == "main")
            .and_then(|l| {
                let socket = &l["local_address"]["socket_address"];
                let port = socket["port_value"].as_u64()?;
                format!("127.0.0.1:{port}").parse().ok()
            })
            .filter(|addr| TcpStream::connect(addr).is_ok())
    }

    fn stop(&mut self) {
        crate::process::stop_group(&mut self.child);
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- envoy log (tail) ---\n{}", self.log_tail(80));
        }
        self.stop();
    }
}
