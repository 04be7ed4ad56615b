//! The CORS step, first in a request's life: a preflight is answered (or refused) before any
//! authentication and never forwarded; any other request from an allowed origin carries the
//! headers its answer will get, whoever answers it.

use crate::cors::CorsStep;
use crate::error::{GatewayError, LocalReply};
use crate::http::RequestHead;

use super::finish::Decision;
use super::flow::Flow;
use super::{Effect, Gateway, Next};

impl Gateway {
    /// `Some`: the request was answered here (a preflight).
    pub(super) fn cors_step(
        &mut self,
        id: u32,
        flow: &mut Flow,
        head: &RequestHead,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Option<Next> {
        let step = self.config.cors.as_ref()?.step(head);
        match step {
            CorsStep::Continue(headers) => {
                flow.cors = headers;
                None
            }
            CorsStep::Preflight(headers) => {
                flow.cors = headers;
                flow.audit.decision = "preflight";
                flow.audit.status = Some(204);
                self.count("cors_preflights", 1);
                let reply = LocalReply {
                    status: 204,
                    headers: Vec::new(),
                    body: String::new(),
                };
                Some(self.answer(id, flow, reply, effects))
            }
            CorsStep::Refused => {
                let decision = Decision::refused(GatewayError::CorsOriginNotAllowed, None);
                Some(self.finish(id, flow, decision, false, effects))
            }
        }
    }
}
