//! The webhook under load, over real TLS on loopback, next to an echo baseline.
//!
//! `cargo bench --bench load` (or `benches/load.sh`). One run starts two servers:
//!
//! - **mcpguard**: the release binary (`target/release/mcpguard serve`), with certificates
//!   generated into a temporary directory;
//! - **echo**: this bench binary re-executed with `--echo-server`: the same rustls config
//!   (`webhook::tls::server_config`) and accept loop (`webhook::server::serve_tls`), and
//!   a handler that only parses the body as an `AdmissionReview` and allows it.
//!
//! A closed-loop client (hyper HTTP/1.1 over rustls, trusting only the generated CA) keeps
//! N persistent connections, each sending the next request as soon as the previous answer
//! arrived, for a warm-up and then a measured window, for every payload × N × server.
//! Every request carries its own uid; a response counts as an error unless it is a 200
//! that echoes that uid and allows/denies exactly as the core's front door decides in-process.
//! It prints one markdown table (requests/s, latency percentiles, server CPU and peak RSS,
//! mcpguard's throughput as a ratio of echo's) and the issue's targets; a missed target is
//! reported, never a failure.
//!
//! Knobs (environment): `LOAD_CONNECTIONS` (default `1,16,64`), `LOAD_WARMUP_SECONDS`
//! (default 1), `LOAD_SECONDS` (default 5), `MCPGUARD_BIN` (default: the binary cargo
//! built with this bench), `MCPGUARD_LOG` (mcpguard's log filter, default `info`, which
//! writes a line per denial; `debug` adds one per review), `LOAD_PAYLOADS` (comma-separated
//! payload names, default all: `skip-pod,mutate-pod,validate-pod,validate-pod-5c,
//! validate-deploy`). Run without `--bench` (`cargo test --benches`), it is a short smoke
//! run with one connection.
//!
//! `LOAD_MODE=hostile` runs mcpguard alone with every tenth request hostile (a body over
//! the cap, nesting past the depth limit, a pod of 100,000 containers) and reports the
//! normal reviews' percentiles apart. Peak memory per review size is `benches/memory.sh`'s.

/// The same allocator as the `mcpguard` binary: the echo baseline ran on glibc malloc
/// while mcpguard ran on mimalloc, which flattered mcpguard's ratio to echo.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mcpguard::webhook::routes::MAX_BODY_BYTES;
use mcpguard::webhook::{server, tls};
use mcpguard_core::admission::{self, Context};
use mcpguard_core::certs;
use mcpguard_core::engine::{Decision, Outcome};
use mcpguard_core::policy::Policy;
use mcpguard_core::policy_set::PolicySet;
use mcpguard_core::review::{API_VERSION, AdmissionReview, KIND};
use mcpguard_core::runtime_class::StaticRuntimeClasses;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[path = "support/reviews.rs"]
mod reviews;

const ECHO_FLAG: &str = "--echo-server";
/// Every request's uid is this template with the connection and sequence number written in.
const UID_TEMPLATE: &str = "00000000-0000-4000-8000-000000000000";
/// kube-apiserver's default webhook timeout: a request slower than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

// Targets from the issue "Prove it under load".
const TARGET_RATIO: f64 = 0.7;
const TARGET_RPS_AT_64: f64 = 15_000.0;
const TARGET_P99_FLOOR_MS: f64 = 5.0;
const TARGET_P99_ECHO_FACTOR: f64 = 1.5;
const TARGET_RSS_MIB: f64 = 64.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some(ECHO_FLAG) {
        echo_server(&args[1..])
    } else {
        run(args.iter().any(|a| a == "--bench"))
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("load: {err:#}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// The echo baseline (a separate process: this binary with `--echo-server CERT KEY`).

fn echo_server(args: &[String]) -> anyhow::Result<ExitCode> {
    let [cert, key] = args else {
        bail!("usage: load {ECHO_FLAG} <tls.crt> <tls.key>");
    };
    let certified = tls::certified_key_from_files(Path::new(cert), Path::new(key))?;
    let config = tls::server_config(tls::SwappableCert::new(certified))?;
    // The same runtime mcpguard's `serve` builds: multi-thread, one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the echo server's runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("echo server cannot listen on 127.0.0.1:0")?;
        let addr = listener.local_addr().context("echo listener address")?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("echo server cannot listen for SIGTERM")?;
        eprintln!("echo is serving on {addr}");
        let router = Router::new()
            .route("/mutate", post(echo))
            .route("/validate", post(echo));
        server::serve_tls(listener, config, router, async move {
            terminate.recv().await;
        })
        .await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Parses the review exactly as mcpguard does, decides nothing, allows it.
async fn echo(body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let uid = match serde_json::from_slice::<AdmissionReview>(&bytes) {
        Ok(AdmissionReview {
            request: Some(request),
            ..
        }) => request.uid,
        _ => return StatusCode::BAD_REQUEST.into_response(),
    };
    axum::Json(json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "response": {"uid": uid, "allowed": true},
    }))
    .into_response()
}

// ---------------------------------------------------------------------------------------
// Settings.

struct Settings {
    connections: Vec<usize>,
    warmup: Duration,
    measure: Duration,
    smoke: bool,
}

impl Settings {
    fn from_env(bench: bool) -> anyhow::Result<Self> {
        let seconds = |name: &str, default: f64| -> anyhow::Result<Duration> {
            match std::env::var(name) {
                Ok(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| anyhow!("{name}={v:?}: expected seconds")),
                Err(_) => Ok(Duration::from_secs_f64(default)),
            }
        };
        let (default_conns, warmup, measure) = if bench {
            ("1,16,64", 1.0, 5.0)
        } else {
            ("1", 0.2, 0.5)
        };
        let list = std::env::var("LOAD_CONNECTIONS").unwrap_or_else(|_| default_conns.into());
        let connections = list
            .split(',')
            .map(|n| {
                n.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| anyhow!("LOAD_CONNECTIONS={list:?}: expected e.g. 1,16,64"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Settings {
            connections,
            warmup: seconds("LOAD_WARMUP_SECONDS", warmup)?,
            measure: seconds("LOAD_SECONDS", measure)?.max(Duration::from_millis(100)),
            smoke: !bench,
        })
    }
}

/// The mcpguard binary cargo built alongside this bench (release for `cargo bench`).
fn mcpguard_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MCPGUARD_BIN") {
        return PathBuf::from(path);
    }
    match option_env!("CARGO_BIN_EXE_mcpguard") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/mcpguard"),
    }
}

