//! `LOAD_MODE=memory` (`benches/memory.sh`): mcpguard's peak RSS (VmHWM) per endpoint ×
//! operation × review size × shape of padding, each cell in a fresh process with its
//! default limits: first after three reviews in a row, then after the same review sent at
//! once on `--max-concurrent-reviews` (64) connections, where the byte budget
//! (`--max-review-bytes`) decides how many are judged at a time and sheds the rest (503).
//!
//! Shapes: `env` pads the pod's first container with environment variables (a large but
//! ordinary pod: every entry is decoded and judged); `dense` pads it with an unknown field
//! holding `[0,0,0,…]`, the most JSON values per byte anyone can send.

use super::*;

/// The sizes of the README's memory table: the typical review, then 1 MB, 3 MiB and the cap.
const SIZES: [usize; 4] = [0, 1_000_000, 3 * 1024 * 1024, MAX_BODY_BYTES];
const CONCURRENT: usize = mcpguard::admission::routes::DEFAULT_MAX_CONCURRENT_REVIEWS;

#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Env,
    Dense,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Env => "env",
            Shape::Dense => "dense",
        }
    }
}

/// The typical review, as a CREATE or as an UPDATE that changes the image (judged), with
/// `pads` padding entries in the object (and as many in the oldObject).
fn review(shape: Shape, update: bool, pads: usize) -> Value {
    let mut review = typical_review();
    let container = &mut review["request"]["object"]["spec"]["containers"][0];
    match shape {
        Shape::Env => {
            if let Some(env) = container["env"].as_array_mut() {
                env.extend((0..pads).map(|i| json!({"name": format!("PAD_{i:07}"), "value": "v"})));
            }
        }
        Shape::Dense => container["x-pad"] = Value::Array(vec![json!(0); pads]),
    }
    if update {
        let mut old = review["request"]["object"].clone();
        old["spec"]["containers"][0]["image"] = json!("ghcr.io/github/github-mcp-server:v0.19.0");
        review["request"]["operation"] = json!("UPDATE");
        review["request"]["oldObject"] = old;
    }
    review
}

/// The review closest to `target` bytes without going over (the typical one for 0).
fn sized(shape: Shape, update: bool, target: usize) -> anyhow::Result<Vec<u8>> {
    let length = |pads| serde_json::to_vec(&review(shape, update, pads)).map(|b| b.len());
    let base = length(0)?;
    if target <= base {
        return Ok(serde_json::to_vec(&review(shape, update, 0))?);
    }
    let per_pad = (length(1000)? - base) as f64 / 1000.0;
    let mut pads = ((target - base) as f64 / per_pad) as usize;
    while length(pads)? > target {
        pads -= (((length(pads)? - target) as f64 / per_pad).ceil() as usize).max(1);
    }
    Ok(serde_json::to_vec(&review(shape, update, pads))?)
}

/// One POST on `sender`; the status, or a description of what went wrong.
async fn post(
    sender: &mut SendRequest<Full<Bytes>>,
    path: &str,
    body: Bytes,
) -> Result<u16, String> {
    let request = Request::post(path)
        .header(header::HOST, HeaderValue::from_static("127.0.0.1"))
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

struct Row {
    shape: Shape,
    path: &'static str,
    operation: &'static str,
    bytes: usize,
    idle: f64,
    sequential: f64,
    concurrent: f64,
    sequential_statuses: Vec<u16>,
    concurrent_statuses: Vec<Result<u16, String>>,
}

async fn measure(
    setup: &Setup,
    server: &ServerProcess,
    path: &'static str,
    body: Bytes,
    concurrent: usize,
) -> anyhow::Result<(f64, Vec<u16>, f64, Vec<Result<u16, String>>)> {
    let mut sender = connect(server.addr, &setup.connector).await?;
    let mut sequential_statuses = Vec::new();
    for _ in 0..3 {
        let status = post(&mut sender, path, body.clone())
            .await
            .map_err(|e| anyhow!("{path}: {e}"))?;
        sequential_statuses.push(status);
    }
    let sequential = status_mib(server.pid(), "VmHWM:").unwrap_or(f64::NAN);
    let mut senders = Vec::with_capacity(concurrent);
    for _ in 0..concurrent {
        senders.push(connect(server.addr, &setup.connector).await?);
    }
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let body = body.clone();
            tokio::spawn(async move {
                tokio::time::timeout(REQUEST_TIMEOUT, post(&mut sender, path, body))
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()))
            })
        })
        .collect();
    let mut concurrent_statuses = Vec::with_capacity(concurrent);
    for task in tasks {
        concurrent_statuses.push(task.await.unwrap_or_else(|e| Err(e.to_string())));
    }
    let peak = status_mib(server.pid(), "VmHWM:").unwrap_or(f64::NAN);
    Ok((sequential, sequential_statuses, peak, concurrent_statuses))
}

