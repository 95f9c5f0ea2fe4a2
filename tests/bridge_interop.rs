//! `mcpguard bridge` against MCP software this project did not write: the reference stdio
//! server `@modelcontextprotocol/server-everything` (npm) driven by the official Python SDK
//! client (`mcp` from PyPI), in both protocol revisions, plus the failure cases with a small
//! misbehaving server (tests/bridge/fake_server.py) driven over raw HTTP so every status and
//! body is asserted exactly. `.ci/run` installs the pinned tools; a missing one fails the
//! test unless `MCPGUARD_SKIP_EXTERNAL_TOOLS=1`.

mod cli_support;
#[path = "common/external_tools.rs"]
mod external_tools;

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const EVERYTHING: &str = "mcp-server-everything";
const SERVICE_HOST: &str = "mcp-everything.mcp.svc.cluster.local";

/// A running `mcpguard bridge` on a free loopback port, its log collected.
struct Bridge {
    process: Child,
    url: String,
    log: Arc<Mutex<String>>,
}

impl Bridge {
    fn start(flags: &[&str], command: &[&str]) -> Self {
        let mut args = vec!["bridge", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(flags);
        args.push("--");
        args.extend_from_slice(command);
        let mut cmd = cli_support::mcpguard_command(&args);
        cmd.env("RUST_LOG", "info");
        let mut process = cmd.spawn().expect("start mcpguard bridge");
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = process.stderr.take().expect("stderr");
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut stdout = BufReader::new(process.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("mcpguard bridge listening on ")
            .unwrap_or_else(|| panic!("no listening line: {line:?}; log: {}", log.lock().unwrap()))
            .to_owned();
        Self { process, url, log }
    }

    /// `host:port` of the listener.
    fn address(&self) -> String {
        self.url
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(address, _)| address.to_owned())
            .expect("an http://host:port/path URL")
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle` (the log is written asynchronously).
    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "log never showed {needle:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn sdk_available() -> bool {
    let python = external_tools::tool_available("python3");
    let found = python
        && Command::new("python3")
            .args(["-c", "import mcp.client.client, httpx2"])
            .output()
            .is_ok_and(|o| o.status.success());
    (found || skip_or_fail("python3 with the `mcp` SDK (pip install mcp)"))
        && (external_tools::tool_available(EVERYTHING))
}

#[track_caller]
fn skip_or_fail(what: &str) -> bool {
    assert!(
        std::env::var(external_tools::SKIP_ENV).is_ok_and(|v| v == "1"),
        "{what} is not installed; `.ci/run` installs it, or set {}=1 to skip",
        external_tools::SKIP_ENV
    );
    eprintln!("\n!!! SKIPPED: {what} is not installed; this test checked nothing !!!\n");
    false
}

/// Runs the SDK client script; asserts it passed every check.
fn run_sdk_client(url: &str, mode: &str, host: Option<&str>) {
    let mut args = vec![url, mode];
    args.extend(host);
    let mut lines = run_script("python3", "sdk_client.py", &args, &String::new);
    // The two concurrent clients finish in either order.
    lines[1..3].sort_unstable();
    assert_eq!(
        lines,
        ["[single] ok", "[first] ok", "[second] ok", "ALL OK"]
    );
}

#[test]
fn python_sdk_over_2025_11_25_sessions_with_progress_two_clients_and_delete() {
    if !sdk_available() {
        return;
    }
    let bridge = Bridge::start(&[], &[EVERYTHING, "stdio"]);
    run_sdk_client(&bridge.url, "legacy", None);
    // Each of the three clients ended its session with DELETE (the SDK's terminate_on_close).
    let log = bridge.wait_for_log("bridge session deleted by the client");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = log;
    while log.matches("bridge session deleted by the client").count() < 3 {
        assert!(Instant::now() < deadline, "{log}");
        std::thread::sleep(Duration::from_millis(50));
        log = bridge.log();
    }
    assert_eq!(log.matches("bridge session started").count(), 3, "{log}");
    assert_eq!(log.matches("bridge child started").count(), 3, "{log}");
}

#[test]
fn python_sdk_over_2026_07_28_stateless_requests_translated_onto_a_handshake_child() {
    if !sdk_available() {
        return;
    }
    let bridge = Bridge::start(&[], &[EVERYTHING, "stdio"]);
    run_sdk_client(&bridge.url, "auto", None);
    let log = bridge.log();
    // server-everything does not answer server/discover: the bridge initialized it, once,
    // and all three stateless clients shared that child.
    assert_eq!(
        log.matches("the MCP server speaks the handshake era")
            .count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("bridge child started").count(), 1, "{log}");
    assert!(!log.contains("bridge session started"), "{log}");
}

#[test]
fn python_sdk_answers_a_handshake_childs_elicitation_and_sampling_as_input_required_rounds() {
    if !sdk_available() {
        return;
    }
    let bridge = Bridge::start(&[], &[EVERYTHING, "stdio"]);
    let lines = run_script("python3", "sdk_input_rounds.py", &[&bridge.url], &|| {
        format!("bridge log:\n{}", bridge.log())
    });
    assert_eq!(
        lines,
        [
            "elicitation ok",
            "sampling ok",
            "no capability ok",
            "ALL OK"
        ]
    );
    // Both clients and all their rounds went to the one shared child.
    let log = bridge.log();
    assert_eq!(log.matches("bridge child started").count(), 1, "{log}");
}

#[tokio::test]
async fn a_service_name_host_is_served_and_an_unlisted_host_refused() {
    if !sdk_available() {
        return;
    }
    let bridge = Bridge::start(&["--allowed-host", SERVICE_HOST], &[EVERYTHING, "stdio"]);
    // The SDK client sends the Service's name as Host, and passes.
    let url = bridge.url.clone();
    tokio::task::spawn_blocking(move || run_sdk_client(&url, "legacy", Some(SERVICE_HOST)))
        .await
        .unwrap();
    // Its own loopback name is not on the list: the Host check really ran.
    let response = client()
        .post(&bridge.url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize(1))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.text().await.unwrap(), "Host is not allowed");
}

/// A global npm package's directory, or `None` (after failing, unless skipping is allowed)
/// when node, npm or the package is missing.
fn npm_package(package: &str) -> Option<String> {
    if !external_tools::tool_available("node") || !external_tools::tool_available("npm") {
        return None;
    }
    let root = Command::new("npm").args(["root", "-g"]).output().ok()?;
    let dir = format!("{}/{package}", String::from_utf8_lossy(&root.stdout).trim());
    if std::path::Path::new(&dir).join("package.json").is_file() {
        Some(dir)
    } else {
        skip_or_fail(&format!("{package} (npm install -g {package})"));
        None
    }
}

/// Runs `program tests/bridge/<script> args…`, failing with its output (and `context`, such
/// as the bridge's log) unless it succeeds; its stdout lines.
fn run_script(
    program: &str,
    script: &str,
    args: &[&str],
    context: &dyn Fn() -> String,
) -> Vec<String> {
    let output = Command::new(program)
        .arg(format!(
            "{}/tests/bridge/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("run {program}: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{script} {args:?} failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        context()
    );
    stdout.lines().map(str::to_owned).collect()
}

/// Runs `script` (in tests/bridge) with the global npm `package` against a bridge to
/// server-everything; the bridge and the script's lines, the two concurrent clients' lines
/// (second and third) sorted. `None` when a tool is missing and skipping is allowed.
fn typescript_run(package: &str, script: &str) -> Option<(Bridge, Vec<String>)> {
    if !sdk_available() {
        return None;
    }
    let package_dir = npm_package(package)?;
    let bridge = Bridge::start(&[], &[EVERYTHING, "stdio"]);
    let mut lines = run_script("node", script, &[&package_dir, &bridge.url], &|| {
        format!("bridge log:\n{}", bridge.log())
    });
    lines[1..3].sort_unstable();
    Some((bridge, lines))
}

#[test]
fn typescript_sdk_over_2025_11_25_sessions_with_progress_two_clients_and_delete() {
    let Some((bridge, lines)) = typescript_run("@modelcontextprotocol/sdk", "ts_client.mjs") else {
        return;
    };
    assert_eq!(
        lines,
        ["[single] ok", "[first] ok", "[second] ok", "ALL OK"],
    );
    let log = bridge.wait_for_log("bridge session deleted by the client");
    assert_eq!(log.matches("bridge session started").count(), 3, "{log}");
}

#[test]
fn typescript_sdk_v2_over_2026_07_28_stateless_with_an_elicitation_round() {
    let Some((bridge, lines)) = typescript_run("@modelcontextprotocol/client", "ts2_client.mjs")
    else {
        return;
    };
    assert_eq!(
        lines,
        [
            "[single] ok",
            "[first] ok",
            "[second] ok",
            "[elicitation] ok",
            "ALL OK"
        ],
    );
    // Every client was stateless, on the one shared child the bridge initialized.
    let log = bridge.log();
    assert_eq!(log.matches("bridge child started").count(), 1, "{log}");
    assert!(!log.contains("bridge session started"), "{log}");
}

// ---- failure cases, over raw HTTP, with the fake server ----

fn fake(flags: &[&str]) -> Option<Bridge> {
    external_tools::tool_available("python3").then(|| {
        Bridge::start(
            flags,
            &[
                "python3",
                concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bridge/fake_server.py"),
            ],
        )
    })
}

fn client() -> reqwest::Client {
    // reqwest is built without a provider; plain HTTP still asks for one. Ring, as mcpguard.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "bridge_interop", "version": "1"}}})
}

fn call(id: u64, tool: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": {}}})
}

/// POSTs `body` in `session` (2025-11-25); returns status, session header and JSON body
/// (`Null` for an empty one).
async fn post(
    bridge: &Bridge,
    session: Option<&str>,
    body: &Value,
) -> (u16, Option<String>, Value) {
    let mut request = client()
        .post(&bridge.url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status, session, body)
}

async fn open_session(bridge: &Bridge) -> String {
    let (status, session, body) = post(bridge, None, &initialize(1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["serverInfo"],
        json!({"name": "fake", "version": "1"})
    );
    let session = session.expect("Mcp-Session-Id");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(bridge, Some(&session), &note).await.0, 202);
    session
}

#[tokio::test]
async fn delete_ends_the_session_and_stateless_get_and_delete_are_405() {
    let Some(bridge) = fake(&[]) else { return };
    let session = open_session(&bridge).await;
    assert_eq!(
        post(&bridge, Some(&session), &call(2, "ok")).await,
        (
            200,
            None,
            json!({"jsonrpc": "2.0", "id": 2, "result": {"content": [{"type": "text", "text": "fine"}]}})
        )
    );
    let delete = |s: String| {
        let url = bridge.url.clone();
        async move {
            client()
                .delete(url)
                .header("mcp-session-id", s)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(delete(session.clone()).await, 200);
    assert_eq!(delete(session.clone()).await, 404);
    let (status, _, body) = post(&bridge, Some(&session), &call(3, "ok")).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], -32001);
    bridge.wait_for_log("bridge child stopped");
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let response = client()
            .request(method.clone(), &bridge.url)
            .header("mcp-protocol-version", "2026-07-28")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
    }
    // No session header at all is a 400, an unknown one a 404.
    assert_eq!(post(&bridge, None, &call(4, "ok")).await.0, 400);
    assert_eq!(post(&bridge, Some("nope"), &call(4, "ok")).await.0, 404);
}

#[tokio::test]
async fn a_child_that_crashes_mid_call_fails_the_call_and_the_next_session_gets_a_fresh_child() {
    let Some(bridge) = fake(&[]) else { return };
    let session = open_session(&bridge).await;
    assert_eq!(
        post(&bridge, Some(&session), &call(2, "crash")).await,
        (
            200,
            None,
            json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -32603,
                "message": "the MCP server process exited (exit status: 3)"}})
        )
    );
    // The session ended with its child.
    assert_eq!(post(&bridge, Some(&session), &call(3, "ok")).await.0, 404);
    // Its stderr went to the log, not to the client.
    bridge.wait_for_log("fake server: crashing now");
    let fresh = open_session(&bridge).await;
    assert_ne!(fresh, session);
    let (status, _, body) = post(&bridge, Some(&fresh), &call(2, "ok")).await;
    assert_eq!(
        (status, &body["result"]["content"][0]["text"]),
        (200, &json!("fine"))
    );
    assert_eq!(bridge.log().matches("bridge child started").count(), 2);
}

#[tokio::test]
async fn a_shared_stateless_child_that_crashes_is_replaced_for_the_next_request() {
    let Some(bridge) = fake(&[]) else { return };
    let send = |tool: &'static str| {
        let url = bridge.url.clone();
        async move {
            let response = client()
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", tool)
                .json(
                    &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
                    "name": tool, "arguments": {},
                    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
                )
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    assert_eq!(
        send("crash").await,
        (
            200,
            json!({"jsonrpc": "2.0", "id": 9, "error": {"code": -32603,
                "message": "the MCP server process exited (exit status: 3)"}})
        )
    );
    let (status, body) = send("ok").await;
    assert_eq!(
        (status, &body["result"]["content"][0]["text"]),
        (200, &json!("fine"))
    );
    let log = bridge.wait_for_log("the shared bridge child died; starting a new one");
    assert_eq!(log.matches("bridge child started").count(), 2, "{log}");
}

#[tokio::test]
async fn a_child_that_prints_garbage_or_an_oversized_line_fails_the_call_without_echoing_it() {
    let Some(bridge) = fake(&["--max-line-bytes", "1024"]) else {
        return;
    };
    let session = open_session(&bridge).await;
    let (status, _, body) = post(&bridge, Some(&session), &call(2, "garbage")).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -32603,
                "message": "the MCP server wrote invalid output to stdout"}})
        )
    );
    bridge.wait_for_log("the MCP server wrote a line that is not JSON-RPC to stdout");
    let session = open_session(&bridge).await;
    let (status, _, body) = post(&bridge, Some(&session), &call(2, "huge")).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -32603,
                "message": "the MCP server wrote a message over 1024 bytes to stdout"}})
        )
    );
}

/// Sends a POST over a raw connection, waits until the bridge has had time to forward it,
/// and closes the socket: a real disconnect (an HTTP client library may keep the
/// connection open to read the abandoned response).
fn hang_up_after(bridge: &Bridge, headers: &[(&str, &str)], body: &Value) {
    use std::io::Write as _;
    let address = bridge.address();
    let body = body.to_string();
    let mut request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    let mut stream = std::net::TcpStream::connect(&address).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    drop(stream);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_call_leaves_the_bridge_serving_and_a_stateless_one_cancels()
{
    let Some(bridge) = fake(&[]) else { return };
    let session = open_session(&bridge).await;
    hang_up_after(
        &bridge,
        &[
            ("mcp-session-id", &session),
            ("mcp-protocol-version", "2025-11-25"),
        ],
        &call(2, "slow"),
    );
    bridge.wait_for_log("got tools/call 2");
    // The same session and a new one both still work.
    let (status, _, body) = post(&bridge, Some(&session), &call(3, "ok")).await;
    assert_eq!(
        (status, &body["result"]["content"][0]["text"]),
        (200, &json!("fine"))
    );
    let other = open_session(&bridge).await;
    assert_eq!(post(&bridge, Some(&other), &call(2, "ok")).await.0, 200);

    // 2026-07-28: closing the stream is the cancellation, and the shared child hears it
    // under the id the bridge gave the request: 1 was the discover probe, 2 initialize,
    // 3 the call that starts the shared child, 4 the slow one.
    let stateless = |tool: &'static str, timeout: Duration| {
        let url = bridge.url.clone();
        async move {
            client()
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", tool)
                .timeout(timeout)
                .json(
                    &json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {
                    "name": tool, "arguments": {},
                    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
                )
                .send()
                .await
        }
    };
    let warm = stateless("ok", Duration::from_secs(30)).await.unwrap();
    assert_eq!(warm.status(), 200);
    let body = json!({"jsonrpc": "2.0", "id": "a", "method": "tools/call", "params": {
        "name": "slow", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    hang_up_after(
        &bridge,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "slow"),
        ],
        &body,
    );
    bridge.wait_for_log("got notifications/cancelled null 4");
}

#[tokio::test]
async fn stateless_requests_are_checked_against_their_headers() {
    let Some(bridge) = fake(&[]) else { return };
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "ok", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}});
    let send = |name: &'static str| {
        let url = bridge.url.clone();
        let body = body.clone();
        async move {
            let response = client()
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2026-07-28")
                .header("mcp-method", "tools/call")
                .header("mcp-name", name)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    assert_eq!(
        send("ok").await,
        (
            200,
            json!({"jsonrpc": "2.0", "id": 1, "result": {"content": [{"type": "text", "text": "fine"}],
                "resultType": "complete"}})
        )
    );
    assert_eq!(
        send("other").await,
        (
            400,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32020,
                "message": "Mcp-Name header value 'other' does not match body value 'ok'"}})
        )
    );
    let unknown = client()
        .post(&bridge.url)
        .header("mcp-protocol-version", "2099-01-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["error"]["code"],
        -32022
    );
}

// Multi-threaded: the blocking log waits must not stop reqwest's connection tasks, which
// close a dropped stream's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_listen_streams_the_shared_childs_list_changes() {
    let Some(bridge) = fake(&[]) else { return };
    let stateless = |method: &'static str, name: Option<&'static str>, params: Value| {
        let mut request = client()
            .post(&bridge.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method);
        if let Some(name) = name {
            request = request.header("mcp-name", name);
        }
        let mut params = params;
        params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        request.json(&json!({"jsonrpc": "2.0", "id": "L", "method": method, "params": params}))
    };
    let listen_to = |id: &'static str, uris: Value| {
        let mut params = json!({"notifications": {"toolsListChanged": true,
            "promptsListChanged": true, "resourceSubscriptions": uris},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}});
        params["_meta"]["io.modelcontextprotocol/protocolVersion"] = json!("2026-07-28");
        client()
            .post(&bridge.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "subscriptions/listen")
            .json(
                &json!({"jsonrpc": "2.0", "id": id, "method": "subscriptions/listen",
                "params": params}),
            )
            .send()
    };
    let touch = |uri: &'static str| {
        stateless(
            "tools/call",
            Some("touch"),
            json!({"name": "touch", "arguments": {"uri": uri}}),
        )
        .send()
    };
    let mut listen = listen_to(
        "L",
        json!([
            "file:///x",
            "file:///dir/",
            "file:///refuse-me",
            "file:///x"
        ]),
    )
    .await
    .unwrap();
    assert_eq!(listen.status(), 200);
    assert_eq!(listen.headers()["content-type"], "text/event-stream");
    let mut events = String::new();
    let mut next_event = async || -> Value {
        loop {
            if let Some(end) = events.find("\n\n") {
                let event: String = events.drain(..end + 2).collect();
                if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                    return serde_json::from_str(data).unwrap();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), listen.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream stays open");
            events.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    // Only what the child's capabilities promise is acknowledged: tools, not prompts; and
    // the resources the child agreed to subscribe to, once each.
    assert_eq!(
        next_event().await,
        json!({"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged", "params": {
            "_meta": {"io.modelcontextprotocol/subscriptionId": "L"},
            "notifications": {"toolsListChanged": true,
                "resourceSubscriptions": ["file:///x", "file:///dir/"]}}})
    );
    let changed = stateless(
        "tools/call",
        Some("change"),
        json!({"name": "change", "arguments": {}}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(changed.status(), 200);
    assert_eq!(
        next_event().await,
        json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed", "params": {
            "_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}})
    );
    // Updates of other resources are not this stream's; its own and their sub-resources are.
    for uri in [
        "file:///other",
        "file:///xy",
        "file:///dir/a.txt",
        "file:///x",
    ] {
        assert_eq!(touch(uri).await.unwrap().status(), 200);
    }
    for uri in ["file:///dir/a.txt", "file:///x"] {
        assert_eq!(
            next_event().await,
            json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {
                "uri": uri, "_meta": {"io.modelcontextprotocol/subscriptionId": "L"}}})
        );
    }

    // A second stream on file:///x shares the child's subscription; the child unsubscribes
    // from each URI only when its last stream ends.
    let second = listen_to("M", json!(["file:///x"])).await.unwrap();
    assert_eq!(second.status(), 200);
    let log = bridge.log();
    for (uri, times) in [
        ("file:///x", 1),
        ("file:///dir/", 1),
        ("file:///refuse-me", 1),
    ] {
        let noted = format!(" \"{uri}\" child=shared");
        let subscribed = log
            .lines()
            .filter(|l| l.contains("got resources/subscribe ") && l.ends_with(&noted))
            .count();
        assert_eq!(subscribed, times, "{uri}\n{log}");
    }
    drop(listen);
    bridge
        .wait_for_log("got resources/unsubscribe \"mcpguard-bridge-unsubscribe\" \"file:///dir/\"");
    assert!(
        !bridge
            .log()
            .contains("got resources/unsubscribe \"mcpguard-bridge-unsubscribe\" \"file:///x\"")
    );
    drop(second);
    bridge.wait_for_log("got resources/unsubscribe \"mcpguard-bridge-unsubscribe\" \"file:///x\"");

    // Bounded: too many URIs is refused before the child is asked anything.
    let many: Vec<String> = (0..65).map(|i| format!("file:///{i}")).collect();
    let refused = listen_to("N", json!(many)).await.unwrap();
    assert_eq!(
        refused.json::<Value>().await.unwrap(),
        json!({"jsonrpc": "2.0", "id": "N", "error": {"code": -32602, "message":
            "resourceSubscriptions takes at most 64 URIs, each a non-empty string of at most 2048 bytes"}})
    );
}

#[tokio::test]
async fn bearer_token_body_and_session_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0ken-value\n").unwrap();
    let Some(bridge) = fake(&[
        "--token-file",
        token_file.to_str().unwrap(),
        "--max-sessions",
        "1",
        "--max-body-bytes",
        "2048",
    ]) else {
        return;
    };
    let attempt = |auth: Option<&'static str>, body: Value| {
        let url = bridge.url.clone();
        async move {
            let mut request = client()
                .post(url)
                .header("accept", "application/json, text/event-stream")
                .json(&body);
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let challenge = response
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned());
            (status, challenge, response.text().await.unwrap())
        }
    };
    assert_eq!(
        attempt(None, initialize(1)).await,
        (
            401,
            Some("Bearer".into()),
            "a valid bearer token is required".into()
        )
    );
    assert_eq!(attempt(Some("Bearer wrong"), initialize(1)).await.0, 401);
    let (status, _, _) = attempt(Some("Bearer t0ken-value"), initialize(1)).await;
    assert_eq!(status, 200);
    // One session is the maximum.
    let (status, _, text) = attempt(Some("Bearer t0ken-value"), initialize(2)).await;
    assert_eq!(status, 503);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -32000,
            "message": "the bridge already runs its maximum of 1 sessions"}})
    );
    // A body over the cap is refused before it is parsed.
    let big = json!({"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {"pad": "x".repeat(4096)}});
    assert_eq!(attempt(Some("Bearer t0ken-value"), big).await.0, 413);
    assert!(!bridge.log().contains("t0ken-value"));
}

#[tokio::test]
async fn sigterm_drains_and_exits_within_the_deadline() {
    let Some(mut bridge) = fake(&["--drain-secs", "1"]) else {
        return;
    };
    let session = open_session(&bridge).await;
    let url = bridge.url.clone();
    let in_flight = tokio::spawn(async move {
        // The whole answer: an SSE answer's headers may arrive before the cut.
        let response = client()
            .post(url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", session)
            .json(&call(2, "slow"))
            .send()
            .await?;
        response.text().await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = bridge.process.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = bridge.process.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "did not wait for in-flight work"
    );
    // The slow call was cut at the deadline, not answered.
    let answered = in_flight.await.unwrap();
    assert!(
        !answered
            .as_ref()
            .is_ok_and(|body| body.contains("\"result\"")),
        "the cut call got an answer: {answered:?}"
    );
    let log = bridge.wait_for_log("drain deadline passed");
    assert!(log.contains("bridge draining"), "{log}");
}

#[test]
fn the_command_line_refuses_a_missing_server_a_bad_path_and_an_empty_token_file() {
    let run = |args: &[&str]| {
        let output = cli_support::mcpguard_command(args).output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stderr) = run(&["bridge"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with(
            "error: the following required arguments were not provided:\n  <COMMAND>...\n\n\
             Usage: mcpguard bridge -- <COMMAND>..."
        ),
        "{stderr}"
    );
    let (code, stderr) = run(&["bridge", "--path", "mcp", "--", "true"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("the path must start with '/'"), "{stderr}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    let (code, stderr) = run(&[
        "bridge",
        "--listen",
        "127.0.0.1:0",
        "--token-file",
        empty.to_str().unwrap(),
        "--",
        "true",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!("mcpguard bridge: token file {} is empty\n", empty.display())
    );
}

// ---- 2026-07-28 input-required rounds onto a 2025-11-25 child, over raw HTTP ----

const ELICITATION: &str = "elicitation/create";

/// A stateless `tools/call` of the fake server's `tool`; `extra` is merged into its params
/// (`requestState`, `inputResponses`), `capabilities` go into `_meta`.
fn stateless_call(
    bridge: &Bridge,
    id: u64,
    tool: &str,
    progress_token: Option<&str>,
    capabilities: Value,
    extra: Value,
    accept: &str,
) -> reqwest::RequestBuilder {
    let mut meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": capabilities});
    if let Some(token) = progress_token {
        meta["progressToken"] = json!(token);
    }
    let mut params = json!({"name": tool, "arguments": {}, "_meta": meta});
    if let Value::Object(extra) = extra {
        params.as_object_mut().unwrap().extend(extra);
    }
    client()
        .post(&bridge.url)
        .header("accept", accept)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}))
}

async fn json_of(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json::<Value>().await.unwrap(),
    )
}

/// `tools/call ask` without a progress token, answered as JSON.
async fn ask(bridge: &Bridge, id: u64, capabilities: &Value, extra: Value) -> (u16, Value) {
    json_of(stateless_call(
        bridge,
        id,
        "ask",
        None,
        capabilities.clone(),
        extra,
        "application/json",
    ))
    .await
}

/// What a retry with a `requestState` the bridge does not hold gets.
fn unknown_state(id: u64) -> (u16, Value) {
    (
        200,
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602,
            "message": "the requestState is unknown or has expired: call again without it"}}),
    )
}

/// The `data:` of every event of a finished SSE response.
async fn sse_messages(request: reqwest::RequestBuilder) -> Vec<Value> {
    let response = request.send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = tokio::time::timeout(Duration::from_secs(10), response.text())
        .await
        .expect("the stream ends")
        .unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

/// The `requestState` of an input-required answer to `tools/call ask`, after checking that
/// the rest of the answer is exactly what the fake server asked.
fn input_required_state(answer: &Value, id: u64) -> String {
    let state = answer["result"]["requestState"]
        .as_str()
        .expect("a requestState")
        .to_owned();
    assert!(
        state.len() == 32 && state.bytes().all(|b| b.is_ascii_hexdigit()),
        "{state}"
    );
    assert_eq!(
        answer,
        &json!({"jsonrpc": "2.0", "id": id, "result": {
            "resultType": "input_required",
            "inputRequests": {ELICITATION: {"method": ELICITATION, "params": {
                "message": "Your name?",
                "requestedSchema": {"type": "object", "properties": {"name": {"type": "string"}}}}}},
            "requestState": state}})
    );
    state
}

fn text_result(id: u64, text: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": {
        "content": [{"type": "text", "text": text}], "resultType": "complete"}})
}

#[tokio::test]
async fn a_childs_elicitation_becomes_an_input_required_round_that_only_its_retry_resumes() {
    let Some(bridge) = fake(&[]) else { return };
    let elicit = json!({"elicitation": {}});
    let accept_json = "application/json";
    let both = "application/json, text/event-stream";

    // Round one: the progress before the question is dropped (JSON only), the question
    // comes back as an input-required result.
    let (status, answer) = json_of(stateless_call(
        &bridge,
        1,
        "ask",
        Some("p1"),
        elicit.clone(),
        json!({}),
        accept_json,
    ))
    .await;
    assert_eq!(status, 200);
    let state = input_required_state(&answer, 1);

    // Retries that do not match are refused and leave the call parked.
    let refusals = [
        (
            "ok",
            json!({"requestState": state, "inputResponses": {ELICITATION: {"action": "accept"}}}),
            "the requestState belongs to another request (tools/call ask)",
        ),
        (
            "ask",
            json!({"requestState": "0".repeat(32), "inputResponses": {}}),
            "the requestState is unknown or has expired: call again without it",
        ),
        (
            "ask",
            json!({"requestState": state, "inputResponses": {"sampling/createMessage": {}}}),
            "inputResponses must answer the input request \"elicitation/create\"",
        ),
        (
            "ask",
            json!({"requestState": 7}),
            "requestState must be a string",
        ),
    ];
    for (tool, extra, message) in refusals {
        assert_eq!(
            json_of(stateless_call(
                &bridge,
                9,
                tool,
                None,
                elicit.clone(),
                extra,
                accept_json
            ))
            .await,
            (
                200,
                json!({"jsonrpc": "2.0", "id": 9, "error": {"code": -32602, "message": message}})
            ),
            "{tool} {message}"
        );
    }

    // The matching retry answers the child's question and takes the call over: its own id,
    // and the progress that follows carries its own token.
    let retry = json!({"requestState": state, "inputResponses": {
        ELICITATION: {"action": "accept", "content": {"name": "Ada"}}}});
    assert_eq!(
        sse_messages(stateless_call(
            &bridge,
            2,
            "ask",
            Some("p2"),
            elicit.clone(),
            retry.clone(),
            both
        ))
        .await,
        [
            json!({"jsonrpc": "2.0", "method": "notifications/progress",
                "params": {"progressToken": "p2", "progress": 2}}),
            text_result(2, "hello Ada"),
        ]
    );
    // A requestState is good once.
    assert_eq!(ask(&bridge, 3, &elicit, retry).await, unknown_state(3));

    // A client that did not declare elicitation: the child's question is refused, and the
    // tool reports it.
    assert_eq!(
        ask(&bridge, 4, &json!({"sampling": {}}), json!({})).await,
        (
            200,
            text_result(
                4,
                "ask failed: elicitation/create: the client did not declare the elicitation capability"
            )
        )
    );

    // With another eligible call in flight, stdio cannot say whose question it is: refused
    // rather than shown to the wrong client.
    let calls_before = bridge.log().matches("got tools/call").count();
    let slow = tokio::spawn(
        stateless_call(
            &bridge,
            5,
            "slow",
            None,
            elicit.clone(),
            json!({}),
            accept_json,
        )
        .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while bridge.log().matches("got tools/call").count() == calls_before {
        assert!(Instant::now() < deadline, "{}", bridge.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ask(&bridge, 6, &elicit, json!({})).await,
        (
            200,
            text_result(
                6,
                "ask failed: elicitation/create: 2 client requests are in flight on the shared \
                 server process, and stdio does not say which one this belongs to"
            )
        )
    );
    slow.abort();
}

#[tokio::test]
async fn a_parked_call_whose_client_never_retries_is_cancelled_after_the_input_timeout() {
    let Some(bridge) = fake(&["--input-timeout-secs", "1"]) else {
        return;
    };
    let elicit = json!({"elicitation": {}});
    let (_, answer) = ask(&bridge, 1, &elicit, json!({})).await;
    let state = input_required_state(&answer, 1);
    // The child's question gets an error, then the call is cancelled; its answer goes to no
    // one. (The child numbers the call 3: server/discover and initialize came first.)
    let log = bridge.wait_for_log("got notifications/cancelled null 3");
    assert!(log.contains("got None \"ask-3\" null"), "{log}");
    assert!(
        log.contains("a call waited too long for its client's input; cancelled"),
        "{log}"
    );
    assert_eq!(
        ask(
            &bridge,
            2,
            &elicit,
            json!({"requestState": state, "inputResponses": {ELICITATION: {"action": "decline"}}})
        )
        .await,
        unknown_state(2)
    );
}

#[tokio::test]
async fn a_refused_initialize_ends_its_session_at_once() {
    // One session at most: a refused initialize that kept its session would make the next
    // one wait for the idle timeout (503).
    let Some(bridge) = fake(&["--max-sessions", "1"]) else {
        return;
    };
    let mut refused = initialize(1);
    refused["params"]["clientInfo"]["name"] = json!("refused");
    assert_eq!(
        post(&bridge, None, &refused).await,
        (
            200,
            None,
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "unsupported client"}})
        )
    );
    let (status, session, body) = post(&bridge, None, &initialize(2)).await;
    assert_eq!(
        (status, &body["result"]["serverInfo"]["name"]),
        (200, &json!("fake")),
        "{body}"
    );
    assert!(session.is_some());
    let log = bridge.log();
    assert!(
        log.contains("the MCP server did not accept initialize; session ended"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_bounded_idle_ones_make_room_and_busy_ones_are_kept() {
    let Some(bridge) = fake(&["--max-connections", "2"]) else {
        return;
    };
    let address = bridge.address();
    // Two idle connections fill the table; a real client still gets through, taking the
    // place of the longest idle, which the bridge closes.
    let mut idle: Vec<_> = (0..2)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    let (status, _, body) = post(&bridge, None, &initialize(1)).await;
    assert_eq!(
        (status, &body["result"]["serverInfo"]["name"]),
        (200, &json!("fake")),
        "{body}"
    );
    idle[0]
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = [0u8; 16];
    assert_eq!(
        idle[0].read(&mut buffer).unwrap(),
        0,
        "the longest idle is closed"
    );

    // Two calls in flight hold both places: a third connection is refused, not answered,
    // and the calls are not cut.
    let slow = |id: u64| {
        client()
            .post(&bridge.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "slow")
            .json(
                &json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
                "name": "slow", "arguments": {},
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}),
            )
            .send()
    };
    let first = tokio::spawn(slow(2));
    let second = tokio::spawn(slow(3));
    let deadline = Instant::now() + Duration::from_secs(10);
    while bridge.log().matches("got tools/call").count() < 2 {
        assert!(Instant::now() < deadline, "{}", bridge.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = client()
        .get(bridge.url.replace("/mcp", "/healthz"))
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(!first.is_finished() && !second.is_finished());
    first.abort();
    second.abort();
    drop(idle);
}
