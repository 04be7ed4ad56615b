//! OAuth2 authorization-code flow with PKCE and OIDC for browsers: the pure parts.
//!
//! The filter redirects a browser without a session to the IdP ([`authorization_url`]), keeping
//! `state`, `nonce`, the PKCE verifier and the post-login target in a signed cookie
//! ([`seal_flow`]); on the callback it checks that cookie ([`open_flow`]), exchanges the code
//! ([`token_request`], [`parse_token_response`]), verifies the ID token with its JWT verifier
//! and [`check_nonce`], then sets the gateway's own session cookie ([`mint_session`],
//! [`set_cookie`]).
//!
//! Nothing here calls the host, reads a clock or draws randomness: random bytes and `now` are
//! parameters. All input (query strings, cookies, IdP answers) is treated as hostile, and no
//! function panics on it.

mod authorize;
mod cookie;
mod crypto;
mod discovery;
mod flow;
mod pkce;
pub mod preset;
mod query;
mod redirect;
mod session;
mod signed;
mod token;
mod url;

pub use authorize::authorization_url;
pub use cookie::{clear_cookie, set_cookie};
pub use discovery::{parse_discovery, ClientAuth, Endpoints};
pub use flow::{open_flow, seal_flow, FlowError, FlowState, FLOW_TTL_S};
pub use pkce::{pkce_challenge_s256, pkce_verifier, random_token};
pub use preset::{Preset, PresetConfig};
pub use query::{form_encode, parse_query, query_value, raw_query_value};
pub use redirect::sanitize_rd;
pub use session::{check_nonce, mint_session, session_scopes, SessionClaims, SESSION_ROLES_CLAIM};
pub use signed::{sign_value, verify_value};
pub use token::{parse_token_response, token_request, TokenExchangeError, TokenResponse};
pub use url::{url_origin, url_path};
