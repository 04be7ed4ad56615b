//! The mesh-wide limits step (`scope: "mesh"`): an allowed request is checked by the
//! rate-limit service before it goes on, and the tokens its answer used are charged there
//! before the answer's end reaches the client (so the caller's next request, through any
//! replica, sees them). The service failing is a 503 (`failure_mode: deny`) or a counted pass.

use std::rc::Rc;

use crate::error::{GatewayError, LocalReply};
use crate::outgoing::{GrpcCall, MAX_GRPC_ANSWER_BYTES};
use crate::ratelimit::mesh::{self, proto, Verdict};

use super::finish::{Admitted, Decision};
use super::flow::{Flow, Phase};
use super::{Effect, Gateway, Next};

/// What a gRPC call of this worker is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GrpcPurpose {
    /// May request `request` go on?
    Check { request: u32 },
    /// Request `request`'s tokens; its answer's end waits for this.
    Charge { request: u32 },
}

impl GrpcPurpose {
    pub fn request(self) -> u32 {
        match self {
            Self::Check { request } | Self::Charge { request } => request,
        }
    }
}

impl Gateway {
    /// An allowed request: checked by the service first when mesh limits apply to it.
    pub(super) fn check_mesh_limits(
        &mut self,
        id: u32,
        flow: &mut Flow,
        admitted: Box<Admitted>,
        resume: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        if admitted.admission.mesh.is_empty() {
            return self.allow(id, flow, *admitted, resume, effects);
        }
        if self.running.is_some_and(|running| running != id) {
            // Decided on another request's callback: the call is made on the next tick, from the
            // worker's own context (an answer goes to the context that dispatched it).
            flow.phase = Phase::MeshDue(admitted);
            self.due_mesh.push(id);
            return Next::Pause;
        }
        let config = Rc::clone(&self.config);
        let Some(service) = config.rate_limit_service.as_ref() else {
            return self.allow(id, flow, *admitted, resume, effects);
        };
        let message = mesh::check_request(service, &admitted.admission.mesh);
        if self.dispatch_grpc(service, message, GrpcPurpose::Check { request: id }) {
            flow.phase = Phase::WaitingMeshLimits(admitted);
            return Next::Pause;
        }
        self.mesh_unanswered(id, flow, admitted, resume, effects)
    }

    /// The tick's part: checks of requests decided on another request's callback.
    pub(super) fn dispatch_due_mesh_checks(&mut self, effects: &mut Vec<(u32, Effect)>) {
        for id in std::mem::take(&mut self.due_mesh) {
            let Some(mut flow) = self.flows.remove(&id) else {
                continue;
            };
            if let Phase::MeshDue(admitted) = std::mem::replace(&mut flow.phase, Phase::Head) {
                self.check_mesh_limits(id, &mut flow, admitted, true, effects);
            }
            self.flows.insert(id, flow);
        }
    }

    /// The service answered the admission call (or the call failed).
    pub(super) fn mesh_checked(
        &mut self,
        id: u32,
        flow: &mut Flow,
        grpc_status: u32,
        body: Option<Vec<u8>>,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let Phase::WaitingMeshLimits(mut admitted) =
            std::mem::replace(&mut flow.phase, Phase::Head)
        else {
            return;
        };
        match mesh::judge(grpc_status, body.as_deref(), &admitted.admission.mesh) {
            Verdict::Admit(state) => {
                if let Some(state) = state {
                    admitted.admission.note(state);
                }
                self.allow(id, flow, *admitted, true, effects);
            }
            Verdict::Refuse(state) => {
                let by = admitted
                    .admission
                    .subject
                    .clone()
                    .map(|sub| super::finish::Subject {
                        sub,
                        provider: admitted.admission.provider.clone(),
                    });
                let refusal = Decision::refused(GatewayError::RateLimited(state), by);
                self.finish(id, flow, refusal, true, effects);
            }
            Verdict::Unavailable => {
                self.mesh_unanswered(id, flow, admitted, true, effects);
            }
        }
    }

