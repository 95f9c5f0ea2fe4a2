//! One CEL expression (`spec.validate.rules[].expression`), as the policy loader compiles it
//! and the webhook evaluates it. The input is the expression itself, not a policy file, so
//! every mutation lands in CEL syntax. Compiling must answer Ok or Err, never panic or overflow
//! the stack, whatever the source's length, shape or nesting; a compiled rule must evaluate
//! against a pod that carries a secret, and no violation may quote that secret unless the
//! expression itself spells it out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpguard_core::cel_rules::{CelRule, CompiledRules, RuleInput};
use serde_json::{Value, json};

/// A value the pod holds that no violation may quote.
const SECRET: &str = "S3CR3T-canary-7f1d";

fn pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "mcp", "labels": {"team": "platform"},
                     "annotations": {"token": SECRET}},
        "spec": {"containers": [
            {"name": "server", "image": "ghcr.io/acme/web:1.2",
             "env": [{"name": "API_TOKEN", "value": SECRET}, {"name": "PORT", "value": "8080"}],
             "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}},
            {"name": "sidecar", "image": "busybox"}
        ]}
    })
}

fn cel(data: &[u8]) {
    let Ok(expression) = std::str::from_utf8(data) else {
        return;
    };
    let rule = CelRule {
        name: "fuzz".into(),
        expression: expression.into(),
        message: None,
        message_expression: None,
    };
    let params = json!({"registries": ["ghcr.io/"], "max": 3});
    let Ok(rules) = CompiledRules::compile(&[rule], Some(&params), 100_000) else {
        return;
    };
    let groups = ["platform".to_owned()];
    let input = RuleInput::create("mcp", "web", "jane@example.com", &groups);
    let spelled_out = expression.contains(SECRET);
    for violation in rules.evaluate(&pod(), &input) {
        let text = violation.to_string();
        assert!(
            spelled_out || !text.contains(SECRET),
            "a violation quotes the pod's secret: {text}"
        );
    }
}

fuzz_target!(|data: &[u8]| cel(data));
