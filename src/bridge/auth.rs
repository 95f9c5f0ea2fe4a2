//! Optional bearer-token authentication for the MCP endpoint. The token comes from a file
//! (a mounted Secret), is compared in constant time, and never reaches a log or an error.

use std::path::Path;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The expected token, kept only as its SHA-256: comparing digests in constant time hides
/// both the token's bytes and its length from a timing observer.
pub struct BearerToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

impl BearerToken {
    /// Reads the token from `path`. Surrounding whitespace (the newline `echo` and most
    /// editors add) is not part of it; an empty token is refused, since it would let anyone in.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("cannot read token file {}: {err}", path.display()))?;
        Self::from_secret(text.trim())
            .ok_or_else(|| anyhow::anyhow!("token file {} is empty", path.display()))
    }

    pub fn from_secret(token: &str) -> Option<Self> {
        (!token.is_empty()).then(|| Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether an `Authorization` header value carries this token as `Bearer <token>` (the
    /// scheme is case-insensitive, RFC 9110 §11.1).
    pub fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some((scheme, token)) = split_scheme(value) else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case(b"bearer") {
            return false;
        }
        let offered: [u8; 32] = Sha256::digest(token).into();
        bool::from(offered.ct_eq(&self.digest))
    }
}

fn split_scheme(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|&b| b == b' ')?;
    let token = value[space + 1..].trim_ascii();
    Some((&value[..space], token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_token_with_the_bearer_scheme() {
        let token = BearerToken::from_secret("s3cret").unwrap();
        assert!(token.admits(Some(b"Bearer s3cret")));
        assert!(token.admits(Some(b"bearer s3cret")));
        assert!(token.admits(Some(b"BEARER  s3cret ")));
        for refused in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"Bearer ",
            b"Basic s3cret",
            b"s3cret",
            b"",
        ] {
            assert!(
                !token.admits(Some(refused)),
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
        assert!(!token.admits(None));
    }

    #[test]
    fn the_file_is_trimmed_an_empty_one_refused_and_debug_hides_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let token = BearerToken::from_file(&path).unwrap();
        assert!(token.admits(Some(b"Bearer abc")));
        assert_eq!(format!("{token:?}"), "BearerToken(<redacted>)");
        std::fs::write(&path, " \n").unwrap();
        let err = BearerToken::from_file(&path).unwrap_err().to_string();
        assert_eq!(err, format!("token file {} is empty", path.display()));
        let missing = dir.path().join("missing");
        assert!(
            BearerToken::from_file(&missing)
                .unwrap_err()
                .to_string()
                .starts_with("cannot read token file")
        );
    }
}
