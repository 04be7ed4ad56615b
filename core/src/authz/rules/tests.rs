use super::*;
use crate::authz::route_path;
use crate::config::load;
use crate::pipeline::requirement;

fn t(source: &str) -> Template {
    Template::parse(source).unwrap()
}

#[test]
fn templates_match_one_segment_per_variable_and_any_rest() {
    let template = t("/v1/history/{team}/**");
    assert_eq!(
        template.captures("/v1/history/team-a"),
        Some(vec![("team", "team-a")])
    );
    assert_eq!(
        template.captures("/v1/history/team-a/"),
        Some(vec![("team", "team-a")])
    );
    assert_eq!(
        template.captures("/v1/history/team-a/x/y"),
        Some(vec![("team", "team-a")])
    );
    assert_eq!(template.captures("/v1/history"), None);
    assert_eq!(template.captures("/v1/history/"), None);
    assert_eq!(
        template.captures("/v1/History/team-a"),
        None,
        "case-sensitive"
    );
    assert_eq!(template.captures("/v2/history/team-a"), None);

    let exact = t("/v1/models/{id}");
    assert_eq!(
        exact.captures("/v1/models/qwen3"),
        Some(vec![("id", "qwen3")])
    );
    assert_eq!(
        exact.captures("/v1/models/qwen3/extra"),
        None,
        "no rest without **"
    );
    let two = t("/orgs/{org}/teams/{team}");
    assert_eq!(
        two.captures("/orgs/acme/teams/red"),
        Some(vec![("org", "acme"), ("team", "red")])
    );
    let root = t("/");
    assert_eq!(root.captures("/"), Some(vec![]));
    assert_eq!(root.captures("/x"), None);
    assert_eq!(t("/**").captures("/anything/at/all"), Some(vec![]));
}

#[test]
fn malformed_templates_are_refused() {
    for bad in [
        "v1/x",
        "/v1/**/x",
        "/v1/{}",
        "/v1/{1team}",
        "/v1/{team}/{team}",
        "/v1//x",
        "/v1/../x",
        "/v1/a{b}",
        "/v1/x*",
        "/v1/%2F",
        "/v1/{te-am}",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
}

fn rules(json: &str) -> crate::config::GatewayConfig {
    let text = format!(
        r#"{{"providers": [{{"name": "p", "issuer": "i", "audiences": ["a"],
             "hs256_secret": {{"inline": "0123456789abcdef0123456789abcdef"}}}}],
            "rules": {json}, "default_rule": {{"auth": "required", "scopes": ["default"]}}}}"#
    );
    load(text.as_bytes()).unwrap()
}

#[test]
fn first_matching_rule_decides_then_the_default() {
    let cfg = rules(
        r#"[
        {"match": {"prefix": "/healthz"}, "auth": "none"},
        {"match": {"path": "/v1/chat/completions", "methods": ["post"]}, "scopes": ["chat:write"]},
        {"match": {"prefix": "/v1/"}, "scopes": ["chat:read"]},
        {"match": {"template": "/v2/history/{team}/**"}, "auth": "optional", "scopes": ["history:{team}", "chat:read"]}
    ]"#,
    );
    let r = |method: &str, path: &str| requirement(&cfg, method, path);
    assert_eq!(r("GET", "/healthz").auth, AuthMode::None);
    assert_eq!(r("GET", "/healthz/deep").rule, Some(0));
    let chat = r("POST", "/v1/chat/completions");
    assert_eq!(
        (chat.rule, chat.scopes.clone()),
        (Some(1), vec!["chat:write".to_string()])
    );
    assert_eq!(
        r("POST", "/v1/chat/completions/").rule,
        Some(1),
        "trailing slash: same rule"
    );
    assert_eq!(
        r("GET", "/v1/chat/completions").rule,
        Some(2),
        "method differs: next rule"
    );
    assert_eq!(
        r("post", "/v1/chat/completions").rule,
        Some(2),
        "methods are case-sensitive"
    );
    assert_eq!(r("GET", "/v1/models").scopes, vec!["chat:read"]);
    let history = r("GET", "/v2/history/team-a/2024/05");
    assert_eq!(history.auth, AuthMode::Optional);
    assert_eq!(history.scopes, vec!["history:team-a", "chat:read"]);
    let fallback = r("GET", "/V1/models");
    assert_eq!(
        (fallback.rule, fallback.scopes),
        (None, vec!["default".to_string()])
    );
    assert_eq!(r("DELETE", "/other").auth, AuthMode::Required);
}

