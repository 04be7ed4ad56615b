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
        let bootstrap = demo_bootstrap(gateway, idp.addr, ollama.addr());
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
/// plugin's URLs pointing at the given addresses, files by absolute path. Nothing else changes.
pub fn demo_bootstrap(gateway: SocketAddr, idp: SocketAddr, ollama: SocketAddr) -> Value {
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
