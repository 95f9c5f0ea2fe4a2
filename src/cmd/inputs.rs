//! What the offline commands (`check`, `mutate`, `render`) read: manifests from files,
//! directories and stdin, each unreadable file or document an error of its own; the policies
//! routed by namespace as the cluster routes them; and standard output that a closed pipe
//! (`check -o json | head`) ends quietly.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use mcpguard_core::documents::{self, SourcedObject};
use mcpguard_core::policy::{self, Policy};
use mcpguard_core::policy_set::{self, PolicySet};

/// A file, or one document of it, that could not be read: it is reported on its own, and
/// every other document is still judged (as `kubectl apply -f` applies the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub source_name: String,
    /// 1-based document index; 0 for the file as a whole.
    pub document: usize,
    pub message: String,
}

/// Every object of every path, in order, and an error for each file or document that could
/// not be read.
#[derive(Debug, Default)]
pub struct Inputs {
    pub objects: Vec<SourcedObject>,
    pub errors: Vec<InputError>,
    /// Every source, in the order read: the order of the answer.
    pub sources: Vec<String>,
}

/// Reads every path (file, directory, `-`), in order. A directory is walked as
/// `kubectl apply -R` walks it (`*.yaml`, `*.yml`, `*.json`, sorted).
pub fn read_inputs(paths: &[PathBuf]) -> Inputs {
    let mut inputs = Inputs::default();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            inputs.sources.push("<stdin>".into());
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => inputs.add(documents::split_each(&text, "<stdin>")),
                Err(err) => inputs.errors.push(file_error("<stdin>", &err)),
            }
        } else if path.is_dir() {
            match manifest_files(path) {
                Ok(files) => files.iter().for_each(|file| inputs.read_file(file)),
                Err(error) => {
                    inputs.sources.push(error.source_name.clone());
                    inputs.errors.push(error);
                }
            }
        } else {
            inputs.read_file(path);
        }
    }
    inputs
}

impl Inputs {
    fn read_file(&mut self, path: &Path) {
        let name = path.display().to_string();
        self.sources.push(name.clone());
        match std::fs::read_to_string(path) {
            Ok(text) => self.add(documents::split_each(&text, &name)),
            Err(err) => self.errors.push(file_error(&name, &err)),
        }
    }

    fn add(&mut self, split: documents::Split) {
        self.objects.extend(split.objects);
        self.errors
            .extend(split.errors.into_iter().map(|error| InputError {
                source_name: error.source_name,
                document: error.index,
                message: error.message,
            }));
    }
}

impl Inputs {
    /// The objects, or the first error: for commands that act on every object or on none
    /// (`certs inject`).
    pub fn all_or_first_error(self) -> Result<Vec<SourcedObject>, String> {
        match self.errors.first() {
            Some(error) => Err(describe(error)),
            None => Ok(self.objects),
        }
    }
}

fn file_error(name: &str, err: &std::io::Error) -> InputError {
    InputError {
        source_name: name.to_owned(),
        document: 0,
        message: format!("cannot read: {}", io_reason(err)),
    }
}

/// The reason without Rust's `(os error 2)` suffix, as a shell tool would say it.
fn io_reason(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not UTF-8 text".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        _ => {
            let text = err.to_string();
            match text.split_once(" (os error") {
                Some((reason, _)) => reason.to_owned(),
                None => text,
            }
        }
    }
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    files_under(dir, |path| {
        path.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
    })
}