#[test]
fn template_scopes_substitute_the_captured_segment() {
    let cfg = rules(
        r#"[{"match": {"template": "/orgs/{org}/teams/{team}/**"}, "scopes": ["org:{org}", "{org}:{team}:read"]}]"#,
    );
    assert_eq!(
        requirement(&cfg, "GET", "/orgs/acme/teams/red/members").scopes,
        vec!["org:acme", "acme:red:read"]
    );
}

/// `"GET,POST prefix /v1/"` or `"template /v1/{x}"`: optional methods, kind, path.
fn matcher(spec: &str) -> RouteMatch {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let (methods, kind, path) = match words.as_slice() {
        [kind, path] => (None, *kind, *path),
        [methods, kind, path] => (
            Some(methods.split(',').map(str::to_string).collect()),
            *kind,
            *path,
        ),
        _ => panic!("bad matcher spec {spec:?}"),
    };
    let path = match kind {
        "path" => PathMatch::Exact(path.into()),
        "prefix" => PathMatch::Prefix(path.into()),
        "template" => PathMatch::Template(t(path)),
        _ => panic!("bad matcher kind in {spec:?}"),
    };
    RouteMatch { path, methods }
}

#[test]
fn a_rule_is_shadowed_only_when_an_earlier_one_takes_all_its_requests() {
    // (earlier, later, whether `later` can never decide)
    let cases: &[(&str, &str, bool)] = &[
        ("path /a", "path /a", true),
        ("GET,POST path /a", "POST path /a", true),
        ("GET path /a", "POST path /a", false),
        ("GET path /a", "path /a", false),
        ("path /a", "GET path /a", true),
        ("prefix /v1/", "POST path /v1/chat", true),
        ("prefix /v1/", "path /v1", false),
        ("prefix /v1", "prefix /v1/models", true),
        ("prefix /v1/models", "prefix /v1/", false),
        ("prefix /v1/models", "prefix /v1", false),
        ("prefix /", "template /**", true),
        ("prefix /v1/", "template /v1/history/{team}/**", true),
        ("prefix /v1/hi", "template /v1/history/{team}", true),
        ("prefix /v1/history/", "template /v1/history/{team}", true),
        ("prefix /v1/history/t", "template /v1/history/{team}", false),
        ("prefix /v1/models/", "template /v1/models", false),
        ("prefix /v1/models", "template /v1/models/**", true),
        ("path /v1/models", "template /v1/models", true),
        ("path /v1/models", "template /v1/models/**", false),
        ("path /v1/chat", "prefix /v1/chat", false),
        ("template /v1/models", "path /v1/models", true),
        ("template /v1/models/{id}", "path /v1/models/x", true),
        ("path /v1/models/x", "template /v1/models/{id}", false),
        ("template /v1/**", "path /v1", true),
        ("template /v1/**", "prefix /v1/", true),
        ("template /v1/**", "prefix /v1", false),
        ("template /v1/models/**", "prefix /v1/models", false),
        ("template /v1/{x}/**", "prefix /v1/a", true),
        ("template /v1/{x}/**", "prefix /v1/", false),
        ("template /v1/{x}", "prefix /v1/a", false),
        (
            "template /v1/history/{team}/**",
            "prefix /v1/history/team-a/",
            true,
        ),
        (
            "template /v1/history/{team}/**",
            "prefix /v1/history/",
            false,
        ),
        ("template /v1/{a}/x", "template /v1/{b}/x", true),
        ("template /v1/{a}/x", "template /v1/{b}/y", false),
        (
            "template /v1/history/{team}/**",
            "template /v1/history/admin/**",
            true,
        ),
        (
            "template /v1/history/admin/**",
            "template /v1/history/{team}/**",
            false,
        ),
        ("template /v1/{x}/**", "template /v1/{x}", true),
        ("template /v1/{x}", "template /v1/{x}/**", false),
        ("template /**", "template /{x}/history/{team}", true),
        ("template /**", "prefix /anything", true),
        ("template /**", "path /", true),
        ("template /", "path /", true),
        ("template /", "template /**", false),
        ("GET template /**", "GET,POST path /a", false),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter(|(earlier, later, shadowed)| matcher(earlier).shadows(&matcher(later)) != *shadowed)
        .map(|(earlier, later, shadowed)| {
            format!("{earlier:?} then {later:?}: expected shadowed={shadowed}")
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Every path of up to four segments made of the matchers' own segments, each of them
/// lengthened, and a segment none of them names; with and without a trailing slash; as
/// `route_path` accepts them.
fn sample_paths(sources: &[&str]) -> Vec<String> {
    let mut segments: Vec<String> = vec!["z".into()];
    for source in sources {
        for part in source.split('/') {
            if part.is_empty() || part == "**" || part.starts_with('{') {
                continue;
            }
            for segment in [part.to_string(), format!("{part}z")] {
                if !segments.contains(&segment) {
                    segments.push(segment);
                }
            }
        }
    }
    let mut level: Vec<String> = vec![String::new()];
    let mut paths: Vec<String> = vec!["/".into()];
    for _ in 0..4 {
        level = level
            .iter()
            .flat_map(|path| segments.iter().map(move |s| format!("{path}/{s}")))
            .collect();
        for path in &level {
            paths.push(path.clone());
            paths.push(format!("{path}/"));
        }
    }
    paths.retain(|p| route_path(p).as_deref() == Ok(p.as_str()));
    paths
}

#[test]
fn path_coverage_agrees_with_matching_every_sample_path() {
    let specs = [
        "path /",
        "path /v1",
        "path /v1/hist",
        "path /v1/history",
        "path /v1/history/a",
        "prefix /",
        "prefix /v1",
        "prefix /v1/",
        "prefix /v1/hist",
        "prefix /v1/history",
        "prefix /v1/history/",
        "prefix /v1/history/a",
        "prefix /v1/history/a/",
        "prefix /v1/a/",
        "prefix /v1/.",
        "prefix /v2",
        "template /",
        "template /**",
        "template /v1",
        "template /v1/**",
        "template /{x}",
        "template /{x}/**",
        "template /{x}/{y}",
        "template /v1/{x}",
        "template /v1/{x}/**",
        "template /v1/{x}/a",
        "template /v1/{y}/a",
        "template /v1/{x}/{y}/**",
        "template /{x}/history/**",
        "template /v1/history",
        "template /v1/history/**",
        "template /v1/history/{team}",
        "template /v1/history/{team}/**",
        "template /v1/history/a/**",
    ];
    let sources: Vec<&str> = specs
        .iter()
        .filter_map(|s| s.split_whitespace().last())
        .collect();
    let paths = sample_paths(&sources);
    let matchers: Vec<PathMatch> = specs.iter().map(|s| matcher(s).path).collect();
    let matched: Vec<Vec<bool>> = matchers
        .iter()
        .map(|m| paths.iter().map(|p| m.captures(p).is_some()).collect())
        .collect();
    let mut wrong = Vec::new();
    for (i, earlier) in matchers.iter().enumerate() {
        for (j, later) in matchers.iter().enumerate() {
            let uncovered = paths
                .iter()
                .zip(matched[i].iter().zip(&matched[j]))
                .find(|(_, (by_earlier, by_later))| **by_later && !**by_earlier)
                .map(|(path, _)| path);
            if earlier.covers(later) != uncovered.is_none() {
                wrong.push(format!(
                    "{:?} then {:?}: covers={}, first path only the later matches: {uncovered:?}",
                    specs[i],
                    specs[j],
                    earlier.covers(later)
                ));
            }
        }
    }
    assert!(paths.len() > 10_000, "{} sample paths", paths.len());
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn scope_patterns_need_their_variables() {
    let template = t("/h/{team}");
    assert!(ScopePattern::parse("history:{team}", Some(&template)).is_ok());
    assert!(ScopePattern::parse("history:{org}", Some(&template)).is_err());
    assert!(ScopePattern::parse("history:{team}", None).is_err());
    assert!(ScopePattern::parse("history:{team", Some(&template)).is_err());
    assert!(ScopePattern::parse("history:team}", Some(&template)).is_err());
    let plain = ScopePattern::parse("chat:read", None).unwrap();
    assert_eq!(plain.resolve(&vec![]), "chat:read");
}

#[test]
fn scope_patterns_know_which_scopes_they_can_require() {
    let template = t("/h/{team}/**");
    let pattern = ScopePattern::parse("history:{team}", Some(&template)).unwrap();
    assert!(pattern.could_require("history:team-a"));
    assert!(!pattern.could_require("history:"));
    assert!(!pattern.could_require("chat:read"));
    let plain = ScopePattern::parse("chat:read", None).unwrap();
    assert!(plain.could_require("chat:read"));
    assert!(!plain.could_require("chat:read2"));
}
