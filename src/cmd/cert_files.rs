//! The certificate files of a file-based install (`certs generate`) and of `serve --dev`:
//! the writing half of `mcpguard_core::certs`, which only generates.

use std::path::Path;

use jiff::Timestamp;
use mcpguard_core::certs::{CA_FILE, CERT_FILE, CertError, KEY_FILE, dev_names, generate};

use mcpguard_core::certs::CertBundle;

/// Writes `ca.crt`, `tls.crt` and `tls.key` (owner-only) into `dir`. The CA key is not
/// written: a file-based install never needs to sign again, so it should not exist on disk.
pub fn write_dir(dir: &Path, bundle: &CertBundle) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.to_owned(),
        source,
    })?;
    write_file(&dir.join(CA_FILE), &bundle.ca_cert_pem, 0o644)?;
    write_file(&dir.join(CERT_FILE), &bundle.cert_pem, 0o644)?;
    write_file(&dir.join(KEY_FILE), &bundle.key_pem, 0o600)
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), CertError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io_error = |source| CertError::Io {
        path: path.to_owned(),
        source,
    };
    // Write to a temporary name and rename, so a reader never sees half a key.
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io_error)?;
    file.write_all(contents.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    std::fs::rename(&temporary, path).map_err(io_error)
}

/// The dev certificates in `dir`: reused when all three files exist, generated otherwise.
/// Returns whether new ones were generated.
pub fn ensure_dev_certs(dir: &Path, now: Timestamp) -> Result<bool, CertError> {
    let present = [CA_FILE, CERT_FILE, KEY_FILE]
        .iter()
        .all(|f| dir.join(f).is_file());
    if present {
        return Ok(false);
    }
    let bundle = generate(&dev_names(), now)?;
    write_dir(dir, &bundle)?;
    Ok(true)
}