// ---------------------------------------------------------------------------------------
// Payloads.

struct Payload {
    name: &'static str,
    path: &'static str,
    body: Vec<u8>,
    /// Where the request uid (`UID_TEMPLATE`, 36 bytes) sits in `body`.
    uid_at: usize,
    /// What mcpguard must answer (echo always allows).
    allowed: bool,
    outcome: Outcome,
    /// The HTTP status mcpguard must answer with; for a 200, `allowed` must hold too, and
    /// for anything else, the body must carry `refusal`.
    status: u16,
    refusal: &'static str,
}

/// The typical review (`benches/support/reviews.rs`) with a uid this bench rewrites.
fn typical_review() -> Value {
    let mut review = reviews::typical_review();
    review["request"]["uid"] = json!(UID_TEMPLATE);
    review
}

fn decide(review: &Value, context: Context<'_>, mutate: bool) -> anyhow::Result<Decision> {
    let parsed: AdmissionReview = serde_json::from_value(review.clone())?;
    let request = parsed.request.context("review has a request")?;
    let answer = if mutate {
        admission::mutate(&request, context)
    } else {
        admission::validate(&request, context)
    };
    Ok(answer.decision)
}

fn payloads() -> anyhow::Result<Vec<Payload>> {
    let policy = Policy::embedded_default().context("embedded policy loads")?;
    let policies = PolicySet::single(std::sync::Arc::new(policy));
    let runtime_classes = StaticRuntimeClasses::default();
    let context = Context {
        policies: &policies,
        runtime_classes: &runtime_classes,
        now: jiff::Timestamp::now(),
        secret_access: mcpguard_core::admission::SecretAccess::Offline,
    };
    let typical = typical_review();

    // (b) the pod as the mutating webhook left it.
    let mut mutated = typical.clone();
    let patch = decide(&typical, context, true)?
        .patch
        .context("the typical pod needs mutation")?;
    json_patch::patch(&mut mutated["request"]["object"], &patch).context("patch applies")?;

    // (c) the mutated pod with four more containers (copies of the first, no ports).
    let mut five = mutated.clone();
    let containers = five["request"]["object"]["spec"]["containers"]
        .as_array_mut()
        .context("containers")?;
    let first = containers.first().cloned().context("a first container")?;
    for i in 1..=4 {
        let mut sidecar = first.clone();
        sidecar["name"] = json!(format!("sidecar-{i}"));
        if let Some(fields) = sidecar.as_object_mut() {
            fields.remove("ports");
        }
        containers.push(sidecar);
    }

    // (d) a Deployment whose pod template has the typical pod's spec.
    let deployment = reviews::deployment_review(&typical);

    // (e) the same pod in a namespace no policy covers: parsed with the echo's types, then
    // answered `Skipped`, so this row measures mcpguard's serving layer against the echo's.
    let mut skipped = mutated.clone();
    skipped["request"]["namespace"] = json!("default");
    skipped["request"]["object"]["metadata"]["namespace"] = json!("default");
    [
        ("skip-pod", "/validate", skipped, false),
        ("mutate-pod", "/mutate", typical, true),
        ("validate-pod", "/validate", mutated, false),
        ("validate-pod-5c", "/validate", five, false),
        ("validate-deploy", "/validate", deployment, false),
    ]
    .into_iter()
    .map(|(name, path, review, mutate)| {
        let decision = decide(&review, context, mutate)?;
        let body = serde_json::to_vec(&review)?;
        let uid_at = find(&body, UID_TEMPLATE.as_bytes()).context("uid in the body")?;
        Ok(Payload {
            name,
            path,
            body,
            uid_at,
            allowed: decision.allowed(),
            outcome: decision.outcome,
            status: 200,
            refusal: "",
        })
    })
    .collect()
}

