//! `make bench`: the gateway filter's cost inside Envoy, measured on this machine.
//!
//! Every Envoy runs with `--concurrency 1`; load comes from `wrk` on loopback for a fixed
//! duration. Auth setups answer with Envoy's own `direct_response` (the HTTP filters run, the
//! router answers: no upstream hop), so the numbers are the filter's, not an upstream's. Then
//! streaming translation (time to first token, total) over the Ollama stand-in, non-streamed
//! throughput with a 1 MB answer, and Envoy's memory after 100,000 distinct tokens and
//! subjects. Prints one report and writes it to `bench/results.md`.

// Not `src/bin/protection.rs`: cargo would take that for a binary of its own.
#[path = "bench/protection.rs"]
mod protection;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::http::{read_head, Connection};
use test_harness::ollama::{ollama_handler, OllamaConfig};
use test_harness::paths;
use test_harness::rate_limit_service::RateLimitService;
use test_harness::redis::Redis;
use test_harness::tokens::{b64url, claims, jwks, Hs256Key, RsaKey};
use test_harness::upstream::{Reply, ReplyBody};
use test_harness::{Envoy, EnvoyBuilder, Request, Upstream};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "gw";
const SCOPES: &str = "chat:read chat:write";
const HS256_SECRET: &str = "benchmark-hs256-secret-of-32-bytes-or-more";

/// One load run: wrk's threads, connections, and how long.
const WRK_THREADS: u32 = 1;
const WRK_CONNECTIONS: u32 = 16;
const WARMUP: Duration = Duration::from_secs(1);
/// Every setup is measured in `ROUNDS` runs of `MEASURE_S` seconds, the setups taking turns
/// (so drift of a shared machine hits them alike); a row is the median run. `BENCH_SECONDS`
/// overrides the run length (for a quick try).
const ROUNDS: usize = 3;
const MEASURE_S: u64 = 3;

/// Distinct RS256 tokens for the cold-verification setup (twice the verified-token cache).
const COLD_TOKENS: usize = 20_000;
/// Distinct tokens, and distinct subjects, for the memory runs.
const MEMORY_REQUESTS: usize = 100_000;
const MEMORY_CLIENTS: usize = 4;

/// Streaming: lines from the stand-in, the delay before each, and how many requests.
const STREAM_LINES: usize = 20;
const STREAM_DELAY: Duration = Duration::from_millis(5);
const STREAM_REPEATS: usize = 50;
/// Throughput: the answer's content size and how many requests.
const BIG_CONTENT_BYTES: usize = 1_000_000;
const BIG_REPEATS: usize = 20;

/// Rows the targets are computed from.
const BARE: &str = "bare Envoy (direct response)";
const NATIVE_RS256: &str = "native jwt_authn RS256";
const CACHE_HIT: &str = "gateway RS256, repeated token (cache hit)";
const COLD: &str = "gateway RS256, fresh token per request (cold)";
const FULL_STACK: &str = "gateway full stack (RS256 hit + scope rule + rate limit)";
const EMPTY_WASM: &str =
    "diagnostic: empty proxy-wasm filter (does nothing; the floor of any Wasm filter)";
const AUTH_NONE: &str = "diagnostic: gateway, auth none (its fixed per-request cost)";
const ROLES: &str = "gateway full stack, the rule's scope granted by an IdP role (`roles`)";
const CORS: &str =
    "gateway full stack, a call from an allowed origin (`cors`: the headers on the answer)";
const PREFLIGHT: &str = "gateway with `cors`: preflights answered by the gateway (no token)";
const LOG_LINE: &str =
    "diagnostic: gateway RS256 cache hit with the plugin's own log line (`audit.log_line: true`)";
const INTROSPECTION: &str =
    "gateway opaque token, introspection answer cached (`providers[].introspection`)";
const MESH: &str = "gateway full stack, the rate limit counted mesh-wide (`scope: mesh`: a \
     ratelimit.v3 service, limitador over Redis, on loopback)";
const NO_RECORDS: &str =
    "diagnostic: gateway RS256 cache hit, audit records off (`audit.records: false`)";
const RULE_ONLY: &str =
    "diagnostic: gateway RS256 hit + scope rule (the full stack without its rate limit)";
const SDK_FLOOR: &str = "diagnostic: proxy-wasm Rust SDK filter doing nothing (every callback \
     the gateway's SDK exports runs; same SDK and release profile)";
const SDK_HEADERS: &str =
    "diagnostic: the same SDK filter reading the request header map (one host call)";
const SDK_ADDRESS: &str =
    "diagnostic: the same SDK filter reading the client address (`source.address` property)";
const SDK_AUDIT: &str =
    "diagnostic: the same SDK filter setting a 200-byte filter-state property (as the audit record)";
const SDK_FULL: &str = "diagnostic: the same SDK filter making every host call of a full-stack \
     request and nothing else (17 calls: headers, clock, address, shared data, counters, header \
     edits, audit)";
const CHAT_POST: &str =
    "gateway full stack, a chat request (`POST /v1/chat/completions`, body not inspected)";
const MODELS: &str = "gateway full stack, the chat request's model checked against an \
     allow-list (`models`: the body is held and parsed)";
const MASKING: &str = "gateway full stack, the chat request masked (`data_protection`: nine \
     built-in types, a custom regex and a deny pattern; nothing to mask)";

/// The documented bounds the memory section compares against.
const TOKEN_CACHE_CAPACITY: u64 = 10_000;
/// At most this much of Envoy's heap per rate-limit slot (see `src/ratelimit/counter.rs`).
const SLOT_BYTES: u64 = 96;
const DEFAULT_SLOTS: u64 = 8192;

