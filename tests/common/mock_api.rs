//! One mock Kubernetes API server for every test that drives a `kube::Client`: the client
//! talks to a `tower_test` mock service, and a scenario-based verifier plays kube-apiserver.
//!
//! A scenario is the list of requests the code under test must send, in order, each with the
//! answer it gets ([`Step`]). Each request is checked exactly: method, path, query (its pairs
//! in the order sent), content type, and for a step that says so the `Accept` header and the
//! JSON body. A request other than the one expected next fails the test naming the step and
//! the request; so does a step whose request never comes, and so does any request after the
//! last step.
//!
//! ```ignore
//! let (client, api) = MockApi::new("default");
//! let verifier = mock_api::spawn(api, |mut api| async move {
//!     api.serve(vec![Step::ok(Expect::get("/api/v1/namespaces/mcp/pods"), pod_list)]).await;
//!     // Or, where the answer depends on what was sent:
//!     let sent = api.expect(&Expect::patch(PATH).content_type(APPLY)).await;
//!     sent.ok(&stored(&sent.body));
//!     (api, sent.body)
//! });
//! let result = code_under_test(&client).await;
//! let (_api, applied) = verifier.finish(|| format!("it returned {result:?}")).await;
//! ```
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode, Uri};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;
type Responder = tower_test::mock::SendResponse<Response<Body>>;

/// How long a step waits for its request before it fails as never sent.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough for any request the client is about to send; short enough to prove absence.
pub const NO_MORE_REQUESTS: Duration = Duration::from_millis(500);

/// One expected request.
#[derive(Clone, Debug)]
pub struct Expect {
    method: Method,
    path: String,
    /// The query's `key=value` pairs, in the order sent.
    query: Vec<String>,
    /// The `Content-Type` header; `None`: none is sent.
    content_type: Option<String>,
    /// The `Accept` header, checked only when set.
    accept: Option<String>,
    /// The JSON body, checked only when set (a GET never has one).
    body: Option<Value>,
}

impl Expect {
    /// `method` on `uri`: a path, optionally with `?query` (pairs in the order sent).
    pub fn new(method: Method, uri: impl AsRef<str>) -> Expect {
        let uri = uri.as_ref();
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        Expect {
            method,
            path: path.to_owned(),
            query: query_pairs(Some(query)),
            content_type: None,
            accept: None,
            body: None,
        }
    }

    pub fn get(uri: impl AsRef<str>) -> Expect {
        Expect::new(Method::GET, uri)
    }

    pub fn post(uri: impl AsRef<str>) -> Expect {
        Expect::new(Method::POST, uri)
    }

    pub fn patch(uri: impl AsRef<str>) -> Expect {
        Expect::new(Method::PATCH, uri)
    }

    pub fn delete(uri: impl AsRef<str>) -> Expect {
        Expect::new(Method::DELETE, uri)
    }

    /// The query's `key=value` pairs joined by `&`, in the order the client sends them.
    pub fn query(mut self, query: &str) -> Expect {
        self.query = query_pairs(Some(query));
        self
    }

    pub fn content_type(mut self, content_type: &str) -> Expect {
        self.content_type = Some(content_type.to_owned());
        self
    }

    pub fn accept(mut self, accept: &str) -> Expect {
        self.accept = Some(accept.to_owned());
        self
    }

    pub fn body(mut self, body: Value) -> Expect {
        self.body = Some(body);
        self
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.method,
            request_line_uri(&self.path, &self.query)
        )
    }
}

/// The query's pairs as sent, less the empty segments kube's URL builder leaves
/// (`events?&fieldSelector=...`, `events?`); their order and encoding are kept.
fn query_pairs(query: Option<&str>) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(str::to_owned)
        .collect()
}

fn request_line_uri(path: &str, query: &[String]) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

fn normalized(uri: &Uri) -> String {
    request_line_uri(uri.path(), &query_pairs(uri.query()))
}

/// One step of a scenario: the request expected next and the answer to it.
#[derive(Clone, Debug)]
pub enum Step {
    /// Answers with `status` and the JSON `body`.
    Reply {
        expect: Expect,
        status: StatusCode,
        body: Value,
    },
}

impl Step {
    /// `expect`, answered 200 with `body`.
    pub fn ok(expect: Expect, body: Value) -> Step {
        Step::Reply {
            expect,
            status: StatusCode::OK,
            body,
        }
    }

    /// `expect`, answered with a `Status` failure as kube-apiserver sends it.
    pub fn fail(expect: Expect, status: StatusCode, reason: &str, message: &str) -> Step {
        Step::Reply {
            expect,
            status,
            body: failure(status, reason, message),
        }
    }
}

/// A `Status` failure as kube-apiserver sends it.
pub fn failure(status: StatusCode, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": status.as_u16(),
    })
}

/// kube-apiserver's 404 for `name` of `resource` (plural).
pub fn not_found(resource: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{resource} \"{name}\" not found"), "reason": "NotFound",
        "details": {"name": name, "kind": resource}, "code": 404,
    })
}

/// A request as the server received it, and the way to answer it.
pub struct Received {
    /// The JSON body; `Null` when empty.
    pub body: Value,
    /// The body as sent, for "never contains" assertions.
    pub raw: String,
    /// Taken by the answer: a request is answered once. (A cell, so that the answer may be
    /// computed from the request: `sent.ok(&stored(&sent.body))`.)
    respond: Cell<Option<Responder>>,
}

