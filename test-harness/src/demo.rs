//! The demo as a test fixture: the repo's own `envoy.yaml` (not a copy), with its fixed demo
//! addresses moved to ephemeral loopback ports, the users of `demo/users.json` in a real OpenID
//! Provider, and the Ollama stand-in. What the tests prove about this stack is what `make demo`
//! runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::idp::reserve_port;
use crate::oidc::{random_token, OidcClient, OidcOptions, OidcProvider, OidcUser};
use crate::ollama::{self, OllamaConfig};
use crate::{paths, Envoy, Upstream};

/// The model the demo's `translate.default_model` names.
pub const DEMO_MODEL: &str = "qwen3:8b";

/// The repo's `envoy.yaml` as JSON (YAML anchors resolved).
pub fn envoy_yaml() -> Value {
    load_yaml(&paths::repo_root().join("envoy.yaml"))
}

/// A YAML file as JSON; panics naming the file when it is not valid YAML.
pub fn load_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
    serde_json::to_value(yaml)
        .unwrap_or_else(|e| panic!("{} has no JSON form: {e}", path.display()))
}

/// Where the first listener's HTTP filters are in an Envoy bootstrap.
const HTTP_FILTERS: &str =
    "/static_resources/listeners/0/filter_chains/0/filters/0/typed_config/http_filters";

/// The gateway's wasm filter config in an Envoy bootstrap (the first `envoy.filters.http.wasm`).
pub fn wasm_filter_mut(bootstrap: &mut Value) -> &mut Value {
    bootstrap
        .pointer_mut(HTTP_FILTERS)
        .and_then(Value::as_array_mut)
        .and_then(|filters| {
            filters
                .iter_mut()
                .find(|f| f["name"] == "envoy.filters.http.wasm")
        })
        .map(|f| &mut f["typed_config"]["config"])
        .expect("an envoy.filters.http.wasm filter in the first listener")
}

/// The plugin config (the JSON document under `configuration.value`) of a bootstrap.
pub fn plugin_config(bootstrap: &Value) -> Value {
    let text = bootstrap
        .pointer(HTTP_FILTERS)
        .and_then(Value::as_array)
        .and_then(|filters| {
            filters
                .iter()
                .find(|f| f["name"] == "envoy.filters.http.wasm")
        })
        .and_then(|f| f["typed_config"]["config"]["configuration"]["value"].as_str())
        .expect("configuration.value of the wasm filter is a string");
    serde_json::from_str(text).expect("the plugin config is JSON")
}

/// The users of `demo/users.json`.
pub fn demo_users() -> Vec<OidcUser> {
    let file = load_json(&paths::repo_root().join("demo/users.json"));
    file["users"]
        .as_object()
        .expect("demo/users.json has a users object")
        .iter()
        .map(|(login, user)| {
            OidcUser::new(
                login,
                user["email"].as_str().unwrap_or_default(),
                user["name"].as_str().unwrap_or_default(),
                user["scope_grants"].as_str().unwrap_or_default(),
            )
        })
        .collect()
}

fn load_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The demo, running: Envoy with `envoy.yaml`, the OpenID Provider, the Ollama stand-in.
pub struct DemoStack {
    pub envoy: Envoy,
    pub idp: OidcProvider,
    pub ollama: Upstream,
    /// The secret the `cli` provider's HS256 tokens are signed with.
    pub jwt_secret: String,
}

impl DemoStack {
    /// Starts the three on ephemeral ports; the stand-in waits `piece_delay` before each
    /// streamed piece (so streaming is visible).
    pub fn start(piece_delay: Duration) -> DemoStack {
        DemoStack::start_with(piece_delay, demo_bootstrap)
    }

    /// [`DemoStack::start`] with envoy.yaml's https listener as well ([`demo_bootstrap_tls`]:
    /// ephemeral port, the certificate and key of `tls_dir`, made by [`gen_tls`]) and the
    /// listeners of `overlays` (files for `envoy --config-yaml`, such as
    /// `deploy/tls-redirect.yaml`; see [`apply_overlay`]). Their addresses:
    /// [`DemoStack::listener_addr`].
    pub fn start_tls(piece_delay: Duration, tls_dir: &Path, overlays: &[&Path]) -> DemoStack {
        let tls = reserve_port();
        DemoStack::start_with(piece_delay, |gateway, idp, ollama| {
            let mut bootstrap = demo_bootstrap_tls(gateway, tls, idp, ollama, tls_dir);
            for overlay in overlays {
                apply_overlay(&mut bootstrap, &load_yaml(overlay), tls);
            }
            bootstrap
        })
    }

