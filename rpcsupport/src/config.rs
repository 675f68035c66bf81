//! Loading one process's section of `config.toml`.
//!
//! Every binary reads the same file: `[engine]`, `[worker]` and
//! `[itemsaver]` sections, each deserialized into that crate's own config
//! struct (which should be `#[serde(default, deny_unknown_fields)]` so a
//! missing key takes its default and a misspelt one is an error). Flags are
//! applied afterwards by the binary; flags win.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;

/// Why a config file could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key has the wrong type or is unknown.
    /// The message quotes the offending line, so it names the key.
    #[error("config file {path}, section [{section}]: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The section being read.
        section: String,
        /// The parser's explanation, with the line and key.
        message: String,
    },
}

/// Reads `[section]` of the TOML file at `path` into `T`.
///
/// A missing file is an error only when `required` (the user named it with
/// `--config`); otherwise `T::default()` is used, so binaries run with no
/// file at all. A missing section also yields the defaults.
pub fn load_section<T>(path: &Path, section: &str, required: bool) -> Result<T, ConfigError>
where
    T: DeserializeOwned + Default,
{
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(T::default()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    parse_section(&text, section).map_err(|message| ConfigError::Invalid {
        path: path.to_owned(),
        section: section.to_owned(),
        message,
    })
}

/// Parses `[section]` of TOML `text` into `T`; the error is a readable message.
pub fn parse_section<T>(text: &str, section: &str) -> Result<T, String>
where
    T: DeserializeOwned + Default,
{
    let mut table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    match table.remove(section) {
        None => Ok(T::default()),
        Some(toml::Value::Table(t)) => {
            // Re-serialize just this section so errors point at its keys.
            let section_text = toml::to_string(&t).map_err(|e| e.to_string())?;
            toml::from_str(&section_text).map_err(|e| e.to_string())
        }
        Some(_) => Err(format!("`{section}` must be a table ([{section}])")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        worker_count: usize,
        name: String,
    }

    /// A key with the wrong type is reported with the key's name.
    #[test]
    fn wrong_type_names_the_key() {
        let err =
            parse_section::<Demo>("[engine]\nworker_count = \"many\"\n", "engine").unwrap_err();
        assert!(err.contains("worker_count"), "{err}");
    }

    /// A misspelt key is an error, not silently ignored.
    #[test]
    fn unknown_key_is_rejected() {
        let err = parse_section::<Demo>("[engine]\nworkr_count = 3\n", "engine").unwrap_err();
        assert!(err.contains("workr_count"), "{err}");
    }

    /// Missing sections and keys take defaults; other sections are ignored.
    #[test]
    fn missing_parts_default() {
        let d: Demo =
            parse_section("[worker]\nport = 1\n[engine]\nname = \"x\"\n", "engine").unwrap();
        assert_eq!(
            d,
            Demo {
                worker_count: 0,
                name: "x".into()
            }
        );
        let d: Demo = parse_section("", "engine").unwrap();
        assert_eq!(d, Demo::default());
    }
}
