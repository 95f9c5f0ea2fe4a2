//! Asks the API server whether an MCPServer's author may read each Secret and ConfigMap it
//! names: one SubjectAccessReview per object, as the requesting user (`user`, `groups`, `uid` and
//! `extra` copied from the admission request). The answers go to the pure decision
//! (`mcpguard_core::mcpserver::access`); a failure or a timeout is an `Unverified` answer,
//! on which the decision fails closed.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};
use mcpguard_core::mcpserver::access::{Access, MAX_CHECKED_REFERENCES, Reference};

/// How long all the reviews of one admission request may take together: well inside the
/// webhook configurations' 5 s timeout, so a slow API server gives a clear denial rather
/// than the API server's own "context deadline exceeded".
pub const ACCESS_REVIEW_TIMEOUT: Duration = Duration::from_secs(3);

/// The longest error text kept in an answer (it reaches the user in the denial).
const MAX_ERROR_CHARS: usize = 200;

/// The SubjectAccessReview asking whether `user` may get `reference` in `namespace`.
pub fn review_for(user: &UserInfo, namespace: &str, reference: &Reference) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups.clone(),
            uid: user.uid.clone(),
            extra: user.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(reference.kind.verb().to_owned()),
                group: Some(String::new()),
                version: Some("v1".to_owned()),
                resource: Some(reference.kind.resource().to_owned()),
                name: reference
                    .kind
                    .asks_by_name()
                    .then(|| reference.name.clone()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

/// The API server's answer for each of `names` (at most [`MAX_CHECKED_REFERENCES`]; the
/// decision refuses more without asking). Asked concurrently, all within `timeout`.
pub async fn secret_access(
    client: &kube::Client,
    user: &UserInfo,
    namespace: &str,
    names: &[Reference],
    timeout: Duration,
) -> BTreeMap<Reference, Access> {
    if names.len() > MAX_CHECKED_REFERENCES {
        return BTreeMap::new();
    }
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let asks = names.iter().map(|name| {
        let api = api.clone();
        let review = review_for(user, namespace, name);
        async move {
            let answer = match api.create(&PostParams::default(), &review).await {
                Ok(answered) => match answered.status {
                    Some(status) if status.allowed => Access::Allowed,
                    Some(_) => Access::Denied,
                    None => Access::Unverified(
                        "the SubjectAccessReview came back without a status".into(),
                    ),
                },
                Err(err) => Access::Unverified(bounded(&format!(
                    "the API server did not answer the SubjectAccessReview: {err}"
                ))),
            };
            (name.clone(), answer)
        }
    });
    match tokio::time::timeout(timeout, futures::future::join_all(asks)).await {
        Ok(answers) => answers.into_iter().collect(),
        Err(_) => names
            .iter()
            .map(|name| {
                (
                    name.clone(),
                    Access::Unverified(format!(
                        "the API server did not answer the SubjectAccessReview within {} s",
                        timeout.as_secs()
                    )),
                )
            })
            .collect(),
    }
}

fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(MAX_ERROR_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_asks_as_the_requesting_user_for_get_on_one_secret() {
        let user = UserInfo {
            username: Some("intern".into()),
            uid: Some("u-1".into()),
            groups: Some(vec!["team-a".into(), "system:authenticated".into()]),
            extra: Some(BTreeMap::from([(
                "scopes.example.com".to_owned(),
                vec!["read".to_owned()],
            )])),
        };
        let review = serde_json::to_value(review_for(&user, "mcp", &Reference::secret("db-admin")))
            .expect("json");
        assert_eq!(
            review,
            serde_json::json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "metadata": {},
                "spec": {
                    "user": "intern",
                    "uid": "u-1",
                    "groups": ["team-a", "system:authenticated"],
                    "extra": {"scopes.example.com": ["read"]},
                    "resourceAttributes": {
                        "namespace": "mcp",
                        "verb": "get",
                        "group": "",
                        "version": "v1",
                        "resource": "secrets",
                        "name": "db-admin",
                    },
                },
            })
        );
    }

    #[test]
    fn a_config_map_is_asked_about_as_configmaps() {
        let review = review_for(
            &UserInfo::default(),
            "mcp",
            &Reference::config_map("settings"),
        );
        let attributes = review.spec.resource_attributes.expect("attributes");
        assert_eq!(attributes.resource.as_deref(), Some("configmaps"));
        assert_eq!(attributes.name.as_deref(), Some("settings"));
        assert_eq!(attributes.verb.as_deref(), Some("get"));
    }

    #[test]
    fn a_service_account_is_asked_about_as_creating_pods_in_the_namespace() {
        let review = review_for(
            &UserInfo::default(),
            "mcp",
            &Reference::service_account("k8s-mcp-reader"),
        );
        let attributes = review.spec.resource_attributes.expect("attributes");
        assert_eq!(attributes.resource.as_deref(), Some("pods"));
        assert_eq!(attributes.verb.as_deref(), Some("create"));
        assert_eq!(attributes.name, None);
        assert_eq!(attributes.namespace.as_deref(), Some("mcp"));
    }

    #[test]
    fn long_error_text_is_cut() {
        let long = "x".repeat(500);
        let cut = bounded(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(bounded("short"), "short");
    }
}