fn statuses<T: std::fmt::Display>(all: impl Iterator<Item = T>) -> String {
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for status in all {
        *counts.entry(status.to_string()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(status, n)| format!("{n}×{status}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn run(setup: &Setup, smoke: bool) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the client runtime")?;
    let sizes: &[usize] = if smoke { &SIZES[..2] } else { &SIZES };
    let concurrent = if smoke { 4 } else { CONCURRENT };
    let mut rows = Vec::new();
    for shape in [Shape::Env, Shape::Dense] {
        for (operation, update) in [("CREATE", false), ("UPDATE", true)] {
            for &target in sizes {
                let body = Bytes::from(sized(shape, update, target)?);
                for path in ["/mutate", "/validate"] {
                    let mut server = ServerProcess::start("mcpguard", setup.mcpguard(&[]))?;
                    let idle = status_mib(server.pid(), "VmRSS:").unwrap_or(f64::NAN);
                    let (sequential, sequential_statuses, peak, concurrent_statuses) = runtime
                        .block_on(measure(setup, &server, path, body.clone(), concurrent))?;
                    server.stop();
                    let row = Row {
                        shape,
                        path,
                        operation,
                        bytes: body.len(),
                        idle,
                        sequential,
                        concurrent: peak,
                        sequential_statuses,
                        concurrent_statuses,
                    };
                    eprintln!(
                        "memory: {:<5} {:<9} {} {:>8} bytes: idle {:.1} MiB, 3 in a row {:.1} MiB, {} at once {:.1} MiB ({})",
                        shape.name(),
                        path,
                        operation,
                        row.bytes,
                        row.idle,
                        row.sequential,
                        concurrent,
                        row.concurrent,
                        statuses(row.concurrent_statuses.iter().map(|s| match s {
                            Ok(code) => code.to_string(),
                            Err(e) => e.clone(),
                        }))
                    );
                    rows.push(row);
                }
            }
        }
    }
    println!();
    println!(
        "## mcpguard peak memory{}",
        if smoke {
            " (smoke run: not a measurement)"
        } else {
            ""
        }
    );
    println!();
    println!(
        "Peak RSS (VmHWM) of a fresh `mcpguard serve` (default limits: {} reviews, {} bytes of \
         bodies in progress) after the review three times in a row, then after it {} times at once.",
        mcpguard::admission::routes::DEFAULT_MAX_CONCURRENT_REVIEWS,
        mcpguard::admission::routes::DEFAULT_MAX_REVIEW_BYTES,
        concurrent
    );
    println!();
    println!(
        "| padding | endpoint | operation | body bytes | answers | idle MiB | peak MiB, 3 in a row | peak MiB, {concurrent} at once | answers at once |"
    );
    println!("|---|---|---|---:|---|---:|---:|---:|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {} |",
            row.shape.name(),
            row.path,
            row.operation,
            row.bytes,
            statuses(row.sequential_statuses.iter()),
            row.idle,
            row.sequential,
            row.concurrent,
            statuses(row.concurrent_statuses.iter().map(|s| match s {
                Ok(code) => code.to_string(),
                Err(e) => e.clone(),
            }))
        );
    }
    let worst = rows.iter().map(|r| r.concurrent).fold(0.0, f64::max);
    println!();
    println!("Worst peak: {worst:.1} MiB.");
    Ok(ExitCode::SUCCESS)
}
