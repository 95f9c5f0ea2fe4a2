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

use std::fmt;

use super::crd::MCPServer;
use super::render::{referenced_config_maps, referenced_secrets};
use crate::violation::Violation;

/// The check ID of a Secret the author may not read, or whose access could not be verified.
pub const MCPSERVER_SECRET_ACCESS: &str = "mcpServerSecretAccess";
/// The same for a ConfigMap the server mounts (`spec.config`).
pub const MCPSERVER_CONFIGMAP_ACCESS: &str = "mcpServerConfigMapAccess";
/// The same for the ServiceAccount `spec.podTemplateSpec` names.
pub const MCPSERVER_SERVICEACCOUNT_ACCESS: &str = "mcpServerServiceAccountAccess";
/// The same for a package cache's PersistentVolumeClaim.
pub const MCPSERVER_CLAIM_ACCESS: &str = "mcpServerClaimAccess";

/// The most references one review asks about. Each is a request to the API server inside
/// the webhook's timeout, and the count comes from the request, so it is bounded before
/// anything is asked; a server naming more is refused.
pub const MAX_CHECKED_REFERENCES: usize = 32;

/// What kind of object a server reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReferenceKind {
    Secret,
    ConfigMap,
    /// Running as a ServiceAccount is what creating a pod that names it does: anyone who
    /// may create pods in the namespace may run as any of its ServiceAccounts, and nobody
    /// else may, so that is what is asked.
    ServiceAccount,
    /// A package cache's claim: mounting it reads (and writes) what it holds.
    PersistentVolumeClaim,
}

impl ReferenceKind {
    /// The resource a SubjectAccessReview names (core API group).
    pub fn resource(self) -> &'static str {
        match self {
            ReferenceKind::Secret => "secrets",
            ReferenceKind::ConfigMap => "configmaps",
            ReferenceKind::ServiceAccount => "pods",
            ReferenceKind::PersistentVolumeClaim => "persistentvolumeclaims",
        }
    }

    /// The verb a SubjectAccessReview asks about.
    pub fn verb(self) -> &'static str {
        match self {
            ReferenceKind::Secret
            | ReferenceKind::ConfigMap
            | ReferenceKind::PersistentVolumeClaim => "get",
            ReferenceKind::ServiceAccount => "create",
        }
    }

    /// Whether the review names the object (a `create` names none).
    pub fn asks_by_name(self) -> bool {
        !matches!(self, ReferenceKind::ServiceAccount)
    }

    pub fn kind(self) -> &'static str {
        match self {
            ReferenceKind::Secret => "Secret",
            ReferenceKind::ConfigMap => "ConfigMap",
            ReferenceKind::ServiceAccount => "ServiceAccount",
            ReferenceKind::PersistentVolumeClaim => "PersistentVolumeClaim",
        }
    }

    fn check(self) -> &'static str {
        match self {
            ReferenceKind::Secret => MCPSERVER_SECRET_ACCESS,
            ReferenceKind::ConfigMap => MCPSERVER_CONFIGMAP_ACCESS,
            ReferenceKind::ServiceAccount => MCPSERVER_SERVICEACCOUNT_ACCESS,
            ReferenceKind::PersistentVolumeClaim => MCPSERVER_CLAIM_ACCESS,
        }
    }

    /// What the author is asked for, in words: `get Secret "x"`, `create pods`.
    fn asked(self, reference: &Reference) -> String {
        match self {
            ReferenceKind::ServiceAccount => "create pods".to_owned(),
            _ => format!("{} {reference}", self.verb()),
        }
    }
}

/// One object a server reads: `Secret "db-admin"`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    pub kind: ReferenceKind,
    pub name: String,
}

impl Reference {
    pub fn secret(name: impl Into<String>) -> Reference {
        Reference {
            kind: ReferenceKind::Secret,
            name: name.into(),
        }
    }

    pub fn config_map(name: impl Into<String>) -> Reference {
        Reference {
            kind: ReferenceKind::ConfigMap,
            name: name.into(),
        }
    }

    pub fn service_account(name: impl Into<String>) -> Reference {
        Reference {
            kind: ReferenceKind::ServiceAccount,
            name: name.into(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind.kind(), self.name)
    }
}

/// Whether an MCPServer's author may read the Secrets it names (see
/// this module): asking is I/O, so the answers come in from the caller.
#[derive(Clone, Copy, Debug)]
pub enum SecretAccess<'a> {
    /// The webhook asked: the answer per Secret name. A Secret without one is unverified,
    /// and refused.
    Answered(&'a BTreeMap<Reference, Access>),
    /// Offline (`mcpguard check`): nothing can be asked, so nothing is refused for it, and
    /// each reference is reported as not verified.
    Offline,
}

/// The API server's answer for one reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    Allowed,
    Denied,
    /// Not asked, or no answer: the webhook fails closed on it; offline it is reported.
    Unverified(String),
}

