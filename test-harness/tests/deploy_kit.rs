//! The deployment kit stays in step with `envoy.yaml`, the one source of the plugin config:
//! `docker-compose.yml` is valid, refuses to start without the secrets, and mounts the repo's own
//! files at the paths `envoy.yaml` names; `deploy/istio/` holds a complete WasmPlugin whose
//! `pluginConfig` is `envoy.yaml`'s document except for a short list of environment-specific
//! values, and which the real filter accepts.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use test_harness::demo::{envoy_yaml, load_yaml, plugin_config, wasm_filter_mut};
use test_harness::paths::repo_root;
use test_harness::Envoy;

/// The values of the plugin config that may differ between `envoy.yaml` (the loopback demo) and
/// the Istio WasmPlugin (a cluster): where the IdP and the model server are, under which names
/// Istio knows them, the gateway's public origin (https: no insecure cookies), and how many
/// trusted proxies stand in front of Envoy. Everything else must be identical. `[*]` stands for
/// every element of an array.
const ENVIRONMENT_SPECIFIC: &[&str] = &[
    "oauth2.cluster",
    "oauth2.authority",
    "oauth2.issuer",
    "oauth2.redirect_uri",
    "oauth2.post_logout_redirect_uri",
    "oauth2.allow_insecure_cookies",
    "translate.cluster",
    "translate.authority",
    "providers[*].jwks.remote.cluster",
    "providers[*].jwks.remote.authority",
    "rate_limits[*].trusted_hops",
];

const COMPOSE_FILE: &str = "docker-compose.yml";
const ISTIO_DIR: &str = "deploy/istio";

// ---------------------------------------------------------------------------------------------
// envoy.yaml

/// `vm_config.environment_variables.host_env_keys` of envoy.yaml's wasm filter.
fn host_env_keys() -> BTreeSet<String> {
    let mut bootstrap = envoy_yaml();
    let keys =
        &wasm_filter_mut(&mut bootstrap)["vm_config"]["environment_variables"]["host_env_keys"];
    let keys: BTreeSet<String> = keys
        .as_array()
        .expect("envoy.yaml: host_env_keys is a list")
        .iter()
        .map(|k| k.as_str().expect("host_env_keys are strings").to_string())
        .collect();
    assert!(!keys.is_empty(), "envoy.yaml names no host_env_keys");
    keys
}

/// Every relative `filename` envoy.yaml names (the .wasm, the chat page's files).
fn relative_files(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                match item {
                    Value::String(path) if key == "filename" && !path.starts_with('/') => {
                        out.insert(path.clone());
                    }
                    _ => relative_files(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| relative_files(item, out)),
        _ => {}
    }
}

/// `address:port` of an envoy.yaml cluster's first endpoint.
fn cluster_address(bootstrap: &Value, name: &str) -> String {
    let cluster = bootstrap["static_resources"]["clusters"]
        .as_array()
        .expect("envoy.yaml: clusters")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("envoy.yaml has no cluster `{name}`"));
    let socket = &cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ["address"]["socket_address"];
    format!(
        "{}:{}",
        socket["address"].as_str().expect("address"),
        socket["port_value"]
    )
}

// ---------------------------------------------------------------------------------------------
// docker-compose.yml

/// Runs `docker-compose -f docker-compose.yml config -q` from the repo root with exactly the
/// given secret variables. `--env-file` names an empty file, so a developer's own `.env` cannot
/// hide a missing variable.
fn compose_config(secrets: &[(&str, &str)]) -> Output {
    let env_file = tempfile::NamedTempFile::new().expect("temp env file");
    let mut command = Command::new("docker-compose");
    command
        .current_dir(repo_root())
        .arg("--env-file")
        .arg(env_file.path())
        .args(["-f", COMPOSE_FILE, "config", "-q"]);
    for key in host_env_keys() {
        command.env_remove(key);
    }
    for (key, value) in secrets {
        command.env(key, value);
    }
    match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "docker-compose is not on PATH (needed to check {COMPOSE_FILE} offline): \
             install Debian's docker-compose: run `make setup`"
        ),
        Err(e) => panic!("run docker-compose: {e}"),
    }
}

