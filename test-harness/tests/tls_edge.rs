//! TLS at the edge: the repo's `envoy.yaml` with its https listener (`gateway_tls`) next to the
//! plain one, both on ephemeral ports, with a throwaway CA and certificate made by
//! `scripts/gen-tls.sh` in a temp dir (what `make demo` makes in `target/demo-tls/`), and the
//! redirect overlay `deploy/tls-redirect.yaml`. The official `openai` SDK over https with that
//! CA, and not without it; TLS below 1.2 and non-AEAD suites refused; HSTS on https answers only;
//! plain HTTP of the overlay only redirecting.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::demo::{envoy_yaml, gen_tls, load_yaml, DemoStack, TLS_LISTENER};
use test_harness::openai_sdk::{run_traced, run_with};
use test_harness::paths::repo_root;
use test_harness::tokens::{now, Hs256Key};
use test_harness::{Request, Response};

const HSTS: &str = "strict-transport-security";
const REDIRECT_OVERLAY: &str = "deploy/tls-redirect.yaml";
const REDIRECT_LISTENER: &str = "gateway_http_redirect";

/// A bearer token of the demo's `cli` provider, as `scripts/mint-demo-token.py` makes them.
fn api_token(stack: &DemoStack, sub: &str) -> String {
    Hs256Key::new(stack.jwt_secret.as_bytes()).mint(&json!({
        "iss": "https://gateway.demo", "aud": "qwen-web-chat", "sub": sub,
        "scope": "chat:read chat:write", "iat": now(), "exp": now() + 600
    }))
}

