//! `mcpguard bridge` against a direct stdio connection to the same server.
//!
//! `cargo bench --bench bridge`. The server is `mcp-server-everything stdio` (installed by
//! `.ci/run`), the call a small `tools/call echo`. Two paths, both closed-loop (the next
//! call leaves as soon as the previous answer arrived):
//!
//! - **stdio**: this process writes JSON-RPC lines to the server's stdin and reads its
//!   stdout, as an MCP host does with a local server;
//! - **bridge**: `mcpguard::bridge::serve` in this process on loopback, one 2025-11-25
//!   session per client connection, HTTP/1.1 keep-alive (reqwest), JSON responses.
//!
//! For 1 client and for `BRIDGE_CLIENTS` (default 4) concurrent clients (each with its own
//! server process on both paths), it prints calls/s and latency percentiles as a markdown
//! table. Knobs: `BRIDGE_CALLS` (per client, default 2000). Run without `--bench`
//! (`cargo test --benches`), it is a short smoke run.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const SERVER: &[&str] = &["mcp-server-everything", "stdio"];

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}})
}

fn echo(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"message": "ping"}}})
}

fn check_echo(response: &Value, id: u64) {
    assert_eq!(response["id"], json!(id), "{response}");
    assert_eq!(
        response["result"]["content"][0]["text"],
        json!("Echo: ping"),
        "{response}"
    );
}

struct Stdio_ {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl Stdio_ {
    async fn start() -> Self {
        let mut child = Command::new(SERVER[0])
            .args(&SERVER[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start mcp-server-everything (npm install -g @modelcontextprotocol/server-everything)");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut s = Self {
            _child: child,
            stdin,
            stdout,
            line: String::new(),
        };
        s.call(&initialize(0)).await;
        s.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        s
    }

    async fn send(&mut self, message: &Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn call(&mut self, request: &Value) -> Value {
        self.send(request).await;
        loop {
            self.line.clear();
            self.stdout.read_line(&mut self.line).await.unwrap();
            let message: Value = serde_json::from_str(&self.line).unwrap();
            if message.get("id") == request.get("id") && message.get("method").is_none() {
                return message;
            }
        }
    }
}

struct Http {
    client: reqwest::Client,
    url: String,
    session: String,
}

impl Http {
    async fn start(url: &str) -> Self {
        let client = reqwest::Client::new();
        let response = client
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .json(&initialize(0))
            .send()
            .await
            .unwrap();
        let session = response.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let s = Self {
            client,
            url: url.to_owned(),
            session,
        };
        let status = s
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await
            .status();
        assert_eq!(status, 202);
        s
    }

    async fn post(&self, message: &Value) -> reqwest::Response {
        self.client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .header("mcp-session-id", &self.session)
            .json(message)
            .send()
            .await
            .unwrap()
    }

    /// The response to `request`, from a JSON body or, when the server sent something
    /// first (server-everything notifies after initialization), from the SSE stream.
    async fn call(&self, request: &Value) -> Value {
        let response = self.post(request).await;
        let sse = response.headers()["content-type"] == "text/event-stream";
        let text = response.text().await.unwrap();
        if !sse {
            return serde_json::from_str(&text).unwrap();
        }
        text.split("\n\n")
            .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|data| serde_json::from_str::<Value>(data).ok())
            .find(|m| m.get("id") == request.get("id") && m.get("method").is_none())
            .unwrap_or_else(|| panic!("no response in {text}"))
    }
}

/// One client of either path, so that both run the same measured loop.
enum Client {
    Stdio(Box<Stdio_>),
    Http(Http),
}

impl Client {
    async fn call(&mut self, request: &Value) -> Value {
        match self {
            Client::Stdio(server) => server.call(request).await,
            Client::Http(server) => server.call(request).await,
        }
    }
}

enum Path {
    Stdio,
    Bridge(String),
}

/// Runs `calls` echo calls on each of `clients` connections; returns every latency and the
/// wall time.
async fn run(path: &Path, clients: usize, calls: u64) -> (Vec<Duration>, Duration) {
    let mut tasks = Vec::new();
    let start_line = std::sync::Arc::new(tokio::sync::Barrier::new(clients + 1));
    for _ in 0..clients {
        let barrier = std::sync::Arc::clone(&start_line);
        let url = match path {
            Path::Stdio => None,
            Path::Bridge(url) => Some(url.clone()),
        };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(calls as usize);
            let mut client = match url {
                None => Client::Stdio(Box::new(Stdio_::start().await)),
                Some(url) => Client::Http(Http::start(&url).await),
            };
            for id in 1..=20 {
                check_echo(&client.call(&echo(id)).await, id);
            }
            barrier.wait().await;
            for id in 100..100 + calls {
                let t = Instant::now();
                let response = client.call(&echo(id)).await;
                latencies.push(t.elapsed());
                check_echo(&response, id);
            }
            latencies
        }));
    }
    start_line.wait().await;
    let started = Instant::now();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    (all, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if std::process::Command::new(SERVER[0])
        .arg("--help")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!(
            "bridge bench: {} is not installed (.ci/run installs it); nothing measured",
            SERVER[0]
        );
        return;
    }
    let env_num = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let calls = if full {
        env_num("BRIDGE_CALLS", 2000)
    } else {
        20
    };
    let many = env_num("BRIDGE_CLIENTS", 4) as usize;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let config = mcpguard::bridge::Config {
            command: SERVER.iter().map(|s| (*s).to_owned()).collect(),
            path: "/mcp".into(),
            token: None,
            allowed_hosts: Vec::new(),
            max_sessions: 64,
            max_connections: 1024,
            max_body_bytes: 4 << 20,
            max_line_bytes: 16 << 20,
            max_log_line_bytes: 4096,
            idle_timeout: Duration::from_secs(600),
            init_timeout: Duration::from_secs(30),
            input_timeout: Duration::from_secs(300),
            drain_timeout: Duration::from_secs(1),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mcpguard::bridge::serve(listener, config, async {
            let _ = stopped.await;
        }));
        println!("| path | clients | calls/s | p50 µs | p90 µs | p99 µs |");
        println!("| --- | --- | --- | --- | --- | --- |");
        for clients in [1, many] {
            for (name, path) in [
                ("stdio", Path::Stdio),
                ("bridge", Path::Bridge(url.clone())),
            ] {
                let (mut latencies, wall) = run(&path, clients, calls).await;
                latencies.sort_unstable();
                println!(
                    "| {name} | {clients} | {:.0} | {:.0} | {:.0} | {:.0} |",
                    latencies.len() as f64 / wall.as_secs_f64(),
                    percentile(&latencies, 0.5),
                    percentile(&latencies, 0.9),
                    percentile(&latencies, 0.99),
                );
            }
        }
        let _ = stop.send(());
        let _ = server.await;
    });
}