fn compose() -> Value {
    load_yaml(&repo_root().join(COMPOSE_FILE))
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(
        service.is_object(),
        "{COMPOSE_FILE} has no service `{name}`"
    );
    service
}

/// A bind mount of a compose service: source relative to the repo root (no `./`), target.
#[derive(Debug)]
struct Mount {
    source: String,
    target: String,
    read_only: bool,
}

/// The service's volumes, short (`./src:/dst:ro`) or long syntax, bind mounts only.
fn bind_mounts(service: &Value) -> Vec<Mount> {
    let clean = |s: &str| s.trim_start_matches("./").trim_end_matches('/').to_string();
    service["volumes"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .filter_map(|volume| match volume {
            Value::String(short) => {
                let parts: Vec<&str> = short.split(':').collect();
                let is_path = parts[0].starts_with('.') || parts[0].starts_with('/');
                (is_path && parts.len() >= 2).then(|| Mount {
                    source: clean(parts[0]),
                    target: parts[1].trim_end_matches('/').to_string(),
                    read_only: parts
                        .get(2)
                        .is_some_and(|o| o.split(',').any(|o| o == "ro")),
                })
            }
            Value::Object(long) if long.get("type").and_then(Value::as_str) == Some("bind") => {
                Some(Mount {
                    source: clean(long["source"].as_str().expect("bind source")),
                    target: long["target"]
                        .as_str()
                        .expect("bind target")
                        .trim_end_matches('/')
                        .to_string(),
                    read_only: long.get("read_only").and_then(Value::as_bool) == Some(true),
                })
            }
            _ => None,
        })
        .collect()
}

/// Where a container path comes from on the host (relative to the repo root), if mounted.
fn host_source(mounts: &[Mount], container_path: &str) -> Option<(String, bool)> {
    mounts
        .iter()
        .filter_map(|m| {
            if container_path == m.target {
                Some((m.source.clone(), m.read_only, m.target.len()))
            } else {
                container_path
                    .strip_prefix(&format!("{}/", m.target))
                    .map(|rest| (format!("{}/{rest}", m.source), m.read_only, m.target.len()))
            }
        })
        .max_by_key(|(_, _, depth)| *depth)
        .map(|(source, ro, _)| (source, ro))
}

/// A service's environment as name -> raw value (mapping or `NAME=value` list).
fn environment(service: &Value) -> Vec<(String, String)> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), value)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let item = item.as_str().expect("environment entries are strings");
                let (k, v) = item.split_once('=').unwrap_or((item, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `command` as one string (a list is joined with spaces).
fn command_text(service: &Value) -> String {
    match &service["command"] {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn depends_on(service: &Value) -> BTreeSet<String> {
    match &service["depends_on"] {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

#[test]
fn compose_file_is_valid_and_requires_the_secrets() {
    let keys = host_env_keys();
    let throwaway: Vec<(String, String)> = keys
        .iter()
        .map(|k| (k.clone(), format!("throwaway-{}", k.to_lowercase())))
        .collect();
    let with: Vec<(&str, &str)> = throwaway
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let output = compose_config(&with);
    assert!(
        output.status.success(),
        "`docker-compose -f {COMPOSE_FILE} config -q` failed with the secrets set:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let output = compose_config(&[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "{COMPOSE_FILE} is accepted without the secrets: use ${{VAR:?message}}, never a default"
    );
    assert!(
        keys.iter().any(|k| stderr.contains(k.as_str())),
        "without the secrets, docker-compose should name the missing one; it said:\n{stderr}"
    );
}

#[test]
fn compose_runs_the_demo_with_the_repos_own_files() {
    let compose = compose();
    let bootstrap = envoy_yaml();
    let mut problems = Vec::new();

    for (name, svc) in compose["services"].as_object().expect("services").iter() {
        if svc["network_mode"] != "host" {
            problems.push(format!(
                "service `{name}`: network_mode must be host (envoy.yaml's loopback addresses)"
            ));
        }
    }

    // Envoy: the 1.40 line, envoy.yaml itself, and every file it names, at its relative path.
    let envoy = service(&compose, "envoy");
    let image = envoy["image"].as_str().unwrap_or_default();
    if !image.starts_with("envoyproxy/envoy:v1.40") {
        problems.push(format!("envoy image `{image}` is not the 1.40 line"));
    }
    let workdir = envoy["working_dir"]
        .as_str()
        .expect("envoy: working_dir (envoy.yaml's paths are relative to it)")
        .trim_end_matches('/')
        .to_string();
    let command = command_text(envoy);
    let config_arg = command
        .split_whitespace()
        .skip_while(|a| *a != "-c" && *a != "--config-path")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let config_path = if config_arg.starts_with('/') {
        config_arg.clone()
    } else {
        format!("{workdir}/{config_arg}")
    };
    let mounts = bind_mounts(envoy);
    match host_source(&mounts, &config_path) {
        Some((source, true)) if source == "envoy.yaml" => {}
        other => problems.push(format!(
            "envoy runs `{command}`: its config {config_path} must be ./envoy.yaml mounted \
             read-only (no copy), found {other:?}"
        )),
    }
    let mut files = BTreeSet::new();
    relative_files(&bootstrap, &mut files);
    let wasm = wasm_filter_mut(&mut bootstrap.clone())["vm_config"]["code"]["local"]["filename"]
        .as_str()
        .expect("envoy.yaml: the .wasm's filename")
        .to_string();
    assert!(
        files.contains(&wasm),
        "the .wasm path is relative in envoy.yaml"
    );
    for file in &files {
        match host_source(&mounts, &format!("{workdir}/{file}")) {
            Some((source, true)) if &source == file => {}
            other => problems.push(format!(
                "envoy.yaml names `{file}`: the envoy service must mount ./{file} (or a parent \
                 directory) read-only at {workdir}/{file}, found {other:?}"
            )),
        }
    }
    for needed in ["envoy.yaml", wasm.as_str(), "demo"] {
        if !mounts.iter().any(|m| m.source == needed) {
            problems.push(format!("envoy service does not mount ./{needed}"));
        }
    }

    // The secrets: exactly the host_env_keys, each required (`${NAME:?...}`), none defaulted.
    let keys = host_env_keys();
    let env = environment(envoy);
    let names: BTreeSet<String> = env.iter().map(|(k, _)| k.clone()).collect();
    if names != keys {
        problems.push(format!(
            "envoy environment {names:?} != envoy.yaml's host_env_keys {keys:?}"
        ));
    }
    for (name, value) in &env {
        if !value.starts_with(&format!("${{{name}:?")) {
            problems.push(format!(
                "envoy environment {name}: `{value}` must be `${{{name}:?message}}`"
            ));
        }
    }
    let deps = depends_on(envoy);
    for needed in ["idp", "ollama"] {
        if !deps.contains(needed) {
            problems.push(format!("envoy does not depend on `{needed}`"));
        }
    }

    // The OpenID Provider: idp.mjs with demo/idp-config.mjs, on envoy.yaml's `idp` port.
    let idp = service(&compose, "idp");
    let idp_command = command_text(idp);
    for needed in ["npm ci", "oidc/idp.mjs", "demo/idp-config.mjs"] {
        if !idp_command.contains(needed) {
            problems.push(format!(
                "idp command does not run `{needed}`: {idp_command}"
            ));
        }
    }
    let idp_port = cluster_address(&bootstrap, "idp")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    if !idp_command.contains(&format!("idp-config.mjs {idp_port}")) {
        problems.push(format!(
            "idp command does not start the IdP on envoy.yaml's idp port {idp_port}"
        ));
    }
    let idp_sources: BTreeSet<String> = bind_mounts(idp).into_iter().map(|m| m.source).collect();
    for needed in ["test-harness", "demo"] {
        if !idp_sources.contains(needed) {
            problems.push(format!("idp service does not mount ./{needed}"));
        }
    }
    let idp_env = environment(idp);
    if !idp_env
        .iter()
        .any(|(k, v)| k == "OAUTH_CLIENT_SECRET" && v.starts_with("${OAUTH_CLIENT_SECRET:?"))
    {
        problems.push("idp needs OAUTH_CLIENT_SECRET as ${OAUTH_CLIENT_SECRET:?...}".to_string());
    }

    // Ollama where envoy.yaml's `ollama` cluster looks for it.
    let ollama = service(&compose, "ollama");
    let ollama_addr = cluster_address(&bootstrap, "ollama");
    if !environment(ollama)
        .iter()
        .any(|(k, v)| k == "OLLAMA_HOST" && *v == ollama_addr)
    {
        problems.push(format!(
            "ollama: OLLAMA_HOST must be envoy.yaml's ollama cluster address {ollama_addr}"
        ));
    }

    assert!(
        problems.is_empty(),
        "{COMPOSE_FILE}:\n  {}",
        problems.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------------
// deploy/istio

/// The documents of a YAML stream, split at `---` lines (serde_yaml reads one document at a
/// time; the kit's files use plain `---` separators).
fn yaml_documents(text: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("---") {
            if rest.is_empty() || rest.starts_with([' ', '\t']) {
                documents.push(format!("{}\n", rest.trim()));
                continue;
            }
        }
        let current = documents.last_mut().expect("at least one document");
        current.push_str(line);
        current.push('\n');
    }
    documents
}

/// Every YAML document in deploy/istio/*.yaml, with its file name.
fn istio_documents() -> Vec<(String, Value)> {
    let dir = repo_root().join(ISTIO_DIR);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no YAML files in {ISTIO_DIR}");
    let mut documents = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read YAML");
        for (i, document) in yaml_documents(&text).iter().enumerate() {
            let yaml: serde_yaml::Value = serde_yaml::from_str(document).unwrap_or_else(|e| {
                panic!("{ISTIO_DIR}/{name}: document {i} is not valid YAML: {e}")
            });
            if yaml.is_null() {
                continue; // empty, or only comments
            }
            let json = serde_json::to_value(yaml).unwrap_or_else(|e| {
                panic!("{ISTIO_DIR}/{name}: document {i} has no JSON form: {e}")
            });
            documents.push((name.clone(), json));
        }
    }
    documents
}

fn wasm_plugin(documents: &[(String, Value)]) -> (String, Value) {
    let plugins: Vec<_> = documents
        .iter()
        .filter(|(_, d)| d["kind"] == "WasmPlugin")
        .collect();
    assert_eq!(
        plugins.len(),
        1,
        "{ISTIO_DIR} must hold exactly one WasmPlugin, found {}",
        plugins.len()
    );
    plugins[0].clone()
}

fn istio_plugin_config() -> Value {
    let (file, plugin) = wasm_plugin(&istio_documents());
    let config = plugin["spec"]["pluginConfig"].clone();
    assert!(
        config.is_object(),
        "{ISTIO_DIR}/{file}: spec.pluginConfig must be a mapping (the plugin's JSON document)"
    );
    config
}

/// `outbound|<port>||<host>` -> (port, host).
fn istio_cluster(name: &str) -> Option<(u16, String)> {
    let rest = name.strip_prefix("outbound|")?;
    let (port, host) = rest.split_once("||")?;
    Some((port.parse().ok()?, host.to_string()))
}

#[test]
fn istio_wasm_plugin_is_complete() {
    let documents = istio_documents();
    let (file, plugin) = wasm_plugin(&documents);
    let spec = &plugin["spec"];
    let mut problems = Vec::new();
    let mut expect = |ok: bool, what: String| {
        if !ok {
            problems.push(what);
        }
    };
    expect(
        plugin["apiVersion"] == "extensions.istio.io/v1alpha1",
        format!("apiVersion is {}", plugin["apiVersion"]),
    );
    expect(
        plugin["metadata"]["name"].is_string() && plugin["metadata"]["namespace"].is_string(),
        "metadata needs name and namespace".to_string(),
    );
    expect(
        spec["phase"] == "AUTHN",
        format!("phase is {}", spec["phase"]),
    );
    expect(
        spec["failStrategy"] == "FAIL_CLOSE",
        format!("failStrategy is {}", spec["failStrategy"]),
    );
    let url = spec["url"].as_str().unwrap_or_default();
    expect(
        url.starts_with("oci://"),
        format!("url `{url}` is not oci://"),
    );
    expect(
        matches!(
            spec["imagePullPolicy"].as_str(),
            Some("IfNotPresent" | "Always")
        ),
        format!("imagePullPolicy is {}", spec["imagePullPolicy"]),
    );
    let labels = spec["selector"]["matchLabels"].as_object();
    expect(
        labels.is_some_and(|l| !l.is_empty()),
        "selector.matchLabels is missing or empty (without it the plugin applies to the whole \
         namespace)"
            .to_string(),
    );

    let keys = host_env_keys();
    let env = spec["vmConfig"]["env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: BTreeSet<String> = env
        .iter()
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect();
    expect(
        names == keys && names.len() == env.len(),
        format!("vmConfig.env names {names:?} != envoy.yaml's host_env_keys {keys:?}"),
    );
    for entry in &env {
        expect(
            entry["valueFrom"] == "HOST" && entry.get("value").is_none(),
            format!("vmConfig.env {entry}: must be `valueFrom: HOST` without a value"),
        );
    }

    // Production values: https everywhere, Secure cookies.
    let config = &spec["pluginConfig"];
    let oauth2 = &config["oauth2"];
    for field in ["issuer", "redirect_uri", "post_logout_redirect_uri"] {
        if let Some(value) = oauth2[field].as_str() {
            expect(
                value.starts_with("https://"),
                format!("pluginConfig.oauth2.{field} `{value}` must be https"),
            );
        }
    }
    expect(
        oauth2["allow_insecure_cookies"] != true,
        "pluginConfig.oauth2.allow_insecure_cookies must be false or absent".to_string(),
    );
    assert!(
        problems.is_empty(),
        "{ISTIO_DIR}/{file}:\n  {}",
        problems.join("\n  ")
    );
}

/// The clusters the Istio plugin config calls are named the Istio way, and external ones (the
/// IdP) exist through a ServiceEntry, with TLS origination when the issuer is https.
#[test]
fn istio_clusters_exist_for_the_plugins_calls() {
    let documents = istio_documents();
    let config = istio_plugin_config();
    let mut calls = Vec::new(); // (field, cluster, authority)
    for section in ["oauth2", "translate"] {
        if let Some(cluster) = config[section]["cluster"].as_str() {
            let authority = config[section]["authority"].as_str().unwrap_or_default();
            calls.push((
                section.to_string(),
                cluster.to_string(),
                authority.to_string(),
            ));
        }
    }
    for (i, provider) in config["providers"]
        .as_array()
        .map(|v| v.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let remote = &provider["jwks"]["remote"];
        if let Some(cluster) = remote["cluster"].as_str() {
            let authority = remote["authority"].as_str().unwrap_or_default();
            calls.push((
                format!("providers[{i}].jwks.remote"),
                cluster.to_string(),
                authority.to_string(),
            ));
        }
    }
    assert!(
        !calls.is_empty(),
        "the Istio plugin config calls no cluster"
    );

    let mut problems = Vec::new();
    for (field, cluster, authority) in &calls {
        let Some((port, host)) = istio_cluster(cluster) else {
            problems.push(format!(
                "{field}.cluster `{cluster}` is not Istio's `outbound|<port>||<host>`"
            ));
            continue;
        };
        let authority_host = authority.split(':').next().unwrap_or_default();
        if authority_host != host {
            problems.push(format!(
                "{field}.authority `{authority}` is not the cluster's host `{host}`"
            ));
        }
        if host.ends_with(".svc.cluster.local") {
            continue; // a Kubernetes Service: Istio has its cluster already
        }
        let entry = documents.iter().find(|(_, d)| {
            d["kind"] == "ServiceEntry"
                && d["spec"]["hosts"]
                    .as_array()
                    .is_some_and(|h| h.iter().any(|h| h == host.as_str()))
                && d["spec"]["ports"]
                    .as_array()
                    .is_some_and(|p| p.iter().any(|p| p["number"] == port))
        });
        if entry.is_none() {
            problems.push(format!(
                "{field}.cluster `{cluster}`: no ServiceEntry in {ISTIO_DIR} with host {host} \
                 and port {port}"
            ));
        }
        let needs_tls = field == "oauth2"
            && config["oauth2"]["issuer"]
                .as_str()
                .is_some_and(|i| i.starts_with("https://"));
        if needs_tls {
            let originates_tls = documents.iter().any(|(_, d)| {
                let policy = &d["spec"]["trafficPolicy"];
                let port_tls = policy["portLevelSettings"].as_array().and_then(|ports| {
                    ports
                        .iter()
                        .find(|p| p["port"]["number"] == port)
                        .map(|p| p["tls"].clone())
                });
                let tls = port_tls.unwrap_or_else(|| policy["tls"].clone());
                d["kind"] == "DestinationRule"
                    && d["spec"]["host"] == host.as_str()
                    && tls["mode"] == "SIMPLE"
            });
            if !originates_tls {
                problems.push(format!(
                    "{field}: the issuer is https but no DestinationRule for {host} port {port} \
                     originates TLS (tls.mode SIMPLE)"
                ));
            }
        }
        if field == "oauth2" {
            let issuer = config["oauth2"]["issuer"].as_str().unwrap_or_default();
            let issuer_host = issuer
                .split("://")
                .nth(1)
                .and_then(|rest| rest.split(['/', ':']).next())
                .unwrap_or_default();
            if issuer_host != host {
                problems.push(format!(
                    "oauth2.issuer `{issuer}` is not on the cluster's host `{host}`"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The EnvoyFilter's buffers (if the kit has one) stay above the plugin's body limit, as
/// envoy.yaml's do.
#[test]
fn istio_buffers_exceed_the_body_limit() {
    let documents = istio_documents();
    let config = istio_plugin_config();
    let limit = config["limits"]["max_request_body_bytes"]
        .as_u64()
        .unwrap_or(10 * 1024 * 1024);
    let mut sizes = Vec::new();
    for (file, document) in documents.iter().filter(|(_, d)| d["kind"] == "EnvoyFilter") {
        for patch in document["spec"]["configPatches"]
            .as_array()
            .map(|v| v.as_slice())
            .unwrap_or_default()
        {
            let value = &patch["patch"]["value"];
            if let Some(bytes) = value["per_connection_buffer_limit_bytes"].as_u64() {
                sizes.push((file.clone(), "per_connection_buffer_limit_bytes", bytes));
            }
            if value["name"] == "envoy.filters.http.buffer" {
                let bytes = value["typed_config"]["max_request_bytes"]
                    .as_u64()
                    .unwrap_or_default();
                sizes.push((file.clone(), "buffer max_request_bytes", bytes));
            }
        }
    }
    for (file, what, bytes) in sizes {
        assert!(
            bytes > limit,
            "{ISTIO_DIR}/{file}: {what} {bytes} must exceed limits.max_request_body_bytes {limit}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// No drift

/// Removes the value at a dotted path (`a.b[*].c`) wherever it exists.
fn remove_path(value: &mut Value, segments: &[&str]) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    let (key, every) = match first.strip_suffix("[*]") {
        Some(key) => (key, true),
        None => (*first, false),
    };
    let Some(map) = value.as_object_mut() else {
        return;
    };
    if rest.is_empty() && !every {
        map.remove(key);
        return;
    }
    match map.get_mut(key) {
        Some(Value::Array(items)) if every => {
            items.iter_mut().for_each(|item| remove_path(item, rest));
        }
        Some(child) if !every => remove_path(child, rest),
        _ => {}
    }
}

fn without_environment(mut config: Value) -> Value {
    for path in ENVIRONMENT_SPECIFIC {
        let segments: Vec<&str> = path.split('.').collect();
        remove_path(&mut config, &segments);
    }
    config
}

/// Every path where `a` (envoy.yaml) and `b` (the WasmPlugin) differ. Numbers compare by value
/// (Istio passes pluginConfig as a protobuf Struct: every number is a double).
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let here = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                match (x.get(key), y.get(key)) {
                    (Some(va), Some(vb)) => differences(&here(key), va, vb, out),
                    (Some(va), None) => {
                        out.push(format!("{}: only in envoy.yaml ({va})", here(key)))
                    }
                    (None, Some(vb)) => {
                        out.push(format!("{}: only in the WasmPlugin ({vb})", here(key)))
                    }
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                out.push(format!(
                    "{path}: {} elements in envoy.yaml, {} in the WasmPlugin",
                    x.len(),
                    y.len()
                ));
            }
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), va, vb, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if a == b => {}
        _ => out.push(format!(
            "{path}: envoy.yaml has {a}, the WasmPlugin has {b}"
        )),
    }
}

#[test]
fn istio_plugin_config_is_envoy_yamls_document() {
    let envoy = plugin_config(&envoy_yaml());
    let istio = istio_plugin_config();
    let mut diffs = Vec::new();
    differences(
        "",
        &without_environment(envoy),
        &without_environment(istio),
        &mut diffs,
    );
    assert!(
        diffs.is_empty(),
        "{ISTIO_DIR}'s WasmPlugin pluginConfig drifted from envoy.yaml's plugin config (only \
         {ENVIRONMENT_SPECIFIC:?} may differ):\n  {}",
        diffs.join("\n  ")
    );
}

#[test]
fn the_filter_accepts_the_istio_plugin_config() {
    let config = istio_plugin_config().to_string();
    let secret = |n: usize| -> String {
        use rand::Rng;
        rand::thread_rng()
            .sample_iter(&rand::distributions::Alphanumeric)
            .take(n)
            .map(char::from)
            .collect()
    };
    let mut builder = Envoy::builder(&config).concurrency(1);
    for key in host_env_keys() {
        builder = builder.env(&key, &secret(48));
    }
    let mut envoy = builder
        .start()
        .unwrap_or_else(|e| panic!("the filter refused {ISTIO_DIR}'s pluginConfig:\n{}", e.log));
    assert!(envoy.is_running(), "{}", envoy.log_tail(30));
}

#[test]
fn istio_kit_files_exist() {
    let root = repo_root();
    for file in ["Dockerfile", "README.md"] {
        let path = root.join(ISTIO_DIR).join(file);
        assert!(Path::new(&path).is_file(), "{} is missing", path.display());
    }
    let dockerfile =
        std::fs::read_to_string(root.join(ISTIO_DIR).join("Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.lines().any(|l| l.trim() == "FROM scratch")
            && dockerfile.contains("plugin.wasm"),
        "{ISTIO_DIR}/Dockerfile must be FROM scratch with the module as plugin.wasm (Istio's \
         compat Wasm image)"
    );
}