/// The distinct Secrets and ConfigMaps a server names, and the ServiceAccount its
/// `podTemplateSpec` runs as, sorted (Secrets first): what must be asked about.
pub fn references_to_check(server: &MCPServer) -> Vec<Reference> {
    let mut references: Vec<Reference> = referenced_secrets(server)
        .into_iter()
        .map(|(name, _)| Reference::secret(name))
        .chain(
            referenced_config_maps(server)
                .into_iter()
                .map(Reference::config_map),
        )
        .chain(
            super::render::overrides::service_account(server.spec.pod_template_spec.as_ref())
                .map(Reference::service_account),
        )
        .chain(
            server
                .spec
                .package
                .as_ref()
                .and_then(|package| package.cache.as_ref())
                .map(|cache| Reference {
                    kind: ReferenceKind::PersistentVolumeClaim,
                    name: cache.persistent_volume_claim.claim_name.clone(),
                }),
        )
        .collect();
    references.sort_unstable();
    references.dedup();
    references
}

/// The violations for a server whose author (`user`) got `answers` for what it names in
/// `namespace`: one per reference not allowed, naming it and the verb. A reference with no
/// answer counts as unverified.
pub fn access_violations(
    user: &str,
    namespace: &str,
    references: &[Reference],
    answers: &BTreeMap<Reference, Access>,
) -> Vec<Violation> {
    if references.len() > MAX_CHECKED_REFERENCES {
        return vec![Violation {
            check: MCPSERVER_SECRET_ACCESS.into(),
            reason: "too many Secret and ConfigMap references".into(),
            detail: format!(
                "the MCPServer names {} Secrets and ConfigMaps; at most {MAX_CHECKED_REFERENCES} can be checked against its author's rights",
                references.len()
            ),
            fields: Vec::new(),
        }];
    }
    references
        .iter()
        .filter_map(|reference| {
            let unverified = Access::Unverified("no answer".into());
            let kind = reference.kind.kind();
            let asked = reference.kind.asked(reference);
            let consequence = match reference.kind {
                ReferenceKind::ServiceAccount => format!("run as {reference}"),
                _ => "read it".to_owned(),
            };
            let (reason, detail) = match answers.get(reference).unwrap_or(&unverified) {
                Access::Allowed => return None,
                Access::Denied => (
                    match reference.kind {
                        ReferenceKind::ServiceAccount => {
                            "author may not run as the named ServiceAccount".to_owned()
                        }
                        _ => format!("author may not read a referenced {kind}"),
                    },
                    format!(
                        "user {user:?} may not {asked} in namespace {namespace:?}, so an MCPServer of theirs may not {consequence} either"
                    ),
                ),
                Access::Unverified(why) => (
                    format!("author's access to a referenced {kind} not verified"),
                    format!(
                        "could not verify that user {user:?} may {asked} in namespace {namespace:?} ({why}); refused until it can be"
                    ),
                ),
            };
            Some(Violation {
                check: reference.kind.check().into(),
                reason,
                detail,
                fields: Vec::new(),
            })
        })
        .collect()
}

/// How each of [`offline_notes`] starts, so that the CLI can show them apart.
pub const OFFLINE_NOTE_PREFIX: &str = "not verified offline: ";

