//! File-based xDS for reload tests: Envoy reads its listeners (and with them the gateway's
//! plugin config) from `lds.json` in a directory it watches (`dynamic_resources.lds_config`,
//! `path_config_source` with `watched_directory`). An update is a whole new file renamed over
//! the old one, as Envoy's docs require (a file edited in place may be read half-written).
//!
//! ```no_run
//! use test_harness::{xds::LdsFile, Envoy};
//! let lds = LdsFile::new();
//! let envoy = Envoy::builder(r#"{"default_rule": {"auth": "none"}}"#)
//!     .bootstrap_override(lds.take_listeners())
//!     .start()
//!     .expect("envoy starts");
//! lds.set_plugin_config(r#"{"default_rule": {"auth": "required"}, "providers": []}"#);
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

const LISTENER_TYPE: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";

/// The watched directory and its `lds.json`. Removed on drop.
pub struct LdsFile {
    dir: tempfile::TempDir,
    version: AtomicU64,
}

impl Default for LdsFile {
    fn default() -> Self {
        Self::new()
    }
}

impl LdsFile {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gateway-lds-")
            .tempdir()
            .expect("LDS directory");
        Self {
            dir,
            version: AtomicU64::new(0),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("lds.json")
    }

    /// A bootstrap edit (for [`crate::EnvoyBuilder::bootstrap_override`]) that moves the
    /// generated static listeners into `lds.json` (version 1) and points `lds_config` at it.
    pub fn take_listeners(&self) -> impl FnOnce(&mut Value) + 'static {
        let path = self.path();
        let dir = self.dir.path().to_path_buf();
        self.version.store(1, Ordering::SeqCst);
        move |bootstrap: &mut Value| {
            let listeners = bootstrap["static_resources"]["listeners"].take();
            let listeners = listeners.as_array().cloned().unwrap_or_default();
            write_atomically(&path, &discovery_response(1, &listeners));
            let static_resources = bootstrap["static_resources"]
                .as_object_mut()
                .expect("static_resources");
            static_resources.remove("listeners");
            // File-based xDS needs a node identity.
            bootstrap["node"] = json!({"id": "gateway-test", "cluster": "gateway-test"});
            bootstrap["dynamic_resources"] = json!({"lds_config": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": path.to_string_lossy(),
                    "watched_directory": {"path": dir.to_string_lossy()}
                }
            }});
        }
    }

    /// The listeners in the current file.
    pub fn listeners(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.path()).expect("read lds.json");
        let document: Value = serde_json::from_str(&text).expect("lds.json is JSON");
        document["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| {
                let mut listener = r.clone();
                listener.as_object_mut().map(|o| o.remove("@type"));
                listener
            })
            .collect()
    }

    /// Writes these listeners as the next version; returns it.
    pub fn write(&self, listeners: &[Value]) -> u64 {
        let version = self.version.fetch_add(1, Ordering::SeqCst) + 1;
        write_atomically(&self.path(), &discovery_response(version, listeners));
        version
    }

    /// The next version with the gateway's plugin config (`configuration.value` of the first
    /// listener's wasm filter) replaced; returns the version.
    pub fn set_plugin_config(&self, plugin_config: &str) -> u64 {
        let mut listeners = self.listeners();
        *plugin_config_slot(&mut listeners[0]) = json!(plugin_config);
        self.write(&listeners)
    }
}

/// The wasm filter's `configuration.value` in a listener the bootstrap generated.
pub fn plugin_config_slot(listener: &mut Value) -> &mut Value {
    let filters = &mut listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
    let wasm = filters
        .as_array_mut()
        .expect("http_filters")
        .iter_mut()
        .find(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("the wasm filter");
    &mut wasm["typed_config"]["config"]["configuration"]["value"]
}

fn discovery_response(version: u64, listeners: &[Value]) -> Value {
    let resources: Vec<Value> = listeners
        .iter()
        .map(|l| {
            let mut resource = json!({"@type": LISTENER_TYPE});
            for (k, v) in l.as_object().expect("listener object") {
                resource[k] = v.clone();
            }
            resource
        })
        .collect();
    json!({"version_info": version.to_string(), "resources": resources})
}

/// A new file next to `path`, then renamed over it: Envoy never sees a half-written file.
fn write_atomically(path: &Path, document: &Value) {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, document.to_string()).expect("write the new LDS file");
    std::fs::rename(&tmp, path).expect("rename the new LDS file into place");
}