    /// The bound address of the listener `name` (`main` is the plain gateway), from admin
    /// `/listeners`; panics when there is none.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        let listeners = self.envoy.admin_get("/listeners?format=json");
        let listeners: Value = serde_json::from_slice(&listeners.body).expect("/listeners JSON");
        listeners["listener_statuses"]
            .as_array()
            .and_then(|all| all.iter().find(|l| l["name"] == name))
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port as u16)))
            .unwrap_or_else(|| panic!("Envoy has no listener `{name}`: {listeners}"))
    }

    /// `https://127.0.0.1:<port of envoy.yaml's https listener>` (a [`DemoStack::start_tls`]).
    pub fn https_base(&self) -> String {
        format!("https://{}", self.listener_addr(TLS_LISTENER))
    }

    fn start_with(
        piece_delay: Duration,
        make_bootstrap: impl FnOnce(SocketAddr, SocketAddr, SocketAddr) -> Value,
    ) -> DemoStack {
        let gateway = reserve_port();
        let idp_port = reserve_port();
        let ollama = ollama::start(OllamaConfig {
            models: vec![DEMO_MODEL.to_string()],
            delay: piece_delay,
            ..OllamaConfig::default()
        });
        let client_secret = random_token();
        let idp = OidcProvider::start(OidcOptions {
            port: idp_port.port(),
            clients: vec![OidcClient {
                client_secret: client_secret.clone(),
                ..OidcClient::default()
            }],
            users: demo_users(),
        });
        let bootstrap = make_bootstrap(gateway, idp.addr, ollama.addr());
        let jwt_secret = random_token();
        let envoy = Envoy::builder("{}")
            .env("GATEWAY_JWT_SECRET", &jwt_secret)
            .env("OAUTH_CLIENT_SECRET", &client_secret)
            .env("SESSION_SECRET", &random_token())
            .bootstrap_override(move |generated| *generated = bootstrap)
            .start()
            .unwrap_or_else(|e| panic!("the demo's envoy.yaml did not start:\n{}", e.log));
        DemoStack {
            envoy,
            idp,
            ollama,
            jwt_secret,
        }
    }

    /// `http://127.0.0.1:<gateway port>`.
    pub fn base(&self) -> String {
        format!("http://{}", self.envoy.addr())
    }
}

/// `envoy.yaml` with its demo addresses replaced: the listener on `gateway` (named `main`, as
/// the harness expects), admin on an ephemeral port, the `idp` and `ollama` clusters and the
/// plugin's URLs pointing at the given addresses, files by absolute path. The https listener
/// (`gateway_tls`) is left out: it needs a certificate (see [`demo_bootstrap_tls`]). Nothing
/// else changes.
pub fn demo_bootstrap(gateway: SocketAddr, idp: SocketAddr, ollama: SocketAddr) -> Value {
    let mut bootstrap = demo_bootstrap_all(gateway, idp, ollama);
    bootstrap["static_resources"]["listeners"]
        .as_array_mut()
        .expect("listeners")
        .retain(|listener| listener["name"] != TLS_LISTENER);
    bootstrap
}

/// The name of envoy.yaml's https listener.
pub const TLS_LISTENER: &str = "gateway_tls";

