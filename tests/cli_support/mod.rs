//! Running the real `mcpguard` binary and reading and asserting its output, shared by the
//! tests that run it.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The real `mcpguard ARGS`, from the crate root, with none of the caller's `MCPGUARD_*`
/// settings (a developer's environment must not change what a test sees); stdin empty,
/// stdout and stderr captured.
pub fn mcpguard_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mcpguard"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("MCPGUARD_") {
            command.env_remove(key);
        }
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// `command` without the caller's Kubernetes settings either (`KUBERNETES_*`, `KUBECONFIG`),
/// so no test reaches a real cluster.
pub fn without_kubernetes(command: &mut Command) -> &mut Command {
    for (key, _) in std::env::vars() {
        if key.starts_with("KUBERNETES_") {
            command.env_remove(key);
        }
    }
    command.env_remove("KUBECONFIG")
}

/// Runs `command` to the end, feeding it `stdin` (then end of input) if given.
pub fn run_with_stdin(mut command: Command, stdin: Option<&str>) -> Output {
    if stdin.is_some() {
        command.stdin(Stdio::piped());
    }
    let mut child = command.spawn().expect("mcpguard starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes()).expect("stdin is written");
    }
    child.wait_with_output().expect("mcpguard finishes")
}

/// Runs `mcpguard ARGS` (see [`mcpguard_command`]) to the end.
pub fn run(args: &[&str]) -> Output {
    mcpguard_command(args).output().expect("mcpguard runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts the exit code, the exact stdout lines and an empty stderr.
#[track_caller]
pub fn assert_output(output: &Output, code: i32, lines: &[&str]) {
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(
        stdout(output),
        expected,
        "stdout; stderr was: {}",
        stderr(output)
    );
    assert_eq!(stderr(output), "", "stderr");
    assert_eq!(output.status.code(), Some(code), "exit code");
}

/// `mcpguard check --no-mutate` of `file` at the restricted level, latest version: does what
/// we ship pass as written?
pub fn check_restricted_as_written(file: &Path) -> Output {
    mcpguard_command(&[
        "check",
        "--no-mutate",
        "--pss-level",
        "restricted",
        "--pss-version",
        "latest",
    ])
    .arg(file)
    .output()
    .expect("mcpguard runs")
}

/// `mcpguard check --policy POLICY examples/pod.yaml`.
pub fn check_example_pod_with_policy(policy: &Path) -> Output {
    mcpguard_command(&["check", "--policy"])
        .arg(policy)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/pod.yaml"))
        .output()
        .expect("mcpguard runs")
}

/// Asserts the exit code, showing stdout and stderr when it differs.
#[track_caller]
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status; stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}
