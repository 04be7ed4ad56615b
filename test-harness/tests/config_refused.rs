//! An invalid configuration makes Envoy refuse the plugin: with a static config Envoy exits at
//! start, its log names the field, and nothing is ever served.

use std::thread;

use test_harness::Envoy;

/// Each invalid plugin config and the error line it must produce.
const CASES: &[(&str, &str)] = &[
    (
        r#"{"default_rule": {"auth": "sometimes"}}"#,
        "config: default_rule.auth: unknown variant `sometimes`",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "limits": {"max_token_bytes": 1}}"#,
        "config: limits.max_token_bytes: must be between 64 and 65536",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "forward": {"user_header": "bad header"}}"#,
        "config: forward.user_header: `bad header` is not a valid header name",
    ),
    (r#"{"rate_limts": []}"#, "config: rate_limts: unknown field"),
    (
        r#"{"default_rule": {"auth": "none"}, "token": {"header": null}}"#,
        "config: token: needs a header or a cookie",
    ),
    (
        r#"{"default_rule": {"scopes": ["chat write"]}}"#,
        "config: default_rule.scopes[0]: `chat write` is not a valid scope",
    ),
    (
        "{}",
        "config: providers: at least one provider is needed: default_rule.auth is \"required\"",
    ),
    (
        r#"{"providers": [{"name": "p", "issuer": "i", "audiences": ["a"], "algorithms": ["none"]}]}"#,
        "config: providers[0].algorithms[0]: \"none\" is never allowed",
    ),
    (
        r#"{"providers": [{"name": "p", "issuer": "i", "audiences": ["a"], "hs256_secret": {"inline": "short"}}]}"#,
        "config: providers[0].hs256_secret: HS256 secret is 5 bytes",
    ),
    (
        r#"{"providers": [{"name": "p", "issuer": "i", "audiences": ["a"], "hs256_secret": {"env": "UNSET_SECRET_VAR"}}]}"#,
        "config: providers[0].hs256_secret.env: host variable `UNSET_SECRET_VAR` is not set",
    ),
    (
        r#"{"providers": [{"name": "p", "issuer": "i", "audiences": []}]}"#,
        "config: providers[0].audiences: must not be empty",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "data_protection": {"mask": [{"type": "email"}, {"name": "emp", "regex": "EMP-[0-9"}]}}"#,
        "config: data_protection.mask[1].regex: invalid regex",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "data_protection": {"mask": [{"type": "passport"}]}}"#,
        "config: data_protection.mask[0].type: unknown type `passport`",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "data_protection": {"deny": [{"name": "x", "regex": "a**("}]}}"#,
        "config: data_protection.deny[0].regex: invalid regex",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "cors": {"allow_origins": ["*"], "allow_credentials": true}}"#,
        "config: cors.allow_credentials: cannot be true when allow_origins has `*`",
    ),
    (
        r#"{"default_rule": {"auth": "none"}, "cors": {"allow_origins": ["https://app.example.com/chat"]}}"#,
        "config: cors.allow_origins[0]: must be an origin",
    ),
    (
        r#"{"rules": [{"name": "model", "match": {"prefix": "/"}, "auth": "none"}]}"#,
        "config: rules[0].name: `model`, `rule` and `code` are reserved",
    ),
    ("{not json", "config: (document): is not valid JSON"),
    ("[]", "config: (document): must be a JSON object"),
];

/// Envoys started at once: each compiles the module in V8, and on two cores a dozen at a time
/// can take longer than the harness waits for a start.
const AT_ONCE: usize = 4;

#[test]
fn invalid_configs_make_envoy_refuse_the_plugin_and_name_the_field() {
    let failures: Vec<String> = CASES.chunks(AT_ONCE).flat_map(refusals_of).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Starts Envoy with each config at once; what did not go as expected.
fn refusals_of(cases: &'static [(&'static str, &'static str)]) -> Vec<String> {
    let handles: Vec<_> = cases
        .iter()
        .map(|(config, expected)| {
            thread::spawn(
                move || match Envoy::builder(config).concurrency(1).start() {
                    Ok(envoy) => Err(format!(
                        "Envoy started with invalid config {config}\n{}",
                        envoy.log_tail(30)
                    )),
                    Err(exit) => {
                        let mut problems = Vec::new();
                        if exit.status.is_none_or(|s| s.success()) {
                            problems.push(format!("exit status {:?}", exit.status));
                        }
                        let error_line = exit
                            .log
                            .lines()
                            .find(|l| l.contains("config: "))
                            .unwrap_or_default();
                        if !(error_line.contains("[error]") && error_line.contains(expected)) {
                            problems.push(format!("no error line containing `{expected}`"));
                        }
                        if !exit.log.contains("Unable to create Wasm plugin") {
                            problems.push("no `Unable to create Wasm plugin`".to_string());
                        }
                        if problems.is_empty() {
                            Ok(())
                        } else {
                            let tail: Vec<&str> = exit.log.lines().rev().take(15).collect();
                            Err(format!(
                                "{config}: {}\n{}",
                                problems.join("; "),
                                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                            ))
                        }
                    }
                },
            )
        })
        .collect();
    handles
        .into_iter()
        .filter_map(|h| h.join().expect("case thread").err())
        .collect()
}

#[test]
fn a_valid_config_with_every_section_of_this_release_starts() {
    let config = r#"{
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}],
        "token": {"header": "authorization", "cookie": "gw_session", "realm": "corp"},
        "default_rule": {"auth": "required", "scopes": ["chat:read"]},
        "forward": {"user_header": "x-user-id", "scopes_header": "x-user-scopes", "strip_authorization": true},
        "limits": {"max_request_body_bytes": 10485760, "max_token_bytes": 8192}
    }"#;
    let mut envoy = Envoy::builder(config)
        .start()
        .unwrap_or_else(|e| panic!("a valid config was refused:\n{}", e.log));
    assert!(envoy.is_running());
}
