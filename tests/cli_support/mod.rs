//! Reading and asserting the output of the real `mcpguard` binary, shared by the CLI tests.
#![allow(dead_code)]

use std::process::Output;

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
