//! `mcpguard serve`: the webhook process. Startup order matters for readiness: policy,
//! certificate, caches, then listeners; shutdown reverses it (not ready, drain, close).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;

use super::load_policy;
use crate::cluster::runtime_classes::WatchedRuntimeClasses;
use crate::cluster::selfcert::SelfManagedCerts;
use crate::cmd::args::{CertManagement, ClusterMode, ServeArgs};
use crate::connections::ConnectionTable;
use crate::metrics::{Metrics, ResultLabels};
use crate::policy_store::PolicyStore;
use crate::readiness::Readiness;
use crate::webhook::routes::{self, AppState};
use crate::webhook::{server, tls};
use mcpguard_core::certs;
use mcpguard_core::rotation::RotationSettings;
use mcpguard_core::runtime_class::{RuntimeClassLookup, StaticRuntimeClasses};

const TLS_DIR: &str = "/etc/mcpguard/tls";

/// Flags resolved against the `--dev` defaults; explicit flags always win.
struct Settings {
    listen: SocketAddr,
    probe_listen: SocketAddr,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    drain: Duration,
    cluster: ClusterMode,
}

fn resolve(args: &ServeArgs) -> Settings {
    let (listen, probe, tls_dir, drain, cluster) = if args.dev {
        (
            "127.0.0.1:8443",
            "127.0.0.1:8080",
            args.certs_dir.clone(),
            0,
            ClusterMode::Off,
        )
    } else {
        (
            "0.0.0.0:8443",
            "0.0.0.0:8080",
            PathBuf::from(TLS_DIR),
            5,
            ClusterMode::Auto,
        )
    };
    let parse = |addr: &str| addr.parse().unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)));
    Settings {
        listen: args.listen.unwrap_or_else(|| parse(listen)),
        probe_listen: args.probe_listen.unwrap_or_else(|| parse(probe)),
        tls_cert: args
            .tls_cert
            .clone()
            .unwrap_or_else(|| tls_dir.join(certs::CERT_FILE)),
        tls_key: args
            .tls_key
            .clone()
            .unwrap_or_else(|| tls_dir.join(certs::KEY_FILE)),
        drain: Duration::from_secs(args.drain_seconds.unwrap_or(drain)),
        cluster: args.cluster.unwrap_or(cluster),
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Install ring as the process-wide provider before anything (kube's client) asks for one.
    tls::provider();
    let settings = resolve(&args);
    let policy = load_policy(args.policy.policy.as_deref())?;
    crate::cluster::policy_reload::log_trust_warnings(&policy);
    if args.dev && args.tls_cert.is_none() && args.tls_key.is_none() {
        let created = super::cert_files::ensure_dev_certs(&args.certs_dir, jiff::Timestamp::now())?;
        if created {
            tracing::info!(dir = %args.certs_dir.display(), "generated a development CA and serving certificate");
        }
    }
    let cert = match tls::certified_key_from_files(&settings.tls_cert, &settings.tls_key) {
        Ok(certified) => tls::SwappableCert::new(certified),
        Err(err) if args.cert_management != CertManagement::Files => {
            tracing::info!(error = %err, "no serving certificate yet: not ready until one arrives");
            tls::SwappableCert::empty()
        }
        Err(err) => {
            return Err(anyhow::Error::new(err)
                .context("cannot load the serving certificate (use --dev for generated development certificates)"));
        }
    };
    let tls_config = match &args.client_ca {
        Some(path) => tls::server_config_verifying_clients(
            cert.clone(),
            tls::client_verifier_from_file(path).context("cannot use --client-ca")?,
        )?,
        None => tls::server_config(cert.clone())?,
    };

    let metrics = Arc::new(Metrics::new());
    cert.report_not_after_to(metrics.certificate_not_after.clone());
    let cluster_mode = match args.cert_management {
        CertManagement::SelfManaged => ClusterMode::Required,
        _ => settings.cluster,
    };
    let client = cluster_client(cluster_mode).await?;
    let (runtime_classes, watched): (Arc<dyn RuntimeClassLookup>, _) = match &client {
        Some(client) => {
            let watched = Arc::new(WatchedRuntimeClasses::start(client.clone()));
            (watched.clone(), Some(watched))
        }
        None => (Arc::new(StaticRuntimeClasses::default()), None),
    };
    let policies = Arc::new(PolicyStore::new(policy, metrics.clone()));
    // Before the first review: `latest` means this cluster's release, not mcpguard's newest.
    let cluster_minor = match (args.kubernetes_version, &client) {
        (Some(minor), _) => Some(minor),
        (None, Some(client)) => match crate::cluster::cluster_version::fetch_minor(client).await {
            Ok(minor) => Some(minor),
            Err(err) => {
                tracing::warn!(error = %err, "cannot learn the cluster's Kubernetes version: Pod Security `latest` is judged by mcpguard's newest checks (set --kubernetes-version)");
                None
            }
        },
        (None, None) => None,
    };
    if let Some(minor) = cluster_minor {
        tracing::info!(kubernetes = %format!("v1.{minor}"), "answering for the cluster's Kubernetes version");
        policies.set_cluster_minor(minor);
    }
    let readiness = Arc::new(Readiness::default());
    let _ = readiness.certificate.set(cert.clone());
    let state = AppState::from_parts(
        policies.clone(),
        runtime_classes.clone(),
        metrics.clone(),
        readiness.clone(),
        args.max_concurrent_reviews,
        args.max_review_bytes,
    );
    if let Some(client) = &client {
        let (sink, queue) = crate::cluster::events::channel(
            crate::cluster::events::QUEUE_CAPACITY,
            args.record_mutations,
        );
        let publisher = crate::cluster::events::publisher(client.clone(), pod_identity(&args));
        tokio::spawn(crate::cluster::events::publish_all(queue, publisher));
        let _ = state.events.set(sink);
        let _ = state.kube_client.set(client.clone());
    }
    if let (true, Some(client)) = (args.watch_policies, &client) {
        readiness.policies_synced.store(false, Ordering::Release);
        tokio::spawn(crate::cluster::policy_watch::watch(
            client.clone(),
            policies.clone(),
            readiness.clone(),
        ));
    }
    let leads = args.leader_election
        || args.controller
        || args.cert_management == CertManagement::SelfManaged;
    if let (true, Some(client)) = (leads, &client) {
        let shared = Shared {
            policies: policies.clone(),
            runtime_classes,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
        };
        start_leader_duties(&args, client.clone(), cert.clone(), shared).await?;
    }
    if let Some(watched) = watched {
        readiness.caches_synced.store(false, Ordering::Release);
        let readiness = readiness.clone();
        tokio::spawn(async move {
            if watched.synced().await {
                readiness.caches_synced.store(true, Ordering::Release);
                tracing::info!("RuntimeClass cache synced");
            }
        });
    }

    let webhook_listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", settings.listen))?;
    let probe_listener = TcpListener::bind(settings.probe_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (--probe-listen)",
                settings.probe_listen
            )
        })?;
    let webhook_addr = webhook_listener.local_addr()?;
    let probe_addr = probe_listener.local_addr()?;

    if let Some(path) = args.policy.policy.clone() {
        let initial = std::fs::read_to_string(&path).ok();
        tokio::spawn(crate::cluster::policy_reload::watch(
            policies.clone(),
            metrics.clone(),
            path,
            Duration::from_secs(args.policy_reload_seconds.max(1)),
            initial,
        ));
    }
    let reload_metrics = metrics.clone();
    tokio::spawn(tls::reload_on_change(
        cert,
        settings.tls_cert.clone(),
        settings.tls_key.clone(),
        Duration::from_secs(args.cert_reload_seconds.max(1)),
        move |result| {
            let label = if result.is_ok() {
                crate::metrics::RESULT_SUCCESS
            } else {
                crate::metrics::RESULT_FAILURE
            };
            reload_metrics
                .certificate_reloads
                .get_or_create(&ResultLabels { result: label })
                .inc();
        },
    ));

    let (stop_webhook, webhook_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_probes, probes_stopped) = tokio::sync::oneshot::channel::<()>();
    let router = server::close_connections_when_draining(
        state.clone(),
        routes::webhook_router(state.clone()),
    );
    let serve_options = server::ServeOptions {
        connections: ConnectionTable::counting(
            args.max_connections,
            metrics.connections_evicted.clone(),
            metrics.connections_refused.clone(),
        ),
        client_certificates: match args.client_ca {
            Some(_) => server::ClientCertificates::Required {
                refused: metrics.unauthenticated_requests.clone(),
            },
            None => server::ClientCertificates::NotRequired,
        },
    };
    let webhook = tokio::spawn(server::serve_tls_with(
        webhook_listener,
        tls_config,
        router,
        async {
            let _ = webhook_stopped.await;
        },
        serve_options,
    ));
    let probes = tokio::spawn(
        axum::serve(probe_listener, routes::probe_router(state.clone()))
            .with_graceful_shutdown(async {
                let _ = probes_stopped.await;
            })
            .into_future(),
    );
    let shutdown = shutdown_signal();
    readiness.tls_listening.store(true, Ordering::Release);
    {
        let serving = policies.load();
        let policy = serving.fallback();
        tracing::info!(
            listen = %webhook_addr,
            probes = %probe_addr,
            policy = %policy.name,
            namespaces = %serving.covered_namespaces().join(","),
            "mcpguard is serving"
        );
        if args.dev {
            print_dev_hint(webhook_addr, probe_addr, &settings, &policy.name);
        }
    }

    shutdown.await;
    tracing::info!(
        drain_seconds = settings.drain.as_secs(),
        "shutting down: not ready, draining"
    );
    readiness.shutting_down.store(true, Ordering::Release);
    tokio::time::sleep(settings.drain).await;
    let _ = stop_webhook.send(());
    let _ = webhook.await;
    let _ = stop_probes.send(());
    let _ = probes.await;
    tracing::info!("stopped");
    Ok(())
}