/// Runs `scripts/gen-tls.sh dir`: a throwaway CA (`ca.pem`) and a certificate for localhost and
/// 127.0.0.1 (`server.pem`, `server-key.pem`) in `dir`. Panics with the script's output if it
/// fails.
pub fn gen_tls(dir: &Path) {
    let script = paths::repo_root().join("scripts/gen-tls.sh");
    let output = std::process::Command::new(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} {} failed:\n{}{}",
        script.display(),
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// [`demo_bootstrap`] with envoy.yaml's https listener kept: on `tls` (its address), its
/// certificate and key from `tls_dir` (as [`gen_tls`] writes them), and the plain listener's
/// HTTP filters as edited above (envoy.yaml gives both listeners the same filters through a
/// YAML alias; resolved into two copies here, the edits must reach both). Panics if the https
/// listener's filters are not the plain one's in envoy.yaml itself.
pub fn demo_bootstrap_tls(
    gateway: SocketAddr,
    tls: SocketAddr,
    idp: SocketAddr,
    ollama: SocketAddr,
    tls_dir: &Path,
) -> Value {
    let shipped = envoy_yaml();
    assert_eq!(
        shipped.pointer(&tls_listener_pointer(
            &shipped,
            "/filter_chains/0/filters/0/typed_config/http_filters"
        )),
        shipped.pointer(HTTP_FILTERS),
        "envoy.yaml: the https listener's HTTP filters must be the plain listener's"
    );
    let mut bootstrap = demo_bootstrap_all(gateway, idp, ollama);
    let filters = bootstrap
        .pointer(HTTP_FILTERS)
        .cloned()
        .expect("the plain listener's HTTP filters");
    let listener = tls_listener_pointer(&bootstrap, "");
    let listener = bootstrap
        .pointer_mut(&listener)
        .expect("the https listener");
    listener["address"]["socket_address"]["address"] = tls.ip().to_string().into();
    listener["address"]["socket_address"]["port_value"] = tls.port().into();
    let chain = &mut listener["filter_chains"][0];
    chain["filters"][0]["typed_config"]["http_filters"] = filters;
    let certificates = chain
        .pointer_mut("/transport_socket/typed_config/common_tls_context/tls_certificates")
        .and_then(Value::as_array_mut)
        .expect("the https listener's tls_certificates");
    for certificate in certificates {
        for (field, file) in [
            ("certificate_chain", "server.pem"),
            ("private_key", "server-key.pem"),
        ] {
            certificate[field]["filename"] = tls_dir.join(file).display().to_string().into();
        }
    }
    bootstrap
}

/// The JSON pointer of envoy.yaml's https listener in `bootstrap`, followed by `rest`.
fn tls_listener_pointer(bootstrap: &Value, rest: &str) -> String {
    let index = bootstrap["static_resources"]["listeners"]
        .as_array()
        .and_then(|all| all.iter().position(|l| l["name"] == TLS_LISTENER))
        .unwrap_or_else(|| panic!("envoy.yaml has no listener `{TLS_LISTENER}`"));
    format!("/static_resources/listeners/{index}{rest}")
}

/// Merges an `envoy --config-yaml` overlay into `bootstrap` as Envoy does (protobuf merge:
/// mappings merged field by field, lists appended, scalars replaced), with its listeners moved
/// to ephemeral ports (0: read them back with [`DemoStack::listener_addr`]) and any
/// `port_redirect` to envoy.yaml's https port pointed at `tls` instead.
pub fn apply_overlay(bootstrap: &mut Value, overlay: &Value, tls: SocketAddr) {
    let shipped = envoy_yaml();
    let shipped_tls_port = shipped
        .pointer(&tls_listener_pointer(
            &shipped,
            "/address/socket_address/port_value",
        ))
        .cloned()
        .expect("the https listener's port");
    let mut overlay = overlay.clone();
    if let Some(listeners) = overlay
        .pointer_mut("/static_resources/listeners")
        .and_then(Value::as_array_mut)
    {
        for listener in listeners {
            listener["address"]["socket_address"]["port_value"] = 0.into();
            redirect_ports(listener, &shipped_tls_port, tls.port());
        }
    }
    merge(bootstrap, overlay);
}

fn redirect_ports(value: &mut Value, from: &Value, to: u16) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if key == "port_redirect" && item == from {
                    *item = to.into();
                } else {
                    redirect_ports(item, from, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| redirect_ports(i, from, to)),
        _ => {}
    }
}

fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, item) in overlay {
                match base.get_mut(&key) {
                    Some(existing) => merge(existing, item),
                    None => {
                        base.insert(key, item);
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(overlay)) => base.extend(overlay),
        (base, overlay) => *base = overlay,
    }
}

/// [`demo_bootstrap`] before the https listener is taken out.
fn demo_bootstrap_all(gateway: SocketAddr, idp: SocketAddr, ollama: SocketAddr) -> Value {
    let root = paths::repo_root();
    let mut bootstrap = envoy_yaml();
    bootstrap["admin"]["address"]["socket_address"]["port_value"] = 0.into();
    let listener = &mut bootstrap["static_resources"]["listeners"][0];
    listener["name"] = "main".into();
    listener["address"]["socket_address"]["port_value"] = gateway.port().into();
    for cluster in bootstrap["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters")
    {
        let addr = match cluster["name"].as_str() {
            Some("idp") => idp,
            Some("ollama") => ollama,
            other => panic!("envoy.yaml has a cluster the demo fixture does not know: {other:?}"),
        };
        let socket = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
            ["address"]["socket_address"];
        socket["address"] = addr.ip().to_string().into();
        socket["port_value"] = addr.port().into();
    }
    absolute_files(&mut bootstrap, &root);

    let mut config = plugin_config(&bootstrap);
    let base = format!("http://{gateway}");
    let oauth2 = &mut config["oauth2"];
    oauth2["authority"] = idp.to_string().into();
    oauth2["issuer"] = format!("http://{idp}").into();
    oauth2["redirect_uri"] = format!("{base}/oauth2/callback").into();
    oauth2["post_logout_redirect_uri"] = format!("{base}/chat").into();
    config["translate"]["authority"] = ollama.to_string().into();
    let filter = wasm_filter_mut(&mut bootstrap);
    filter["configuration"]["value"] = config.to_string().into();
    filter["vm_config"]["code"]["local"]["filename"] =
        paths::gateway_wasm().display().to_string().into();
    bootstrap
}

/// Every `filename` in the bootstrap (the chat page's files) made absolute against `root`, since
/// the test's Envoy does not run from the repo root.
fn absolute_files(value: &mut Value, root: &Path) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                match item {
                    Value::String(path) if key == "filename" && !path.starts_with('/') => {
                        *path = PathBuf::from(root).join(&*path).display().to_string();
                    }
                    _ => absolute_files(item, root),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| absolute_files(item, root)),
        _ => {}
    }
}