/// The files under `dir` that `keep` accepts, recursively, sorted. Like `kubectl apply -R`:
/// real directories are walked, symlinked ones are not, so a link back up the tree cannot
/// make the walk loop.
pub fn files_under(dir: &Path, keep: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, InputError> {
    let fail = |path: &Path, err: std::io::Error| file_error(&path.display().to_string(), &err);
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| fail(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| fail(&dir, e))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| fail(&path, e))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if path.is_dir() {
                continue;
            } else if keep(&path) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_mcppolicy(object: &Value) -> bool {
    object.get("apiVersion").and_then(Value::as_str) == Some("mcpguard.dev/v1alpha1")
        && object.get("kind").and_then(Value::as_str) == Some("MCPPolicy")
}

/// The policies in force, by namespace, as the cluster would route them: the first policy
/// of `--policy` (files and directories, in order) plays the webhook's policy file (without
/// `--policy`, the embedded default does), and every other one, like every `MCPPolicy`
/// among the checked `inputs`, plays an `MCPPolicy` object. Conflicting claims are returned
/// as warnings, in the words of the objects' `Conflict` condition.
pub fn load_policy_set(
    policy_paths: &[PathBuf],
    inputs: &[SourcedObject],
) -> Result<(PolicySet, Vec<String>), String> {
    let read = read_inputs(policy_paths);
    if let Some(error) = read.errors.first() {
        return Err(describe(error));
    }
    if !policy_paths.is_empty() && read.objects.is_empty() {
        return Err(format!(
            "--policy {}: no policy found",
            policy_paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut policies = read.objects.into_iter();
    let fallback: Policy = match policies.next() {
        Some(first) => {
            policy::parse_value(first.object, &first.source_name).map_err(|err| err.to_string())?
        }
        None => Policy::embedded_default().map_err(|err| err.to_string())?,
    };
    let mut objects = Vec::new();
    for sourced in policies {
        if !is_mcppolicy(&sourced.object) {
            return Err(format!(
                "{}: document {}: --policy takes MCPPolicy documents (apiVersion mcpguard.dev/v1alpha1)",
                sourced.source_name, sourced.index
            ));
        }
        objects.push(sourced.object);
    }
    objects.extend(
        inputs
            .iter()
            .filter(|sourced| is_mcppolicy(&sourced.object))
            .map(|sourced| sourced.object.clone()),
    );
    let set = policy_set::offline(Arc::new(fallback), &objects).map_err(|err| err.to_string())?;
    let conflicts = set.conflicts();
    Ok((set, conflicts))
}

/// `source#document: message`, or `source: message` for a whole file.
pub fn describe(error: &InputError) -> String {
    match error.document {
        0 => format!("{}: {}", error.source_name, error.message),
        n => format!("{}: document {n}: {}", error.source_name, error.message),
    }
}

/// Writes to standard output. A reader that has gone (`| head`) is not an error: the
/// command's answer stands, and nothing is left to say to anyone.
pub fn write_stdout(text: &str) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(format!(
            "cannot write to standard output: {}",
            io_reason(&err)
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn an_unreadable_file_is_its_own_error_and_the_others_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = write(
            dir.path(),
            "a.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n",
        );
        let missing = dir.path().join("missing.yaml");
        let inputs = read_inputs(&[missing.clone(), good]);
        assert_eq!(inputs.objects.len(), 1);
        assert_eq!(
            inputs.errors,
            [InputError {
                source_name: missing.display().to_string(),
                document: 0,
                message: "cannot read: no such file or directory".into(),
            }]
        );
    }

    #[test]
    fn a_broken_document_is_its_own_error_and_its_neighbours_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "m.yaml",
            "kind: Pod\nmetadata: {name: a}\n---\nkind: [unclosed\n---\nkind: Pod\nmetadata: {name: b}\n",
        );
        let inputs = read_inputs(&[file]);
        let names: Vec<&str> = inputs
            .objects
            .iter()
            .filter_map(|o| o.object.pointer("/metadata/name").and_then(Value::as_str))
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(inputs.errors.len(), 1);
        assert_eq!(inputs.errors[0].document, 2);
    }

    const POLICY: &str = "apiVersion: mcpguard.dev/v1alpha1\nkind: MCPPolicy\nmetadata: {name: NAME}\nspec:\n  namespaces: [NS]\n  podSecurity: {level: baseline, version: latest}\n";

    fn policy_text(name: &str, namespace: &str) -> String {
        POLICY.replace("NAME", name).replace("NS", namespace)
    }

    #[test]
    fn the_first_policy_is_the_file_and_the_rest_are_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "file.yaml", &policy_text("file", "mcp"));
        let more = dir.path().join("more");
        std::fs::create_dir(&more).expect("mkdir");
        write(&more, "a.yaml", &policy_text("team-a", "a"));
        write(&more, "b.yaml", &policy_text("team-b", "mcp"));
        let input = documents::split(&policy_text("in-input", "c"), "in.yaml").expect("parses");
        let (set, conflicts) = load_policy_set(&[file, more], &input).expect("loads");
        let name = |ns: &str| set.for_namespace(Some(ns)).name.clone();
        assert_eq!(set.fallback().name, "file");
        assert_eq!(name("a"), "team-a");
        // An MCPPolicy object takes a namespace over from the policy file, as in a cluster.
        assert_eq!(name("mcp"), "team-b");
        assert_eq!(name("c"), "in-input");
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn without_policy_the_embedded_default_is_the_file() {
        let (set, _) = load_policy_set(&[], &[]).expect("loads");
        assert_eq!(set.fallback().name, "mcp-restricted");
    }

    #[test]
    fn a_policy_path_with_something_else_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(
            dir.path(),
            "p.yaml",
            &format!(
                "{}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\n",
                policy_text("f", "mcp")
            ),
        );
        let err = load_policy_set(std::slice::from_ref(&file), &[]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: document 2: --policy takes MCPPolicy documents (apiVersion mcpguard.dev/v1alpha1)",
                file.display()
            )
        );
        let empty = write(dir.path(), "empty.yaml", "# nothing\n");
        let err = load_policy_set(std::slice::from_ref(&empty), &[]).unwrap_err();
        assert_eq!(
            err,
            format!("--policy {}: no policy found", empty.display())
        );
    }
}