/// The payloads `LOAD_PAYLOADS` names, in their usual order; all of them when it is unset.
fn selected(all: Vec<Payload>) -> anyhow::Result<Vec<Payload>> {
    let Ok(list) = std::env::var("LOAD_PAYLOADS") else {
        return Ok(all);
    };
    let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|name| !all.iter().any(|p| p.name == **name))
    {
        let known: Vec<&str> = all.iter().map(|p| p.name).collect();
        bail!(
            "LOAD_PAYLOADS={list:?}: no payload {unknown:?}; known: {}",
            known.join(",")
        );
    }
    Ok(all
        .into_iter()
        .filter(|p| wanted.contains(&p.name))
        .collect())
}

/// The hostile tenth of `LOAD_MODE=hostile`, in turn: a body over the cap (413), nesting
/// past the parser's depth limit (400), and a pod of 100,000 containers (denied).
fn hostile_payloads() -> anyhow::Result<Vec<Payload>> {
    let typical = typical_review();
    let text = serde_json::to_string(&typical)?;
    let mut oversized = text.clone().into_bytes();
    let pad = format!(
        r#","pad":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES + 1 - oversized.len())
    );
    oversized.pop();
    oversized.extend_from_slice(pad.as_bytes());
    let mut deep = typical.clone();
    deep["request"]["object"]["spec"]["containers"][0]["futureField"] = json!("__DEEP__");
    let nested = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    let deep = serde_json::to_string(&deep)?.replacen(r#""__DEEP__""#, &nested, 1);
    let mut many = typical;
    many["request"]["object"]["spec"]["containers"] = (0..100_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "ghcr.io/a/b:1"}))
        .collect();
    let hostile = |name, path, body: Vec<u8>, status, refusal| Payload {
        name,
        path,
        uid_at: 0,
        body,
        allowed: false,
        outcome: Outcome::Invalid,
        status,
        refusal,
    };
    Ok(vec![
        hostile(
            "oversized",
            "/validate",
            oversized,
            413,
            "body is larger than",
        ),
        hostile(
            "deep",
            "/mutate",
            deep.into_bytes(),
            400,
            "recursion limit exceeded",
        ),
        Payload {
            outcome: Outcome::Denied,
            ..hostile(
                "100k-containers",
                "/validate",
                serde_json::to_vec(&many)?,
                200,
                "",
            )
        },
    ])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------------------
// Server processes.

#[derive(Default)]
struct LogStats {
    lines: AtomicU64,
    warnings: AtomicU64,
    errors: AtomicU64,
    /// The first few WARN/ERROR lines, and the last lines before an early exit.
    notable: Mutex<Vec<String>>,
    tail: Mutex<std::collections::VecDeque<String>>,
}

impl LogStats {
    fn note(&self, line: &str) {
        self.lines.fetch_add(1, Ordering::Relaxed);
        let counter = if line.contains("\"level\":\"WARN\"") {
            Some(&self.warnings)
        } else if line.contains("\"level\":\"ERROR\"") {
            Some(&self.errors)
        } else {
            None
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut notable) = self.notable.lock()
                && notable.len() < 5
            {
                notable.push(line.chars().take(300).collect());
            }
        }
        if let Ok(mut tail) = self.tail.lock() {
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line.chars().take(300).collect());
        }
    }
}

/// The listen address in a server's startup line: mcpguard's JSON "mcpguard is serving"
/// or the echo server's "echo is serving on ADDR".
fn listen_address(line: &str) -> Option<SocketAddr> {
    if let Some(addr) = line.strip_prefix("echo is serving on ") {
        return addr.trim().parse().ok();
    }
    // The flat JSON log line: `{"ts", "level", "msg", then the fields}`.
    let value: Value = serde_json::from_str(line).ok()?;
    if value.get("msg")?.as_str()? != "mcpguard is serving" {
        return None;
    }
    value.get("listen")?.as_str()?.parse().ok()
}

/// Server processes still running, for [`stop_children_on_signal`].
static RUNNING: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// On Ctrl-C or SIGTERM (when no destructor runs), SIGTERM the servers before exiting.
fn stop_children_on_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let code = runtime.block_on(async {
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                eprintln!("load: cannot listen for signals; an interrupted run may leave servers");
                return std::future::pending().await;
            };
            tokio::select! {
                _ = interrupt.recv() => 130,
                _ = terminate.recv() => 143,
            }
        });
        let running = RUNNING.lock().map(|r| r.clone()).unwrap_or_default();
        for pid in running {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        eprintln!("load: interrupted; sent SIGTERM to the servers");
        std::process::exit(code);
    });
}

/// A server child process; stopped (SIGTERM, then SIGKILL) when dropped.
struct ServerProcess {
    name: &'static str,
    child: Child,
    addr: SocketAddr,
    logs: Arc<LogStats>,
}