async fn cluster_client(mode: ClusterMode) -> anyhow::Result<Option<kube::Client>> {
    if mode == ClusterMode::Off {
        return Ok(None);
    }
    match kube::Client::try_default().await {
        Ok(client) => Ok(Some(client)),
        Err(err) if mode == ClusterMode::Auto => {
            tracing::warn!(error = %err, "no Kubernetes API configured: running standalone, RuntimeClasses unknown");
            Ok(None)
        }
        Err(err) => Err(anyhow::Error::new(err)
            .context("a Kubernetes API is required (--cluster=required or --cert-management=self) but none is configured")),
    }
}

/// What the cluster loops share with the webhook.
struct Shared {
    policies: Arc<PolicyStore>,
    runtime_classes: Arc<dyn RuntimeClassLookup>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
}

/// Leader election, and on the leader: the certificate passes (when self-managed), the
/// namespaces' PSA enforce labels, the background audit and (with --controller) the
/// MCPServer controller. Every replica keeps serving.
async fn start_leader_duties(
    args: &ServeArgs,
    client: kube::Client,
    cert: Arc<tls::SwappableCert>,
    shared: Shared,
) -> anyhow::Result<()> {
    let identity = pod_identity(args);
    let lease = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &args.leader_lease)
        .with_namespace(&args.pod_namespace)
        .with_identity(&identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("cannot set up leader election")?;
    let (leader, _lease_task) = lease.watch().await;
    if args.audit_interval_seconds > 0 {
        tokio::spawn(crate::cluster::audit_scan::run(
            client.clone(),
            shared.policies.clone(),
            shared.runtime_classes.clone(),
            shared.metrics.clone(),
            leader.clone(),
            Duration::from_secs(args.audit_interval_seconds),
            args.report_api.apis(),
        ));
    }
    if args.controller {
        tokio::spawn(crate::cluster::controller::run(
            client.clone(),
            shared.policies.clone(),
            shared.runtime_classes.clone(),
            leader.clone(),
        ));
    }
    tokio::spawn(crate::cluster::policy_watch::run_leader(
        client.clone(),
        shared.policies.clone(),
        shared.readiness.clone(),
        leader.clone(),
        Some(args.webhook_configuration.clone()),
    ));
    tokio::spawn(crate::cluster::namespace_labels::run(
        client.clone(),
        shared.policies.clone(),
        leader.clone(),
    ));
    if args.cert_management == CertManagement::SelfManaged {
        let manager = SelfManagedCerts {
            client,
            namespace: args.pod_namespace.clone(),
            secret_name: args.cert_secret_name.clone(),
            webhook_configuration: args.webhook_configuration.clone(),
            service: args.service.clone(),
            settings: RotationSettings::default(),
            serving: cert,
        };
        let policies = shared.policies;
        tokio::spawn(manager.run(
            leader,
            move || policies.load().covered_namespaces(),
            Duration::from_secs(60),
            shared.metrics,
        ));
    }
    Ok(())
}

