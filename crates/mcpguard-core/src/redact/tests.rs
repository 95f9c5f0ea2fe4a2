use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, SecurityContext};
use serde_json::json;

use super::*;

const CANARY: &str = "S3CR3T-CANARY-7f3a9";

fn pod_spec_error(spec: Value) -> DecodeError {
    decode::<PodSpec>(&spec, "spec").expect_err("the spec does not decode")
}

#[test]
fn an_integer_where_a_string_belongs_is_named_by_kind_and_path() {
    let err = pod_spec_error(json!({"containers": [{"name": "app", "env": [
        {"name": "DB_PASSWORD", "value": 982451653}
    ]}]}));
    assert_eq!(
        err.to_string(),
        "spec.containers[0].env[0].value: invalid type: integer, expected a string"
    );
}

#[test]
fn a_string_where_a_number_belongs_is_named_by_kind_and_path() {
    let err = pod_spec_error(json!({"containers": [{"name": "app",
        "securityContext": {"runAsUser": CANARY}}]}));
    assert_eq!(
        err,
        DecodeError {
            path: "spec.containers[0].securityContext.runAsUser".into(),
            message: "invalid type: string, expected i64".into(),
        }
    );
}

#[test]
fn booleans_floats_and_negative_integers_are_scrubbed() {
    let err = pod_spec_error(json!({"containers": [{"name": "app", "image": true}]}));
    assert_eq!(
        err.to_string(),
        "spec.containers[0].image: invalid type: boolean, expected a string"
    );
    let err = pod_spec_error(json!({"containers": [{"name": 98245.1653}]}));
    assert_eq!(
        err.to_string(),
        "spec.containers[0].name: invalid type: floating point, expected a string"
    );
    let err = pod_spec_error(json!({"containers": [{"name": -982451653}]}));
    assert_eq!(
        err.to_string(),
        "spec.containers[0].name: invalid type: integer, expected a string"
    );
}

#[test]
fn int_or_string_out_of_range_is_an_invalid_value_without_the_number() {
    let err = pod_spec_error(json!({"containers": [{"name": "a", "livenessProbe":
        {"httpGet": {"port": 98_245_165_398_i64}}}]}));
    assert_eq!(
        err.to_string(),
        "spec.containers[0].livenessProbe.httpGet.port: invalid value: integer, expected a 32-bit integer"
    );
}

#[test]
fn an_annotation_that_is_not_a_string_is_scrubbed() {
    let raw = json!({"a": 982451653});
    let err = decode::<BTreeMap<String, String>>(&raw, "metadata.annotations").unwrap_err();
    assert_eq!(
        err.to_string(),
        "metadata.annotations.a: invalid type: integer, expected a string"
    );
}

#[test]
fn unknown_variants_keep_the_choices_but_not_the_value() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    enum Transport {
        #[serde(rename = "stdio")]
        Stdio,
        #[serde(rename = "http")]
        Http,
    }
    let raw = json!({"transport": format!("{CANARY}`, expected `x")});
    let err = decode::<BTreeMap<String, Transport>>(&raw, "spec").unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.transport: unknown variant, expected `stdio` or `http`"
    );
}

#[test]
fn unknown_and_missing_fields_name_the_key() {
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        name: String,
    }
    let err = decode::<Strict>(&json!({"name": "a", "nmae": CANARY}), "").unwrap_err();
    assert_eq!(
        err.to_string(),
        "nmae: unknown field `nmae`, expected `name`"
    );
    let err = decode::<Strict>(&json!({}), "spec").unwrap_err();
    assert_eq!(err.to_string(), "spec: missing field `name`");
}

#[test]
fn a_value_is_decoded_when_it_is_valid() {
    let spec: SecurityContext = decode(&json!({"runAsUser": 1000}), "sc").expect("decodes");
    assert_eq!(spec.run_as_user, Some(1000));
}

#[test]
fn json_syntax_and_data_errors_keep_line_and_column() {
    let err = serde_json::from_str::<SecurityContext>(&format!(r#"{{"runAsUser": "{CANARY}"}}"#))
        .unwrap_err();
    assert_eq!(
        json_error(&err),
        "invalid type: string, expected i64 at line 1 column 35"
    );
    let err = serde_json::from_str::<Value>("{\"a\": }").unwrap_err();
    assert_eq!(json_error(&err), "expected value at line 1 column 7");
}

#[test]
fn yaml_errors_carry_no_snippet_of_the_source() {
    let text = format!("kind: Pod\nspec: [{CANARY}\n");
    let err = serde_saphyr::from_str::<Value>(&text).unwrap_err();
    assert!(
        err.to_string().contains(CANARY),
        "the default render quotes the source"
    );
    assert_eq!(yaml_error(&err), "unclosed bracket '[' at line 2, column 7");
    let text = format!("kind: Pod\nspec: {CANARY}\nspec: 2\n");
    let err = serde_saphyr::from_multiple::<Value>(&text).unwrap_err();
    assert!(err.to_string().contains(CANARY));
    assert_eq!(yaml_error(&err), "duplicate key `spec` at line 3, column 1");
}

#[test]
fn yaml_errors_carry_no_library_advice() {
    // A second document where one is read (a policy file): serde-saphyr says "use
    // from_str_multiple or from_str_multiple_with_options".
    let err = serde_saphyr::from_str::<Value>("a: 1\n---\nb: 2\n").unwrap_err();
    assert_eq!(
        yaml_error(&err),
        "the file holds more than one YAML document; only one is read here \
         (remove the `---` separators, or split the file) at line 3, column 1"
    );
    // A long key (YAML allows 1,024 characters in an implicit key) is cut, not echoed whole.
    let key = "k".repeat(1_000);
    let err = serde_saphyr::from_str::<Value>(&format!("{key}: 1\n{key}: 2\n")).unwrap_err();
    assert_eq!(
        yaml_error(&err),
        format!("duplicate key `{}…` at line 2, column 1", "k".repeat(64))
    );
}

#[test]
fn scrub_handles_every_unexpected_display() {
    let cases = [
        (
            r#"invalid type: string "a \"quoted\", expected x \\", expected i64"#,
            "invalid type: string, expected i64",
        ),
        (
            "invalid type: character ```, expected a digit",
            "invalid type: character, expected a digit",
        ),
        (
            "invalid type: null, expected a string at line 2 column 3",
            "invalid type: null, expected a string at line 2 column 3",
        ),
        (
            "invalid type: sequence, expected a map",
            "invalid type: sequence, expected a map",
        ),
        (
            "invalid value: hunter2 as told by a custom visitor, expected a port",
            "invalid value: a value, expected a port",
        ),
        ("invalid type: string \"cut off", "invalid type: string"),
        (
            "invalid length 3, expected 2 elements",
            "invalid length 3, expected 2 elements",
        ),
        ("recursion limit exceeded", "recursion limit exceeded"),
        (
            "first: invalid type: integer `1`, expected a string; then invalid value: boolean `true`, expected false",
            "first: invalid type: integer, expected a string; then invalid value: boolean, expected false",
        ),
        ("unknown variant `x", "unknown variant"),
    ];
    for (message, scrubbed) in cases {
        assert_eq!(scrub(message), scrubbed, "{message}");
    }
}

#[test]
fn a_custom_message_that_quotes_the_refused_string_has_it_withheld() {
    let raw = json!({"podSecurity": {"version": CANARY}});
    let err = decode::<BTreeMap<String, BTreeMap<String, crate::pss::Version>>>(&raw, "spec")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.podSecurity.version: invalid Pod Security Standards version \"<withheld>\": must be \"latest\" or \"v1.N\""
    );
}
