//! A real OpenID Provider for the OAuth2/OIDC tests: npm `oidc-provider` driven by
//! `test-harness/oidc/idp.mjs` (run with `node` from `PATH`, dependencies from
//! `test-harness/node_modules`, installed by `make setup`), plus a cookie-keeping HTTP
//! [`Browser`] that shows every redirect hop, and [`login`], which fills the provider's login
//! form.
//!
//! The provider listens on `127.0.0.1` (ephemeral port by default); its issuer is
//! `http://127.0.0.1:<port>` and it serves discovery (`/.well-known/openid-configuration`),
//! `/jwks`, `/auth`, `/token`, `/me` (userinfo), `/token/revocation` and `/session/end`
//! (RP-initiated logout). PKCE (S256) is required for every client; only `response_type=code`.
//!
//! Login: `/auth?...` answers 303 to `/interaction/<uid>` (a form with `login` and `password`);
//! posting it to `/interaction/<uid>/login` with a configured user (any password) signs in and
//! grants consent at once (openid, profile, email, offline_access and the user's own scopes, as
//! far as requested), answering 303 to `/auth/<uid>`, which answers 303 to the client's
//! `redirect_uri?code=...&state=...&iss=...`. An unknown user gets the form again with a 401.
//! With a live provider session, `/auth?...` answers 303 to the redirect URI straight away.
//!
//! A client configured without redirect URIs accepts any loopback http redirect URI (the
//! gateway's port is only known once Envoy runs); the same for post-logout redirect URIs. More
//! can be registered while running ([`OidcProvider::register_redirect_uris`]).
//!
//! ```no_run
//! use test_harness::oidc::{login, Browser, OidcOptions, OidcProvider};
//! let idp = OidcProvider::start(OidcOptions::default());
//! // ... start Envoy with the gateway pointing at `idp.issuer` ...
//! let mut browser = Browser::new();
//! # let gateway = "127.0.0.1:1";
//! let (_, authorization_url) =
//!     browser.follow(&format!("http://{gateway}/chat"), &idp.issuer);
//! let callback = format!("http://{gateway}/oauth2/callback");
//! let back = login(&mut browser, &authorization_url, &callback, "alice");
//! let (_response, _url) = browser.follow(&back, "http://never/");
//! ```

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::http::{Request, Response};

/// How long the provider may take to print its ready line. It needs well under a second on an
/// idle machine; the margin is for a CI machine whose two cores are busy with Envoys and builds.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Starts tried before giving up: a start that stalls is killed and tried once more.
const START_ATTEMPTS: u32 = 2;

/// How many redirects [`Browser::follow`] takes before giving up.
const MAX_REDIRECTS: usize = 20;

/// The custom scopes the provider knows (besides openid, profile, email, offline_access).
pub const EXTRA_SCOPES: [&str; 4] = [
    "chat:read",
    "chat:write",
    "history:team-a",
    "history:team-b",
];

/// A registered client (relying party).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    pub client_id: String,
    pub client_secret: String,
    /// Exact redirect URIs. Empty: any loopback http URI is accepted.
    pub redirect_uris: Vec<String>,
    /// Exact post-logout redirect URIs. Empty: any loopback http URI is accepted.
    pub post_logout_redirect_uris: Vec<String>,
    /// `token_endpoint_auth_method`: `client_secret_basic` or `client_secret_post`; the
    /// provider refuses the other one for this client.
    pub auth_method: String,
}

impl Default for OidcClient {
    fn default() -> Self {
        Self {
            client_id: "qwen-web-chat".to_string(),
            client_secret: "test-client-secret-0123456789abcdef".to_string(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            auth_method: "client_secret_basic".to_string(),
        }
    }
}

/// A user who can sign in (with any password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcUser {
    /// The login name, also the `sub`.
    pub login: String,
    pub email: String,
    pub name: String,
    /// Space-separated custom scopes this user may be granted (e.g. `chat:read chat:write`).
    pub scopes: String,
    /// IdP roles, released in the ID token as `roles` (Azure AD's shape) and
    /// `realm_access.roles` (Keycloak's).
    pub roles: Vec<String>,
}

impl OidcUser {
    pub fn new(login: &str, email: &str, name: &str, scopes: &str) -> Self {
        Self {
            login: login.to_string(),
            email: email.to_string(),
            name: name.to_string(),
            scopes: scopes.to_string(),
            roles: Vec::new(),
        }
    }

    pub fn with_roles(mut self, roles: &[&str]) -> Self {
        self.roles = roles.iter().map(|r| r.to_string()).collect();
        self
    }
}

/// How to start the provider.
#[derive(Debug, Clone)]
pub struct OidcOptions {
    /// 0: an ephemeral port.
    pub port: u16,
    pub clients: Vec<OidcClient>,
    pub users: Vec<OidcUser>,
}

impl Default for OidcOptions {
    /// Ephemeral port; client `qwen-web-chat` (client_secret_basic, any loopback redirect URI);
    /// users alice (chat:read chat:write history:team-a) and bob (chat:read).
    fn default() -> Self {
        Self {
            port: 0,
            clients: vec![OidcClient::default()],
            users: vec![
                OidcUser::new(
                    "alice",
                    "alice@example.test",
                    "Alice Example",
                    "chat:read chat:write history:team-a",
                ),
                OidcUser::new("bob", "bob@example.test", "Bob Example", "chat:read"),
            ],
        }
    }
}

