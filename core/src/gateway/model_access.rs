//! `models.allow` applied to a request: the model its body names (a translated chat's after
//! default and alias, or an untranslated route's `model`) and the models it may list.

use crate::error::GatewayError;
use crate::models::{canonical_model, requested_model};

use super::flow::Flow;

/// Longer than any model name Ollama serves (registry host, namespace, name and tag).
const MAX_MODEL_NAME_BYTES: usize = 256;
use super::Gateway;

impl Gateway {
    /// Whether the request's caller may use `model`: always without `models`; otherwise as the
    /// grant worked out when it was allowed says (none: nothing, failing closed).
    pub(super) fn may_use_model(&self, flow: &Flow, model: &str) -> bool {
        match &self.config.models {
            None => true,
            Some(list) => flow
                .model_grant
                .is_some_and(|grant| list.permits(grant, model)),
        }
    }

    /// Checks the model the request runs, recording it for the audit (refused ones too).
    pub(super) fn check_model(&self, flow: &mut Flow, model: &str) -> Result<(), GatewayError> {
        // A client-chosen name: kept short in the audit record, and refused when longer than any
        // model name (a huge tag would otherwise pass a `name:*` pattern).
        flow.audit.model = Some(crate::error::shortened(model));
        if self.config.models.is_some() && model.len() > MAX_MODEL_NAME_BYTES {
            return Err(GatewayError::InvalidRequestBody(
                "model name is too long".into(),
            ));
        }
        if self.may_use_model(flow, model) {
            Ok(())
        } else {
            Err(GatewayError::ModelNotAllowed(canonical_model(model)))
        }
    }

    /// Checks the `model` of an untranslated request's body (held whole); `Ok`: that model.
    pub(super) fn check_body_model(
        &self,
        flow: &mut Flow,
        body: &[u8],
    ) -> Result<String, GatewayError> {
        let model = requested_model(body).map_err(GatewayError::InvalidRequestBody)?;
        self.check_model(flow, &model)?;
        Ok(model)
    }
}