    /// No usable answer: `failure_mode` decides.
    fn mesh_unanswered(
        &mut self,
        id: u32,
        flow: &mut Flow,
        admitted: Box<Admitted>,
        resume: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        self.count("rate_limit_service_failures", 1);
        let fail_open = self
            .config
            .rate_limit_service
            .as_ref()
            .is_some_and(|s| s.fail_open);
        if fail_open {
            self.count("rate_limit_service_failed_open", 1);
            log::warn!(
                "ai-gateway: the rate-limit service gave no answer; allowed (failure_mode allow)"
            );
            return self.allow(id, flow, *admitted, resume, effects);
        }
        log::warn!("ai-gateway: the rate-limit service gave no answer; refused");
        let error = GatewayError::RateLimitServiceUnavailable { retry_after_s: 1 };
        self.finish(id, flow, Decision::refused(error, None), resume, effects)
    }

    /// Charges `tokens` to the request's mesh budgets. True when the call is in flight (the
    /// answer's end waits for it).
    pub(super) fn charge_mesh_budgets(
        &mut self,
        id: Option<u32>,
        flow: &mut Flow,
        tokens: u64,
    ) -> bool {
        let config = Rc::clone(&self.config);
        let (Some(service), Some(admission)) =
            (config.rate_limit_service.as_ref(), flow.admission())
        else {
            return false;
        };
        let Some(message) = mesh::charge_request(service, &admission.mesh, tokens) else {
            return false;
        };
        let Some(request) = id else {
            // The request is ending: charged without waiting for the answer.
            self.dispatch_grpc(service, message, GrpcPurpose::Charge { request: 0 });
            return false;
        };
        let dispatched = self.dispatch_grpc(service, message, GrpcPurpose::Charge { request });
        if !dispatched {
            self.count("rate_limit_service_failures", 1);
            log::warn!(
                "ai-gateway: {tokens} tokens could not be charged to the rate-limit service"
            );
        }
        flow.mesh_charging = dispatched;
        dispatched
    }

    /// The service answered a charge: the answer's end goes on.
    pub(super) fn mesh_charged(
        &mut self,
        id: u32,
        flow: &mut Flow,
        grpc_status: u32,
        body: Option<Vec<u8>>,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        if !mesh::charged(grpc_status, body.as_deref()) {
            self.count("rate_limit_service_failures", 1);
            log::warn!("ai-gateway: the rate-limit service did not record a token charge");
        }
        if !std::mem::replace(&mut flow.mesh_charging, false) {
            return;
        }
        match std::mem::replace(&mut flow.phase, Phase::Answered) {
            Phase::ChargingThenAnswer(reply) => {
                self.answer(id, flow, reply, effects);
            }
            other => {
                flow.phase = other;
                effects.push((id, Effect::ResumeResponse));
            }
        }
    }

    /// A fetched answer whose tokens are being charged: sent once the charge is answered.
    pub(super) fn answer_after_charge(&mut self, flow: &mut Flow, reply: LocalReply) {
        flow.phase = Phase::ChargingThenAnswer(reply);
    }

    fn dispatch_grpc(
        &mut self,
        service: &mesh::Service,
        message: Vec<u8>,
        purpose: GrpcPurpose,
    ) -> bool {
        let call = GrpcCall {
            cluster: service.cluster.clone(),
            service: proto::SERVICE,
            method: proto::METHOD,
            message,
            timeout_ms: service.timeout_ms,
        };
        self.count("rate_limit_service_calls", 1);
        match self.host.dispatch_grpc(&call, self.running) {
            Some(token) => {
                self.grpc_calls.insert(token, (purpose, self.running));
                true
            }
            None => false,
        }
    }

    /// A gRPC call answered (or failed: `grpc_status` not 0).
    pub fn on_grpc_response(
        &mut self,
        token: u32,
        grpc_status: u32,
        body_size: usize,
        receiver: Option<u32>,
    ) -> super::Output {
        self.running = receiver;
        let mut out = super::Output::new(Next::Continue);
        let Some((purpose, _)) = self.grpc_calls.remove(&token) else {
            return out;
        };
        let body = if grpc_status == 0 {
            self.host.grpc_response(body_size, MAX_GRPC_ANSWER_BYTES)
        } else {
            None
        };
        let request = purpose.request();
        self.with_existing_flow(request, |gateway, flow| match purpose {
            GrpcPurpose::Check { .. } => {
                gateway.mesh_checked(request, flow, grpc_status, body, &mut out.effects);
            }
            GrpcPurpose::Charge { .. } => {
                gateway.mesh_charged(request, flow, grpc_status, body, &mut out.effects);
            }
        });
        out
    }
}