impl OidcOptions {
    /// The `IDP_CONFIG` document `idp.mjs` reads.
    pub fn config_json(&self) -> Value {
        let clients: Vec<Value> = self
            .clients
            .iter()
            .map(|c| {
                json!({
                    "client_id": c.client_id,
                    "client_secret": c.client_secret,
                    "redirect_uris": c.redirect_uris,
                    "post_logout_redirect_uris": c.post_logout_redirect_uris,
                    "token_endpoint_auth_method": c.auth_method,
                })
            })
            .collect();
        let users: serde_json::Map<String, Value> = self
            .users
            .iter()
            .map(|u| {
                (
                    u.login.clone(),
                    json!({"email": u.email, "name": u.name, "scope_grants": u.scopes,
                           "roles": u.roles}),
                )
            })
            .collect();
        json!({
            "port": self.port,
            "clients": clients,
            "users": users,
            "extra_scopes": EXTRA_SCOPES,
        })
    }
}

/// The running provider. Dropping it stops the process group.
pub struct OidcProvider {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:<port>`.
    pub issuer: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
    stopped: bool,
}

impl OidcProvider {
    /// Starts `node test-harness/oidc/idp.mjs` and waits for its ready line; a start that stalls
    /// is tried again once. Panics with the provider's stderr when it does not come up.
    pub fn start(options: OidcOptions) -> OidcProvider {
        let mut failures = Vec::new();
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&options) {
                Ok(provider) => return provider,
                Err(failure) => {
                    eprintln!("OpenID Provider start {attempt}/{START_ATTEMPTS}: {failure}");
                    failures.push(failure);
                }
            }
        }
        panic!("{}", failures.join("\n"));
    }

    fn try_start(options: &OidcOptions) -> Result<OidcProvider, String> {
        let begun = Instant::now();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let script = dir.join("oidc/idp.mjs");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run `make setup` (or `cd test-harness && npm ci`)"
        );
        let mut child = Command::new("node")
            .arg(&script)
            .current_dir(dir.join("oidc"))
            .env("IDP_CONFIG", options.config_json().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawn node {} (is Node.js on PATH?): {e}", script.display())
            });

        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_thread = {
            let pipe = child.stderr.take().expect("stderr piped");
            let stderr = Arc::clone(&stderr);
            thread::spawn(move || crate::process::drain(pipe, &stderr))
        };
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        {
            let pipe = child.stdout.take().expect("stdout piped");
            thread::spawn(move || {
                // Keeps reading after the ready line so the child never blocks on a full pipe.
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let _ = lines_tx.send(line);
                }
            });
        }

        let mut provider = OidcProvider {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            issuer: String::new(),
            child,
            stderr,
            stopped: false,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let failure = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines_rx.recv_timeout(left) {
                Ok(line) => {
                    let Ok(ready) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    if let (Some(issuer), Some(port)) =
                        (ready["issuer"].as_str(), ready["port"].as_u64())
                    {
                        provider.issuer = issuer.to_string();
                        provider.addr = SocketAddr::from(([127, 0, 0, 1], port as u16));
                        return Ok(provider);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break "did not print its ready line in time"
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break "exited before it was ready",
            }
        };
        provider.stop();
        let _ = stderr_thread.join();
        Err(format!(
            "OpenID Provider {failure} ({:.1} s after spawn)\n--- idp stderr ---\n{}",
            begun.elapsed().as_secs_f64(),
            provider.stderr_log()
        ))
    }

    /// `issuer` + `path` (e.g. `/token`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }

    /// `host:port`, as the `host` header and the [`Browser`] jar key.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// What the provider wrote to stderr so far (oidc-provider notices, refused logins, errors).
    pub fn stderr_log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Registers more exact redirect URIs and post-logout redirect URIs for `client_id` while
    /// the provider runs (test-only endpoint `POST /__test/clients/<client_id>`).
    pub fn register_redirect_uris(
        &self,
        client_id: &str,
        redirect_uris: &[&str],
        post_logout_redirect_uris: &[&str],
    ) {
        let body = json!({
            "redirect_uris": redirect_uris,
            "post_logout_redirect_uris": post_logout_redirect_uris,
        });
        let response = Request::post(&format!(
            "/__test/clients/{}",
            form_encode_component(client_id)
        ))
        .header("host", self.host_port())
        .json(&body)
        .send(self.addr)
        .expect("idp answers");
        assert_eq!(
            response.status,
            204,
            "register redirect URIs: {}",
            response.text()
        );
    }

    /// Switches the provider's test hooks (`idp.mjs` header): `decoy_jwks` (the JWKS endpoint
    /// serves a key that is not the signing key), `hide_end_session` (discovery without
    /// `end_session_endpoint`).
    pub fn test_settings(&self, settings: Value) {
        let response = Request::post("/__test/settings")
            .header("host", self.host_port())
            .json(&settings)
            .send(self.addr)
            .expect("idp answers");
        assert_eq!(response.status, 204, "test settings: {}", response.text());
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        let response = Request::get("/.well-known/openid-configuration")
            .header("host", self.host_port())
            .send(self.addr)
            .expect("idp answers");
        assert_eq!(response.status, 200, "discovery: {}", response.text());
        response.json()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the process group: SIGTERM, then SIGKILL after 5 s. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        crate::process::stop_group(&mut self.child);
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        if thread::panicking() && !self.stopped {
            let log = self.stderr_log();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "--- idp stderr (tail) ---\n{}",
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        self.stop();
    }
}

/// One stored cookie.
#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
    /// None: a session cookie.
    expires: Option<SystemTime>,
}

/// A cookie-keeping HTTP client that does not follow redirects by itself.
///
/// The jar is per `host:port` (real browsers share cookies across ports of a host; the gateway
/// and the provider use different cookie names anyway). `Path` is honoured (the provider scopes
/// its interaction cookies to `/interaction/<uid>` and `/auth/<uid>`), so are `Max-Age` and
/// `Expires` (deletion and expiry); `Domain`, `Secure`, `HttpOnly` and `SameSite` are ignored
/// (every request counts as same-site, top-level and secure enough).
#[derive(Debug, Clone, Default)]
pub struct Browser {
    jar: BTreeMap<String, Vec<Cookie>>,
}

impl Browser {
    pub fn new() -> Self {
        Self::default()
    }

    /// GET an absolute URL (`http://127.0.0.1:port/path?q`), with the jar's cookies for that
    /// `host:port` and path; stores the answer's `Set-Cookie`s.
    pub fn get(&mut self, url: &str) -> Response {
        self.send(url, Request::get("/"))
    }