fn print_dev_hint(webhook: SocketAddr, probes: SocketAddr, settings: &Settings, policy: &str) {
    let ca = settings
        .tls_cert
        .parent()
        .map(|dir| dir.join(certs::CA_FILE))
        .unwrap_or_else(|| PathBuf::from(certs::CA_FILE));
    // Absolute, so the commands work from any directory.
    let ca = std::path::absolute(&ca).unwrap_or(ca);
    let review = example_review_path();
    println!(
        "\nmcpguard (dev) is serving policy {policy:?} on https://{webhook}\n\
         Send it an AdmissionReview:\n\
         \x20 curl --cacert {ca} -H 'Content-Type: application/json' \\\n\
         \x20      --data @{review} https://{webhook}/mutate\n\
         \x20 curl --cacert {ca} -H 'Content-Type: application/json' \\\n\
         \x20      --data @{review} https://{webhook}/validate\n\
         Probes and metrics: http://{probes}/readyz  http://{probes}/metrics\n\
         Stop with Ctrl-C.\n",
        ca = ca.display(),
        review = review.display(),
    );
}

const EXAMPLE_REVIEW: &str = "examples/admission-review.json";

/// The example AdmissionReview as an absolute path: under the working directory when it is a
/// checkout, else in the checkout this binary was built from (`cargo run` from elsewhere).
fn example_review_path() -> PathBuf {
    let in_working_dir = std::path::absolute(EXAMPLE_REVIEW).unwrap_or(EXAMPLE_REVIEW.into());
    let in_checkout = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(EXAMPLE_REVIEW);
    if !in_working_dir.is_file() && in_checkout.is_file() {
        in_checkout
    } else {
        in_working_dir
    }
}

/// Listens for SIGINT and SIGTERM from the call on: the returned future resolves at the
/// first. Called before the replica says it is ready (or prints the dev banner), so a stop
/// that follows either is always handled (drained, exit 0), never the default action.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| {
        let mut stream = signal(kind)
            .inspect_err(|err| tracing::error!(error = %err, "cannot listen for {name}"))
            .ok();
        async move {
            match stream.as_mut() {
                Some(stream) => {
                    stream.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
    };
    let interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = interrupt => {},
            () = terminate => {},
        }
    }
}

/// This replica's name: the pod name in a cluster, else the hostname.
fn pod_identity(args: &ServeArgs) -> String {
    args.pod_name.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("mcpguard-{}", std::process::id()))
    })
}
