//! `mcpguard copy-self PATH`: writes the running executable to PATH. The image holds the
//! binary and nothing else (no shell, no `cp`), and the MCPServer bridge needs mcpguard in an
//! init container's shared volume, so the binary copies itself.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cmd::args::CopySelfArgs;

const EXECUTABLE_MODE: u32 = 0o755;

pub fn run(args: &CopySelfArgs) -> anyhow::Result<()> {
    let source = std::env::current_exe().context("cannot find the running executable")?;
    let bytes =
        std::fs::read(&source).with_context(|| format!("cannot read {}", source.display()))?;
    copy_bytes(&bytes, &args.path, args.force)?;
    println!("wrote {} ({} bytes)", args.path.display(), bytes.len());
    Ok(())
}

/// Writes `bytes` to `destination` with mode 0755. Without `force` an existing file is
/// refused (`create_new`, so a file appearing meanwhile is refused too). With `force` the
/// bytes go to a temporary file beside it that is renamed over it, so a process running the
/// old file keeps it and a reader never sees half a binary.
fn copy_bytes(bytes: &[u8], destination: &Path, force: bool) -> anyhow::Result<()> {
    if !force {
        if destination.exists() {
            anyhow::bail!(
                "{} exists; use --force to replace it",
                destination.display()
            );
        }
        return write_new(destination, bytes);
    }
    let temporary = temporary_beside(destination)?;
    write_new(&temporary, bytes)?;
    std::fs::rename(&temporary, destination).map_err(|err| {
        let _ = std::fs::remove_file(&temporary);
        anyhow::anyhow!("cannot replace {}: {err}", destination.display())
    })
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(EXECUTABLE_MODE)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    // The process umask may have narrowed the mode at creation.
    std::fs::set_permissions(
        path,
        std::os::unix::fs::PermissionsExt::from_mode(EXECUTABLE_MODE),
    )
    .with_context(|| format!("cannot set the mode of {}", path.display()))
}

fn temporary_beside(destination: &Path) -> anyhow::Result<PathBuf> {
    let name = destination
        .file_name()
        .with_context(|| format!("{} names no file", destination.display()))?;
    let mut temporary = name.to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    Ok(destination.with_file_name(temporary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o7777
    }

    #[test]
    fn writes_a_new_file_executable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcpguard");
        copy_bytes(b"binary", &path, false).expect("copy");
        assert_eq!(std::fs::read(&path).expect("read"), b"binary");
        assert_eq!(mode(&path), 0o755);
    }

    #[test]
    fn refuses_an_existing_file_without_force_and_replaces_it_with_force() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcpguard");
        std::fs::write(&path, b"old").expect("write");
        let refused = copy_bytes(b"new", &path, false).expect_err("refused");
        assert_eq!(
            refused.to_string(),
            format!("{} exists; use --force to replace it", path.display())
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        copy_bytes(b"new", &path, true).expect("forced");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        assert_eq!(mode(&path), 0o755);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("mcpguard")]);
    }
}