    /// POST a form (`application/x-www-form-urlencoded`).
    pub fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Response {
        let request = Request::post("/")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_encode(form));
        self.send(url, request)
    }

    /// Sends `request` (its method, headers and body; target and `host` come from `url`) with
    /// the jar's cookies (added to any `cookie` header it has), storing `Set-Cookie`s. Panics
    /// when no response comes.
    pub fn send(&mut self, url: &str, request: Request) -> Response {
        let (host_port, target) = split_url(url);
        let path = target_path(&target).to_string();
        let mut request = request;
        request.target = target;
        if !request
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            request
                .headers
                .insert(0, ("host".to_string(), host_port.clone().into_bytes()));
        }
        let jar_cookies = self.cookie_header(&host_port, &path);
        if !jar_cookies.is_empty() {
            match request
                .headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            {
                Some((_, value)) => {
                    value.extend_from_slice(b"; ");
                    value.extend_from_slice(jar_cookies.as_bytes());
                }
                None => request
                    .headers
                    .push(("cookie".to_string(), jar_cookies.into_bytes())),
            }
        }
        let addr = resolve(&host_port);
        let response = request
            .send(addr)
            .unwrap_or_else(|e| panic!("no response for {} {url}: {e}", request.method));
        for (name, value) in &response.headers {
            if name == "set-cookie" {
                self.store(&host_port, &path, value);
            }
        }
        response
    }

    /// Follows `Location` redirects from `url` (GETs) until a response is not a redirect, or its
    /// `Location` (made absolute) starts with `stop_prefix`, which is then not fetched. Returns
    /// the last response and the URL it came from, or the stop URL.
    pub fn follow(&mut self, url: &str, stop_prefix: &str) -> (Response, String) {
        let mut url = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            let response = self.get(&url);
            let Some(location) = redirect_location(&response) else {
                return (response, url);
            };
            let next = resolve_url(&url, location);
            if next.starts_with(stop_prefix) {
                return (response, next);
            }
            url = next;
        }
        panic!("more than {MAX_REDIRECTS} redirects, the last to {url}");
    }

    /// The value of cookie `name` for `host_port` (any path), if stored and not expired.
    pub fn cookie(&self, host_port: &str, name: &str) -> Option<String> {
        let now = SystemTime::now();
        self.jar
            .get(host_port)?
            .iter()
            .filter(|c| c.expires.is_none_or(|t| t > now))
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    }

    /// All live cookies for `host_port` as (name, value), longest path first.
    pub fn cookies(&self, host_port: &str) -> Vec<(String, String)> {
        let now = SystemTime::now();
        let mut cookies: Vec<&Cookie> = self
            .jar
            .get(host_port)
            .map(|list| {
                list.iter()
                    .filter(|c| c.expires.is_none_or(|t| t > now))
                    .collect()
            })
            .unwrap_or_default();
        cookies.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        cookies
            .into_iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    /// Sets cookie `name` (tests tamper with cookies): replaces the value of every stored
    /// cookie of that name for `host_port`, or adds one with `Path=/`.
    pub fn set_cookie(&mut self, host_port: &str, name: &str, value: &str) {
        let list = self.jar.entry(host_port.to_string()).or_default();
        let mut found = false;
        for cookie in list.iter_mut().filter(|c| c.name == name) {
            cookie.value = value.to_string();
            found = true;
        }
        if !found {
            list.push(Cookie {
                name: name.to_string(),
                value: value.to_string(),
                path: "/".to_string(),
                expires: None,
            });
        }
    }

    /// Forgets cookie `name` for `host_port` (every path).
    pub fn remove_cookie(&mut self, host_port: &str, name: &str) {
        if let Some(list) = self.jar.get_mut(host_port) {
            list.retain(|c| c.name != name);
        }
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.jar.clear();
    }

    fn cookie_header(&mut self, host_port: &str, path: &str) -> String {
        let now = SystemTime::now();
        let Some(list) = self.jar.get_mut(host_port) else {
            return String::new();
        };
        list.retain(|c| c.expires.is_none_or(|t| t > now));
        let mut matching: Vec<&Cookie> = list
            .iter()
            .filter(|c| path_matches(path, &c.path))
            .collect();
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn store(&mut self, host_port: &str, request_path: &str, header: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return;
        }
        let mut path = default_path(request_path);
        let mut max_age: Option<i64> = None;
        let mut expires: Option<SystemTime> = None;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            let (key, val) = (key.trim().to_ascii_lowercase(), val.trim());
            match key.as_str() {
                "path" if val.starts_with('/') => path = val.to_string(),
                "max-age" => max_age = val.parse().ok(),
                "expires" => expires = parse_http_date(val),
                _ => {}
            }
        }
        let now = SystemTime::now();
        let expires = match max_age {
            Some(seconds) if seconds <= 0 => Some(UNIX_EPOCH),
            Some(seconds) => Some(now + Duration::from_secs(seconds as u64)),
            None => expires,
        };
        let list = self.jar.entry(host_port.to_string()).or_default();
        list.retain(|c| !(c.name == name && c.path == path));
        if expires.is_none_or(|t| t > now) {
            list.push(Cookie {
                name: name.to_string(),
                value: value.to_string(),
                path,
                expires,
            });
        }
    }
}

