//! The default /proc masks are set up to reduce attack surface, and should be
//! required by the restricted profile, even in a user namespace.
//!
//! **Restricted Fields:**
//! spec.containers[*].securityContext.procMount
//! spec.initContainers[*].securityContext.procMount
//! spec.ephemeralContainers[*].securityContext.procMount
//!
//! **Allowed Values:** undefined/null, "Default"

use super::check_proc_mount::proc_mount_1_0;
use super::{Check, Level, Variant};

pub(crate) static CHECK: Check = Check {
    id: "procMount_restricted",
    level: Level::Restricted,
    // From v1.35 the baseline check relaxes for user-namespace pods; restricted
    // keeps the unconditional check and drops the weaker baseline one.
    variants: &[Variant {
        min_minor: 35,
        run: proc_mount_1_0,
        overrides: &["procMount"],
    }],
};

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::pss::test_util::*;

    const ID: &str = "procMount_restricted";

    #[test]
    fn passes_with_default() {
        let p = json!({"spec": {"containers": [{"name": "a", "securityContext": {"procMount": "Default"}}]}});
        assert_eq!(run(ID, R, v(35), p), pass());
    }

    #[test]
    fn starts_at_v1_35_and_ignores_user_namespaces() {
        let p = json!({"spec": {"hostUsers": false, "ephemeralContainers": [
            {"name": "dbg", "securityContext": {"procMount": "Unmasked"}},
        ]}});
        assert_eq!(run(ID, R, v(34), p.clone()), pass());
        assert_eq!(
            run(ID, R, v(35), p.clone()),
            fail(
                ID,
                "procMount",
                r#"container "dbg" must not set securityContext.procMount to "Unmasked""#
            )
        );
        assert_eq!(run(ID, B, v(35), p), pass());
    }
}