impl ServerProcess {
    fn start(name: &'static str, mut command: Command) -> anyhow::Result<Self> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .with_context(|| format!("cannot start the {name} server: {command:?}"))?;
        if let Ok(mut running) = RUNNING.lock() {
            running.push(child.id());
        }
        // From here on, dropping `process` stops the child, whatever goes wrong.
        let mut process = ServerProcess {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs: Arc::new(LogStats::default()),
        };
        let stderr = process
            .child
            .stderr
            .take()
            .with_context(|| format!("{name}: no stderr pipe"))?;
        let (found, address) = mpsc::channel();
        // Drain stderr for the whole run: mcpguard logs every denial (every review at
        // MCPGUARD_LOG=debug), and a full pipe would stall it.
        let logs = process.logs.clone();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                logs.note(&line);
                if let Some(addr) = found.as_ref().and_then(|_| listen_address(&line))
                    && let Some(sender) = found.take()
                {
                    let _ = sender.send(addr);
                }
            }
        });
        match address.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => {
                process.addr = addr;
                Ok(process)
            }
            Err(err) => {
                process.stop();
                // The reader thread sees EOF once the child is gone; give it a moment.
                std::thread::sleep(Duration::from_millis(50));
                let tail = process
                    .logs
                    .tail
                    .lock()
                    .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
                    .unwrap_or_default();
                bail!("{name} did not report its listen address ({err}); its stderr:\n{tail}")
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM (the way Kubernetes stops a pod), then SIGKILL if it is still running.
    /// Stops the server; says how it went.
    fn stop(&mut self) -> String {
        let how = self.terminate();
        let pid = self.child.id();
        if let Ok(mut running) = RUNNING.lock() {
            running.retain(|p| *p != pid);
        }
        how
    }

    fn terminate(&mut self) -> String {
        if let Ok(Some(status)) = self.child.try_wait() {
            return format!("had already exited ({status})");
        }
        let sent = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        while sent.elapsed() < STOP_TIMEOUT {
            if let Ok(Some(status)) = self.child.try_wait() {
                return format!(
                    "exited ({status}) {:.2} s after SIGTERM",
                    sent.elapsed().as_secs_f64()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "load: {} did not stop within {:?} of SIGTERM; killing it",
            self.name, STOP_TIMEOUT
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!("did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

// /proc sampling.

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of `pid` ("self" for this process), in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after "(comm)": state is the first; utime and stime are the 12th and 13th.
    let mut fields = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// A `/proc/PID/status` memory field (VmHWM, VmRSS) in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

// ---------------------------------------------------------------------------------------
// The load client.

struct Cell {
    server: &'static str,
    payload: &'static str,
    connections: usize,
    requests: usize,
    rps: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    errors: u64,
    first_error: Option<String>,
    server_cpu: f64,
    client_cpu: f64,
    rss_peak: f64,
    /// Hostile requests answered correctly in the window, and their p99.
    hostile: usize,
    hostile_p99: f64,
    refused_early: u64,
}

struct Shared {
    addr: SocketAddr,
    connector: TlsConnector,
    payload: Arc<Payload>,
    /// Every tenth request is one of these in turn (`LOAD_MODE=hostile`); empty otherwise.
    hostile: Vec<Arc<Payload>>,
    /// Whether responses must carry mcpguard's decision (echo always allows).
    check_decision: bool,
    measure_from: Instant,
    until: Instant,
}

#[derive(Default)]
struct WorkerResult {
    latencies_ns: Vec<u64>,
    /// Of the hostile requests, apart: they are not what the percentiles describe.
    hostile_ns: Vec<u64>,
    /// Oversized requests whose connection closed before the 413 could be read.
    refused_early: u64,
    errors: u64,
    first_error: Option<String>,
}

impl WorkerResult {
    fn error(&mut self, message: String) {
        self.errors += 1;
        self.first_error.get_or_insert(message);
    }
}

async fn connect(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let tcp = TcpStream::connect(addr).await.context("TCP connect")?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = connector
        .connect(name, tcp)
        .await
        .context("TLS handshake")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(connection);
    Ok(sender)
}

enum Failure {
    /// The connection is unusable: reconnect.
    Connection(String),
    /// A wrong answer on a healthy connection.
    Response(String),
}

async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    shared: &Shared,
    payload: &Payload,
    body: Bytes,
    uid: &str,
) -> Result<(), Failure> {
    let request = Request::post(payload.path)
        .header(header::HOST, HeaderValue::from_static("127.0.0.1"))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(Full::new(body))
        .map_err(|e| Failure::Response(format!("building the request: {e}")))?;
    sender
        .ready()
        .await
        .map_err(|e| Failure::Connection(format!("connection not ready: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::Connection(format!("request failed: {e}")))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| Failure::Connection(format!("reading the response body: {e}")))?
        .to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    let expected = if shared.check_decision {
        payload.status
    } else {
        200
    };
    if status.as_u16() != expected {
        return Err(Failure::Response(format!(
            "HTTP {status}, expected {expected}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    if expected != 200 {
        return if text.contains(payload.refusal) {
            Ok(())
        } else {
            Err(Failure::Response(format!(
                "HTTP {status} without {:?}: {}",
                payload.refusal,
                text.chars().take(200).collect::<String>()
            )))
        };
    }
    if !text.contains(&format!("\"uid\":\"{uid}\"")) {
        return Err(Failure::Response(format!(
            "response does not echo uid {uid}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    let allowed = !shared.check_decision || payload.allowed;
    if !text.contains(&format!("\"allowed\":{allowed}")) {
        return Err(Failure::Response(format!(
            "expected allowed={allowed}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    Ok(())
}

/// One persistent connection sending requests back to back until `until`.
async fn worker(id: usize, shared: Arc<Shared>) -> WorkerResult {
    let mut result = WorkerResult::default();
    let mut body = shared.payload.body.clone();
    let uid_at = shared.payload.uid_at;
    // Hostile bodies are sent as built (their uids are not checked): shared, not copied.
    let hostile: Vec<Bytes> = shared
        .hostile
        .iter()
        .map(|p| Bytes::from(p.body.clone()))
        .collect();
    let mut sender = None;
    let mut sequence: u64 = 0;
    while Instant::now() < shared.until {
        let connection = match sender.as_mut() {
            Some(connection) => connection,
            None => {
                match tokio::time::timeout(REQUEST_TIMEOUT, connect(shared.addr, &shared.connector))
                    .await
                {
                    Ok(Ok(connection)) => sender.insert(connection),
                    Ok(Err(err)) => {
                        result.error(format!("connect: {err:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                    Err(_) => {
                        result.error("connect: timed out".into());
                        continue;
                    }
                }
            }
        };
        sequence += 1;
        // Offset by the worker's id, so that connections do not all turn hostile at once.
        let turn = sequence + id as u64;
        let hostile_index = (!hostile.is_empty() && turn.is_multiple_of(10))
            .then(|| usize::try_from(turn / 10).unwrap_or(0) % hostile.len());
        let (payload, request_body, uid) = match hostile_index {
            Some(index) => (
                shared.hostile[index].as_ref(),
                hostile[index].clone(),
                UID_TEMPLATE.to_owned(),
            ),
            None => {
                let uid = format!("{id:08x}-0000-4000-8000-{sequence:012x}");
                body[uid_at..uid_at + uid.len()].copy_from_slice(uid.as_bytes());
                (shared.payload.as_ref(), Bytes::from(body.clone()), uid)
            }
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(
            REQUEST_TIMEOUT,
            exchange(connection, &shared, payload, request_body, &uid),
        )
        .await;
        let finished = Instant::now();
        match outcome {
            Ok(Ok(())) => {
                if started >= shared.measure_from && finished <= shared.until {
                    let ns = u64::try_from((finished - started).as_nanos()).unwrap_or(u64::MAX);
                    match hostile_index {
                        Some(_) => result.hostile_ns.push(ns),
                        None => result.latencies_ns.push(ns),
                    }
                }
                // A refusal before the body was read ends the connection.
                if payload.status == 413 {
                    sender = None;
                }
            }
            Ok(Err(Failure::Response(message))) => result.error(message),
            // The server answers 413 on the declared length and closes; a client still
            // writing the body may see only the closed connection. That is the refusal.
            Ok(Err(Failure::Connection(_))) if payload.status == 413 => {
                result.refused_early += 1;
                sender = None;
            }
            Ok(Err(Failure::Connection(message))) => {
                result.error(message);
                sender = None;
            }
            Err(_) => {
                result.error(format!("no response within {REQUEST_TIMEOUT:?}"));
                sender = None;
            }
        }
    }
    result
}

fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

async fn run_cell(
    server: &ServerProcess,
    connector: &TlsConnector,
    payload: &Arc<Payload>,
    hostile: &[Arc<Payload>],
    connections: usize,
    settings: &Settings,
    ticks: f64,
) -> Cell {
    let start = Instant::now();
    let shared = Arc::new(Shared {
        addr: server.addr,
        connector: connector.clone(),
        payload: payload.clone(),
        hostile: hostile.to_vec(),
        check_decision: server.name == "mcpguard",
        measure_from: start + settings.warmup,
        until: start + settings.warmup + settings.measure,
    });
    let workers: Vec<_> = (0..connections)
        .map(|id| tokio::spawn(worker(id, shared.clone())))
        .collect();
    let pid = server.pid().to_string();
    tokio::time::sleep_until(shared.measure_from.into()).await;
    let (server0, client0) = (cpu_ticks(&pid), cpu_ticks("self"));
    tokio::time::sleep_until(shared.until.into()).await;
    let (server1, client1) = (cpu_ticks(&pid), cpu_ticks("self"));
    let mut latencies = Vec::new();
    let mut hostile_latencies = Vec::new();
    let mut refused_early = 0;
    let (mut errors, mut first_error) = (0, None);
    for handle in workers {
        match handle.await {
            Ok(result) => {
                latencies.extend(result.latencies_ns);
                hostile_latencies.extend(result.hostile_ns);
                refused_early += result.refused_early;
                errors += result.errors;
                first_error = first_error.or(result.first_error);
            }
            Err(err) => {
                errors += 1;
                first_error.get_or_insert(format!("client task failed: {err}"));
            }
        }
    }
    latencies.sort_unstable();
    hostile_latencies.sort_unstable();
    let window = settings.measure.as_secs_f64();
    let cores = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a) as f64 / ticks / window,
        _ => f64::NAN,
    };
    Cell {
        server: server.name,
        payload: payload.name,
        connections,
        requests: latencies.len(),
        rps: latencies.len() as f64 / window,
        p50: percentile_ms(&latencies, 0.50),
        p99: percentile_ms(&latencies, 0.99),
        p999: percentile_ms(&latencies, 0.999),
        max: latencies.last().map_or(f64::NAN, |ns| *ns as f64 / 1e6),
        errors,
        first_error,
        server_cpu: cores(server0, server1),
        client_cpu: cores(client0, client1),
        rss_peak: status_mib(server.pid(), "VmHWM:").unwrap_or(f64::NAN),
        hostile: hostile_latencies.len(),
        refused_early,
        hostile_p99: percentile_ms(&hostile_latencies, 0.99),
    }
}

fn client_tls(ca_pem: &[u8]) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.context("generated CA certificate parses")?)
            .context("generated CA certificate is a valid root")?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

// ---------------------------------------------------------------------------------------
// The run.

/// Certificates in a temporary directory, a client that trusts them, and the binary.
struct Setup {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    connector: TlsConnector,
    binary: PathBuf,
}

impl Setup {
    fn new(binary: PathBuf) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let bundle = certs::generate(&certs::dev_names(), jiff::Timestamp::now())
            .context("generating certificates")?;
        mcpguard::cmd::cert_files::write_dir(dir.path(), &bundle)
            .context("writing certificates")?;
        Ok(Setup {
            cert: dir.path().join(certs::CERT_FILE),
            key: dir.path().join(certs::KEY_FILE),
            connector: client_tls(bundle.ca_cert_pem.as_bytes())?,
            _dir: dir,
            binary,
        })
    }

    /// `mcpguard serve` on loopback with these certificates, no cluster, and `extra` flags.
    fn mcpguard(&self, extra: &[&str]) -> Command {
        let mut mcpguard = Command::new(&self.binary);
        mcpguard
            .args(["--log-format", "json", "serve", "--tls-cert"])
            .arg(&self.cert)
            .arg("--tls-key")
            .arg(&self.key)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--probe-listen",
                "127.0.0.1:0",
                "--cluster",
                "off",
                "--drain-seconds",
                "0",
            ])
            .args(extra);
        without_mcpguard_env(&mut mcpguard);
        // The log filter MCPGUARD_LOG is kept (e.g. `debug` to measure with a line per
        // review), with the startup line that carries the listen address always let through.
        if let Ok(filter) = std::env::var("MCPGUARD_LOG") {
            mcpguard.env(
                "MCPGUARD_LOG",
                format!("{filter},mcpguard::cmd::serve=info"),
            );
        }
        mcpguard
    }
}

/// Flags decide the configuration, not whatever MCPGUARD_* the shell exports.
fn without_mcpguard_env(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("MCPGUARD_") {
            command.env_remove(&name);
        }
    }
}

fn run(bench: bool) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_env(bench)?;
    let binary = mcpguard_binary();
    if !binary.is_file() {
        eprintln!(
            "load: the mcpguard binary is missing at {}.\n\
             Build it first: `cargo build --release` (or run `benches/load.sh`), \
             or point MCPGUARD_BIN at one.",
            binary.display()
        );
        return Ok(ExitCode::from(2));
    }
    tls::provider();
    stop_children_on_signal();
    let setup = Setup::new(binary.clone())?;
    match std::env::var("LOAD_MODE").as_deref() {
        Ok("hostile") => return run_hostile(&settings, &setup),
        Ok("") | Err(_) => {}
        Ok(other) => bail!("LOAD_MODE={other:?}: expected hostile (or unset)"),
    }
    let payloads: Vec<Arc<Payload>> = selected(payloads()?)?.into_iter().map(Arc::new).collect();
    let connector = setup.connector.clone();
    // 256 review slots: the load runs measure throughput, not the shedding of excess.
    let mcpguard = setup.mcpguard(&["--max-concurrent-reviews", "256"]);
    let mut echo = Command::new(std::env::current_exe().context("locating this bench binary")?);
    echo.arg(ECHO_FLAG).arg(&setup.cert).arg(&setup.key);
    without_mcpguard_env(&mut echo);
    let servers = [
        ServerProcess::start("echo", echo)?,
        ServerProcess::start("mcpguard", mcpguard)?,
    ];
    let idle_rss: Vec<f64> = servers
        .iter()
        .map(|s| status_mib(s.pid(), "VmRSS:").unwrap_or(f64::NAN))
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")?;
    let ticks = clock_ticks_per_second();
    let total = payloads.len() * settings.connections.len() * servers.len();
    let per_cell = settings.warmup + settings.measure;
    eprintln!(
        "load: {} cells of {:?} (+{:?} warm-up); about {:.0} s. mcpguard {} (pid {}), echo {} (pid {})",
        total,
        settings.measure,
        settings.warmup,
        (per_cell.as_secs_f64() + 0.2) * total as f64,
        servers[1].addr,
        servers[1].pid(),
        servers[0].addr,
        servers[0].pid()
    );
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut cells = Vec::with_capacity(total);
    // Interleaved (echo, then mcpguard, for each payload × connections) so that noise from
    // the rest of the machine lands on both alike.
    for payload in &payloads {
        for &connections in &settings.connections {
            for server in &servers {
                let cell = runtime.block_on(run_cell(
                    server,
                    &connector,
                    payload,
                    &[],
                    connections,
                    &settings,
                    ticks,
                ));
                eprintln!(
                    "load: {:<8} {:<16} c={:<3} {:>9.0} req/s ({} measured)  p99 {:>7.2} ms  errors {}",
                    cell.server,
                    cell.payload,
                    cell.connections,
                    cell.rps,
                    cell.requests,
                    cell.p99,
                    cell.errors
                );
                cells.push(cell);
                // Let the closed connections settle before the next cell.
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    drop(runtime);

    let peak_rss: Vec<f64> = servers
        .iter()
        .map(|s| status_mib(s.pid(), "VmHWM:").unwrap_or(f64::NAN))
        .collect();
    let logs: Vec<(u64, u64, u64, Vec<String>)> = servers
        .iter()
        .map(|s| {
            (
                s.logs.lines.load(Ordering::Relaxed),
                s.logs.warnings.load(Ordering::Relaxed),
                s.logs.errors.load(Ordering::Relaxed),
                s.logs.notable.lock().map(|n| n.clone()).unwrap_or_default(),
            )
        })
        .collect();
    let [mut echo_server, mut mcpguard_server] = servers;
    let stopped = [echo_server.stop(), mcpguard_server.stop()];

    report(&Report {
        settings: &settings,
        binary: &binary,
        payloads: &payloads,
        cells: &cells,
        idle_rss: &idle_rss,
        peak_rss: &peak_rss,
        logs: &logs,
        stopped: &stopped,
        load: (load_before.trim(), load_after.trim()),
    });
    Ok(ExitCode::SUCCESS)
}

/// `LOAD_MODE=hostile`: mcpguard alone, every normal payload with every tenth request
/// hostile; the normal ones must all be answered correctly, and their percentiles are
/// reported apart from the hostile ones'.
fn run_hostile(settings: &Settings, setup: &Setup) -> anyhow::Result<ExitCode> {
    let payloads: Vec<Arc<Payload>> = selected(payloads()?)?
        .into_iter()
        .filter(|p| p.name != "skip-pod")
        .map(Arc::new)
        .collect();
    let hostile: Vec<Arc<Payload>> = hostile_payloads()?.into_iter().map(Arc::new).collect();
    let server = ServerProcess::start("mcpguard", setup.mcpguard(&[]))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")?;
    let ticks = clock_ticks_per_second();
    let mut cells = Vec::new();
    for payload in &payloads {
        for &connections in &settings.connections {
            let cell = runtime.block_on(run_cell(
                &server,
                &setup.connector,
                payload,
                &hostile,
                connections,
                settings,
                ticks,
            ));
            eprintln!(
                "load: hostile {:<16} c={:<3} {:>7.0} normal req/s  p99 {:>7.2} ms  hostile {} (p99 {:.1} ms)  errors {}",
                cell.payload,
                cell.connections,
                cell.rps,
                cell.p99,
                cell.hostile,
                cell.hostile_p99,
                cell.errors
            );
            cells.push(cell);
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    drop(runtime);
    let peak = status_mib(server.pid(), "VmHWM:").unwrap_or(f64::NAN);
    println!();
    println!(
        "## mcpguard under a hostile mix{}",
        if settings.smoke {
            " (smoke run: not a measurement)"
        } else {
            ""
        }
    );
    println!();
    println!(
        "Every tenth request is hostile, in turn: {}. The server runs with its default limits. \
         Each cell: {:?} warm-up, {:?} measured; latencies of normal reviews only.",
        hostile
            .iter()
            .map(|p| format!(
                "`{}` ({} bytes to {}, answered {})",
                p.name,
                p.body.len(),
                p.path,
                p.status
            ))
            .collect::<Vec<_>>()
            .join(", "),
        settings.warmup,
        settings.measure
    );
    println!();
    println!(
        "| payload | conns | normal req/s | p50 ms | p99 ms | p99.9 ms | max ms | hostile answered | hostile p99 ms | oversized cut off | errors |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for cell in &cells {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {} | {} |",
            cell.payload,
            cell.connections,
            cell.rps,
            cell.p50,
            cell.p99,
            cell.p999,
            cell.max,
            cell.hostile,
            cell.hostile_p99,
            cell.refused_early,
            cell.errors
        );
    }
    println!();
    println!("mcpguard peak RSS over the run: {peak:.1} MiB");
    for cell in cells.iter().filter(|c| c.errors > 0) {
        println!(
            "first error of {} c={}: {}",
            cell.payload,
            cell.connections,
            cell.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// The report.

struct Report<'a> {
    settings: &'a Settings,
    binary: &'a Path,
    payloads: &'a [Arc<Payload>],
    cells: &'a [Cell],
    idle_rss: &'a [f64],
    peak_rss: &'a [f64],
    logs: &'a [(u64, u64, u64, Vec<String>)],
    stopped: &'a [String; 2],
    load: (&'a str, &'a str),
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok" } else { "MISS" }
}

fn report(r: &Report<'_>) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!();
    println!(
        "## mcpguard under load{}",
        if r.settings.smoke {
            " (smoke run: not a measurement)"
        } else {
            ""
        }
    );
    println!();
    println!(
        "{} core(s) shared by client and servers; loadavg before: {}, after: {}. \
         Each cell: {:?} warm-up, {:?} measured, closed loop over N persistent HTTP/1.1+TLS \
         connections. Binary: {}",
        cores,
        r.load.0,
        r.load.1,
        r.settings.warmup,
        r.settings.measure,
        r.binary.display()
    );
    println!(
        "Server CPU µs/req (CPU time over requests served) does not depend on how much of \
         the machine the servers got; when server CPU (cores) is well under the core count, \
         something else (the client, other processes) held the CPU and req/s understates \
         the server."
    );
    println!();
    for p in r.payloads {
        println!(
            "- `{}`: POST {} with {} bytes; mcpguard answers {:?} (allowed={})",
            p.name,
            p.path,
            p.body.len(),
            p.outcome,
            p.allowed
        );
    }
    println!();
    println!(
        "| server | payload | conns | req/s | × echo | p50 ms | p99 ms | p99.9 ms | max ms | errors | server CPU (cores) | server CPU µs/req | client CPU (cores) | peak RSS MiB | targets |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let echo_of = |cell: &Cell| {
        r.cells.iter().find(|e| {
            e.server == "echo" && e.payload == cell.payload && e.connections == cell.connections
        })
    };
    for cell in r.cells {
        let echo = echo_of(cell).filter(|_| cell.server != "echo");
        let ratio = echo.map(|e| cell.rps / e.rps);
        let mut targets = Vec::new();
        if let (Some(echo), Some(ratio)) = (echo, ratio) {
            targets.push(format!("≥{TARGET_RATIO}× {}", mark(ratio >= TARGET_RATIO)));
            if cell.connections == 64 {
                targets.push(format!("≥15k/s {}", mark(cell.rps >= TARGET_RPS_AT_64)));
            }
            if cell.connections == 16 {
                let limit = TARGET_P99_FLOOR_MS.max(TARGET_P99_ECHO_FACTOR * echo.p99);
                targets.push(format!("p99≤{limit:.1}ms {}", mark(cell.p99 <= limit)));
            }
            targets.push(format!("RSS<64 {}", mark(cell.rss_peak < TARGET_RSS_MIB)));
        }
        println!(
            "| {} | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.0} | {:.2} | {:.1} | {} |",
            cell.server,
            cell.payload,
            cell.connections,
            cell.rps,
            ratio.map_or("—".into(), |r| format!("{r:.2}")),
            cell.p50,
            cell.p99,
            cell.p999,
            cell.max,
            cell.errors,
            cell.server_cpu,
            cell.server_cpu * 1e6 / cell.rps,
            cell.client_cpu,
            cell.rss_peak,
            targets.join(", ")
        );
    }

    println!();
    println!("### Targets (issue \"Prove it under load\")");
    println!();
    println!("| target | measured | result |");
    println!("|---|---|---|");
    let ours: Vec<&Cell> = r.cells.iter().filter(|c| c.server == "mcpguard").collect();
    let ratios: Vec<(f64, &Cell)> = ours
        .iter()
        .filter_map(|c| echo_of(c).map(|e| (c.rps / e.rps, *c)))
        .collect();
    if let Some((worst, cell)) = ratios.iter().min_by(|a, b| a.0.total_cmp(&b.0)) {
        println!(
            "| throughput ≥ {TARGET_RATIO}× echo (every payload × conns) | worst {worst:.2}× ({} c={}) | {} |",
            cell.payload,
            cell.connections,
            mark(*worst >= TARGET_RATIO)
        );
    }
    let at_64: Vec<&&Cell> = ours.iter().filter(|c| c.connections == 64).collect();
    if !at_64.is_empty() {
        let list = at_64
            .iter()
            .map(|c| format!("{} {:.0}", c.payload, c.rps))
            .collect::<Vec<_>>()
            .join("; ");
        let ok = at_64.iter().all(|c| c.rps >= TARGET_RPS_AT_64);
        println!("| ≥ 15,000 reviews/s at 64 conns | {list} | {} |", mark(ok));
    }
    let at_16: Vec<(&&Cell, f64)> = ours
        .iter()
        .filter(|c| c.connections == 16)
        .filter_map(|c| {
            echo_of(c).map(|e| (c, TARGET_P99_FLOOR_MS.max(TARGET_P99_ECHO_FACTOR * e.p99)))
        })
        .collect();
    if !at_16.is_empty() {
        let list = at_16
            .iter()
            .map(|(c, limit)| format!("{} {:.2}/{:.1} ms", c.payload, c.p99, limit))
            .collect::<Vec<_>>()
            .join("; ");
        let ok = at_16.iter().all(|(c, limit)| c.p99 <= *limit);
        println!(
            "| p99 at 16 conns ≤ max(5 ms, 1.5× echo p99) | {list} | {} |",
            mark(ok)
        );
    }
    println!(
        "| mcpguard RSS < 64 MiB | peak {:.1} MiB (idle {:.1}; echo peak {:.1}, idle {:.1}) | {} |",
        r.peak_rss[1],
        r.idle_rss[1],
        r.peak_rss[0],
        r.idle_rss[0],
        mark(r.peak_rss[1] < TARGET_RSS_MIB)
    );
    let errors: u64 = r.cells.iter().map(|c| c.errors).sum();
    println!("| no errors | {errors} | {} |", mark(errors == 0));

    println!();
    for ((name, (lines, warnings, errors, notable)), stopped) in
        ["echo", "mcpguard"].iter().zip(r.logs).zip(r.stopped)
    {
        println!(
            "{name} logged {lines} lines on stderr, {warnings} WARN, {errors} ERROR; {stopped}"
        );
        for line in notable {
            println!("    {line}");
        }
    }
    for cell in r.cells.iter().filter(|c| c.errors > 0) {
        println!(
            "first error of {} {} c={}: {}",
            cell.server,
            cell.payload,
            cell.connections,
            cell.first_error.as_deref().unwrap_or("?")
        );
    }
}
