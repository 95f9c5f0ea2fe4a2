//! Whether an MCPServer's author may read what the server reads.
//!
//! The controller reads the Secrets an MCPServer names and wires them into a Deployment it
//! writes with its own rights. Kubernetes lets anyone who may create a Deployment mount any
//! Secret of its namespace, but the right to create MCPServers is meant to be delegated to
//! people who may not create workloads, so it must not be a way to the Secrets. On every
//! CREATE and UPDATE (an author who changes only `image` would redirect the Secrets other
//! people wired in), the webhook asks the API server, with a SubjectAccessReview per Secret,
//! whether the requesting user may `get` it, and passes the answers here. Asking is I/O and
//! happens at the edge; deciding on the answers is pure and happens here.

use std::collections::BTreeMap;

use super::crd::MCPServer;
use super::render::referenced_secrets;
use crate::violation::Violation;

/// The check ID of a Secret the author may not read, or whose access could not be verified.
pub const MCPSERVER_SECRET_ACCESS: &str = "mcpServerSecretAccess";

/// The most Secrets one review asks about. Each is a request to the API server inside the
/// webhook's timeout, and the count comes from the request, so it is bounded before anything
/// is asked; a server naming more is refused.
pub const MAX_CHECKED_SECRETS: usize = 32;

/// The verb and resource every check asks about.
pub const VERB: &str = "get";
pub const RESOURCE: &str = "secrets";

/// Whether an MCPServer's author may read the Secrets it names (see
/// this module): asking is I/O, so the answers come in from the caller.
#[derive(Clone, Copy, Debug)]
pub enum SecretAccess<'a> {
    /// The webhook asked: the answer per Secret name. A Secret without one is unverified,
    /// and refused.
    Answered(&'a BTreeMap<String, Access>),
    /// Offline (`mcpguard check`): nothing can be asked, so nothing is refused for it, and
    /// each reference is reported as not verified.
    Offline,
}

/// The API server's answer for one Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    Denied,
    /// Not asked, or no answer: the webhook fails closed on it; offline it is reported.
    Unverified(String),
}