fn main() {
    let started = Instant::now();
    let load_at_start = load_average();
    let work = tempfile::Builder::new()
        .prefix("gateway-bench-")
        .tempdir()
        .expect("tempdir");
    let wrk = std::env::var("WRK").unwrap_or_else(|_| "wrk".to_string());
    let measure = Duration::from_secs(
        std::env::var("BENCH_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(MEASURE_S),
    );
    check_wrk(&wrk);

    eprintln!("bench: generating keys and tokens");
    let hs = Hs256Key::new(HS256_SECRET.as_bytes());
    let rsa = RsaKey::generate("bench", 2048);
    let hs_token = hs.mint(&claims(ISSUER, AUDIENCE, "alice", SCOPES));
    let rs_token = rsa.mint(&claims(ISSUER, AUDIENCE, "alice", SCOPES));
    let mut with_role = claims(ISSUER, AUDIENCE, "alice", "");
    with_role["realm_access"] = json!({"roles": ["offline_access", "user"]});
    let role_token = rsa.mint(&with_role);
    let cold_tokens = mint_rs256_many(&rsa, COLD_TOKENS);
    let dir = work.path();
    let hs_script = write_header_script(dir, "hs256.lua", &hs_token);
    let rs_script = write_header_script(dir, "rs256.lua", &rs_token);
    let role_script = write_header_script(dir, "rs256-role.lua", &role_token);
    let cold_script = write_cycling_script(dir, "rs256-cold", &cold_tokens);
    let none_script = write_file(dir, "none.lua", "-- no header\n");
    eprintln!(
        "bench: {:>4.0} s  {COLD_TOKENS} RS256 tokens minted",
        started.elapsed().as_secs_f64()
    );

    eprintln!(
        "bench: {:>4.0} s  starting the Envoys",
        started.elapsed().as_secs_f64()
    );
    // `BENCH_ONLY=bare,cache hit`: only the setups whose names contain one of these, a short
    // table on stdout and no results file (for quick comparisons while optimising).
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .map(|list| list.split(',').map(|s| s.trim().to_string()).collect());
    let mut setups: Vec<Setup> = Vec::new();
    let mut add = |name: &str, builder: EnvoyBuilder, script: &Path| {
        if let Some(only) = &only {
            if !only.iter().any(|part| name.contains(part.as_str())) {
                return;
            }
        }
        setups.push(Setup {
            name: name.to_string(),
            envoy: start(builder),
            script: script.to_path_buf(),
        });
    };

    // 1. Bare Envoy: the router's direct response and nothing else.
    add(
        BARE,
        plain_builder("{}").bootstrap_override(|b| {
            direct_response(b);
            set_filters(b, vec![]);
        }),
        &none_script,
    );

    // 2. Envoy's native jwt_authn.
    let hs_jwks =
        json!({"keys": [{"kty": "oct", "alg": "HS256", "k": b64url(HS256_SECRET.as_bytes())}]});
    let rs_jwks = jwks(&[rsa.jwk()]);
    for (name, jwks, cache, script) in [
        ("native jwt_authn HS256", &hs_jwks, false, &hs_script),
        (NATIVE_RS256, &rs_jwks, false, &rs_script),
        (
            "native jwt_authn RS256 + jwt_cache_config (for comparison)",
            &rs_jwks,
            true,
            &rs_script,
        ),
    ] {
        let filter = jwt_authn_filter(jwks, cache);
        let builder = plain_builder("{}").bootstrap_override(move |b| {
            direct_response(b);
            set_filters(b, vec![filter]);
        });
        add(name, builder, script);
    }

    // 3. The gateway filter.
    let hs_provider = json!({"name": "sso", "issuer": ISSUER, "audiences": [AUDIENCE],
        "algorithms": ["HS256"], "hs256_secret": {"inline": HS256_SECRET}});
    let rs_provider = json!({"name": "sso", "issuer": ISSUER, "audiences": [AUDIENCE],
        "algorithms": ["RS256"], "jwks": {"inline": rs_jwks}});
    let rs_only = json!({"providers": [rs_provider.clone()]}).to_string();
    let full_stack = json!({
        "providers": [rs_provider.clone()],
        "rules": [{"match": {"prefix": "/"}, "scopes": ["chat:read"]}],
        "rate_limits": [{"name": "bench", "key": "sub", "requests": 100_000_000u64, "window_s": 60}]
    });
    add(
        "gateway HS256",
        gateway_builder(&json!({"providers": [hs_provider.clone()]}).to_string()),
        &hs_script,
    );
    add(CACHE_HIT, gateway_builder(&rs_only), &rs_script);
    add(COLD, gateway_builder(&rs_only), &cold_script);
    add(
        FULL_STACK,
        gateway_builder(&full_stack.to_string()),
        &rs_script,
    );
    let mut with_roles = full_stack.clone();
    with_roles["roles"] =
        json!({"claims": ["realm_access.roles"], "grants": {"user": ["chat:read"]}});
    add(
        ROLES,
        gateway_builder(&with_roles.to_string()),
        &role_script,
    );
    let mut with_cors = full_stack.clone();
    with_cors["cors"] = json!({"allow_origins": ["https://app.example.com"]});
    let origin = "wrk.headers[\"Origin\"] = \"https://app.example.com\"\n";
    let cors_script = write_file(
        dir,
        "rs256-cors.lua",
        &format!("wrk.headers[\"Authorization\"] = \"Bearer {rs_token}\"\n{origin}"),
    );
    let preflight_script = write_file(
        dir,
        "preflight.lua",
        &format!(
            "wrk.method = \"OPTIONS\"\n{origin}wrk.headers[\"Access-Control-Request-Method\"] = \"POST\"\n"
        ),
    );
    add(CORS, gateway_builder(&with_cors.to_string()), &cors_script);
    add(
        PREFLIGHT,
        gateway_builder(&with_cors.to_string()),
        &preflight_script,
    );
    // Diagnostics: the floor of any Wasm filter, the gateway's cost with no auth at all, and
    // without its audit log line.
    let empty_wasm = write_bytes(dir, "empty-filter.wasm", &empty_proxy_wasm_module());
    add(
        EMPTY_WASM,
        plain_builder("{}").bootstrap_override(move |b| {
            direct_response(b);
            let config = &mut hcm(b)["http_filters"][0]["typed_config"]["config"];
            config["vm_config"]["code"]["local"]["filename"] = json!(empty_wasm.to_string_lossy());
            config["vm_config"]["vm_id"] = json!("empty");
        }),
        &none_script,
    );
    add(
        AUTH_NONE,
        gateway_builder(&json!({"default_rule": {"auth": "none"}}).to_string()),
        &none_script,
    );
    let with_line = json!({"providers": [rs_provider.clone()], "audit": {"log_line": true}});
    add(
        LOG_LINE,
        gateway_builder(&with_line.to_string()),
        &rs_script,
    );
    // An IdP answering every introspection "active": after the first request the answer comes
    // from shared data (cache_ttl_s outlasts the bench).
    let introspection_idp = Upstream::with_handler(|_| {
        Reply::json(
            200,
            &json!({"active": true, "sub": "alice", "scope": SCOPES, "client_id": "bench",
                    "token_type": "Bearer", "exp": 4_000_000_000u64}),
        )
    });
    let opaque = json!({"providers": [{"name": "opaque", "introspection": {"cluster": "idp",
        "authority": "idp", "path": "/introspect", "client_id": "bench",
        "client_secret": {"inline": "bench-secret"}, "cache_ttl_s": 86_400}}]});
    let opaque_script = write_header_script(dir, "opaque.lua", "2YotnFZFEjr1zCsicMWpAA");
    add(
        INTROSPECTION,
        gateway_builder(&opaque.to_string()).idp(introspection_idp.addr()),
        &opaque_script,
    );
    // The same full stack with its rate limit counted by the rate-limit service (one gRPC call
    // per request, answered from Redis): what a mesh-wide check adds over a local one.
    let (_redis, _rls, mesh_config) = if only
        .as_ref()
        .is_none_or(|only| only.iter().any(|part| MESH.contains(part.as_str())))
    {
        let redis = Redis::start();
        let rls = RateLimitService::start(&redis);
        let mut mesh = full_stack.clone();
        mesh["rate_limits"] = json!([{"name": "bench", "key": "sub",
            "requests": 1_000_000_000u64, "window_s": 3600, "scope": "mesh"}]);
        mesh["rate_limit_service"] = json!({"cluster": "rls", "timeout_ms": 1000});
        let addr = rls.addr();
        (Some(redis), Some(rls), Some((mesh, addr)))
    } else {
        (None, None, None)
    };
    if let Some((mesh, addr)) = mesh_config {
        add(
            MESH,
            gateway_builder(&mesh.to_string()).rate_limit_service(addr),
            &rs_script,
        );
    }
    let no_records = json!({"providers": [rs_provider.clone()], "audit": {"records": false}});
    add(
        NO_RECORDS,
        gateway_builder(&no_records.to_string()),
        &rs_script,
    );
    // One part switched off: the scope rule without the rate limit.
    let mut rule_only = full_stack.clone();
    rule_only
        .as_object_mut()
        .expect("object")
        .remove("rate_limits");
    add(
        RULE_ONLY,
        gateway_builder(&rule_only.to_string()),
        &rs_script,
    );
    // The SDK's own floor: what any filter built on proxy-wasm's Rust SDK costs per request.
    match sdk_floor_wasm() {
        Some(sdk) => {
            for (name, config) in [
                (SDK_FLOOR, "{}"),
                (SDK_HEADERS, "{\"calls\": \"headers\"}"),
                (SDK_ADDRESS, "{\"calls\": \"address\"}"),
                (SDK_AUDIT, "{\"calls\": \"audit\"}"),
                (SDK_FULL, "{\"calls\": \"full_stack\"}"),
            ] {
                let sdk = sdk.clone();
                let builder = plain_builder(config).bootstrap_override(move |b| {
                    direct_response(b);
                    let config = &mut hcm(b)["http_filters"][0]["typed_config"]["config"];
                    config["vm_config"]["code"]["local"]["filename"] =
                        json!(sdk.to_string_lossy());
                    config["vm_config"]["vm_id"] = json!("sdk-floor");
                });
                add(name, builder, &none_script);
            }
        }
        None => eprintln!(
            "bench: no SDK floor module (build bench/sdk-floor, or set SDK_FLOOR_WASM): its rows are left out"
        ),
    }
    // Per feature on a chat request: the body held and read for the model allow-list and for
    // masking, against the same request passed on unread.
    let chat_body = json!({"model": "qwen3:8b", "messages": [{"role": "user",
        "content": "Write a haiku about the sea, please. Keep it short and calm."}]})
    .to_string();
    let chat_script = write_file(
        dir,
        "chat-post.lua",
        &format!(
            "wrk.method = \"POST\"\nwrk.path = \"/v1/chat/completions\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {rs_token}\"\n\
             wrk.body = {}\n",
            serde_json::to_string(&chat_body).expect("lua string")
        ),
    );
    add(
        CHAT_POST,
        gateway_builder(&full_stack.to_string()),
        &chat_script,
    );
    let mut with_models = full_stack.clone();
    with_models["models"] = json!({"allow": [
        {"scopes": ["team:research"], "models": ["qwen3:32b", "llama3:*"]},
        {"scopes": ["chat:read"], "models": ["qwen3:*", "glm4:9b"]}]});
    add(
        MODELS,
        gateway_builder(&with_models.to_string()),
        &chat_script,
    );
    let mut with_masking = full_stack.clone();
    with_masking["data_protection"] = protection::data_protection(false);
    add(
        MASKING,
        gateway_builder(&with_masking.to_string()),
        &chat_script,
    );
    let rows = run_load(&wrk, &setups, measure, started);
    // One request at a time: the latency a mesh-wide check adds (wrk's 16 connections would
    // queue at the test service, which decides one request at a time).
    let mesh_latency = match (
        sequential_latency(&setups, FULL_STACK, &rs_token),
        sequential_latency(&setups, MESH, &rs_token),
    ) {
        (Some(local), Some(mesh)) => Some((local, mesh)),
        _ => None,
    };
    drop(setups);
    if only
        .as_ref()
        .is_some_and(|only| only.iter().any(|part| part == "protection"))
    {
        let report = protection::measure_protection();
        let mut text = String::new();
        protection::render(&report, &mut |s: String| {
            text.push_str(&s);
            text.push('\n');
        });
        println!("{text}");
    }
    if only
        .as_ref()
        .is_some_and(|only| only.iter().any(|part| part == "translation"))
    {
        let report = measure_translation();
        render_translation(&report, &mut |s: String| println!("{s}"));
    }
    if only.is_some() {
        if let Some((local, mesh)) = mesh_latency {
            println!("one request at a time: full stack {local:?}, mesh-wide {mesh:?}");
        }
        for row in &rows {
            println!(
                "{:>8.0} rps {:>7.1} µs/request  {} {}",
                row.result.rps,
                1e6 / row.result.rps.max(1.0),
                row.name,
                row.result.failures
            );
        }
        return;
    }

    // 4. Streaming translation and throughput.
    eprintln!(
        "bench: {:>4.0} s  streaming and throughput",
        started.elapsed().as_secs_f64()
    );
    let translation = measure_translation();
    eprintln!(
        "bench: {:>4.0} s  data protection",
        started.elapsed().as_secs_f64()
    );
    let protection = protection::measure_protection();

    // 5. Memory.
    eprintln!(
        "bench: {:>4.0} s  memory (2 x {MEMORY_REQUESTS} requests)",
        started.elapsed().as_secs_f64()
    );
    let memory = measure_memory(&hs_provider);

    let load = (load_at_start, load_average());
    let report = render(
        &rows,
        &translation,
        &protection,
        &memory,
        mesh_latency,
        RunFacts {
            measure,
            elapsed: started.elapsed(),
            load,
        },
    );
    println!("{report}");
    let out = paths::repo_root().join("bench/results.md");
    std::fs::create_dir_all(out.parent().expect("bench dir")).expect("create bench/");
    std::fs::write(&out, &report).expect("write bench/results.md");
    eprintln!(
        "bench: wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
}

// ---------------------------------------------------------------------------------------------
// Envoy setups

/// The SDK floor module `make bench` builds (`bench/sdk-floor`), or `SDK_FLOOR_WASM`.
fn sdk_floor_wasm() -> Option<PathBuf> {
    let path = std::env::var_os("SDK_FLOOR_WASM").map_or_else(
        || paths::repo_root().join("bench/sdk-floor/target/wasm32-wasip1/release/sdk_floor.wasm"),
        PathBuf::from,
    );
    path.exists().then_some(path)
}

fn plain_builder(plugin_config: &str) -> EnvoyBuilder {
    Envoy::builder(plugin_config)
        .concurrency(1)
        .buffer_filter(false)
}

/// The gateway filter in front of the router's direct response.
fn gateway_builder(plugin_config: &str) -> EnvoyBuilder {
    plain_builder(plugin_config).bootstrap_override(direct_response)
}

fn start(builder: EnvoyBuilder) -> Envoy {
    builder
        .start()
        .unwrap_or_else(|e| panic!("Envoy did not start ({:?}):\n{}", e.status, e.log))
}

fn hcm(bootstrap: &mut Value) -> &mut Value {
    &mut bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"]
}

/// The one route answers `200 ok` itself; the harness's access log is dropped (no setup pays
/// for a file write per request).
fn direct_response(bootstrap: &mut Value) {
    let hcm = hcm(bootstrap);
    hcm["route_config"]["virtual_hosts"][0]["routes"] = json!([{
        "match": {"prefix": "/"},
        "direct_response": {"status": 200, "body": {"inline_string": "ok"}}
    }]);
    if let Some(hcm) = hcm.as_object_mut() {
        hcm.remove("access_log");
    }
}

/// Replaces every HTTP filter but the router (which stays last) with `filters`.
fn set_filters(bootstrap: &mut Value, mut filters: Vec<Value>) {
    let hcm = hcm(bootstrap);
    let router = hcm["http_filters"]
        .as_array()
        .and_then(|f| f.last().cloned())
        .expect("the router filter");
    filters.push(router);
    hcm["http_filters"] = Value::Array(filters);
}

fn jwt_authn_filter(jwks: &Value, cache: bool) -> Value {
    let mut provider = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": jwks.to_string()},
        "forward": false
    });
    if cache {
        provider["jwt_cache_config"] = json!({"jwt_cache_size": 100});
    }
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Tokens and wrk scripts

fn mint_rs256_many(key: &RsaKey, count: usize) -> Vec<String> {
    let threads = thread::available_parallelism().map_or(2, |n| n.get());
    let per = count.div_ceil(threads);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t * per..((t + 1) * per).min(count))
                        .map(|i| key.mint(&claims(ISSUER, AUDIENCE, &format!("user-{i}"), SCOPES)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("minting thread"))
            .collect()
    })
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write bench file");
    path
}

