//! The introspection call (RFC 7662 section 2.1): `POST` of `token` and `token_type_hint` as a
//! form, the gateway authenticated as a client (RFC 6749 2.3.1).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::Introspection;
use crate::oauth2::{form_encode, ClientAuth};
use crate::outgoing::OutgoingCall;

pub fn call(settings: &Introspection, token: &str) -> OutgoingCall {
    let mut form = vec![("token", token), ("token_type_hint", "access_token")];
    let mut call = OutgoingCall::new(
        &settings.cluster,
        &settings.authority,
        settings.timeout_ms,
        "POST",
        &settings.path,
    )
    .header("content-type", "application/x-www-form-urlencoded")
    .header("accept", "application/json")
    .header("user-agent", "ai-gateway");
    match settings.client_auth {
        ClientAuth::Basic => {
            // Form-encoded first, so a `:` in the id or secret cannot shift the split.
            let credentials = format!(
                "{}:{}",
                form_encode(&[("", &settings.client_id)]).trim_start_matches('='),
                form_encode(&[("", &settings.client_secret)]).trim_start_matches('=')
            );
            call = call.header(
                "authorization",
                &format!("Basic {}", STANDARD.encode(credentials)),
            );
        }
        ClientAuth::Post => {
            form.push(("client_id", &settings.client_id));
            form.push(("client_secret", &settings.client_secret));
        }
    }
    call.body(form_encode(&form).into_bytes())
}