/// The distinct Secrets a server names, sorted: what must be asked about.
pub fn secrets_to_check(server: &MCPServer) -> Vec<String> {
    let mut names: Vec<String> = referenced_secrets(server)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The violations for a server whose author (`user`) got `answers` for the Secrets it names
/// in `namespace`: one per Secret not allowed, naming the Secret and the verb. A Secret with
/// no answer counts as unverified.
pub fn access_violations(
    user: &str,
    namespace: &str,
    names: &[String],
    answers: &BTreeMap<String, Access>,
) -> Vec<Violation> {
    if names.len() > MAX_CHECKED_SECRETS {
        return vec![Violation {
            check: MCPSERVER_SECRET_ACCESS.into(),
            reason: "too many Secret references".into(),
            detail: format!(
                "the MCPServer names {} Secrets; at most {MAX_CHECKED_SECRETS} can be checked against its author's rights",
                names.len()
            ),
        }];
    }
    names
        .iter()
        .filter_map(|name| {
            let unverified = Access::Unverified("no answer".into());
            let (reason, detail) = match answers.get(name).unwrap_or(&unverified) {
                Access::Allowed => return None,
                Access::Denied => (
                    "author may not read a referenced Secret",
                    format!(
                        "user {user:?} may not {VERB} Secret {name:?} in namespace {namespace:?}, so an MCPServer of theirs may not read it either"
                    ),
                ),
                Access::Unverified(why) => (
                    "author's access to a referenced Secret not verified",
                    format!(
                        "could not verify that user {user:?} may {VERB} Secret {name:?} in namespace {namespace:?} ({why}); refused until it can be"
                    ),
                ),
            };
            Some(Violation {
                check: MCPSERVER_SECRET_ACCESS.into(),
                reason: reason.into(),
                detail,
            })
        })
        .collect()
}

/// How each of [`offline_notes`] starts, so that the CLI can show them apart.
pub const OFFLINE_NOTE_PREFIX: &str = "not verified offline: ";

/// What `mcpguard check` says offline, where it cannot ask: one line per Secret whose access
/// the webhook will check.
pub fn offline_notes(names: &[String], namespace: &str) -> Vec<String> {
    names
        .iter()
        .map(|name| {
            format!(
                "{OFFLINE_NOTE_PREFIX}the webhook will ask whether the author may {VERB} Secret {name:?} in namespace {namespace:?}"
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn server(spec: serde_json::Value) -> MCPServer {
        serde_json::from_value(json!({
            "apiVersion": "mcpguard.dev/v1alpha1",
            "kind": "MCPServer",
            "metadata": {"name": "exfil", "namespace": "mcp"},
            "spec": spec,
        }))
        .expect("an MCPServer")
    }

    fn deputy() -> MCPServer {
        server(json!({
            "image": "docker.io/attacker/exfil:1",
            "envFrom": [{"secretRef": {"name": "argocd-repo-creds"}}],
            "secretEnv": [
                {"name": "A", "secretKeyRef": {"name": "team-b-token", "key": "token"}},
                {"name": "B", "secretKeyRef": {"name": "team-b-token", "key": "other"}},
            ],
            "files": [{"secretRef": {"name": "db-admin"}}],
        }))
    }

    #[test]
    fn every_named_secret_is_checked_once() {
        assert_eq!(
            secrets_to_check(&deputy()),
            ["argocd-repo-creds", "db-admin", "team-b-token"]
        );
        assert_eq!(
            secrets_to_check(&server(json!({"image": "ghcr.io/acme/mcp:1"}))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn each_secret_the_author_may_not_read_is_a_violation_naming_it_and_the_verb() {
        let names = secrets_to_check(&deputy());
        let answers = BTreeMap::from([
            ("argocd-repo-creds".to_owned(), Access::Denied),
            ("db-admin".to_owned(), Access::Allowed),
            (
                "team-b-token".to_owned(),
                Access::Unverified("the API server did not answer in time".into()),
            ),
        ]);
        assert_eq!(
            access_violations("intern", "mcp", &names, &answers),
            vec![
                Violation {
                    check: MCPSERVER_SECRET_ACCESS.into(),
                    reason: "author may not read a referenced Secret".into(),
                    detail: "user \"intern\" may not get Secret \"argocd-repo-creds\" in namespace \"mcp\", so an MCPServer of theirs may not read it either".into(),
                },
                Violation {
                    check: MCPSERVER_SECRET_ACCESS.into(),
                    reason: "author's access to a referenced Secret not verified".into(),
                    detail: "could not verify that user \"intern\" may get Secret \"team-b-token\" in namespace \"mcp\" (the API server did not answer in time); refused until it can be".into(),
                },
            ]
        );
    }

    #[test]
    fn an_author_who_may_read_every_secret_passes() {
        let names = secrets_to_check(&deputy());
        let answers: BTreeMap<String, Access> =
            names.iter().map(|n| (n.clone(), Access::Allowed)).collect();
        assert_eq!(access_violations("ops", "mcp", &names, &answers), vec![]);
    }

    #[test]
    fn a_secret_with_no_answer_fails_closed() {
        let names = vec!["forgotten".to_owned()];
        let found = access_violations("ops", "mcp", &names, &BTreeMap::new());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].detail,
            "could not verify that user \"ops\" may get Secret \"forgotten\" in namespace \"mcp\" (no answer); refused until it can be"
        );
    }

    #[test]
    fn too_many_references_are_refused_before_anything_is_asked() {
        let names: Vec<String> = (0..=MAX_CHECKED_SECRETS).map(|i| format!("s{i}")).collect();
        let all_allowed: BTreeMap<String, Access> =
            names.iter().map(|n| (n.clone(), Access::Allowed)).collect();
        assert_eq!(
            access_violations("ops", "mcp", &names, &all_allowed),
            vec![Violation {
                check: MCPSERVER_SECRET_ACCESS.into(),
                reason: "too many Secret references".into(),
                detail: "the MCPServer names 33 Secrets; at most 32 can be checked against its author's rights".into(),
            }]
        );
        assert_eq!(
            access_violations("ops", "mcp", &names[..MAX_CHECKED_SECRETS], &all_allowed),
            vec![]
        );
    }

    #[test]
    fn offline_each_reference_is_reported_as_not_verified() {
        assert_eq!(
            offline_notes(&["db-admin".to_owned()], "mcp"),
            [
                "not verified offline: the webhook will ask whether the author may get Secret \"db-admin\" in namespace \"mcp\""
            ]
        );
    }
}