impl Received {
    /// Answers with `status` and the JSON `body`.
    pub fn reply(&self, status: StatusCode, body: &Value) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(body).expect("serializes")))
            .expect("response");
        self.send(response);
    }

    /// Answers 200 with the JSON `body`.
    pub fn ok(&self, body: &Value) {
        self.reply(StatusCode::OK, body);
    }

    fn send(&self, response: Response<Body>) {
        self.respond
            .take()
            .expect("a request is answered once")
            .send_response(response);
    }

    /// Answers 200 with a watch stream of `events` (type, object), then ends it.
    pub fn watch<K: AsRef<str>>(&self, events: &[(K, Value)]) {
        let mut body = Vec::new();
        for (kind, object) in events {
            serde_json::to_writer(&mut body, &json!({"type": kind.as_ref(), "object": object}))
                .expect("JSON");
            body.push(b'\n');
        }
        let response = Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("response");
        self.send(response);
    }
}

/// The server side of a mocked API: the requests the client sends, one at a time.
pub struct MockApi {
    handle: Handle,
    /// "METHOD path?query" of every request seen, in order.
    seen: Vec<String>,
}

impl MockApi {
    /// A client whose default namespace is `namespace`, and the server it talks to.
    pub fn new(namespace: &str) -> (kube::Client, MockApi) {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = MockApi {
            handle,
            seen: Vec::new(),
        };
        (kube::Client::new(service, namespace.to_owned()), api)
    }

    /// "METHOD path?query" of every request seen so far, in order.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Forgets the requests seen so far (a new pass of the code under test begins).
    pub fn clear_seen(&mut self) {
        self.seen.clear();
    }

    /// Takes the next request and asserts that it is `expect`; returns it to be answered.
    pub async fn expect(&mut self, expect: &Expect) -> Received {
        // Steps count from 1 since the last `clear_seen`, so a failure names the step.
        let step = self.seen.len() + 1;
        let (request, respond) = tokio::time::timeout(STEP_TIMEOUT, self.handle.next_request())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "step {step}: expected {expect}, but no request came; requests before it: {:?}",
                    self.seen
                )
            })
            .unwrap_or_else(|| {
                panic!(
                    "step {step}: expected {expect}, but the client is gone; requests before it: {:?}",
                    self.seen
                )
            });
        let (parts, body) = request.into_parts();
        let got = format!("{} {}", parts.method, normalized(&parts.uri));
        assert_eq!(
            got,
            expect.to_string(),
            "step {step}: expected {expect}, got {got}; requests before it: {:?}",
            self.seen
        );
        self.seen.push(got);
        let label = format!("step {step} ({expect})");
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .map(|v| v.to_str().expect("ASCII header").to_owned())
        };
        assert_eq!(
            header("content-type"),
            expect.content_type,
            "{label}: content type"
        );
        if let Some(accept) = &expect.accept {
            assert_eq!(header("accept").as_ref(), Some(accept), "{label}: accept");
        }
        let bytes = body.collect_bytes().await.expect("request body");
        let raw = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("{label}: body is not JSON ({e}): {raw}"))
        };
        if parts.method == Method::GET {
            assert_eq!(body, Value::Null, "{label}: a GET has no body");
        }
        if let Some(want) = &expect.body {
            assert_eq!(&body, want, "{label}: body");
        }
        Received {
            body,
            raw,
            respond: Cell::new(Some(respond)),
        }
    }

    /// Serves `steps` in order.
    pub async fn serve(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::Reply {
                    expect,
                    status,
                    body,
                } => self.expect(&expect).await.reply(status, &body),
            }
        }
    }

    /// Asserts that the client sends nothing more within [`NO_MORE_REQUESTS`] (or is gone).
    pub async fn expect_no_more_requests(&mut self) {
        match tokio::time::timeout(NO_MORE_REQUESTS, self.handle.next_request()).await {
            Err(_) | Ok(None) => {}
            Ok(Some((request, _))) => panic!(
                "unexpected request {} {} after the last step; requests before it: {:?}",
                request.method(),
                normalized(request.uri()),
                self.seen
            ),
        }
    }
}

/// A scenario running as the API server while the test runs the code under test.
pub struct Verifier<T>(JoinHandle<(MockApi, T)>);

/// Runs `script` (which plays the API server and returns what it learnt) and then asserts
/// silence, on its own task, so the test can run the code under test meanwhile.
pub fn spawn<T, F, Fut>(api: MockApi, script: F) -> Verifier<T>
where
    F: FnOnce(MockApi) -> Fut,
    Fut: Future<Output = (MockApi, T)> + Send + 'static,
    T: Send + 'static,
{
    let script = script(api);
    Verifier(tokio::spawn(async move {
        let (mut api, out) = script.await;
        api.expect_no_more_requests().await;
        (api, out)
    }))
}

/// Runs `steps` as the scenario; returns every request seen.
pub fn spawn_steps(api: MockApi, steps: Vec<Step>) -> Verifier<Vec<String>> {
    spawn(api, |mut api| async move {
        api.serve(steps).await;
        let seen = api.seen.clone();
        (api, seen)
    })
}

impl<T> Verifier<T> {
    /// Waits for the scenario to end. When it failed, prints `outcome` (what the code under
    /// test did, for the failure's context) and fails the test with the scenario's message.
    pub async fn finish(self, outcome: impl FnOnce() -> String) -> (MockApi, T) {
        match self.0.await {
            Ok(done) => done,
            Err(err) => {
                eprintln!("{}", outcome());
                std::panic::resume_unwind(err.into_panic())
            }
        }
    }
}
