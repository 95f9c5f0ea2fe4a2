//! The watch-backed RuntimeClass cache the webhook reads during mutation. Lookups read a
//! reflector store in memory; only the watch itself talks to the API server.

use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use futures::StreamExt;
use k8s_openapi::api::node::v1::RuntimeClass;

use mcpguard_core::runtime_class::{RuntimeClassInfo, RuntimeClassLookup};

pub struct WatchedRuntimeClasses {
    store: Store<RuntimeClass>,
}

impl RuntimeClassLookup for WatchedRuntimeClasses {
    fn get(&self, name: &str) -> Option<RuntimeClassInfo> {
        self.store
            .get(&ObjectRef::new(name))
            .map(|class| RuntimeClassInfo::from_runtime_class(&class))
    }
}

impl WatchedRuntimeClasses {
    /// Starts the watch in the background. The returned store fills asynchronously;
    /// await [`WatchedRuntimeClasses::synced`] before declaring readiness.
    pub fn start(client: Client) -> WatchedRuntimeClasses {
        let (store, writer) = reflector::store::<RuntimeClass>();
        let api: Api<RuntimeClass> = Api::all(client);
        let stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects();
        tokio::spawn(async move {
            stream
                .for_each(|event| async move {
                    if let Err(err) = event {
                        tracing::warn!(error = %err, "RuntimeClass watch error; retrying with backoff");
                    }
                })
                .await;
        });
        WatchedRuntimeClasses { store }
    }

    pub async fn synced(&self) -> bool {
        self.store.wait_until_ready().await.is_ok()
    }
}
