//! What mutation needs to know of RuntimeClass objects: the parts the RuntimeClass
//! admission plugin copies into a pod. The webhook fills a lookup from a watch; the CLI
//! fills one from its input files.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::node::v1::RuntimeClass;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeClassInfo {
    /// `overhead.podFixed`, copied into `spec.overhead`.
    pub overhead_pod_fixed: Option<Map<String, Value>>,
    /// `scheduling.nodeSelector`, merged into `spec.nodeSelector`.
    pub node_selector: BTreeMap<String, String>,
    /// `scheduling.tolerations`, appended to `spec.tolerations`.
    pub tolerations: Vec<Value>,
}

impl RuntimeClassInfo {
    pub fn from_runtime_class(class: &RuntimeClass) -> RuntimeClassInfo {
        let overhead_pod_fixed = class
            .overhead
            .as_ref()
            .and_then(|o| o.pod_fixed.as_ref())
            .map(|fixed| {
                fixed
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.0.clone())))
                    .collect()
            });
        let scheduling = class.scheduling.as_ref();
        RuntimeClassInfo {
            overhead_pod_fixed,
            node_selector: scheduling
                .and_then(|s| s.node_selector.clone())
                .unwrap_or_default(),
            tolerations: scheduling
                .and_then(|s| s.tolerations.as_ref())
                .map(|tolerations| {
                    tolerations
                        .iter()
                        .filter_map(|t| serde_json::to_value(t).ok())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }
}

pub trait RuntimeClassLookup: Send + Sync {
    fn get(&self, name: &str) -> Option<RuntimeClassInfo>;
}

/// A fixed set, as the CLI reads from files and tests build by hand.
#[derive(Clone, Debug, Default)]
pub struct StaticRuntimeClasses(pub HashMap<String, RuntimeClassInfo>);

impl StaticRuntimeClasses {
    pub fn from_classes<'a>(classes: impl IntoIterator<Item = &'a RuntimeClass>) -> Self {
        StaticRuntimeClasses(
            classes
                .into_iter()
                .filter_map(|class| {
                    let name = class.metadata.name.clone()?;
                    Some((name, RuntimeClassInfo::from_runtime_class(class)))
                })
                .collect(),
        )
    }
}

impl RuntimeClassLookup for StaticRuntimeClasses {
    fn get(&self, name: &str) -> Option<RuntimeClassInfo> {
        self.0.get(name).cloned()
    }
}