fn write_bytes(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write bench file");
    path
}

/// A proxy-wasm (ABI 0.2.1) module that does nothing: every request passes at once. Written
/// out byte by byte, so the bench needs no second wasm build; it measures what Envoy's Wasm
/// host (V8) costs per request before a filter does any work.
fn empty_proxy_wasm_module() -> Vec<u8> {
    fn leb128(mut n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return out;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, items: &[Vec<u8>]) -> Vec<u8> {
        let mut body = leb128(items.len());
        for item in items {
            body.extend_from_slice(item);
        }
        let mut out = vec![id];
        out.extend(leb128(body.len()));
        out.extend(body);
        out
    }
    const I32: u8 = 0x7f;
    // Types: () -> (), (i32) -> i32, (i32 i32) -> (), (i32 i32) -> i32, (i32 i32 i32) -> i32,
    // (i32) -> ().
    let types = [
        vec![0x60, 0, 0],
        vec![0x60, 1, I32, 1, I32],
        vec![0x60, 2, I32, I32, 0],
        vec![0x60, 2, I32, I32, 1, I32],
        vec![0x60, 3, I32, I32, I32, 1, I32],
        vec![0x60, 1, I32, 0],
    ];
    // (export name, type, body): `i32.const N` where a result is expected.
    let nothing = vec![0x00, 0x0b];
    let const_i32 = |n: u8| vec![0x00, 0x41, n, 0x0b];
    let functions: [(&str, u8, Vec<u8>); 8] = [
        ("proxy_abi_version_0_2_1", 0, nothing.clone()),
        // A fixed scratch address; the module never asks the host for data.
        (
            "proxy_on_memory_allocate",
            1,
            vec![0x00, 0x41, 0x80, 0x08, 0x0b],
        ),
        ("proxy_on_context_create", 2, nothing.clone()),
        ("proxy_on_vm_start", 3, const_i32(1)),
        ("proxy_on_configure", 3, const_i32(1)),
        ("proxy_on_request_headers", 4, const_i32(0)),
        ("proxy_on_done", 1, const_i32(1)),
        ("proxy_on_delete", 5, nothing),
    ];
    let mut exports: Vec<Vec<u8>> = functions
        .iter()
        .enumerate()
        .map(|(index, (name, _, _))| {
            let mut e = vec![name.len() as u8];
            e.extend_from_slice(name.as_bytes());
            e.extend([0x00, index as u8]);
            e
        })
        .collect();
    exports.push([&[6u8][..], b"memory", &[0x02, 0]].concat());
    let bodies: Vec<Vec<u8>> = functions
        .iter()
        .map(|(_, _, body)| [&[body.len() as u8][..], body].concat())
        .collect();
    let mut module = b"\0asm".to_vec();
    module.extend([1, 0, 0, 0]);
    module.extend(section(1, &types));
    let type_indices: Vec<Vec<u8>> = functions.iter().map(|(_, t, _)| vec![*t]).collect();
    module.extend(section(3, &type_indices));
    module.extend(section(5, &[vec![0x00, 2]]));
    module.extend(section(7, &exports));
    module.extend(section(10, &bodies));
    module
}

