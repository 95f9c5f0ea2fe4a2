//! The front door: every admission request, from the webhook and from the offline CLI, is
//! answered by [`mutate`] or [`validate`] here. Like Pod Security Admission's `Validate`,
//! each routes the request by its resource (group and resource; the version does not change
//! what an object is) to one small validator per kind, and each validator decides for itself
//! which operations and subresources it judges:
//!
//! | resource                                    | validator                               |
//! |---------------------------------------------|-----------------------------------------|
//! | `pods`                                      | [`engine::validate_pod`]                |
//! | workload controllers (`deployments`, ...)   | [`engine::validate_workload`]           |
//! | `mcpservers.mcpguard.dev`                   | [`objects::validate_server`]            |
//! | `networkpolicies.networking.k8s.io`         | [`objects::validate_network_policy`]    |
//! | `mcppolicies.mcpguard.dev`                  | [`objects::validate_policy`]            |
//! | anything else                               | skipped                                 |
//!
//! Only pods are mutated. The policy that judges a request is the one in force in its
//! namespace; an `MCPPolicy` is judged by the policy loader instead, and the [`Answer`] says
//! which, so that whoever records the decision does not ask again.

use jiff::Timestamp;

use crate::engine::{self, Decision};
pub use crate::mcpserver::access::SecretAccess;
use crate::objects;
use crate::policy::{self, Policy};
use crate::policy_set::PolicySet;
use crate::review::AdmissionRequest;
use crate::runtime_class::RuntimeClassLookup;
use crate::workloads::{self, WorkloadKind};

/// What a request is for, as the front door routes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    /// The core `pods`.
    Pod,
    /// A workload controller, whose pod template is judged.
    Workload(&'static WorkloadKind),
    /// `mcpservers.mcpguard.dev`.
    McpServer,
    /// `networkpolicies.networking.k8s.io`.
    NetworkPolicy,
    /// `mcppolicies.mcpguard.dev`.
    McpPolicy,
    /// Nothing mcpguard judges.
    Other,
}

impl Resource {
    /// The kind name of what mcpguard judges; `None` for [`Resource::Other`]. A fixed set
    /// (metrics label requests with it, so it must not grow with what senders write).
    pub fn kind(self) -> Option<&'static str> {
        match self {
            Resource::Pod => Some("Pod"),
            Resource::Workload(workload) => Some(workload.kind),
            Resource::McpServer => Some("MCPServer"),
            Resource::NetworkPolicy => Some("NetworkPolicy"),
            Resource::McpPolicy => Some(policy::KIND),
            Resource::Other => None,
        }
    }

    /// The kind of the request's resource, by group and resource.
    pub fn of(request: &AdmissionRequest) -> Resource {
        let (group, resource) = (
            request.resource.group.as_str(),
            request.resource.resource.as_str(),
        );
        match (group, resource) {
            ("", "pods") => Resource::Pod,
            ("mcpguard.dev", "mcpservers") => Resource::McpServer,
            ("mcpguard.dev", "mcppolicies") => Resource::McpPolicy,
            ("networking.k8s.io", "networkpolicies") => Resource::NetworkPolicy,
            _ => {
                workloads::by_resource(group, resource).map_or(Resource::Other, Resource::Workload)
            }
        }
    }
}

/// What the front door judges a request with.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Every policy in force: the one for the request's namespace judges it, and an
    /// `MCPPolicy` being written is warned about the namespaces it would take from them.
    pub policies: &'a PolicySet,
    pub runtime_classes: &'a dyn RuntimeClassLookup,
    /// The time exceptions' expiry is judged against; the caller reads the clock.
    pub now: Timestamp,
    /// What the API server said about the Secrets an MCPServer names, asked for the
    /// requesting user before the decision ([`secrets_to_ask`] says which).
    pub secret_access: SecretAccess<'a>,
}

/// The Secrets and ConfigMaps the webhook must ask about before [`validate`] judges
/// `request`: those an MCPServer names, on a CREATE or UPDATE of its spec in a namespace a policy enforces (an
/// author who changes only `image` would redirect Secrets someone else wired in). Empty for
/// every other request.
pub fn secrets_to_ask(
    request: &AdmissionRequest,
    policies: &PolicySet,
) -> Vec<crate::mcpserver::access::Reference> {
    if Resource::of(request) != Resource::McpServer {
        return Vec::new();
    }
    let policy = policies.for_namespace(request.namespace.as_deref());
    objects::server_secrets_to_ask(request, policy)
}

impl<'a> Context<'a> {
    /// The engine's context for `request`: the policy in force in its namespace.
    fn for_request(&self, request: &AdmissionRequest) -> engine::Context<'a> {
        engine::Context {
            policy: self.policies.for_namespace(request.namespace.as_deref()),
            runtime_classes: self.runtime_classes,
            now: self.now,
        }
    }
}

/// Who is answerable for a decision, as its Events and metrics name it.
#[derive(Clone, Copy, Debug)]
pub enum Judge<'a> {
    /// The policy in force in the request's namespace (also when it skipped the request).
    Policy(&'a Policy),
    /// An `MCPPolicy` request, judged by the policy loader: no policy judged it, and no
    /// namespace or object holds an Event about it.
    PolicyLoader,
}

impl<'a> Judge<'a> {
    /// Who answers for a request for `resource`, when `policy` is in force in its namespace.
    fn of(resource: Resource, policy: &'a Policy) -> Judge<'a> {
        match resource {
            Resource::McpPolicy => Judge::PolicyLoader,
            _ => Judge::Policy(policy),
        }
    }

    /// The name metrics carry: the policy's, or `MCPPolicy` for the loader.
    pub fn name(&self) -> &str {
        match self {
            Judge::Policy(policy) => &policy.name,
            Judge::PolicyLoader => policy::KIND,
        }
    }
}

/// The front door's answer: the decision, and who made it.
#[derive(Clone, Debug)]
pub struct Answer<'a> {
    pub decision: Decision,
    pub judge: Judge<'a>,
}

/// The mutating webhook: pods get the policy's defaults; nothing else is mutated.
pub fn mutate<'a>(request: &AdmissionRequest, context: Context<'a>) -> Answer<'a> {
    let resource = Resource::of(request);
    let judging = context.for_request(request);
    let decision = match resource {
        Resource::Pod => engine::mutate_pod(request, judging),
        Resource::Workload(_)
        | Resource::McpServer
        | Resource::NetworkPolicy
        | Resource::McpPolicy
        | Resource::Other => Decision::skipped(),
    };
    Answer {
        decision,
        judge: Judge::of(resource, judging.policy),
    }
}

/// The validating webhook: the request judged by the validator of its resource.
pub fn validate<'a>(request: &AdmissionRequest, context: Context<'a>) -> Answer<'a> {
    let resource = Resource::of(request);
    let judging = context.for_request(request);
    let decision = match resource {
        Resource::Pod => engine::validate_pod(request, judging),
        Resource::Workload(workload) => engine::validate_workload(request, workload, judging),
        Resource::McpServer => objects::validate_server(request, judging, context.secret_access),
        Resource::NetworkPolicy => objects::validate_network_policy(request, judging),
        Resource::McpPolicy => objects::validate_policy(request, context.policies),
        Resource::Other => Decision::skipped(),
    };
    Answer {
        decision,
        judge: Judge::of(resource, judging.policy),
    }
}

#[cfg(test)]
mod tests;