/// `GET <gateway>/oauth2/login?rd=<rd>` until the gateway has the IdP's configuration (it
/// answers 503 before, for up to 15 s); the last answer (a 302 to the IdP once ready).
pub fn gateway_login_redirect(browser: &mut Browser, gateway: SocketAddr, rd: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = browser.get(&format!("http://{gateway}/oauth2/login?rd={rd}"));
        if response.status != 503 || Instant::now() > deadline {
            return response;
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// A whole browser login through the gateway at `gateway`: its redirect, the provider's form as
/// `user`, and the gateway's callback; the callback's answer (the session-setting redirect).
pub fn gateway_login(browser: &mut Browser, gateway: SocketAddr, user: &str, rd: &str) -> Response {
    let redirect = gateway_login_redirect(browser, gateway, rd);
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let authorize = redirect.header("location").unwrap_or_default().to_string();
    let callback = login(
        browser,
        &authorize,
        &format!("http://{gateway}/oauth2/callback"),
        user,
    );
    browser.get(&callback)
}

/// Drives the provider's login for `authorization_url` (where the gateway sent the browser):
/// follows to the login form, submits `login` (any password), submits any further form the
/// provider shows (consent, session switch), and returns the redirect URL back to the client
/// (starting with `redirect_uri_prefix`) without requesting it. Panics when the login is
/// refused or the flow ends elsewhere.
pub fn login(
    browser: &mut Browser,
    authorization_url: &str,
    redirect_uri_prefix: &str,
    login: &str,
) -> String {
    try_login(browser, authorization_url, redirect_uri_prefix, login).unwrap_or_else(|response| {
        panic!(
            "login of {login:?} did not get back to {redirect_uri_prefix}: {} {}",
            response.status,
            response.text()
        )
    })
}

/// [`login`], returning the response the flow stopped at instead of panicking (an unknown user
/// gets the login form again, status 401; an error page, status 400, for a bad request).
pub fn try_login(
    browser: &mut Browser,
    authorization_url: &str,
    redirect_uri_prefix: &str,
    login: &str,
) -> Result<String, Response> {
    let (mut response, mut url) = browser.follow(authorization_url, redirect_uri_prefix);
    for _ in 0..8 {
        if url.starts_with(redirect_uri_prefix) && redirect_location(&response).is_some() {
            return Ok(url);
        }
        let Some(mut form) = HtmlForm::parse(&response.text()) else {
            return Err(response);
        };
        if form.field("login").is_some() {
            form.set("login", login);
            form.set("password", "any-password");
        }
        let action = form.submit(browser, &url);
        response = action.0;
        let Some(location) = redirect_location(&response) else {
            return Err(response);
        };
        let next = resolve_url(&action.1, location);
        if next.starts_with(redirect_uri_prefix) {
            return Ok(next);
        }
        (response, url) = browser.follow(&next, redirect_uri_prefix);
    }
    Err(response)
}

/// RP-initiated logout as a browser does it: follows `end_session_url`
/// (`<issuer>/session/end?client_id=...&post_logout_redirect_uri=...&state=...`, or with
/// `id_token_hint`), confirms the provider's sign-out form, and follows on until a redirect to
/// `stop_prefix` (returned, not fetched) or a page without a form (the provider's own
/// "signed out" page when no post-logout redirect URI was given).
pub fn logout(
    browser: &mut Browser,
    end_session_url: &str,
    stop_prefix: &str,
) -> (Response, String) {
    let (mut response, mut url) = browser.follow(end_session_url, stop_prefix);
    for _ in 0..4 {
        if url.starts_with(stop_prefix) && redirect_location(&response).is_some() {
            break;
        }
        let Some(form) = HtmlForm::parse(&response.text()) else {
            break;
        };
        let (posted, action) = form.submit(browser, &url);
        let Some(location) = redirect_location(&posted) else {
            return (posted, action);
        };
        let next = resolve_url(&action, location);
        if next.starts_with(stop_prefix) {
            return (posted, next);
        }
        (response, url) = browser.follow(&next, stop_prefix);
    }
    (response, url)
}

/// The first `<form>` of an HTML page: its action, method and the fields a submit sends
/// (inputs with a name, and the first named submit button).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlForm {
    pub action: String,
    /// Lower case; `get` when absent.
    pub method: String,
    pub fields: Vec<(String, String)>,
}

impl HtmlForm {
    pub fn parse(html: &str) -> Option<HtmlForm> {
        let lower = html.to_ascii_lowercase();
        let start = lower.find("<form")?;
        let end = lower[start..]
            .find("</form")
            .map_or(html.len(), |e| start + e);
        let tag_end = lower[start..].find('>').map(|e| start + e)?;
        let attrs = tag_attributes(&html[start + 5..tag_end]);
        let get = |attrs: &[(String, String)], name: &str| {
            attrs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let mut form = HtmlForm {
            action: get(&attrs, "action").unwrap_or_default(),
            method: get(&attrs, "method")
                .unwrap_or_else(|| "get".to_string())
                .to_ascii_lowercase(),
            fields: Vec::new(),
        };
        let mut button_taken = false;
        let mut at = tag_end;
        while let Some(offset) = lower[at..end].find('<') {
            let open = at + offset;
            let close = lower[open..end].find('>').map_or(end, |e| open + e);
            let tag = &lower[open + 1..close];
            let attrs_of = |len: usize| tag_attributes(&html[open + 1 + len..close]);
            if tag.starts_with("input") {
                let attrs = attrs_of(5);
                let kind = get(&attrs, "type")
                    .unwrap_or_else(|| "text".to_string())
                    .to_ascii_lowercase();
                if let Some(name) = get(&attrs, "name") {
                    let value = get(&attrs, "value").unwrap_or_default();
                    match kind.as_str() {
                        "submit" | "image" | "button" | "reset" => {
                            if kind == "submit" && !button_taken {
                                form.fields.push((name, value));
                                button_taken = true;
                            }
                        }
                        "checkbox" | "radio" => {
                            if attrs.iter().any(|(n, _)| n == "checked") {
                                form.fields.push((
                                    name,
                                    if value.is_empty() {
                                        "on".to_string()
                                    } else {
                                        value
                                    },
                                ));
                            }
                        }
                        _ => form.fields.push((name, value)),
                    }
                }
            } else if tag.starts_with("button") {
                let attrs = attrs_of(6);
                let kind = get(&attrs, "type").unwrap_or_else(|| "submit".to_string());
                if let (false, "submit", Some(name)) =
                    (button_taken, kind.as_str(), get(&attrs, "name"))
                {
                    form.fields
                        .push((name, get(&attrs, "value").unwrap_or_default()));
                    button_taken = true;
                }
            }
            at = close.max(open + 1);
        }
        Some(form)
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or adds) a field.
    pub fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
    }

    /// Submits the form found on `page_url`; returns the response and the URL submitted to.
    pub fn submit(&self, browser: &mut Browser, page_url: &str) -> (Response, String) {
        let action = if self.action.is_empty() {
            page_url.to_string()
        } else {
            resolve_url(page_url, &self.action)
        };
        let fields: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        if self.method == "post" {
            (browser.post_form(&action, &fields), action)
        } else {
            let base = action.split('?').next().unwrap_or(&action);
            let url = format!("{base}?{}", form_encode(&fields));
            (browser.get(&url), url)
        }
    }
}

/// `name=value` attributes of a tag (names lower-cased, values HTML-unescaped).
fn tag_attributes(text: &str) -> Vec<(String, String)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len()
            && !bytes[i].is_ascii_whitespace()
            && bytes[i] != b'='
            && bytes[i] != b'/'
        {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = text[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let value = if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let begin = i + 1;
                i = begin;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                let value = &text[begin..i.min(bytes.len())];
                i += 1;
                value
            } else {
                let begin = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                &text[begin..i]
            };
            out.push((name, html_unescape(value)));
        } else {
            out.push((name, String::new()));
        }
    }
    out
}

fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest[..rest.len().min(12)].find(';') else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn redirect_location(response: &Response) -> Option<&str> {
    if matches!(response.status, 301 | 302 | 303 | 307 | 308) {
        response.header("location")
    } else {
        None
    }
}

/// Splits `http://host:port/path?q#f` into (`host:port`, `/path?q`).
fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only absolute http:// URLs are supported: {url}"));
    let rest = rest.split('#').next().unwrap_or(rest);
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_port = rest[..split].to_string();
    let target = match &rest[split..] {
        "" => "/".to_string(),
        t if t.starts_with('?') => format!("/{t}"),
        t => t.to_string(),
    };
    (host_port, target)
}

fn resolve(host_port: &str) -> SocketAddr {
    let with_port = if host_port.starts_with('[') {
        if host_port.contains("]:") {
            host_port.to_string()
        } else {
            format!("{host_port}:80")
        }
    } else if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:80")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve {host_port}"))
}

fn target_path(target: &str) -> &str {
    target.split('?').next().unwrap_or("/")
}

/// RFC 6265 5.1.4 default-path.
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => request_path[..i].to_string(),
    }
}

/// RFC 6265 5.1.4 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// An IMF-fixdate (`Thu, 01 Jan 1970 00:00:00 GMT`); None when it is anything else.
fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, _] = parts.as_slice() else {
        return None;
    };
    let day: i64 = day.parse().ok()?;
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| month.eq_ignore_ascii_case(m))? as i64
        + 1;
    let year: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + h * 3600 + m * 60 + s;
    if seconds <= 0 {
        Some(UNIX_EPOCH)
    } else {
        Some(UNIX_EPOCH + Duration::from_secs(seconds as u64))
    }
}