fn write_header_script(dir: &Path, name: &str, token: &str) -> PathBuf {
    write_file(
        dir,
        name,
        &format!("wrk.headers[\"Authorization\"] = \"Bearer {token}\"\n"),
    )
}

/// A wrk script sending the tokens of a file in turn, one per request.
fn write_cycling_script(dir: &Path, name: &str, tokens: &[String]) -> PathBuf {
    let list = write_file(dir, &format!("{name}.txt"), &(tokens.join("\n") + "\n"));
    let script = format!(
        r#"local tokens = {{}}
for line in io.lines("{}") do tokens[#tokens + 1] = "Bearer " .. line end
local i = 0
-- The first token's index: `wrk ... -- OFFSET`, so the warm-up and the measured run differ.
init = function(args) i = tonumber(args[1] or "0") or 0 end
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format(nil, nil, {{["Authorization"] = tokens[i]}})
end
"#,
        list.display()
    );
    write_file(dir, &format!("{name}.lua"), &script)
}

// ---------------------------------------------------------------------------------------------
// wrk

#[derive(Debug, Clone, Default)]
struct LoadResult {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    requests: u64,
    /// Non-2xx/3xx answers and socket errors, as wrk reports them.
    failures: String,
}

struct Row {
    name: String,
    /// The median of the runs (requests/s, p50 and p99 each).
    result: LoadResult,
    /// Requests/s of each run, in order.
    runs: Vec<f64>,
    cache: GatewayStats,
}

/// A running setup under test.
struct Setup {
    name: String,
    envoy: Envoy,
    script: PathBuf,
}

/// Warms every setup up, then measures them in turns: `ROUNDS` runs each.
fn run_load(wrk: &str, setups: &[Setup], measure: Duration, started: Instant) -> Vec<Row> {
    let before: Vec<GatewayStats> = setups.iter().map(|s| gateway_stats(&s.envoy)).collect();
    eprintln!("bench: {:>4.0} s  warm-up", started.elapsed().as_secs_f64());
    for setup in setups {
        run_wrk(wrk, setup.envoy.addr(), &setup.script, WARMUP, 0);
    }
    let mut runs: Vec<Vec<LoadResult>> = vec![Vec::new(); setups.len()];
    for round in 0..ROUNDS {
        eprintln!(
            "bench: {:>4.0} s  round {}/{ROUNDS}",
            started.elapsed().as_secs_f64(),
            round + 1
        );
        // Fresh tokens: each run of the cold setup starts where no earlier run has been.
        let offset = COLD_TOKENS / (ROUNDS + 1) * (round + 1);
        let mut order: Vec<usize> = (0..setups.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let setup = &setups[i];
            runs[i].push(run_wrk(
                wrk,
                setup.envoy.addr(),
                &setup.script,
                measure,
                offset,
            ));
        }
    }
    setups
        .iter()
        .zip(runs)
        .zip(before)
        .map(|((setup, runs), before)| {
            let mid = |f: fn(&LoadResult) -> f64| {
                let mut values: Vec<f64> = runs.iter().map(f).collect();
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let failures: Vec<String> = runs
                .iter()
                .filter(|r| !r.failures.is_empty())
                .map(|r| r.failures.clone())
                .collect();
            Row {
                name: setup.name.clone(),
                result: LoadResult {
                    rps: mid(|r| r.rps),
                    p50_us: mid(|r| r.p50_us),
                    p99_us: mid(|r| r.p99_us),
                    requests: runs.iter().map(|r| r.requests).sum(),
                    failures: failures.join("; "),
                },
                runs: runs.iter().map(|r| r.rps).collect(),
                cache: gateway_stats(&setup.envoy).delta(&before),
            }
        })
        .collect()
}

fn check_wrk(wrk: &str) {
    let ok = Command::new(wrk)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        ok,
        "`{wrk}` not found: install wrk (apt-get install wrk) or set WRK"
    );
}

fn run_wrk(
    wrk: &str,
    addr: SocketAddr,
    script: &Path,
    duration: Duration,
    offset: usize,
) -> LoadResult {
    let mut child = Command::new(wrk)
        .args([
            format!("-t{WRK_THREADS}"),
            format!("-c{WRK_CONNECTIONS}"),
            format!("-d{}s", duration.as_secs()),
            "--timeout".to_string(),
            "5s".to_string(),
            "--latency".to_string(),
            "-s".to_string(),
        ])
        .arg(script)
        .arg(format!("http://{addr}/"))
        .arg("--")
        .arg(offset.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");
    // wrk stops by itself after `duration`; a hung one is killed (by its own pid).
    let deadline = Instant::now() + duration + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("wait for wrk").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wrk did not finish in time");
        }
        thread::sleep(Duration::from_millis(50));
    }
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    parse_wrk(&stdout).unwrap_or_else(|| panic!("unreadable wrk output:\n{stdout}\n{stderr}"))
}

/// `1.23ms`, `456.78us`, `1.20s`, `2.00m` as microseconds.
fn parse_duration_us(text: &str) -> Option<f64> {
    let units = [
        ("us", 1.0),
        ("ms", 1e3),
        ("s", 1e6),
        ("m", 60e6),
        ("h", 3600e6),
    ];
    units.iter().find_map(|(suffix, factor)| {
        text.strip_suffix(suffix)
            .and_then(|n| n.parse::<f64>().ok())
            .map(|n| n * factor)
    })
}

