//! The shared secret: read from a value or a file, checked, never printed.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use thiserror::Error;

use super::{invalid, is_set, RpcConfigError, MAX_TOKEN_BYTES};

/// A token from a value or a file (`keys` names both, for errors), if either
/// is set.
pub(super) fn read_token(
    value: &str,
    file: &Path,
    keys: (&'static str, &'static str),
) -> Result<Option<Token>, RpcConfigError> {
    let (value_key, file_key) = keys;
    match (value.is_empty(), is_set(file)) {
        (true, false) => Ok(None),
        (false, true) => Err(invalid(
            value_key,
            format!("both `{value_key}` and `{file_key}` are set; keep one"),
        )),
        (false, false) => Token::new(value.as_bytes())
            .map(Some)
            .map_err(|e| invalid(value_key, e.to_string())),
        (true, true) => {
            let text = std::fs::read(file)
                .map_err(|e| invalid(file_key, format!("cannot read {}: {e}", file.display())))?;
            warn_if_others_can_read(file);
            Token::new(text.trim_ascii())
                .map(Some)
                .map_err(|e| invalid(file_key, format!("{}: {e}", file.display())))
        }
    }
}

#[cfg(unix)]
fn warn_if_others_can_read(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the RPC token file can be read by other users; `chmod 600` it"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_others_can_read(_path: &Path) {}

/// The shared secret. Cheap to clone; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Arc<[u8]>);

/// A token that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Zero bytes (after trimming, for a file).
    #[error("the token is empty")]
    Empty,
    /// Longer than [`MAX_TOKEN_BYTES`].
    #[error("the token is longer than {MAX_TOKEN_BYTES} bytes")]
    TooLong,
}

impl Token {
    /// A token of 1 to [`MAX_TOKEN_BYTES`] bytes.
    pub fn new(bytes: impl AsRef<[u8]>) -> Result<Token, TokenError> {
        let bytes = bytes.as_ref();
        if bytes.is_empty() {
            Err(TokenError::Empty)
        } else if bytes.len() > MAX_TOKEN_BYTES {
            Err(TokenError::TooLong)
        } else {
            Ok(Token(bytes.into()))
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether `presented` is this token, in time that depends on neither
    /// the content nor the length of the guess: both sides are hashed to
    /// 32 bytes, which are compared without an early exit.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use ring::digest::{digest, SHA256};
        use subtle::ConstantTimeEq;
        let expected = digest(&SHA256, &self.0);
        let presented = digest(&SHA256, presented);
        expected.as_ref().ct_eq(presented.as_ref()).into()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}