/// What `mcpguard check` says offline, where it cannot ask: one line per reference whose
/// access the webhook will check.
pub fn offline_notes(references: &[Reference], namespace: &str) -> Vec<String> {
    references
        .iter()
        .map(|reference| {
            let purpose = match reference.kind {
                ReferenceKind::ServiceAccount => format!(" (to run as {reference})"),
                _ => String::new(),
            };
            format!(
                "{OFFLINE_NOTE_PREFIX}the webhook will ask whether the author may {} in namespace {namespace:?}{purpose}",
                reference.kind.asked(reference)
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

    fn secrets(names: &[&str]) -> Vec<Reference> {
        names.iter().map(|name| Reference::secret(*name)).collect()
    }

    #[test]
    fn every_named_secret_and_config_map_is_checked_once() {
        assert_eq!(
            references_to_check(&deputy()),
            secrets(&["argocd-repo-creds", "db-admin", "team-b-token"])
        );
        assert_eq!(
            references_to_check(&server(json!({"image": "ghcr.io/acme/mcp:1"}))),
            Vec::<Reference>::new()
        );
        let configured = server(json!({"image": "ghcr.io/acme/mcp:1",
            "files": [{"secretRef": {"name": "tls"}}],
            "config": [{"configMapRef": {"name": "settings"}}, {"configMapRef": {"name": "settings"}}]}));
        assert_eq!(
            references_to_check(&configured),
            [Reference::secret("tls"), Reference::config_map("settings")]
        );
    }

    #[test]
    fn a_service_account_is_asked_about_as_creating_pods() {
        let server = server(json!({"image": "ghcr.io/acme/mcp:1",
            "podTemplateSpec": {"spec": {"serviceAccountName": "k8s-mcp-reader"}}}));
        let references = references_to_check(&server);
        assert_eq!(references, [Reference::service_account("k8s-mcp-reader")]);
        let answers = BTreeMap::from([(references[0].clone(), Access::Denied)]);
        assert_eq!(
            access_violations("intern", "mcp", &references, &answers),
            vec![Violation {
                check: MCPSERVER_SERVICEACCOUNT_ACCESS.into(),
                reason: "author may not run as the named ServiceAccount".into(),
                detail: "user \"intern\" may not create pods in namespace \"mcp\", so an MCPServer of theirs may not run as ServiceAccount \"k8s-mcp-reader\" either".into(),
                fields: Vec::new(),
            }]
        );
        assert_eq!(
            offline_notes(&references, "mcp"),
            [
                "not verified offline: the webhook will ask whether the author may create pods in namespace \"mcp\" (to run as ServiceAccount \"k8s-mcp-reader\")"
            ]
        );
    }

    #[test]
    fn a_package_cache_claim_is_asked_about_by_name() {
        let server = server(json!({"package": {"runtime": "npx", "name": "x",
            "cache": {"persistentVolumeClaim": {"claimName": "npm-cache"}}}}));
        let references = references_to_check(&server);
        assert_eq!(
            references,
            [Reference {
                kind: ReferenceKind::PersistentVolumeClaim,
                name: "npm-cache".into()
            }]
        );
        assert_eq!(references[0].kind.resource(), "persistentvolumeclaims");
        assert_eq!(references[0].kind.verb(), "get");
        let found = access_violations("intern", "mcp", &references, &BTreeMap::new());
        assert_eq!(found[0].check, MCPSERVER_CLAIM_ACCESS);
    }

    #[test]
    fn a_config_map_the_author_may_not_read_is_its_own_violation() {
        let references = [Reference::config_map("team-b-settings")];
        let answers = BTreeMap::from([(references[0].clone(), Access::Denied)]);
        assert_eq!(
            access_violations("intern", "mcp", &references, &answers),
            vec![Violation {
                check: MCPSERVER_CONFIGMAP_ACCESS.into(),
                reason: "author may not read a referenced ConfigMap".into(),
                detail: "user \"intern\" may not get ConfigMap \"team-b-settings\" in namespace \"mcp\", so an MCPServer of theirs may not read it either".into(),
                fields: Vec::new(),
            }]
        );
    }

    #[test]
    fn each_secret_the_author_may_not_read_is_a_violation_naming_it_and_the_verb() {
        let names = references_to_check(&deputy());
        let answers = BTreeMap::from([
            (Reference::secret("argocd-repo-creds"), Access::Denied),
            (Reference::secret("db-admin"), Access::Allowed),
            (
                Reference::secret("team-b-token"),
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
                    fields: Vec::new(),
                },
                Violation {
                    check: MCPSERVER_SECRET_ACCESS.into(),
                    reason: "author's access to a referenced Secret not verified".into(),
                    detail: "could not verify that user \"intern\" may get Secret \"team-b-token\" in namespace \"mcp\" (the API server did not answer in time); refused until it can be".into(),
                    fields: Vec::new(),
                },
            ]
        );
    }

    #[test]
    fn an_author_who_may_read_every_secret_passes() {
        let names = references_to_check(&deputy());
        let answers: BTreeMap<Reference, Access> =
            names.iter().map(|n| (n.clone(), Access::Allowed)).collect();
        assert_eq!(access_violations("ops", "mcp", &names, &answers), vec![]);
    }

    #[test]
    fn a_secret_with_no_answer_fails_closed() {
        let names = secrets(&["forgotten"]);
        let found = access_violations("ops", "mcp", &names, &BTreeMap::new());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].detail,
            "could not verify that user \"ops\" may get Secret \"forgotten\" in namespace \"mcp\" (no answer); refused until it can be"
        );
    }

    #[test]
    fn too_many_references_are_refused_before_anything_is_asked() {
        let names: Vec<Reference> = (0..=MAX_CHECKED_REFERENCES)
            .map(|i| Reference::secret(format!("s{i}")))
            .collect();
        let all_allowed: BTreeMap<Reference, Access> =
            names.iter().map(|n| (n.clone(), Access::Allowed)).collect();
        assert_eq!(
            access_violations("ops", "mcp", &names, &all_allowed),
            vec![Violation {
                check: MCPSERVER_SECRET_ACCESS.into(),
                reason: "too many Secret and ConfigMap references".into(),
                detail: "the MCPServer names 33 Secrets and ConfigMaps; at most 32 can be checked against its author's rights".into(),
                fields: Vec::new(),
            }]
        );
        assert_eq!(
            access_violations("ops", "mcp", &names[..MAX_CHECKED_REFERENCES], &all_allowed),
            vec![]
        );
    }

    #[test]
    fn offline_each_reference_is_reported_as_not_verified() {
        assert_eq!(
            offline_notes(&secrets(&["db-admin"]), "mcp"),
            [
                "not verified offline: the webhook will ask whether the author may get Secret \"db-admin\" in namespace \"mcp\""
            ]
        );
    }
}