fn parse_wrk(output: &str) -> Option<LoadResult> {
    let mut result = LoadResult::default();
    let mut failures = Vec::new();
    for line in output.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["50%", value] => result.p50_us = parse_duration_us(value)?,
            ["99%", value] => result.p99_us = parse_duration_us(value)?,
            ["Requests/sec:", value] => result.rps = value.parse().ok()?,
            [count, "requests", "in", ..] => result.requests = count.parse().ok()?,
            _ if line.starts_with("Non-2xx") || line.starts_with("Socket errors") => {
                failures.push(line.to_string());
            }
            _ => {}
        }
    }
    result.failures = failures.join("; ");
    (result.rps > 0.0 && result.p50_us > 0.0).then_some(result)
}

// ---------------------------------------------------------------------------------------------
// Admin stats and memory

fn stat(envoy: &Envoy, name: &str) -> Option<u64> {
    let text = envoy.admin_get(&format!("/stats?filter=^{name}$")).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
}

#[derive(Debug, Clone, Copy, Default)]
struct GatewayStats {
    hits: u64,
    misses: u64,
    allowed: u64,
}

impl GatewayStats {
    fn delta(&self, before: &Self) -> Self {
        Self {
            hits: self.hits.saturating_sub(before.hits),
            misses: self.misses.saturating_sub(before.misses),
            allowed: self.allowed.saturating_sub(before.allowed),
        }
    }
}

