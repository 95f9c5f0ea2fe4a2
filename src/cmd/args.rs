//! Command line. Every flag also reads an `MCPGUARD_*` environment variable, so the same
//! binary is configured by flags on a laptop and by env in a Deployment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use mcpguard_core::audit::findings::parse_since;
use mcpguard_core::pss::{Level, Version};

#[derive(Debug, Parser)]
#[command(
    name = "mcpguard",
    version,
    about = "Admission webhook and policy enforcer that hardens MCP servers on Kubernetes"
)]
pub struct Cli {
    #[arg(long, global = true, env = "MCPGUARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportApiArg {
    Policyreport,
    Openreports,
    Both,
}

impl ReportApiArg {
    /// The APIs to write, in the order they are written.
    pub fn apis(self) -> Vec<mcpguard_core::audit::report::ReportApi> {
        use mcpguard_core::audit::report::ReportApi;
        match self {
            ReportApiArg::Policyreport => vec![ReportApi::PolicyReport],
            ReportApiArg::Openreports => vec![ReportApi::OpenReports],
            ReportApiArg::Both => vec![ReportApi::PolicyReport, ReportApi::OpenReports],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mutating and validating webhook over HTTPS.
    Serve(Box<ServeArgs>),
    /// Would these manifests be admitted? Exit 0 if all are, 1 if any is denied, 2 on error.
    Check(CheckArgs),
    /// Print the manifests as the mutating webhook would change them (exit 1 if any would still be denied).
    Mutate(MutateArgs),
    /// Run policy unit tests (`mcpguard-test.yaml`): given these resources, these policies
    /// must give these results. Exit 0 if every expectation holds, 1 if any does not, 2 if a
    /// test file cannot be read.
    Test(TestArgs),
    /// Certificates for the webhook.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Recent denials (Events) and current violations (PolicyReports) in the cluster of the
    /// current kubeconfig context. Exit 0 if nothing fails today's policy, 1 if something does, 2 on error.
    Audit(AuditArgs),
    /// Print the CustomResourceDefinitions mcpguard serves (MCPServer), as YAML.
    Crd,
    /// Print every object the reconciler would write for the MCPServer(s) in FILE, as YAML
    /// (what `helm template` is to a chart). Exit 1 if a server would fail, 2 on error.
    Render(RenderArgs),
    /// Print one part of the install as a YAML stream for `kubectl apply -f -`: the CRDs,
    /// mcpguard itself, or the MCP namespace (install them in that order).
    Bundle(BundleArgs),
    /// Write this executable to PATH (mode 0755), for an init container: the image has no `cp`.
    CopySelf(CopySelfArgs),
    /// Serve a stdio MCP server over Streamable HTTP (2025-11-25 sessions and 2026-07-28
    /// stateless requests): `mcpguard bridge -- npx -y @modelcontextprotocol/server-everything`.
    Bridge(Box<BridgeArgs>),
    /// Print mcpguard's version.
    Version,
    /// Print a shell completion script: `source <(mcpguard completion bash)`.
    Completion(CompletionArgs),
}

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub requester: RequesterArgs,
    /// Test files, or directories searched (recursively) for files named mcpguard-test.yaml.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// crds: the MCPServer and MCPPolicy CRDs; mcpguard: everything else mcpguard needs
    /// (never a CRD or the MCP namespace, so deleting it never deletes a server);
    /// mcp-namespace: the `mcp` namespace and the controller's Role there.
    #[arg(value_enum)]
    pub part: BundlePart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BundlePart {
    Crds,
    Mcpguard,
    McpNamespace,
}

#[derive(Debug, Args)]
pub struct CopySelfArgs {
    /// Where to write the executable.
    pub path: PathBuf,
    /// Replace PATH if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// Address to listen on. Loopback by default; in a pod, `0.0.0.0:PORT`.
    #[arg(long, env = "MCPGUARD_BRIDGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The MCP endpoint's path.
    #[arg(long, env = "MCPGUARD_BRIDGE_PATH", default_value = "/mcp", value_parser = parse_endpoint_path)]
    pub path: String,
    /// Require `Authorization: Bearer <token>`, the token read from this file (a mounted
    /// Secret) at start. Without it the endpoint is open to whoever reaches it.
    #[arg(long, env = "MCPGUARD_BRIDGE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Accept only these `Host` values (name or name:port; repeatable), and an `Origin`
    /// only when its host is listed: DNS-rebinding protection. By default any Host is
    /// accepted, since in a cluster it is the Service's name.
    #[arg(
        long = "allowed-host",
        env = "MCPGUARD_BRIDGE_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Most 2025-11-25 sessions (each runs its own server process) at once.
    #[arg(long, env = "MCPGUARD_BRIDGE_MAX_SESSIONS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_sessions: u32,
    /// Most open HTTP connections at once. When full, a new connection takes the place of
    /// the one idle longest; it is refused only when every one has a request in flight (an
    /// open stream counts).
    #[arg(long, env = "MCPGUARD_BRIDGE_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// Largest request body, in bytes.
    #[arg(long, env = "MCPGUARD_BRIDGE_MAX_BODY_BYTES", default_value_t = 4 << 20, value_parser = clap::value_parser!(u32).range(1024..=(256 << 20)))]
    pub max_body_bytes: u32,
    /// Largest message line the server may write to stdout, in bytes; a longer one ends
    /// its session.
    #[arg(long, env = "MCPGUARD_BRIDGE_MAX_LINE_BYTES", default_value_t = 16 << 20, value_parser = clap::value_parser!(u32).range(1024..=(1 << 30)))]
    pub max_line_bytes: u32,
    /// Longest stderr line logged, in bytes; the rest of a longer line is cut.
    #[arg(long, env = "MCPGUARD_BRIDGE_MAX_LOG_LINE_BYTES", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(80..=(1 << 20)))]
    pub max_log_line_bytes: u32,
    /// A session with nothing in flight and no GET stream ends after this many seconds.
    #[arg(long, env = "MCPGUARD_BRIDGE_IDLE_TIMEOUT_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_secs: u64,
    /// How long a session's `initialize` and the bridge's own requests to a server (the
    /// `server/discover` probe, `initialize` of the shared 2026-07-28 server, and
    /// `resources/subscribe` for listen streams) may take, in seconds.
    #[arg(long, env = "MCPGUARD_BRIDGE_INIT_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub init_timeout_secs: u64,
    /// How long a 2026-07-28 call to a 2025-11-25 server may wait for its client's
    /// input-required retry (the answer to the server's elicitation or sampling request),
    /// in seconds; then the server's request gets an error and the call is cancelled.
    #[arg(long, env = "MCPGUARD_BRIDGE_INPUT_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub input_timeout_secs: u64,
    /// On SIGTERM, how long in-flight requests may finish before the servers are killed.
    #[arg(long, env = "MCPGUARD_BRIDGE_DRAIN_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_secs: u64,
    /// The stdio MCP server to run, after `--`.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// The endpoint path must be absolute and plain (axum routes it literally).
fn parse_endpoint_path(path: &str) -> Result<String, String> {
    let plain = path.starts_with('/')
        && path.len() > 1
        && !path.contains(['{', '}', '*', '?', '#'])
        && path != "/healthz";
    if plain {
        Ok(path.to_owned())
    } else {
        Err(
            "the path must start with '/', hold no '{', '}', '*', '?' or '#', and not be /healthz"
                .to_owned(),
        )
    }
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub policy: OfflinePolicyArgs,
    /// Namespace for MCPServers that name none [default: the policy's first namespace]
    #[arg(long, short = 'n', env = "MCPGUARD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Output format of the objects.
    #[arg(long, short = 'o', env = "MCPGUARD_OUTPUT", value_enum, default_value_t = ObjectsFormat::Yaml)]
    pub output: ObjectsFormat,
    /// Files, directories or - for stdin.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Development mode: self-signed certificates in --certs-dir (created if absent),
    /// 127.0.0.1 listeners, the embedded default policy. Explicit flags still win.
    #[arg(long, env = "MCPGUARD_DEV")]
    pub dev: bool,
    /// HTTPS address for /mutate and /validate [default: 0.0.0.0:8443, --dev: 127.0.0.1:8443]
    #[arg(long, env = "MCPGUARD_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Plain HTTP address for /healthz, /readyz and /metrics [default: 0.0.0.0:8080, --dev: 127.0.0.1:8080]
    #[arg(long, env = "MCPGUARD_PROBE_LISTEN")]
    pub probe_listen: Option<SocketAddr>,
    /// PEM certificate chain [default: /etc/mcpguard/tls/tls.crt, --dev: <certs-dir>/tls.crt]
    #[arg(long, env = "MCPGUARD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key [default: /etc/mcpguard/tls/tls.key, --dev: <certs-dir>/tls.key]
    #[arg(long, env = "MCPGUARD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Where --dev keeps its certificates.
    #[arg(long, env = "MCPGUARD_CERTS_DIR", default_value = "certs")]
    pub certs_dir: PathBuf,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// The Kubernetes version to answer for (1.34, v1.34.2): `latest`, and any newer pinned
    /// Pod Security version, are judged as that cluster's Pod Security admission judges them
    /// [default: the API server's /version when a cluster is reachable, else the newest checks
    /// mcpguard knows]
    #[arg(long, env = "MCPGUARD_KUBERNETES_VERSION", value_parser = mcpguard_core::pss::parse_kubernetes_minor)]
    pub kubernetes_version: Option<u32>,
    /// Open connections at once. When full, a new connection takes the place of the one idle
    /// the longest (closed); it is refused only while every connection has a request in flight.
    #[arg(long, env = "MCPGUARD_MAX_CONNECTIONS", default_value_t = crate::webhook::server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// PEM CA certificate(s) that sign the client certificate kube-apiserver presents to
    /// webhooks (AdmissionConfiguration kubeConfigFile). With it, a review over a connection
    /// without such a certificate gets 401, and one from another CA fails the TLS handshake.
    #[arg(long, env = "MCPGUARD_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// Reviews in progress at once; more get a quick 503.
    #[arg(long, env = "MCPGUARD_MAX_CONCURRENT_REVIEWS", default_value_t = crate::webhook::routes::DEFAULT_MAX_CONCURRENT_REVIEWS)]
    pub max_concurrent_reviews: usize,
    /// Bytes of review bodies in progress at once (at least the 7 MiB body cap); a review
    /// that does not fit within 2 s gets a 503. Peak memory follows it (README, "Memory and limits").
    #[arg(long, env = "MCPGUARD_MAX_REVIEW_BYTES", default_value_t = crate::webhook::routes::DEFAULT_MAX_REVIEW_BYTES)]
    pub max_review_bytes: usize,
    /// Seconds between background audits (PolicyReports) on the leader; 0 turns them off.
    #[arg(long, env = "MCPGUARD_AUDIT_INTERVAL_SECONDS", default_value_t = 3600)]
    pub audit_interval_seconds: u64,
    /// Which report API the background audit writes: PolicyReports (wgpolicyk8s.io/v1alpha2),
    /// OpenReports Reports (openreports.io/v1alpha1), or both.
    #[arg(long, env = "MCPGUARD_REPORT_API", value_enum, default_value_t = ReportApiArg::Policyreport)]
    pub report_api: ReportApiArg,
    /// Also record an Event (reason PolicyMutated) for every mutated pod.
    #[arg(long, env = "MCPGUARD_RECORD_MUTATIONS")]
    pub record_mutations: bool,
    /// Seconds between checks of the --policy file for a new policy (hot reload).
    #[arg(long, env = "MCPGUARD_POLICY_RELOAD_SECONDS", default_value_t = 10)]
    pub policy_reload_seconds: u64,
    /// Seconds between checks of the certificate files for a new certificate.
    #[arg(long, env = "MCPGUARD_CERT_RELOAD_SECONDS", default_value_t = 10)]
    pub cert_reload_seconds: u64,
    /// After SIGTERM, seconds to keep serving (not ready) before closing connections
    /// [default: 5, --dev: 0]
    #[arg(long, env = "MCPGUARD_DRAIN_SECONDS")]
    pub drain_seconds: Option<u64>,
    /// Use the Kubernetes API (RuntimeClass cache): auto = when a kubeconfig or in-cluster
    /// config exists; required = fail without one; off = never [default: auto, --dev: off,
    /// so a laptop's current kubeconfig context is never used unless asked: --cluster auto]
    #[arg(long, env = "MCPGUARD_CLUSTER", value_enum)]
    pub cluster: Option<ClusterMode>,
    /// files: --tls-cert/--tls-key must exist at start; external: they may appear later
    /// (cert-manager); self: the leader replica creates, stores and rotates them in
    /// --cert-secret-name and keeps the webhook configurations' caBundle current.
    #[arg(long, env = "MCPGUARD_CERT_MANAGEMENT", value_enum, default_value_t = CertManagement::Files)]
    pub cert_management: CertManagement,
    /// Secret holding the self-managed certificate (in --pod-namespace).
    #[arg(
        long,
        env = "MCPGUARD_CERT_SECRET_NAME",
        default_value = "mcpguard-tls"
    )]
    pub cert_secret_name: String,
    /// Name of both the Mutating- and ValidatingWebhookConfiguration.
    #[arg(
        long,
        env = "MCPGUARD_WEBHOOK_CONFIGURATION",
        default_value = "mcpguard"
    )]
    pub webhook_configuration: String,
    /// The webhook Service, for the certificate's names.
    #[arg(long, env = "MCPGUARD_SERVICE", default_value = "mcpguard")]
    pub service: String,
    #[arg(
        long,
        env = "MCPGUARD_POD_NAMESPACE",
        default_value = "mcpguard-system"
    )]
    pub pod_namespace: String,
    /// This replica's identity in leader election [default: the hostname].
    #[arg(long, env = "MCPGUARD_POD_NAME")]
    pub pod_name: Option<String>,
    /// Elect a leader (a coordination Lease) to own the namespaces' PSA enforce label and the
    /// background audit; always on with --cert-management=self.
    #[arg(long, env = "MCPGUARD_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Coordination Lease for leader election (in --pod-namespace).
    #[arg(long, env = "MCPGUARD_LEADER_LEASE", default_value = "mcpguard-leader")]
    pub leader_lease: String,
    /// Watch MCPPolicy objects (every replica) and enforce each in its namespaces, the policy
    /// file covering the rest; /readyz stays false until they are listed. Needs the MCPPolicy
    /// CRD (webhook-manifests/crds/).
    #[arg(long, env = "MCPGUARD_WATCH_POLICIES", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_policies: bool,
    /// Run the MCPServer controller on the leader: each MCPServer in an enforced namespace
    /// becomes its Deployment, Service and NetworkPolicy. Implies leader election.
    #[arg(long, env = "MCPGUARD_CONTROLLER")]
    pub controller: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CertManagement {
    Files,
    External,
    #[value(name = "self")]
    SelfManaged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterMode {
    Auto,
    Required,
    Off,
}

/// The policies of an offline command, routed by namespace as the cluster routes them.
#[derive(Debug, Args)]
pub struct OfflinePolicyArgs {
    /// MCPPolicy file or directory; repeat for several. The first policy read plays the
    /// webhook's policy file, every other one (and every MCPPolicy among the inputs) an
    /// MCPPolicy object [default: the embedded policies/mcp-restricted.yaml]
    #[arg(long, env = "MCPGUARD_POLICY")]
    pub policy: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// MCPPolicy file [default: the embedded policies/mcp-restricted.yaml]
    #[arg(long, env = "MCPGUARD_POLICY")]
    pub policy: Option<PathBuf>,
}

/// Who the objects are judged as created by, as kubectl's impersonation flags name it:
/// exceptions that match `users` or `groups` apply only to their requester.
#[derive(Debug, Args, Default)]
pub struct RequesterArgs {
    /// The requesting user (`request.userInfo.username`) [default: none]
    #[arg(long = "as", env = "MCPGUARD_AS", value_name = "USER")]
    pub as_user: Option<String>,
    /// A group of the requesting user; repeat or separate with commas
    #[arg(
        long = "as-group",
        env = "MCPGUARD_AS_GROUP",
        value_name = "GROUP",
        value_delimiter = ','
    )]
    pub as_groups: Vec<String>,
}

