//! The Helm chart (charts/mcpguard) renders what the kustomize install renders, lints clean and
//! validates: `build/helm-check.py` proves it with the Helm v4 engine from PyPI's
//! helm-python-sdk (there is no helm binary), `kubectl kustomize` and `kubernetes-validate`.
//!
//! A machine without helm-python-sdk fails this test with the install command; set
//! MCPGUARD_SKIP_EXTERNAL_TOOLS=1 to skip it there instead. `.ci/run` installs it.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const INSTALL: &str = "python3 -m pip install helm-python-sdk";

fn helm_sdk_installed() -> bool {
    Command::new("python3")
        .args(["-c", "import helm_python"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn helm_chart_renders_the_kustomize_install_and_lints_clean() {
    if !helm_sdk_installed() {
        if std::env::var("MCPGUARD_SKIP_EXTERNAL_TOOLS").as_deref() == Ok("1") {
            eprintln!("skipping: helm-python-sdk is not installed ({INSTALL})");
            return;
        }
        panic!(
            "helm-python-sdk is not installed: {INSTALL} \
             (or set MCPGUARD_SKIP_EXTERNAL_TOOLS=1 to skip this test)"
        );
    }
    let output = Command::new("python3")
        .arg("build/helm-check.py")
        .current_dir(ROOT)
        .output()
        .expect("run python3 build/helm-check.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let report = format!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "build/helm-check.py failed ({}):\n{report}",
        output.status
    );
    // The script checks that the chart's version is the crate's.
    let summary = stdout.lines().next_back().unwrap_or_default();
    let expected_start = format!("helm-check: ok (chart {}, ", env!("CARGO_PKG_VERSION"));
    assert!(
        summary.starts_with(&expected_start)
            && summary.contains(" objects equal to kustomize in 5 renders, ")
            && summary.contains(" bad values refused, lint clean, "),
        "unexpected summary line {summary:?}:\n{report}"
    );
}