fn gateway_stats(envoy: &Envoy) -> GatewayStats {
    let get = |name: &str| stat(envoy, &format!("wasmcustom.ai_gateway.{name}")).unwrap_or(0);
    GatewayStats {
        hits: get("token_cache_hits"),
        misses: get("token_cache_misses"),
        allowed: get("requests_allowed"),
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    heap: u64,
    rss: u64,
}

fn memory(envoy: &Envoy) -> Memory {
    let rss = std::fs::read_to_string(format!("/proc/{}/status", envoy.pid()))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or(0)
        * 1024;
    Memory {
        heap: stat(envoy, "server.memory_allocated").unwrap_or(0),
        rss,
    }
}

struct MemoryReport {
    /// The filter with an HS256 provider: at start, after a warm-up, after distinct tokens.
    tokens: [Memory; 3],
    /// The same with one `sub` rate limit (default slots): the same three points.
    subjects: [Memory; 3],
    allowed_tokens: u64,
    allowed_subjects: u64,
}

/// Sends one request per token `mint(i)` for `i` in `range`, over keep-alive connections.
fn drive(envoy: &Envoy, range: std::ops::Range<usize>, tag: &'static str) {
    let addr = envoy.addr();
    let per = range.len().div_ceil(MEMORY_CLIENTS);
    thread::scope(|scope| {
        for c in 0..MEMORY_CLIENTS {
            let start = range.start + c * per;
            let end = (start + per).min(range.end);
            scope.spawn(move || {
                let key = Hs256Key::new(HS256_SECRET.as_bytes());
                let mut connection = Connection::open(addr).expect("connect");
                for i in start..end {
                    let token = key.mint(&claims(ISSUER, AUDIENCE, &format!("{tag}-{i}"), SCOPES));
                    let response = connection
                        .send(&Request::get("/").bearer(&token))
                        .expect("response");
                    assert_eq!(response.status, 200, "{}", response.text());
                }
            });
        }
    });
}

fn measure_memory(hs_provider: &Value) -> MemoryReport {
    let warmup = 2_000;
    let run = |config: Value, tag: &'static str| -> ([Memory; 3], u64) {
        let envoy = start(gateway_builder(&config.to_string()));
        let at_start = memory(&envoy);
        drive(&envoy, 0..warmup, tag);
        let warm = memory(&envoy);
        drive(&envoy, warmup..warmup + MEMORY_REQUESTS, tag);
        let after = memory(&envoy);
        let allowed = gateway_stats(&envoy).allowed;
        ([at_start, warm, after], allowed)
    };
    let (tokens, allowed_tokens) = run(json!({"providers": [hs_provider]}), "token");
    let (subjects, allowed_subjects) = run(
        json!({"providers": [hs_provider],
               "rate_limits": [{"name": "bench", "key": "sub", "requests": 100_000_000u64, "window_s": 60}]}),
        "subject",
    );
    MemoryReport {
        tokens,
        subjects,
        allowed_tokens,
        allowed_subjects,
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming translation and throughput

/// One upstream for both: streamed chats are the Ollama stand-in (`STREAM_LINES` lines,
/// `STREAM_DELAY` before each), non-streamed ones get a fixed 1 MB Ollama answer.
fn translation_upstream() -> Upstream {
    let pieces: String = (0..STREAM_LINES - 1).map(|i| format!("t{i:03}")).collect();
    let standin = ollama_handler(OllamaConfig {
        delay: STREAM_DELAY,
        reply: Some(pieces),
        ..OllamaConfig::default()
    });
    let words = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    let content: String =
        words.repeat(BIG_CONTENT_BYTES / words.len() + 1)[..BIG_CONTENT_BYTES].to_string();
    let big = json!({
        "model": "qwen3:32b", "created_at": "2026-11-23T10:00:00.123456789Z",
        "message": {"role": "assistant", "content": content},
        "done": true, "done_reason": "stop", "total_duration": 1_000_000_000u64,
        "load_duration": 1_000_000u64, "prompt_eval_count": 5, "prompt_eval_duration": 1_000_000u64,
        "eval_count": 250_000, "eval_duration": 900_000_000u64
    })
    .to_string()
    .into_bytes();
    Upstream::with_handler(move |request| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if request.path == "/api/chat" && body["stream"] == json!(false) {
            Reply {
                status: 200,
                headers: vec![(
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                )],
                body: ReplyBody::Full(big.clone()),
            }
        } else {
            standin(request)
        }
    })
}

struct Timing {
    /// Until the body holds the first token's text.
    first_token: Duration,
    total: Duration,
    body_bytes: usize,
}

/// Sends `request` on a keep-alive connection and times the answer, chunk by chunk.
fn timed(
    reader: &mut BufReader<TcpStream>,
    request: &Request,
    first_token: &str,
) -> std::io::Result<Timing> {
    let request = request.clone().header("connection", "keep-alive");
    let started = Instant::now();
    reader.get_mut().write_all(&request.to_bytes())?;
    let (status, headers) = read_head(reader)?
        .ok_or_else(|| std::io::Error::other("connection closed before a response"))?;
    if !status.contains(" 200") {
        return Err(std::io::Error::other(format!("status {status}")));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    let mut first = None;
    let mut seen = |body: &[u8]| {
        if first.is_none() && find(body, first_token.as_bytes()) {
            first = Some(started.elapsed());
        }
    };
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size = usize::from_str_radix(size_line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::other(format!("bad chunk size {size_line:?}")))?;
            if size == 0 {
                let mut end = String::new();
                reader.read_line(&mut end)?;
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
            // Only the tail can newly hold the marker.
            seen(&body[start.saturating_sub(first_token.len())..]);
        }
    } else {
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| std::io::Error::other("neither chunked nor content-length"))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
        seen(&body);
    }
    let total = started.elapsed();
    Ok(Timing {
        first_token: first.unwrap_or(total),
        total,
        body_bytes: body.len(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn open(addr: SocketAddr) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.set_nodelay(true).expect("nodelay");
    BufReader::new(stream)
}

/// Requests per setup for [`sequential_latency`].
const SEQUENTIAL_REQUESTS: usize = 300;

/// The median time of [`SEQUENTIAL_REQUESTS`] requests with `token`, one at a time on one
/// keep-alive connection, to the setup named `name` (`None` when it is not running).
fn sequential_latency(setups: &[Setup], name: &str, token: &str) -> Option<Duration> {
    let setup = setups.iter().find(|s| s.name == name)?;
    let mut connection = Connection::open(setup.envoy.addr()).expect("connect");
    let request = Request::get("/v1/chat").bearer(token);
    let times = (0..SEQUENTIAL_REQUESTS)
        .map(|_| {
            let started = Instant::now();
            let response = connection.send(&request).expect("response");
            assert_eq!(response.status, 200, "{name}: {}", response.text());
            started.elapsed()
        })
        .collect();
    Some(median(times))
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

struct TranslationReport {
    ttft_translated: Duration,
    ttft_plain: Duration,
    total_translated: Duration,
    total_plain: Duration,
    big_translated: Duration,
    big_plain: Duration,
    big_translated_bytes: usize,
    big_plain_bytes: usize,
    /// `/v1/completions` streamed against `/api/generate` (time to first token).
    ttft_completion_translated: Duration,
    ttft_completion_plain: Duration,
    /// `/v1/embeddings` (fetched by the gateway) against `/api/embed` (total).
    embed_translated: Duration,
    embed_plain: Duration,
}

fn measure_translation() -> TranslationReport {
    let upstream = translation_upstream();
    let translated = start(
        Envoy::builder(
            &json!({"default_rule": {"auth": "none"},
                    "translate": {"to": "ollama", "cluster": "upstream"}})
            .to_string(),
        )
        .concurrency(1)
        .upstream(upstream.addr()),
    );
    let plain = start(
        Envoy::builder(&json!({"default_rule": {"auth": "none"}}).to_string())
            .concurrency(1)
            .upstream(upstream.addr()),
    );
    let messages = json!([{"role": "user", "content": "hi"}]);
    let stream_translated = Request::post("/v1/chat/completions")
        .json(&json!({"model": "qwen3:32b", "stream": true, "messages": messages}));
    let stream_plain = Request::post("/api/chat")
        .json(&json!({"model": "qwen3:32b", "stream": true, "messages": messages}));
    let big_translated = Request::post("/v1/chat/completions")
        .json(&json!({"model": "qwen3:32b", "stream": false, "messages": messages}));
    let big_plain = Request::post("/api/chat")
        .json(&json!({"model": "qwen3:32b", "stream": false, "messages": messages}));

    let mut t_conn = open(translated.addr());
    let mut p_conn = open(plain.addr());
    let run = |conn: &mut BufReader<TcpStream>, request: &Request, marker: &str| {
        timed(conn, request, marker).unwrap_or_else(|e| panic!("{}: {e}", request.target))
    };
    // Warm up both paths, then alternate so drift hits both alike.
    for _ in 0..5 {
        run(&mut t_conn, &stream_translated, "t000");
        run(&mut p_conn, &stream_plain, "t000");
        run(&mut t_conn, &big_translated, "lorem");
        run(&mut p_conn, &big_plain, "lorem");
    }
    let (mut tt, mut tp, mut st, mut sp) = (vec![], vec![], vec![], vec![]);
    for _ in 0..STREAM_REPEATS {
        let t = run(&mut t_conn, &stream_translated, "t000");
        let p = run(&mut p_conn, &stream_plain, "t000");
        assert!(t.body_bytes > 0 && p.body_bytes > 0);
        tt.push(t.first_token);
        st.push(t.total);
        tp.push(p.first_token);
        sp.push(p.total);
    }
    let (mut bt, mut bp) = (vec![], vec![]);
    let (mut bt_bytes, mut bp_bytes) = (0, 0);
    for _ in 0..BIG_REPEATS {
        let t = run(&mut t_conn, &big_translated, "lorem");
        let p = run(&mut p_conn, &big_plain, "lorem");
        assert!(t.body_bytes >= BIG_CONTENT_BYTES && p.body_bytes >= BIG_CONTENT_BYTES);
        bt.push(t.total);
        bp.push(p.total);
        bt_bytes = t.body_bytes;
        bp_bytes = p.body_bytes;
    }
    let completion_translated = Request::post("/v1/completions")
        .json(&json!({"model": "qwen3:32b", "stream": true, "prompt": "hi"}));
    let completion_plain = Request::post("/api/generate")
        .json(&json!({"model": "qwen3:32b", "stream": true, "prompt": "hi"}));
    let inputs = json!(["the quick brown fox", "jumps over the lazy dog"]);
    let embed_translated =
        Request::post("/v1/embeddings").json(&json!({"model": "qwen3:32b", "input": inputs}));
    let embed_plain =
        Request::post("/api/embed").json(&json!({"model": "qwen3:32b", "input": inputs}));
    let (mut ct, mut cp, mut et, mut ep) = (vec![], vec![], vec![], vec![]);
    for round in 0..STREAM_REPEATS + 5 {
        let c = run(&mut t_conn, &completion_translated, "t000");
        let p = run(&mut p_conn, &completion_plain, "t000");
        let e = run(&mut t_conn, &embed_translated, "embedding");
        let q = run(&mut p_conn, &embed_plain, "embeddings");
        if round >= 5 {
            ct.push(c.first_token);
            cp.push(p.first_token);
            et.push(e.total);
            ep.push(q.total);
        }
    }
    TranslationReport {
        ttft_completion_translated: median(ct),
        ttft_completion_plain: median(cp),
        embed_translated: median(et),
        embed_plain: median(ep),
        ttft_translated: median(tt),
        ttft_plain: median(tp),
        total_translated: median(st),
        total_plain: median(sp),
        big_translated: median(bt),
        big_plain: median(bp),
        big_translated_bytes: bt_bytes,
        big_plain_bytes: bp_bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// The report

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn envoy_version() -> String {
    let bin = paths::envoy_bin();
    let out = command_output(&bin.to_string_lossy(), &["--version"]);
    out.split("version:")
        .nth(1)
        .map(|v| v.trim().to_string())
        .unwrap_or(out)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".to_string())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".to_string())
}

fn us(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1} ms", value / 1000.0)
    } else {
        format!("{value:.0} µs")
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn signed_mib(after: u64, before: u64) -> String {
    let delta = after as f64 - before as f64;
    format!("{:+.2} MiB", delta / (1024.0 * 1024.0))
}

fn met(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "NOT MET"
    }
}

/// The run's length per load, its total time and the machine's load average at its start and
/// end (for the report's header).
struct RunFacts {
    measure: Duration,
    elapsed: Duration,
    load: (String, String),
}

fn render(
    rows: &[Row],
    translation: &TranslationReport,
    protection: &protection::ProtectionReport,
    memory: &MemoryReport,
    mesh_latency: Option<(Duration, Duration)>,
    run: RunFacts,
) -> String {
    let RunFacts {
        measure,
        elapsed,
        load,
    } = run;
    let find_row = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| r.result.clone())
            .expect("row")
    };
    let bare = find_row(BARE);
    let native_rs = find_row(NATIVE_RS256);
    let hit = find_row(CACHE_HIT);
    let cold = find_row(COLD);
    let full = find_row(FULL_STACK);

    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("# Benchmark results".into());
    line(String::new());
    line(
        "Written by `make bench` (`test-harness/src/bin/bench.rs`); see `bench/README.md`.".into(),
    );
    line(String::new());
    line(format!(
        "- date: {}",
        command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
    ));
    line(format!("- Envoy: {}", envoy_version()));
    line(format!(
        "- machine: {} CPUs (nproc), {}",
        command_output("nproc", &[]),
        cpu_model()
    ));
    line(format!(
        "- load: `wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{}s --latency` on loopback, {ROUNDS} runs \
         per setup taking turns with the other setups, after a {} s warm-up; a row is the median \
         run (requests/s, p50, p99 each). Every Envoy `--concurrency 1`, route `direct_response` \
         200 (no upstream hop), no access log, Envoy log level info (its default) unless noted.",
        measure.as_secs(),
        WARMUP.as_secs()
    ));
    line(format!(
        "- total bench time: {:.0} s; load average (1 min) at start {}, at end {} (the bench \
         itself keeps about 2 busy; more means other work on the machine skewed the numbers)",
        elapsed.as_secs_f64(),
        load.0,
        load.1
    ));
    line(String::new());
    line("## Requests through one Envoy worker".into());
    line(String::new());
    line(
        "| setup | requests/s | µs/request | p50 | p99 | × bare Envoy | × native RS256 | notes |"
            .into(),
    );
    line("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |".into());
    for row in rows {
        let r = &row.result;
        let runs: Vec<String> = row.runs.iter().map(|r| format!("{r:.0}")).collect();
        let mut notes = vec![format!("runs: {}", runs.join(" / "))];
        if row.cache.hits + row.cache.misses > 0 {
            notes.push(format!(
                "token cache: {} hits, {} misses",
                row.cache.hits, row.cache.misses
            ));
        }
        if !r.failures.is_empty() {
            notes.push(format!("**{}**", r.failures));
        }
        line(format!(
            "| {} | {:.0} | {:.1} | {} | {} | {:.2} | {:.2} | {} |",
            row.name,
            r.rps,
            1e6 / r.rps,
            us(r.p50_us),
            us(r.p99_us),
            r.rps / bare.rps,
            r.rps / native_rs.rps,
            notes.join("; ")
        ));
    }
    line(String::new());
    line(
        "µs/request is 1/(requests/s): with one worker kept busy by 16 connections, the worker's \
         time per request. Token-cache counts cover the warm-up and all runs."
            .into(),
    );
    line(String::new());

    render_translation(translation, &mut line);

    protection::render(protection, &mut line);

    line("## Memory".into());
    line(String::new());
    line(format!(
        "The gateway with an HS256 provider, `direct_response`; {MEMORY_REQUESTS} requests after a \
         2,000-request warm-up, each with a distinct token (and `sub`), {MEMORY_CLIENTS} keep-alive \
         clients. Heap is Envoy's `server.memory_allocated` (tcmalloc; holds proxy-wasm shared data, \
         where rate-limit slots live); RSS is the process's resident memory, which also holds the \
         VM's linear memory (where the verified-token cache lives)."
    ));
    line(String::new());
    line("| setup | heap at start | heap warm | heap after | heap growth | RSS warm | RSS after | RSS growth | allowed |".into());
    line("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |".into());
    for (name, points, allowed) in [
        (
            "100,000 distinct tokens (no rate limit)",
            &memory.tokens,
            memory.allowed_tokens,
        ),
        (
            "100,000 distinct subjects (a `sub` rate limit, default 8192 slots)",
            &memory.subjects,
            memory.allowed_subjects,
        ),
    ] {
        line(format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {allowed} |",
            mib(points[0].heap),
            mib(points[1].heap),
            mib(points[2].heap),
            signed_mib(points[2].heap, points[1].heap),
            mib(points[1].rss),
            mib(points[2].rss),
            signed_mib(points[2].rss, points[1].rss),
        ));
    }
    line(String::new());
    line(format!(
        "Documented bounds: the verified-token cache holds at most {TOKEN_CACHE_CAPACITY} entries \
         per worker (about 200 bytes each: ~{:.1} MiB); a rate limit holds {DEFAULT_SLOTS} slots \
         by default at most {SLOT_BYTES} bytes each (~{}), created when the plugin is configured. \
         Heap at start with the rate limit minus without: {}.",
        (TOKEN_CACHE_CAPACITY * 200) as f64 / (1024.0 * 1024.0),
        mib(DEFAULT_SLOTS * SLOT_BYTES),
        signed_mib(memory.subjects[0].heap, memory.tokens[0].heap),
    ));
    line(String::new());

    // Targets.
    let bare_us = 1e6 / bare.rps;
    let cold_us = 1e6 / cold.rps;
    let hit_us = 1e6 / hit.rps;
    let verify_us = cold_us - bare_us;
    let ttft_added_ms =
        (translation.ttft_translated.as_secs_f64() - translation.ttft_plain.as_secs_f64()) * 1e3;
    let per_request = |name: &str| 1e6 / find_row(name).rps;
    line("## Where the time goes".into());
    line(String::new());
    line(
        "Differences of µs/request between rows of this run (each row's worker time per \
         request; noisy to a few µs):"
            .into(),
    );
    line(String::new());
    for (what, value) in [
        (
            "an empty proxy-wasm filter (Envoy's Wasm host, V8) over bare Envoy",
            per_request(EMPTY_WASM) - bare_us,
        ),
        (
            "the gateway with `auth: none` over bare Envoy (its fixed cost per request)",
            per_request(AUTH_NONE) - bare_us,
        ),
        (
            "the plugin's own audit log line, `audit.log_line: true` (with it − cache hit)",
            per_request(LOG_LINE) - hit_us,
        ),
        (
            "audit recording at sampling 0 for the access log (cache hit − records off)",
            hit_us - per_request(NO_RECORDS),
        ),
        (
            "an opaque token answered from the shared introspection cache over `auth: none`",
            per_request(INTROSPECTION) - per_request(AUTH_NONE),
        ),
        (
            "RS256 auth with a cache hit over `auth: none`",
            hit_us - per_request(AUTH_NONE),
        ),
        (
            "scope rule + rate limit (full stack − cache hit)",
            1e6 / full.rps - hit_us,
        ),
        (
            "CORS headers on a call from an allowed origin (full stack with `cors` − full stack)",
            per_request(CORS) - 1e6 / full.rps,
        ),
        (
            "a preflight answered by the gateway over `auth: none` (no token, never forwarded)",
            per_request(PREFLIGHT) - per_request(AUTH_NONE),
        ),
        (
            "one RS256 verification inside the VM (cold − cache hit)",
            cold_us - hit_us,
        ),
        (
            "native jwt_authn RS256 over bare Envoy (BoringSSL, no cache)",
            1e6 / native_rs.rps - bare_us,
        ),
        (
            "the scope rule (RS256 hit + rule − cache hit)",
            per_request(RULE_ONLY) - hit_us,
        ),
        (
            "the local rate limit: shared-data read and compare-and-swap, headers (full stack − rule only)",
            1e6 / full.rps - per_request(RULE_ONLY),
        ),
        (
            "a chat request (POST with a body) instead of a GET, body not inspected (chat request − full stack)",
            per_request(CHAT_POST) - 1e6 / full.rps,
        ),
        (
            "the model allow-list: the chat body held, parsed and its model checked (`models` − chat request)",
            per_request(MODELS) - per_request(CHAT_POST),
        ),
        (
            "masking the chat request: the body held and scanned for eleven patterns (`data_protection` − chat request)",
            per_request(MASKING) - per_request(CHAT_POST),
        ),
    ] {
        line(format!("- {what}: {value:+.1} µs"));
    }
    // The SDK floor's rows: what the host calls cost with none of the gateway's own work.
    let optional = |name: &str| {
        rows.iter()
            .find(|r| r.name == name)
            .map(|r| 1e6 / r.result.rps.max(1.0))
    };
    if let (Some(sdk), Some(headers), Some(address), Some(audit), Some(calls)) = (
        optional(SDK_FLOOR),
        optional(SDK_HEADERS),
        optional(SDK_ADDRESS),
        optional(SDK_AUDIT),
        optional(SDK_FULL),
    ) {
        for (what, value) in [
            (
                "the proxy-wasm Rust SDK's callbacks, doing nothing (SDK filter − empty filter)",
                sdk - per_request(EMPTY_WASM),
            ),
            (
                "one read of the request header map (SDK filter reading it − SDK filter)",
                headers - sdk,
            ),
            (
                "one read of the client address property (SDK filter reading it − SDK filter)",
                address - sdk,
            ),
            (
                "one filter-state property set, as the audit record (SDK filter setting it − SDK filter)",
                audit - sdk,
            ),
            (
                "the 17 host calls of a full-stack request, made with nothing else (SDK filter making them − SDK filter)",
                calls - sdk,
            ),
            (
                "the gateway's own work in a full-stack request beyond those host calls (full stack − SDK filter making them)",
                1e6 / full.rps - calls,
            ),
        ] {
            line(format!("- {what}: {value:+.1} µs"));
        }
    }
    if let Some((local, mesh)) = mesh_latency {
        line(format!(
            "- a mesh-wide check instead of the local count, one request at a time (median of \
             {SEQUENTIAL_REQUESTS} on one connection, `scope: mesh` full stack − full stack): \
             {:+.0} µs per request ({:.0} µs vs {:.0} µs: the gRPC call to the rate-limit service \
             and its Redis round trips). Under wrk's 16 connections the mesh row is bound by the \
             test service, which decides one request at a time (limitador's Redis check and \
             update are two round trips), not by the gateway",
            (mesh.as_secs_f64() - local.as_secs_f64()) * 1e6,
            mesh.as_secs_f64() * 1e6,
            local.as_secs_f64() * 1e6
        ));
    }
    line(String::new());
    line("## Targets".into());
    line(String::new());
    line("The targets of issue 21, each a ratio within this one run:".into());
    line(String::new());
    let empty = find_row(EMPTY_WASM);
    let vs_empty = full.rps / empty.rps;
    line(format!(
        "- full stack ≥ 0.7× the empty Wasm filter's requests/s: **{}** ({:.0} vs {:.0}: {vs_empty:.2}×)",
        met(vs_empty >= 0.7),
        full.rps,
        empty.rps
    ));
    if let Some(calls) = optional(SDK_FULL) {
        let floor = 1e6 / calls / empty.rps;
        line(format!(
            "  - what limits it: an SDK filter making only the full stack's 17 host calls, with none \
             of the gateway's work, reaches {floor:.2}× the empty filter's requests/s ({:.0} vs {:.0})",
            1e6 / calls,
            empty.rps
        ));
    }
    let vs_native = hit.rps / native_rs.rps;
    line(format!(
        "- RS256 cache hit ≥ 1.5× native jwt_authn RS256 without cache: **{}** ({:.0} vs {:.0}: {vs_native:.2}×)",
        met(vs_native >= 1.5),
        hit.rps,
        native_rs.rps
    ));
    let native_verify_us = 1e6 / native_rs.rps - bare_us;
    let verify_ratio = verify_us / native_verify_us.max(0.1);
    line(format!(
        "- one cold RS256 verification ≤ 2× native's: **{}** (cold − bare {verify_us:.1} µs vs native \
         RS256 − bare {native_verify_us:.1} µs: {verify_ratio:.2}×; the signature check alone, cold \
         − cache hit, is {:.1} µs)",
        met(verify_ratio <= 2.0),
        cold_us - hit_us
    ));
    let mbps = |bytes: usize, took: Duration| bytes as f64 / took.as_secs_f64().max(1e-9) / 1e6;
    let translated_mbps = mbps(translation.big_translated_bytes, translation.big_translated);
    let plain_mbps = mbps(translation.big_plain_bytes, translation.big_plain);
    let share = translated_mbps / plain_mbps.max(1e-9);
    line(format!(
        "- translated 1 MB answer ≥ 60% of passthrough MB/s: **{}** ({translated_mbps:.0} vs \
         {plain_mbps:.0} MB/s: {:.0}%)",
        met(share >= 0.6),
        share * 100.0
    ));
    line(format!(
        "- streaming adds ≤ 0.5 ms to time to first token: **{}** ({} translated vs {} untranslated: \
         {ttft_added_ms:+.3} ms)",
        met(ttft_added_ms <= 0.5),
        ms(translation.ttft_translated),
        ms(translation.ttft_plain)
    ));
    // Issue 10: recording at sampling 0, against the run-to-run spread of the same setup.
    let spread = |name: &str| {
        let runs: Vec<f64> = rows
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.runs.iter().map(|rps| 1e6 / rps.max(1.0)).collect())
            .unwrap_or_default();
        let max = runs.iter().cloned().fold(f64::MIN, f64::max);
        let min = runs.iter().cloned().fold(f64::MAX, f64::min);
        (max - min).max(0.0)
    };
    let recording_us = hit_us - per_request(NO_RECORDS);
    let noise_us = spread(NO_RECORDS).max(spread(CACHE_HIT));
    line(format!(
        "- audit recording at sampling 0 costs nothing measurable (access-log record, plugin \
         line off, the default): **{}** (cache hit − records off = {recording_us:+.1} µs; \
         run-to-run spread of those rows {noise_us:.1} µs)",
        met(recording_us.abs() <= noise_us)
    ));
    out
}

