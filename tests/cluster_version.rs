//! The webhook learns its cluster's Kubernetes version from `GET /version`, exactly as
//! kube-apiserver serves it, so that Pod Security `latest` means that cluster's release.

mod common;

use axum::http::StatusCode;
use common::mock_api::{self, Expect, MockApi, Step};
use mcpguard::cluster::cluster_version::fetch_minor;
use serde_json::json;

fn version(major: &str, minor: &str, git_version: &str) -> serde_json::Value {
    json!({
        "major": major, "minor": minor, "gitVersion": git_version,
        "gitCommit": "0123456789abcdef", "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z", "goVersion": "go1.25.3",
        "compiler": "gc", "platform": "linux/amd64",
    })
}

async fn minor_served(answer: Step) -> Result<u32, String> {
    let (client, api) = MockApi::new("default");
    let verifier = mock_api::spawn(api, |mut api| async move {
        api.serve(vec![answer]).await;
        (api, ())
    });
    let result = fetch_minor(&client).await;
    verifier.finish(|| format!("it returned {result:?}")).await;
    result
}

#[tokio::test]
async fn the_minor_of_a_plain_cluster() {
    let answer = Step::ok(Expect::get("/version"), version("1", "34", "v1.34.2"));
    assert_eq!(minor_served(answer).await, Ok(34));
}

#[tokio::test]
async fn a_managed_clusters_plus_suffix_is_read() {
    let answer = Step::ok(
        Expect::get("/version"),
        version("1", "33+", "v1.33.5-eks-113cf36"),
    );
    assert_eq!(minor_served(answer).await, Ok(33));
}

#[tokio::test]
async fn an_empty_minor_falls_back_to_the_git_version() {
    let answer = Step::ok(Expect::get("/version"), version("", "", "v1.35.0-gke.100"));
    assert_eq!(minor_served(answer).await, Ok(35));
}

#[tokio::test]
async fn an_unreadable_version_is_an_error_not_a_guess() {
    let answer = Step::ok(Expect::get("/version"), version("1", "x", "nonsense"));
    let err = minor_served(answer).await.unwrap_err();
    assert_eq!(
        err,
        "GET /version: invalid Kubernetes version \"nonsense\": expected a minor (\"34\") or \"1.34\" (\"v1.34.2\")"
    );
    let answer = Step::ok(Expect::get("/version"), version("2", "0", "v2.0.0"));
    assert_eq!(
        minor_served(answer).await,
        Err("GET /version: major version \"2\" is not 1".to_owned())
    );
}

#[tokio::test]
async fn a_refused_request_is_an_error() {
    let answer = Step::fail(
        Expect::get("/version"),
        StatusCode::FORBIDDEN,
        "Forbidden",
        "forbidden: User \"system:anonymous\" cannot get path \"/version\"",
    );
    let err = minor_served(answer).await.unwrap_err();
    assert!(err.starts_with("GET /version: "), "{err}");
    assert!(err.contains("403") || err.contains("forbidden"), "{err}");
}
