//! Sets `MCPGUARD_GIT_COMMIT` (read by `mcpguard_build_info`) to the commit being built.
//!
//! Cheap and never fails the build: a commit given by the builder (`MCPGUARD_GIT_COMMIT` in
//! the environment, e.g. an image build without `.git`) wins; otherwise `git rev-parse` is
//! asked once; without git or a repository nothing is set and the metric says `unknown`.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MCPGUARD_GIT_COMMIT");
    if let Ok(commit) = std::env::var("MCPGUARD_GIT_COMMIT") {
        emit(&commit);
        return;
    }
    let git = |args: &[&str]| -> Option<String> {
        let output = Command::new("git").args(args).output().ok()?;
        if !output.status.success() {
            return None;
        }
        let text = String::from_utf8(output.stdout).ok()?;
        Some(text.trim().to_owned())
    };
    // Rebuild when HEAD moves: HEAD itself (a checkout) and the ref it names (a commit).
    // Without these lines cargo would rerun this script on every source change instead.
    // A path that does not exist would make cargo rerun it (and rebuild the crate) every
    // time, so only existing ones are named.
    let watch = |path: Option<String>| {
        if let Some(path) = path.filter(|path| std::path::Path::new(path).exists()) {
            println!("cargo:rerun-if-changed={path}");
        }
    };
    watch(git(&["rev-parse", "--git-path", "HEAD"]));
    watch(git(&["rev-parse", "--git-path", "packed-refs"]));
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch(git(&["rev-parse", "--git-path", &reference]));
    }
    // Outside a repository, rerun only when the environment variable changes.
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        emit(&commit);
    }
}

/// Only a plausible commit id becomes a label value (at most 40 hex digits).
fn emit(commit: &str) {
    let commit = commit.trim();
    if !commit.is_empty() && commit.len() <= 40 && commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        println!("cargo:rustc-env=MCPGUARD_GIT_COMMIT={commit}");
    }
}