/// The streaming and throughput section.
fn render_translation(translation: &TranslationReport, line: &mut impl FnMut(String)) {
    line("## Streaming translation and throughput".into());
    line(String::new());
    line(format!(
        "Ollama stand-in: {STREAM_LINES} NDJSON lines, {} ms before each; median of {STREAM_REPEATS} \
         requests each, alternating, on keep-alive connections. Time to first token: until the \
         body holds the first piece of content. Both Envoys have the gateway (auth none) and the \
         buffer filter, as in the demo.",
        STREAM_DELAY.as_millis()
    ));
    line(String::new());
    line("| path | time to first token | total |".into());
    line("| --- | ---: | ---: |".into());
    line(format!(
        "| `POST /v1/chat/completions` stream, translated to Ollama (SSE out) | {} | {} |",
        ms(translation.ttft_translated),
        ms(translation.total_translated)
    ));
    line(format!(
        "| `POST /api/chat` stream, untranslated (NDJSON out) | {} | {} |",
        ms(translation.ttft_plain),
        ms(translation.total_plain)
    ));
    line(format!(
        "| `POST /v1/completions` stream, translated (SSE out) / `POST /api/generate` (NDJSON out) | {} / {} | |",
        ms(translation.ttft_completion_translated),
        ms(translation.ttft_completion_plain)
    ));
    line(format!(
        "| `POST /v1/embeddings`, 2 inputs, fetched and converted by the gateway / `POST /api/embed` through the router (total) | | {} / {} |",
        ms(translation.embed_translated),
        ms(translation.embed_plain)
    ));
    line(format!(
        "| difference (chat) | {:+.3} ms | {:+.3} ms |",
        (translation.ttft_translated.as_secs_f64() - translation.ttft_plain.as_secs_f64()) * 1e3,
        (translation.total_translated.as_secs_f64() - translation.total_plain.as_secs_f64()) * 1e3
    ));
    line(String::new());
    let mbps = |bytes: usize, d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    line(format!(
        "Non-streamed answer with {BIG_CONTENT_BYTES} bytes of content, median of {BIG_REPEATS}:"
    ));
    line(String::new());
    line("| path | response bytes | median time | MB/s |".into());
    line("| --- | ---: | ---: | ---: |".into());
    line(format!(
        "| translated (`/v1/chat/completions`, fetched and converted by the gateway) | {} | {} | {:.0} |",
        translation.big_translated_bytes,
        ms(translation.big_translated),
        mbps(translation.big_translated_bytes, translation.big_translated)
    ));
    line(format!(
        "| untranslated (`/api/chat` through the router) | {} | {} | {:.0} |",
        translation.big_plain_bytes,
        ms(translation.big_plain),
        mbps(translation.big_plain_bytes, translation.big_plain)
    ));
    line(String::new());
}