/// Makes `location` absolute against `base` (an absolute http URL).
pub fn resolve_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    if let Some(rest) = location.strip_prefix("//") {
        return format!("http://{rest}");
    }
    let (host_port, target) = split_url(base);
    if location.starts_with('/') {
        return format!("http://{host_port}{location}");
    }
    let path = target_path(&target);
    if location.starts_with('?') {
        return format!("http://{host_port}{path}{location}");
    }
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("http://{host_port}{dir}{location}")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn form_encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `a=1&b=2`, percent-encoded.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", form_encode_component(k), form_encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` and `+` (form/query encoding).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded value of query parameter `name` in `url` (first occurrence).
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split('#').next()?.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

/// A PKCE S256 `code_challenge` for `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A random PKCE verifier (43 characters), also fine as `state` or `nonce`.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The (unverified) payload of a JWT.
pub fn jwt_payload(token: &str) -> Value {
    let payload = token
        .split('.')
        .nth(1)
        .unwrap_or_else(|| panic!("not a JWT: {token}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap_or_else(|e| panic!("JWT payload is not base64url ({e}): {token}"));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("JWT payload is not JSON ({e}): {token}"))
}

/// `authorization: Basic ...` for client_secret_basic (RFC 6749 2.3.1: each part form-encoded).
pub fn basic_auth(client_id: &str, client_secret: &str) -> String {
    let credentials = format!(
        "{}:{}",
        form_encode_component(client_id),
        form_encode_component(client_secret)
    );
    format!("Basic {}", STANDARD.encode(credentials))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALLBACK: &str = "http://127.0.0.1:9/callback";
    const SCOPE: &str = "openid profile email chat:read chat:write history:team-a history:team-b";

    fn options_with_callback() -> OidcOptions {
        let mut options = OidcOptions::default();
        options.clients[0].redirect_uris = vec![CALLBACK.to_string()];
        options.clients[0].post_logout_redirect_uris =
            vec!["http://127.0.0.1:9/signed-out".to_string()];
        options
    }

    struct Flow {
        url: String,
        verifier: String,
        state: String,
        nonce: String,
    }

    fn authorization(idp: &OidcProvider, client_id: &str, redirect_uri: &str, scope: &str) -> Flow {
        let verifier = random_token();
        let state = random_token();
        let nonce = random_token();
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("scope", scope),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &pkce_challenge(&verifier)),
            ("code_challenge_method", "S256"),
        ]);
        Flow {
            url: idp.url(&format!("/auth?{query}")),
            verifier,
            state,
            nonce,
        }
    }

    fn token(
        idp: &OidcProvider,
        client: &OidcClient,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
        ];
        let mut request = Request::post("/token")
            .header("host", idp.host_port())
            .header("content-type", "application/x-www-form-urlencoded");
        if client.auth_method == "client_secret_post" {
            form.push(("client_id", &client.client_id));
            form.push(("client_secret", &client.client_secret));
        } else {
            request = request.header(
                "authorization",
                basic_auth(&client.client_id, &client.client_secret),
            );
        }
        request
            .body(form_encode(&form))
            .send(idp.addr)
            .expect("token endpoint answers")
    }

    fn scopes(response: &Response) -> Vec<String> {
        let mut scopes: Vec<String> = response.json()["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .map(str::to_string)
            .collect();
        scopes.sort();
        scopes
    }

    #[test]
    fn oidc_discovery_lists_the_endpoints_and_s256() {
        let idp = OidcProvider::start(OidcOptions::default());
        assert!(
            idp.issuer.starts_with("http://127.0.0.1:"),
            "{}",
            idp.issuer
        );
        let doc = idp.discovery();
        assert_eq!(doc["issuer"], idp.issuer.as_str());
        for (key, path) in [
            ("authorization_endpoint", "/auth"),
            ("token_endpoint", "/token"),
            ("jwks_uri", "/jwks"),
            ("end_session_endpoint", "/session/end"),
            ("userinfo_endpoint", "/me"),
        ] {
            assert_eq!(doc[key], idp.url(path).as_str(), "{key}");
        }
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        let scopes = doc["scopes_supported"]
            .as_array()
            .expect("scopes_supported");
        for scope in EXTRA_SCOPES {
            assert!(scopes.contains(&json!(scope)), "{scope} in {scopes:?}");
        }
        let jwks = Request::get("/jwks")
            .header("host", idp.host_port())
            .send(idp.addr)
            .expect("jwks");
        assert_eq!(jwks.status, 200);
        let key = &jwks.json()["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert!(key["d"].is_null(), "private parts must not be published");
    }

    #[test]
    fn oidc_code_flow_with_pkce_grants_the_users_scopes() {
        let idp = OidcProvider::start(options_with_callback());
        let client = OidcOptions::default().clients[0].clone();
        let mut browser = Browser::new();
        let flow = authorization(&idp, &client.client_id, CALLBACK, SCOPE);

        // The hops: /auth -> 303 /interaction/<uid> (form) -> POST .../login -> 303 /auth/<uid>
        // -> 303 callback.
        let first = browser.get(&flow.url);
        assert_eq!(first.status, 303, "{}", first.text());
        let interaction = resolve_url(&flow.url, first.header("location").expect("location"));
        assert!(
            interaction.starts_with(&idp.url("/interaction/")),
            "{interaction}"
        );
        assert!(browser.cookie(&idp.host_port(), "_interaction").is_some());

        let back = login(&mut browser, &flow.url, CALLBACK, "alice");
        assert!(back.starts_with(&format!("{CALLBACK}?")), "{back}");
        assert_eq!(
            query_param(&back, "state").as_deref(),
            Some(flow.state.as_str())
        );
        assert_eq!(
            query_param(&back, "iss").as_deref(),
            Some(idp.issuer.as_str())
        );
        let code = query_param(&back, "code").expect("code");

        // A wrong verifier does not consume the code.
        let wrong = token(&idp, &client, &code, &random_token(), CALLBACK);
        assert_eq!(wrong.status, 400, "{}", wrong.text());
        assert_eq!(wrong.json()["error"], "invalid_grant");

        let ok = token(&idp, &client, &code, &flow.verifier, CALLBACK);
        assert_eq!(ok.status, 200, "{}", ok.text());
        let body = ok.json();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body["access_token"].is_string());
        assert_eq!(
            scopes(&ok),
            [
                "chat:read",
                "chat:write",
                "email",
                "history:team-a",
                "openid",
                "profile"
            ]
        );
        let claims = jwt_payload(body["id_token"].as_str().expect("id_token"));
        assert_eq!(claims["iss"], idp.issuer.as_str());
        assert_eq!(claims["aud"], client.client_id.as_str());
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["email"], "alice@example.test");
        assert_eq!(claims["name"], "Alice Example");
        assert_eq!(claims["nonce"], flow.nonce.as_str());

        // Userinfo with the access token.
        let me = Request::get("/me")
            .header("host", idp.host_port())
            .bearer(body["access_token"].as_str().unwrap())
            .send(idp.addr)
            .expect("userinfo");
        assert_eq!(me.status, 200, "{}", me.text());
        assert_eq!(me.json()["email"], "alice@example.test");

        // The provider session is kept: a second authorization goes straight back.
        let again = authorization(&idp, &client.client_id, CALLBACK, SCOPE);
        let (response, url) = browser.follow(&again.url, CALLBACK);
        assert_eq!(response.status, 303, "{url} {}", response.text());
        assert!(query_param(&url, "code").is_some(), "{url}");

        let reused = token(&idp, &client, &code, &flow.verifier, CALLBACK);
        assert_eq!(reused.status, 400, "{}", reused.text());
        assert_eq!(reused.json()["error"], "invalid_grant");

        // Reusing a code revokes its grant: the next authorization asks for consent again.
        let after = authorization(&idp, &client.client_id, CALLBACK, SCOPE);
        let (response, _) = browser.follow(&after.url, CALLBACK);
        assert_eq!(response.status, 200);
        assert_eq!(
            HtmlForm::parse(&response.text()).unwrap().field("prompt"),
            Some("consent")
        );
        let back = login(&mut browser, &after.url, CALLBACK, "alice");
        let code = query_param(&back, "code").expect("code after consent");
        let ok = token(&idp, &client, &code, &after.verifier, CALLBACK);
        assert_eq!(ok.status, 200, "{}", ok.text());

        // RP-initiated logout back to a registered post-logout URI, with state.
        let end = idp.url(&format!(
            "/session/end?{}",
            form_encode(&[
                ("id_token_hint", body["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", "http://127.0.0.1:9/signed-out"),
                ("state", "bye"),
            ])
        ));
        let (_, url) = logout(&mut browser, &end, "http://127.0.0.1:9/");
        assert_eq!(url, "http://127.0.0.1:9/signed-out?state=bye");
        assert!(browser.cookie(&idp.host_port(), "_session").is_none());
        // Signed out: the next authorization asks for a login again.
        let (response, _) = browser.follow(&again.url, CALLBACK);
        assert_eq!(response.status, 200);
        assert!(HtmlForm::parse(&response.text())
            .unwrap()
            .field("login")
            .is_some());
    }

    #[test]
    fn oidc_bob_only_gets_chat_read() {
        let idp = OidcProvider::start(options_with_callback());
        let client = OidcOptions::default().clients[0].clone();
        let mut browser = Browser::new();
        let flow = authorization(&idp, &client.client_id, CALLBACK, SCOPE);
        let back = login(&mut browser, &flow.url, CALLBACK, "bob");
        let code = query_param(&back, "code").expect("code");
        let ok = token(&idp, &client, &code, &flow.verifier, CALLBACK);
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(scopes(&ok), ["chat:read", "email", "openid", "profile"]);
        let claims = jwt_payload(ok.json()["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], "bob");
        assert_eq!(claims["email"], "bob@example.test");
    }

    #[test]
    fn oidc_unknown_user_is_refused() {
        let idp = OidcProvider::start(options_with_callback());
        let mut browser = Browser::new();
        let flow = authorization(&idp, "qwen-web-chat", CALLBACK, SCOPE);
        let refused = try_login(&mut browser, &flow.url, CALLBACK, "mallory").expect_err("refused");
        assert_eq!(refused.status, 401);
        assert!(
            refused.text().contains("unknown user"),
            "{}",
            refused.text()
        );
        // The provider's stderr is read by a background thread: wait for the line.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !idp.stderr_log().contains("mallory") && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(idp.stderr_log().contains("mallory"), "{}", idp.stderr_log());
    }

    #[test]
    fn oidc_pkce_is_required_and_redirect_uris_are_checked() {
        let idp = OidcProvider::start(options_with_callback());
        let mut browser = Browser::new();
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", "qwen-web-chat"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid"),
            ("state", "s"),
        ]);
        // Without a code_challenge: back to the client with an error.
        let response = browser.get(&idp.url(&format!("/auth?{query}")));
        let location = response.header("location").unwrap_or_default();
        assert!(
            location.starts_with(CALLBACK),
            "{} {location}",
            response.status
        );
        assert_eq!(
            query_param(location, "error").as_deref(),
            Some("invalid_request")
        );

        // An unregistered redirect URI: an error page, never a redirect.
        let flow = authorization(
            &idp,
            "qwen-web-chat",
            "http://127.0.0.1:9/elsewhere",
            "openid",
        );
        let response = browser.get(&flow.url);
        assert_eq!(response.status, 400, "{}", response.text());
    }

    #[test]
    fn oidc_default_client_accepts_loopback_redirects_and_client_secret_post() {
        let mut options = OidcOptions::default();
        options.clients.push(OidcClient {
            client_id: "poster".to_string(),
            client_secret: "poster-secret-0123456789abcdef0123".to_string(),
            redirect_uris: vec!["http://127.0.0.1:9/cb".to_string()],
            post_logout_redirect_uris: Vec::new(),
            auth_method: "client_secret_post".to_string(),
        });
        let idp = OidcProvider::start(options.clone());

        // Default client: any loopback port.
        let callback = "http://127.0.0.1:45678/oauth2/callback";
        let mut browser = Browser::new();
        let flow = authorization(&idp, "qwen-web-chat", callback, "openid chat:read");
        let back = login(&mut browser, &flow.url, callback, "alice");
        let code = query_param(&back, "code").expect("code");
        let mut as_post = options.clients[0].clone();
        as_post.auth_method = "client_secret_post".to_string();
        let refused = token(&idp, &as_post, &code, &flow.verifier, callback);
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert_eq!(refused.json()["error"], "invalid_client");
        let ok = token(&idp, &options.clients[0], &code, &flow.verifier, callback);
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(scopes(&ok), ["chat:read", "openid"]);

        // client_secret_post, and a redirect URI registered at run time.
        let poster = &options.clients[1];
        idp.register_redirect_uris("poster", &["http://127.0.0.1:9/late"], &[]);
        let mut browser = Browser::new();
        let flow = authorization(&idp, "poster", "http://127.0.0.1:9/late", "openid email");
        let back = login(&mut browser, &flow.url, "http://127.0.0.1:9/late", "bob");
        let code = query_param(&back, "code").expect("code");
        let mut basic = poster.clone();
        basic.auth_method = "client_secret_basic".to_string();
        let refused = token(
            &idp,
            &basic,
            &code,
            &flow.verifier,
            "http://127.0.0.1:9/late",
        );
        assert_eq!(refused.status, 401, "{}", refused.text());
        assert_eq!(refused.json()["error"], "invalid_client");
        let ok = token(
            &idp,
            poster,
            &code,
            &flow.verifier,
            "http://127.0.0.1:9/late",
        );
        assert_eq!(ok.status, 200, "{}", ok.text());
        assert_eq!(
            jwt_payload(ok.json()["id_token"].as_str().unwrap())["email"],
            "bob@example.test"
        );
    }

    #[test]
    fn oidc_browser_cookie_jar_rules() {
        let mut browser = Browser::new();
        browser.store("h:1", "/a/b", "s=1; Path=/; HttpOnly; SameSite=Lax");
        browser.store("h:1", "/a/b", "scoped=2; Path=/interaction/x");
        browser.store("h:1", "/a/b", "dflt=3");
        assert_eq!(browser.cookie_header("h:1", "/"), "s=1");
        assert_eq!(
            browser.cookie_header("h:1", "/interaction/x/login"),
            "scoped=2; s=1"
        );
        assert_eq!(browser.cookie_header("h:1", "/interaction/xy"), "s=1");
        assert_eq!(browser.cookie_header("h:1", "/a/c"), "dflt=3; s=1");
        browser.store("h:1", "/", "s=; Path=/; Max-Age=0");
        assert_eq!(browser.cookie("h:1", "s"), None);
        browser.store(
            "h:1",
            "/",
            "scoped=; path=/interaction/x; expires=Thu, 01 Jan 1970 00:00:00 GMT",
        );
        assert_eq!(browser.cookie("h:1", "scoped"), None);
        browser.store("h:1", "/", "later=1; Expires=Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(browser.cookie("h:1", "later").as_deref(), Some("1"));
        browser.set_cookie("h:1", "later", "tampered");
        assert_eq!(browser.cookie("h:1", "later").as_deref(), Some("tampered"));
        assert_eq!(browser.cookie("h:2", "later"), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(resolve_url("http://h:1/a/b?x", "c"), "http://h:1/a/c");
        assert_eq!(resolve_url("http://h:1/a/b?x", "/z?q"), "http://h:1/z?q");
        assert_eq!(resolve_url("http://h:1/a/b", "?q=1"), "http://h:1/a/b?q=1");
        assert_eq!(
            query_param("http://h/cb?code=a%2Bb&state=x+y", "code").as_deref(),
            Some("a+b")
        );
        assert_eq!(
            query_param("http://h/cb?code=a%2Bb&state=x+y", "state").as_deref(),
            Some("x y")
        );
        let form = HtmlForm::parse(
            r#"<form id="f" method="POST" action="/x?a=1&amp;b=2"><input type="hidden" name="xsrf" value="k&quot;"/><input name=login><button type="submit" name="go" value="yes">Go</button></form>"#,
        )
        .unwrap();
        assert_eq!(form.action, "/x?a=1&b=2");
        assert_eq!(form.method, "post");
        assert_eq!(
            form.fields,
            [
                ("xsrf".into(), "k\"".into()),
                ("login".into(), String::new()),
                ("go".into(), "yes".into())
            ]
        );
    }
}