/// An answer as curl saw it (the last one, when it followed redirects).
struct Answer {
    status: u16,
    /// `1.1` or `2`.
    http_version: String,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `curl -sS <args>`: the final answer's status, HTTP version and headers; panics when curl
/// failed (no answer).
fn curl(args: &[&str]) -> Answer {
    let output = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-D", "-"])
        .args(["-w", "\n%{http_code} %{http_version}\n"])
        .args(["--max-time", "20"])
        .args(args)
        .output()
        .expect("run curl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<&str> = stdout.lines().collect();
    let last = lines.pop().unwrap_or_default().to_string();
    let (status, http_version) = last.split_once(' ').expect("curl's -w line");
    // The last header block: after the last status line.
    let start = lines
        .iter()
        .rposition(|l| l.starts_with("HTTP/"))
        .expect("a status line");
    let headers = lines[start + 1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status: status.parse().expect("status"),
        http_version: http_version.to_string(),
        headers,
    }
}

/// `openssl s_client` against `addr` with the given options (a client that really offers what
/// they say: security level 0, so OpenSSL itself does not drop TLS 1.0/1.1 or old suites);
/// everything it printed.
fn s_client(addr: &str, ca: &Path, options: &[&str]) -> String {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost"])
        .arg("-CAfile")
        .arg(ca)
        .args(options)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run openssl (make setup installs Debian's openssl)");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_openai_sdk_over_https_with_the_generated_ca() {
    let certs = tempfile::tempdir().expect("temp dir");
    gen_tls(certs.path());
    let ca = certs.path().join("ca.pem");
    let stack = DemoStack::start_tls(Duration::ZERO, certs.path(), &[]);
    let https = format!("{}/v1", stack.https_base());
    let token = api_token(&stack, "ci-bot");

    // With the CA: a chat and a streamed chat, through the whole gateway (auth, translation).
    let chat = run_with(
        &https,
        &token,
        "chat",
        &["--model", "gpt-4o", "--message", "Hello over TLS"],
        Some(&ca),
    );
    assert_eq!(chat["ok"], true, "{chat}");
    assert_eq!(chat["content"], "You said: Hello over TLS", "{chat}");
    let stream = run_with(
        &https,
        &token,
        "stream",
        &["--model", "gpt-4o", "--message", "streamed"],
        Some(&ca),
    );
    assert_eq!(stream["ok"], true, "{stream}");
    assert_eq!(stream["content"], "You said: streamed", "{stream}");
    let upstream = stack.ollama.requests();
    let chats: Vec<_> = upstream.iter().filter(|r| r.path == "/api/chat").collect();
    assert_eq!(chats.len(), 2);
    assert!(chats
        .iter()
        .all(|r| r.header("x-user-id") == Some("ci-bot")));

    // The gateway still refuses what it refuses over plain HTTP.
    let refused = run_with(&https, "not-a-token", "models", &[], Some(&ca));
    assert_eq!(refused["status"], 401, "{refused}");

    // `SSL_CERT_FILE=ca.pem` instead of --ca (what `make demo` prints for Python clients).
    let (via_env, log) = run_traced(
        &https,
        &token,
        "models",
        &[],
        None,
        &[("SSL_CERT_FILE", ca.to_str().expect("UTF-8 path"))],
    );
    assert_eq!(via_env["ok"], true, "{via_env}\n{log}");

    // Without the CA (the system's CAs only), the SDK refuses the certificate.
    let (untrusted, log) = run_traced(&https, &token, "models", &[], None, &[]);
    assert_eq!(untrusted["ok"], false, "{untrusted}");
    assert_eq!(
        untrusted["error_class"], "APIConnectionError",
        "{untrusted}"
    );
    assert!(
        log.contains("CERTIFICATE_VERIFY_FAILED"),
        "not a certificate error:\n{log}"
    );
    // ... and so with another throwaway CA: trust is in this CA, not in any file given.
    let other = tempfile::tempdir().expect("temp dir");
    gen_tls(other.path());
    let (wrong_ca, log) = run_traced(
        &https,
        &token,
        "models",
        &[],
        Some(&other.path().join("ca.pem")),
        &[],
    );
    assert_eq!(wrong_ca["error_class"], "APIConnectionError", "{wrong_ca}");
    assert!(log.contains("CERTIFICATE_VERIFY_FAILED"), "{log}");

    // One gateway behind both listeners: the per-user limit (10 chats a minute) counts the two
    // https chats above, so the plain listener allows 8 more, not 10.
    let plain_chat = || {
        stack.envoy.send(
            Request::post("/v1/chat/completions")
                .bearer(&token)
                .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})),
        )
    };
    for i in 0..8 {
        let answer = plain_chat();
        assert_eq!(answer.status, 200, "plain chat {i}: {}", answer.text());
    }
    assert_contract_error(&plain_chat(), 429, "RATE_LIMITED");
}

