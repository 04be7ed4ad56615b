//! Stand-ins for the OAuth2 providers of `oauth2.preset` (WeCom, DingTalk, Feishu, GitHub),
//! which cannot run here. Each follows its provider's documented calls (named at the top of
//! its file), keeps single-use codes bound to the client (and redirect URI and PKCE challenge
//! where the provider has them), records every call, and has fault switches: refuse the next
//! code exchange, be down (503).
//!
//! The browser authorize endpoint "logs in" a configured user at once and redirects back as
//! the provider does; a test picks the user with the `test_user` query parameter
//! ([`common::TEST_USER_PARAM`]), else the first one logs in.

pub mod common;
pub mod dingtalk;
pub mod feishu;
pub mod github;
pub mod wecom;

pub use common::{StandIn, TEST_USER_PARAM};

#[cfg(test)]
mod tests;