impl RequesterArgs {
    pub fn user_info(&self) -> k8s_openapi::api::authentication::v1::UserInfo {
        k8s_openapi::api::authentication::v1::UserInfo {
            username: self.as_user.clone(),
            groups: (!self.as_groups.is_empty()).then(|| self.as_groups.clone()),
            ..Default::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub policy: OfflinePolicyArgs,
    #[command(flatten)]
    pub requester: RequesterArgs,
    /// Namespace for objects that name none [default: the policy's first namespace]
    #[arg(long, short = 'n', env = "MCPGUARD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Override the policy's Pod Security Standards level.
    #[arg(long, env = "MCPGUARD_PSS_LEVEL", value_parser = parse_level)]
    pub pss_level: Option<Level>,
    /// Override the policy's Pod Security Standards version (latest or v1.N).
    #[arg(long, env = "MCPGUARD_PSS_VERSION", value_parser = Version::parse)]
    pub pss_version: Option<Version>,
    /// The Kubernetes version of the cluster to answer for (1.34, v1.34.2): `latest`, and any
    /// newer pinned version, are judged as that cluster's Pod Security admission judges
    /// them [default: the newest checks mcpguard knows]
    #[arg(long, env = "MCPGUARD_KUBERNETES_VERSION", value_parser = mcpguard_core::pss::parse_kubernetes_minor)]
    pub kubernetes_version: Option<u32>,
    /// Validate the manifests as written, without the webhook's mutation.
    #[arg(long, env = "MCPGUARD_NO_MUTATE")]
    pub no_mutate: bool,
    #[arg(long, short = 'o', env = "MCPGUARD_OUTPUT", value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Files, directories (*.yaml, *.yml, *.json, recursively) or - for stdin.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MutateArgs {
    #[command(flatten)]
    pub policy: OfflinePolicyArgs,
    #[command(flatten)]
    pub requester: RequesterArgs,
    /// Namespace for objects that name none [default: the policy's first namespace]
    #[arg(long, short = 'n', env = "MCPGUARD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Print the JSON patch of each object (one JSON line per object) instead of the objects.
    #[arg(long, env = "MCPGUARD_PATCH", conflicts_with = "output")]
    pub patch: bool,
    /// Output format of the objects.
    #[arg(long, short = 'o', env = "MCPGUARD_OUTPUT", value_enum, default_value_t = ObjectsFormat::Yaml)]
    pub output: ObjectsFormat,
    /// Files, directories or - for stdin.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Namespace to audit; repeat (or comma-separate) for several [default: all namespaces]
    #[arg(long, short = 'n', env = "MCPGUARD_NAMESPACE", value_delimiter = ',')]
    pub namespace: Vec<String>,
    /// Audit every namespace (the default without -n), as kubectl's flag says it.
    #[arg(long, short = 'A', conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// The kubeconfig context to use [default: the current context], as kubectl's --context.
    #[arg(long, env = "MCPGUARD_CONTEXT")]
    pub context: Option<String>,
    /// The kubeconfig file to use [default: $KUBECONFIG, else ~/.kube/config], as kubectl's
    /// --kubeconfig.
    #[arg(long, env = "MCPGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Show denials this recent: a number and a unit (s, m, h, d, w), e.g. 30m, 24h, 7d, 1h30m.
    #[arg(long, env = "MCPGUARD_SINCE", default_value = "24h", value_parser = parse_since)]
    pub since: jiff::SignedDuration,
    /// Report format.
    #[arg(long, short = 'o', env = "MCPGUARD_OUTPUT", value_enum, default_value_t = AuditOutput::Table)]
    pub output: AuditOutput,
    /// Restart (as `kubectl rollout restart`) the Deployments whose running pods fail today's
    /// policy, after showing the plan and asking for confirmation.
    #[arg(long, env = "MCPGUARD_APPLY_POLICY")]
    pub apply_policy: bool,
    /// With --apply-policy: do not ask for confirmation.
    #[arg(long, short = 'y', env = "MCPGUARD_YES")]
    pub yes: bool,
    /// Which reports to read: PolicyReports (wgpolicyk8s.io/v1alpha2), OpenReports Reports
    /// (openreports.io/v1alpha1), or both, as `serve --report-api` writes them.
    #[arg(long, env = "MCPGUARD_REPORT_API", value_enum, default_value_t = ReportApiArg::Policyreport)]
    pub report_api: ReportApiArg,
}

/// `mcpguard audit --output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// Aligned columns (also accepts `text`, so a shared MCPGUARD_OUTPUT=text works).
    #[value(alias = "text")]
    Table,
    Json,
    Yaml,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Yaml,
    /// SARIF 2.1.0, for code scanning (GitHub's upload-sarif).
    Sarif,
    /// JUnit XML, one test case per object, for CI test tabs.
    Junit,
}

/// How `mutate` and `render` print objects: a YAML stream, or a JSON `List` (as
/// `kubectl get -o json` prints several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectsFormat {
    Yaml,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Write ca.crt, tls.crt and tls.key for the webhook Service.
    Generate(CertsGenerateArgs),
    /// Print the webhook configurations in MANIFEST(s) with caBundle set to the CA.
    Inject(CertsInjectArgs),
}

#[derive(Debug, Args)]
pub struct CertsInjectArgs {
    /// PEM CA certificate(s) that signed the serving certificate.
    #[arg(long, env = "MCPGUARD_CA")]
    pub ca: PathBuf,
    /// Manifest files or directories (e.g. `kubectl kustomize webhook-manifests/` output, or -).
    #[arg(required = true)]
    pub manifests: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CertsGenerateArgs {
    #[arg(long, env = "MCPGUARD_SERVICE", default_value = "mcpguard")]
    pub service: String,
    #[arg(
        long,
        env = "MCPGUARD_SERVICE_NAMESPACE",
        default_value = "mcpguard-system"
    )]
    pub namespace: String,
    /// Extra DNS names or IP addresses for the certificate.
    #[arg(long = "san", env = "MCPGUARD_EXTRA_SANS", value_delimiter = ',')]
    pub extra_names: Vec<String>,
    #[arg(long, env = "MCPGUARD_CERTS_OUT", default_value = "certs")]
    pub out: PathBuf,
    /// Replace certificates already in --out (by default an existing file is refused).
    #[arg(long)]
    pub force: bool,
}

fn parse_level(value: &str) -> Result<Level, String> {
    value.parse()
}
