//! Pod and containers must not set securityContext.windowsOptions.hostProcess
//! to true.
//!
//! **Restricted Fields:**
//! spec.securityContext.windowsOptions.hostProcess
//! spec.containers[*].securityContext.windowsOptions.hostProcess
//! spec.initContainers[*].securityContext.windowsOptions.hostProcess
//! spec.ephemeralContainers[*].securityContext.windowsOptions.hostProcess
//!
//! **Allowed Values:** undefined / false

use k8s_openapi::api::core::v1::{PodSpec, WindowsSecurityContextOptions};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::util::{Violation, containers, containers_phrase};
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "windowsHostProcess",
    level: Level::Baseline,
    variants: &[Variant {
        min_minor: 0,
        run: windows_host_process_1_0,
        overrides: &[],
    }],
};

fn host_process(opts: Option<&WindowsSecurityContextOptions>) -> bool {
    opts.and_then(|o| o.host_process) == Some(true)
}

fn windows_host_process_1_0(_: &ObjectMeta, spec: &PodSpec) -> Option<Violation> {
    let bad: Vec<_> = containers(spec)
        .filter(|c| {
            host_process(
                c.security_context
                    .and_then(|sc| sc.windows_options.as_ref()),
            )
        })
        .collect();
    let bad_containers: Vec<&str> = bad.iter().map(|c| c.name).collect();
    let pod_sc = spec.security_context.as_ref();
    let pod_forbidden = host_process(pod_sc.and_then(|sc| sc.windows_options.as_ref()));
    let mut setters = Vec::new();
    let mut fields = Vec::new();
    if pod_forbidden {
        setters.push("pod".to_string());
        fields.push("securityContext.windowsOptions.hostProcess".to_owned());
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    fields.extend(
        bad.iter()
            .map(|c| c.path("securityContext.windowsOptions.hostProcess")),
    );
    if setters.is_empty() {
        return None;
    }
    Some(
        Violation::new(
            "hostProcess",
            format!(
                "{} must not set securityContext.windowsOptions.hostProcess=true",
                setters.join(" and ")
            ),
        )
        .with_fields(fields),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "windowsHostProcess";

    #[test]
    fn passes_when_false_or_unset() {
        let p = json!({"spec": {
            "securityContext": {"windowsOptions": {"hostProcess": false}},
            "containers": [{"name": "a", "securityContext": {"windowsOptions": {"runAsUserName": "x"}}}],
        }});
        assert_eq!(run(ID, B, v(0), p), pass());
    }

    #[test]
    fn pod_only() {
        let p = json!({"spec": {"securityContext": {"windowsOptions": {"hostProcess": true}}}});
        assert_eq!(
            run(ID, B, v(0), p),
            fail(
                ID,
                "hostProcess",
                "pod must not set securityContext.windowsOptions.hostProcess=true"
            )
        );
    }

    #[test]
    fn pod_and_containers() {
        let hp = json!({"windowsOptions": {"hostProcess": true}});
        let p = json!({"spec": {
            "os": {"name": "windows"},
            "securityContext": hp,
            "initContainers": [{"name": "i", "securityContext": hp}],
            "containers": [{"name": "c", "securityContext": hp}],
        }});
        assert_eq!(
            run(ID, R, v(25), p),
            fail(
                ID,
                "hostProcess",
                r#"pod and containers "i", "c" must not set securityContext.windowsOptions.hostProcess=true"#
            )
        );
    }
}
