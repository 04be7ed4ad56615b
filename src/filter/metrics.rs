//! The gateway's counters and gauges in Envoy's stats (`wasmcustom.ai_gateway.*`), defined once
//! per worker (Envoy shares a stat of the same name between workers).

use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::observe::{COUNTERS, GAUGES, PREFIX};

#[derive(Default)]
pub struct Metrics {
    ids: HashMap<&'static str, u32>,
}

impl Metrics {
    pub fn define() -> Self {
        let mut ids = HashMap::new();
        let kinds = COUNTERS
            .iter()
            .map(|n| (n, MetricType::Counter))
            .chain(GAUGES.iter().map(|n| (n, MetricType::Gauge)));
        for (name, kind) in kinds {
            if let Ok(id) = hostcalls::define_metric(kind, &format!("{PREFIX}.{name}")) {
                ids.insert(*name, id);
            }
        }
        Self { ids }
    }

    pub fn add(&self, name: &str, by: u64) {
        if by == 0 {
            // Nothing to count: spare the host call.
            return;
        }
        if let Some(id) = self.ids.get(name) {
            let _ = hostcalls::increment_metric(*id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    pub fn inc(&self, name: &str) {
        self.add(name, 1);
    }

    pub fn set(&self, name: &str, value: u64) {
        if let Some(id) = self.ids.get(name) {
            let _ = hostcalls::record_metric(*id, value);
        }
    }
}
