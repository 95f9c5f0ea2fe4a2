//! The commands a cluster admin and a newcomer meet first, as they run them: `version`,
//! `completion`, `bundle`, `copy-self`, and the `serve --dev` defaults (banner, no cluster).

mod cli_support;

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use cli_support::{assert_output, mcpguard_command, stderr, stdout, without_kubernetes};
use pretty_assertions::assert_eq;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// `mcpguard ARGS` in `dir` with no `MCPGUARD_*` or Kubernetes settings from the caller.
fn command_in(dir: &Path, args: &[&str]) -> Command {
    let mut command = mcpguard_command(args);
    without_kubernetes(&mut command).current_dir(dir);
    command
}

fn run(args: &[&str]) -> Output {
    command_in(Path::new(ROOT), args)
        .output()
        .expect("mcpguard runs")
}

#[test]
fn version_prints_the_crate_version() {
    assert_output(
        &run(&["version"]),
        0,
        &[&format!("mcpguard {}", env!("CARGO_PKG_VERSION"))],
    );
}

#[test]
fn completion_scripts_complete_the_subcommands_for_each_shell() {
    for (shell, first_line, registers) in [
        ("bash", "_mcpguard() {", "complete -F _mcpguard"),
        ("zsh", "#compdef mcpguard", "_mcpguard \"$@\""),
        ("fish", "", "complete -c mcpguard"),
    ] {
        let output = run(&["completion", shell]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{shell}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{shell}");
        let script = stdout(&output);
        if !first_line.is_empty() {
            assert_eq!(script.lines().next(), Some(first_line), "{shell}");
        }
        assert!(script.contains(registers), "{shell}: {script}");
        for subcommand in ["serve", "check", "bundle", "copy-self", "completion"] {
            assert!(script.contains(subcommand), "{shell} lacks {subcommand}");
        }
    }
    let unknown = run(&["completion", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        stderr(&unknown).lines().take(2).collect::<Vec<_>>(),
        [
            "error: invalid value 'tcsh' for '<SHELL>'",
            "  [possible values: bash, elvish, fish, powershell, zsh]",
        ]
    );
}

#[test]
fn bundle_prints_the_committed_streams_byte_for_byte() {
    for (part, file) in [
        ("crds", "dist/crds.yaml"),
        ("mcpguard", "dist/mcpguard.yaml"),
        ("mcp-namespace", "dist/mcp-namespace.yaml"),
    ] {
        let output = run(&["bundle", part]);
        let expected = std::fs::read_to_string(Path::new(ROOT).join(file)).expect(file);
        assert_eq!(output.status.code(), Some(0), "{part}");
        assert_eq!(stderr(&output), "", "{part}");
        assert_eq!(stdout(&output), expected, "{part}");
    }
    let unknown = run(&["bundle", "everything"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert_eq!(
        stderr(&unknown).lines().take(2).collect::<Vec<_>>(),
        [
            "error: invalid value 'everything' for '<PART>'",
            "  [possible values: crds, mcpguard, mcp-namespace]",
        ]
    );
}

#[test]
fn copy_self_writes_this_executable_and_refuses_to_overwrite_without_force() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("bin").join("mcpguard");
    std::fs::create_dir(dir.path().join("bin")).expect("bin dir");
    let target_text = target.to_str().expect("UTF-8 path");
    let binary = std::fs::read(env!("CARGO_BIN_EXE_mcpguard")).expect("binary");

    let output = run(&["copy-self", target_text]);
    assert_output(
        &output,
        0,
        &[&format!("wrote {target_text} ({} bytes)", binary.len())],
    );
    assert!(
        std::fs::read(&target).expect("copy") == binary,
        "an identical copy"
    );
    let mode = std::fs::metadata(&target)
        .expect("copy")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(format!("{mode:o}"), "755");

    std::fs::write(&target, b"keep me").expect("overwrite");
    let refused = run(&["copy-self", target_text]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(stdout(&refused), "");
    assert_eq!(
        stderr(&refused),
        format!("mcpguard copy-self: {target_text} exists; use --force to replace it\n")
    );
    assert_eq!(std::fs::read(&target).expect("kept"), b"keep me");

    let forced = run(&["copy-self", "--force", target_text]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(std::fs::read(&target).expect("copy") == binary, "replaced");
}

/// A `serve --dev` process started in `dir`, its banner read up to the last line.
struct DevServer {
    child: Child,
    banner: Vec<String>,
}

impl DevServer {
    fn start(dir: &Path, home: &Path, extra: &[&str]) -> DevServer {
        let mut args = vec![
            "serve",
            "--dev",
            "--certs-dir",
            "dev-certs",
            "--listen",
            "127.0.0.1:0",
            "--probe-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut child = command_in(dir, &args)
            .env("HOME", home)
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut banner = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("banner line");
            let last = line == "Stop with Ctrl-C.";
            banner.push(line);
            if last {
                break;
            }
        }
        DevServer { child, banner }
    }

    fn probes(&self) -> String {
        let line = self
            .banner
            .iter()
            .find(|l| l.starts_with("Probes and metrics: "))
            .unwrap_or_else(|| panic!("banner: {:?}", self.banner));
        let url = line["Probes and metrics: ".len()..]
            .split_whitespace()
            .next()
            .expect("probe URL");
        url.trim_end_matches("/readyz").to_owned()
    }

    /// SIGTERM, as Ctrl-C or the kubelet stops it; returns the exit code.
    fn stop(mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.child.wait().expect("serve exits").code()
    }
}

/// GET over plain HTTP/1.1 (the probe port): status code and body.
fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A kubeconfig whose current context points at a port nothing listens on: with it,
/// `--cluster auto` finds a cluster whose RuntimeClasses never sync, so /readyz stays 503.
fn home_with_unreachable_kubeconfig() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("home");
    std::fs::create_dir(home.path().join(".kube")).expect(".kube");
    std::fs::write(
        home.path().join(".kube/config"),
        "apiVersion: v1\nkind: Config\ncurrent-context: laptop\n\
         clusters: [{name: laptop, cluster: {server: 'https://127.0.0.1:1'}}]\n\
         users: [{name: me, user: {token: not-a-secret}}]\n\
         contexts: [{name: laptop, context: {cluster: laptop, user: me}}]\n",
    )
    .expect("kubeconfig");
    home
}

#[test]
fn dev_banner_prints_absolute_paths_from_any_directory() {
    let elsewhere = tempfile::tempdir().expect("working dir");
    let home = tempfile::tempdir().expect("home");
    let server = DevServer::start(elsewhere.path(), home.path(), &[]);
    let webhook = server.banner[1]
        .strip_prefix("mcpguard (dev) is serving policy \"mcp-restricted\" on https://")
        .unwrap_or_else(|| panic!("banner: {:?}", server.banner))
        .to_owned();
    // The working directory as the process sees it (getcwd resolves symlinks).
    let ca = std::fs::canonicalize(elsewhere.path())
        .expect("canonical")
        .join("dev-certs/ca.crt");
    assert!(ca.is_file(), "the dev CA is written under the working dir");
    let review = format!("{ROOT}/examples/admission-review.json");
    let probes = server.probes();
    assert_eq!(
        server.banner,
        [
            String::new(),
            format!("mcpguard (dev) is serving policy \"mcp-restricted\" on https://{webhook}"),
            "Send it an AdmissionReview:".into(),
            format!(
                "  curl --cacert {} -H 'Content-Type: application/json' \\",
                ca.display()
            ),
            format!("       --data @{review} https://{webhook}/mutate"),
            format!(
                "  curl --cacert {} -H 'Content-Type: application/json' \\",
                ca.display()
            ),
            format!("       --data @{review} https://{webhook}/validate"),
            format!("Probes and metrics: {probes}/readyz  {probes}/metrics"),
            "Stop with Ctrl-C.".into(),
        ]
    );
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn dev_mode_ignores_the_kubeconfig_unless_the_cluster_is_asked_for() {
    let dir = tempfile::tempdir().expect("working dir");
    let home = home_with_unreachable_kubeconfig();

    let standalone = DevServer::start(dir.path(), home.path(), &[]);
    assert_eq!(
        http_get(&format!("{}/readyz", standalone.probes())),
        (200, "ready".to_owned()),
        "--dev never waits on the kubeconfig's cluster"
    );
    assert_eq!(standalone.stop(), Some(0));

    let opted_in = DevServer::start(dir.path(), home.path(), &["--cluster", "auto"]);
    assert_eq!(
        http_get(&format!("{}/readyz", opted_in.probes())),
        (503, "not ready".to_owned()),
        "--cluster auto uses the kubeconfig, whose cluster never answers"
    );
    assert_eq!(opted_in.stop(), Some(0));
}