#[test]
fn tls_versions_suites_hsts_and_the_redirect_overlay() {
    let certs = tempfile::tempdir().expect("temp dir");
    gen_tls(certs.path());
    let ca = certs.path().join("ca.pem");
    let ca_arg = ca.to_str().expect("UTF-8 path");
    let overlay = repo_root().join(REDIRECT_OVERLAY);
    let stack = DemoStack::start_tls(Duration::ZERO, certs.path(), &[&overlay]);
    let tls = stack.listener_addr(TLS_LISTENER);
    let https = stack.https_base();

    // TLS 1.0 and 1.1 refused by the server (its protocol_version alert), 1.2 and 1.3 taken.
    for old in ["-tls1", "-tls1_1"] {
        let out = s_client(
            &tls.to_string(),
            &ca,
            &[old, "-cipher", "DEFAULT:@SECLEVEL=0"],
        );
        assert!(
            out.contains("alert protocol version"),
            "{old} was not refused by the server:\n{out}"
        );
    }
    let out = s_client(
        &tls.to_string(),
        &ca,
        &["-tls1_2", "-cipher", "DEFAULT:@SECLEVEL=0"],
    );
    assert!(out.contains("Protocol  : TLSv1.2"), "{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    let out = s_client(&tls.to_string(), &ca, &["-tls1_3"]);
    assert!(out.contains("New, TLSv1.3"), "{out}");
    // TLS 1.2: forward-secret AEAD suites only.
    for weak in [
        "ECDHE-ECDSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA384",
        "AES128-GCM-SHA256",
    ] {
        let out = s_client(
            &tls.to_string(),
            &ca,
            &["-tls1_2", "-cipher", &format!("{weak}:@SECLEVEL=0")],
        );
        assert!(
            out.contains("alert handshake failure"),
            "{weak} was accepted:\n{out}"
        );
    }
    for modern in [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let out = s_client(&tls.to_string(), &ca, &["-tls1_2", "-cipher", modern]);
        assert!(
            out.contains(&format!("Cipher is {modern}")),
            "{modern}:\n{out}"
        );
    }

    // HSTS on every https answer, whoever made it (Envoy's direct responses and redirects, the
    // gateway's refusals), over HTTP/2 (ALPN) and HTTP/1.1; never over plain HTTP.
    for (path, status) in [
        ("/healthz", 200),
        ("/chat", 200),
        ("/", 301),
        ("/v1/models", 401),
    ] {
        for version in ["--http2", "--http1.1"] {
            let answer = curl(&["--cacert", ca_arg, version, &format!("{https}{path}")]);
            assert_eq!(answer.status, status, "https {path} {version}");
            let expected = if version == "--http2" { "2" } else { "1.1" };
            assert_eq!(answer.http_version, expected, "https {path} {version}");
            assert_eq!(
                answer.header(HSTS),
                Some("max-age=31536000"),
                "https {path} {version}"
            );
        }
        let plain: Response = stack.envoy.send(Request::get(path));
        assert_eq!(plain.status, status, "http {path}");
        assert_eq!(plain.header(HSTS), None, "HSTS over plain HTTP on {path}");
    }
    // The redirect within https stays https.
    let root = curl(&["--cacert", ca_arg, &format!("{https}/")]);
    assert_eq!(
        root.header("location"),
        Some(format!("{https}/chat").as_str())
    );

    // The overlay's plain listener only redirects, to the same host, path and query over
    // https, without HSTS and without reaching the gateway or the model.
    let redirect = stack.listener_addr(REDIRECT_LISTENER);
    let before = stack.ollama.requests().len();
    for (method, target) in [
        ("GET", "/chat?x=1"),
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
    ] {
        let answer = Request::new(method, target)
            .header("host", format!("127.0.0.1:{}", redirect.port()))
            .send(redirect)
            .expect("an answer from the redirect listener");
        assert_eq!(answer.status, 301, "{method} {target}: {}", answer.text());
        assert_eq!(
            answer.header("location"),
            Some(format!("https://127.0.0.1:{}{target}", tls.port()).as_str()),
            "{method} {target}"
        );
        assert_eq!(answer.header(HSTS), None);
    }
    assert_eq!(stack.ollama.requests().len(), before);
    // Followed by a client that trusts the CA: the page, with HSTS.
    let followed = curl(&[
        "--cacert",
        ca_arg,
        "-L",
        &format!("http://127.0.0.1:{}/chat", redirect.port()),
    ]);
    assert_eq!(followed.status, 200);
    assert_eq!(followed.header(HSTS), Some("max-age=31536000"));
}

/// The https listener is the plain one behind TLS: the same HTTP settings, the same virtual
/// hosts and filters (aliases in envoy.yaml), its own stat prefix and route configuration name,
/// and HSTS only there; TLS 1.2 minimum, AEAD suites, ALPN, the demo certificate's paths.
#[test]
fn envoy_yaml_serves_the_same_gateway_on_both_listeners() {
    let bootstrap = envoy_yaml();
    let listeners = bootstrap["static_resources"]["listeners"]
        .as_array()
        .expect("listeners");
    let find = |name: &str| {
        listeners
            .iter()
            .find(|l| l["name"] == name)
            .unwrap_or_else(|| panic!("envoy.yaml has no listener `{name}`"))
            .clone()
    };
    let plain = find("gateway");
    let tls = find(TLS_LISTENER);
    assert_eq!(plain["address"]["socket_address"]["address"], "127.0.0.1");
    assert_eq!(plain["address"]["socket_address"]["port_value"], 8080);
    assert_eq!(tls["address"]["socket_address"]["address"], "127.0.0.1");
    assert_eq!(tls["address"]["socket_address"]["port_value"], 8443);
    assert_eq!(
        tls["per_connection_buffer_limit_bytes"],
        plain["per_connection_buffer_limit_bytes"]
    );
    assert!(plain["filter_chains"][0].get("transport_socket").is_none());

    let hcm = |listener: &Value| {
        let filters = listener["filter_chains"][0]["filters"]
            .as_array()
            .expect("filters");
        assert_eq!(filters.len(), 1);
        assert_eq!(
            filters[0]["name"],
            "envoy.filters.network.http_connection_manager"
        );
        filters[0]["typed_config"].clone()
    };
    let (mut plain_hcm, mut tls_hcm) = (hcm(&plain), hcm(&tls));
    assert_eq!(tls_hcm["stat_prefix"], "gateway_tls");
    let tls_routes = tls_hcm["route_config"].clone();
    let plain_routes = plain_hcm["route_config"].clone();
    assert_eq!(tls_routes["virtual_hosts"], plain_routes["virtual_hosts"]);
    assert_eq!(
        tls_routes["max_direct_response_body_size_bytes"],
        plain_routes["max_direct_response_body_size_bytes"]
    );
    assert_ne!(tls_routes["name"], plain_routes["name"]);
    let hsts = |routes: &Value| {
        routes["response_headers_to_add"]
            .as_array()
            .map(|headers| {
                headers
                    .iter()
                    .filter(|h| {
                        h["header"]["key"].as_str().map(str::to_lowercase) == Some(HSTS.into())
                    })
                    .map(|h| h["header"]["value"].clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(hsts(&tls_routes), vec![json!("max-age=31536000")]);
    assert!(hsts(&plain_routes).is_empty(), "HSTS on the plain listener");
    let plain_vhosts = serde_json::to_string(&plain_routes["virtual_hosts"]).unwrap();
    assert!(
        !plain_vhosts.to_lowercase().contains(HSTS),
        "HSTS in the shared virtual hosts would go out over plain HTTP too"
    );
    // Everything else of the two connection managers is the same.
    for hcm in [&mut plain_hcm, &mut tls_hcm] {
        let map = hcm.as_object_mut().expect("HCM");
        map.remove("stat_prefix");
        map.remove("route_config");
    }
    assert_eq!(
        tls_hcm, plain_hcm,
        "the two listeners' HTTP settings differ"
    );

    let context = &tls["filter_chains"][0]["transport_socket"];
    assert_eq!(context["name"], "envoy.transport_sockets.tls");
    let context = &context["typed_config"];
    assert_eq!(
        context["@type"],
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
    );
    let common = &context["common_tls_context"];
    assert_eq!(
        common["tls_params"]["tls_minimum_protocol_version"],
        "TLSv1_2"
    );
    assert_eq!(common["alpn_protocols"], json!(["h2", "http/1.1"]));
    let suites = common["tls_params"]["cipher_suites"]
        .as_array()
        .expect("cipher_suites");
    for suite in suites
        .iter()
        .flat_map(|s| s.as_str().unwrap().trim_matches(['[', ']']).split('|'))
    {
        assert!(suite.starts_with("ECDHE-"), "{suite}: not forward-secret");
        assert!(
            suite.contains("-GCM-") || suite.ends_with("-CHACHA20-POLY1305"),
            "{suite}: not AEAD"
        );
    }
    let certificate = &common["tls_certificates"][0];
    assert_eq!(
        certificate["certificate_chain"]["filename"],
        "target/demo-tls/server.pem"
    );
    assert_eq!(
        certificate["private_key"]["filename"],
        "target/demo-tls/server-key.pem"
    );

    // The overlay adds listeners only (Envoy appends them), each redirecting everything to
    // https, without HSTS.
    let overlay = load_yaml(&repo_root().join(REDIRECT_OVERLAY));
    let top: Vec<&String> = overlay.as_object().expect("overlay").keys().collect();
    assert_eq!(top, ["static_resources"]);
    let resources: Vec<&String> = overlay["static_resources"]
        .as_object()
        .expect("static_resources")
        .keys()
        .collect();
    assert_eq!(resources, ["listeners"]);
    for listener in overlay["static_resources"]["listeners"].as_array().unwrap() {
        assert!(listener
            .get("name")
            .is_some_and(|n| n != "gateway" && n != TLS_LISTENER));
        let text = serde_json::to_string(listener).unwrap().to_lowercase();
        assert!(!text.contains(HSTS), "HSTS on plain HTTP");
        let routes = &listener["filter_chains"][0]["filters"][0]["typed_config"]["route_config"];
        for host in routes["virtual_hosts"].as_array().expect("virtual_hosts") {
            for route in host["routes"].as_array().expect("routes") {
                assert_eq!(route["redirect"]["https_redirect"], true, "{route}");
            }
        }
    }
}

/// scripts/gen-tls.sh: P-256 keys, the key 0600, a server certificate for localhost and
/// 127.0.0.1 signed by the CA, at most 30 days; nothing rewritten while valid; all made anew
/// when a file is missing.
#[test]
fn gen_tls_makes_a_throwaway_ca_and_server_certificate_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    gen_tls(dir.path());
    let file = |name: &str| dir.path().join(name);
    let read = |name: &str| std::fs::read(file(name)).expect(name);
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            output.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let path = |name: &str| file(name).display().to_string();

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(file("server-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "server-key.pem mode {mode:o}");
    assert!(!file("ca-key.pem").exists(), "the CA key is kept");

    let server = openssl(&["x509", "-in", &path("server.pem"), "-noout", "-text"]);
    assert!(
        server.contains("DNS:localhost, IP Address:127.0.0.1"),
        "{server}"
    );
    assert!(server.contains("NIST CURVE: P-256"), "{server}");
    assert!(server.contains("TLS Web Server Authentication"), "{server}");
    let ca = openssl(&["x509", "-in", &path("ca.pem"), "-noout", "-text"]);
    assert!(ca.contains("CA:TRUE"), "{ca}");
    assert!(ca.contains("NIST CURVE: P-256"), "{ca}");
    let key = openssl(&["pkey", "-in", &path("server-key.pem"), "-noout", "-text"]);
    assert!(key.contains("NIST CURVE: P-256"), "{key}");
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &path("ca.pem"),
        "-purpose",
        "sslserver",
        &path("server.pem"),
    ]);
    assert!(verified.contains(": OK"), "{verified}");
    // Valid for at most 30 days (31 days from now it has expired), at least one more day.
    for (seconds, valid) in [(86_400, true), (31 * 86_400, false)] {
        let status = Command::new("openssl")
            .args(["x509", "-in", &path("server.pem"), "-noout", "-checkend"])
            .arg(seconds.to_string())
            .output()
            .expect("openssl")
            .status;
        assert_eq!(status.success(), valid, "valid in {seconds} s");
    }

    let before: Vec<Vec<u8>> = ["ca.pem", "server.pem", "server-key.pem"]
        .iter()
        .map(|n| read(n))
        .collect();
    gen_tls(dir.path());
    let after: Vec<Vec<u8>> = ["ca.pem", "server.pem", "server-key.pem"]
        .iter()
        .map(|n| read(n))
        .collect();
    assert_eq!(before, after, "a second run changed valid files");

    std::fs::remove_file(file("server.pem")).unwrap();
    gen_tls(dir.path());
    assert_ne!(
        read("ca.pem"),
        before[0],
        "a new CA with the new certificate"
    );
    assert_ne!(read("server-key.pem"), before[2]);
    let verified = openssl(&["verify", "-CAfile", &path("ca.pem"), &path("server.pem")]);
    assert!(verified.contains(": OK"), "{verified}");
}
