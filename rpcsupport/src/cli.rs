//! What every binary does alike, written once: logging to stderr, which
//! config file it reads, flags overriding the keys of the same name, and an
//! error turned into one line and an exit code.
//!
//! ```no_run
//! # #[derive(Default, serde::Deserialize)] struct MyConfig { port: u16 }
//! # struct Flags { config: Option<std::path::PathBuf>, port: Option<u16> }
//! # fn parse() -> Flags { Flags { config: None, port: None } }
//! fn main() -> std::process::ExitCode {
//!     rpcsupport::cli::run("mybin", || {
//!         let flags = parse();
//!         let file = rpcsupport::cli::ConfigFile::from_flag(flags.config.as_deref());
//!         let mut config: MyConfig = file.section("mybin")?;
//!         rpcsupport::apply_flags!(flags => config; port);
//!         Ok::<(), rpcsupport::config::ConfigError>(())
//!     })
//! }
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::de::DeserializeOwned;

use crate::config::{load_section, ConfigError};
use crate::security::{RpcConfig, RpcFlags};

/// The log filter without `RUST_LOG`: `info`, but only warnings from
/// tarpc. tarpc opens an info-level span around every call on both ends,
/// and the log formatter renders each span's fields as it opens: a
/// profile of a broad crawl found about 6% of the engine's CPU there,
/// for spans no line ever showed.
pub const DEFAULT_LOG: &str = "info,tarpc=warn";

/// Sends `tracing` output to stderr (stdout is kept for the lines scripts
/// read, such as `worker listening on ADDR`), filtered by `RUST_LOG`,
/// [`DEFAULT_LOG`] when unset. Calling it twice is harmless: the second
/// call leaves the first set-up in place.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    // An error only means a subscriber is already installed.
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .try_init();
}

/// Sets up logging, runs `main`, and turns its outcome into the process's
/// exit code: 0 when it succeeds, 1 when it fails, after printing
/// `NAME: error: MESSAGE` to stderr (MESSAGE is the error and its causes,
/// see [`message`]). Flag errors never get here: clap prints them and
/// exits with 2 itself.
pub fn run<E>(name: &str, main: impl FnOnce() -> Result<(), E>) -> ExitCode
where
    // Both `anyhow::Error` (the binaries') and any typed error convert.
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    init_logging();
    match main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            eprintln!("{name}: error: {}", message(&*e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, joined with ": ", like `anyhow`'s `{:#}`,
/// except that a cause already quoted by the message above it is skipped:
/// many errors (ours, tantivy's, the config loader's) put their source in
/// their own message too, and `{:#}` would print it twice.
pub fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The config file a binary reads, and whether it must exist: a file
/// named by `--config` must, the default `./config.toml` is read only if
/// present (so a binary runs on its defaults without one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where the file is.
    pub path: PathBuf,
    /// Whether a missing file is an error (it was named on the command line).
    pub required: bool,
}

impl ConfigFile {
    /// The file read when no `--config` is given, relative to the working
    /// directory.
    pub const DEFAULT: &'static str = "config.toml";

    /// The file named by `--config`, or [`ConfigFile::DEFAULT`] if present.
    pub fn from_flag(flag: Option<&Path>) -> ConfigFile {
        match flag {
            Some(path) => ConfigFile {
                path: path.to_owned(),
                required: true,
            },
            None => ConfigFile {
                path: PathBuf::from(Self::DEFAULT),
                required: false,
            },
        }
    }

    /// One `[section]` of the file, its defaults where the file (or the
    /// section, or a key) is missing.
    pub fn section<T: DeserializeOwned + Default>(&self, name: &str) -> Result<T, ConfigError> {
        load_section(&self.path, name, self.required)
    }

    /// The `[rpc]` section with the token variables and the RPC `flags`
    /// applied (see [`crate::security::load`]).
    pub fn rpc(&self, flags: &RpcFlags) -> Result<RpcConfig, ConfigError> {
        crate::security::load(&self.path, self.required, flags)
    }
}

/// Overrides config keys with the flags of the same name that were given:
/// `apply_flags!(flags => config; port, bind)` sets `config.port` from
/// `flags.port` when that is `Some`, and so on. Every binary's flags are
/// `Option`s named after their key, so this one rule is how flags win over
/// the file everywhere. Values are cloned, so `flags` may be borrowed.
#[macro_export]
macro_rules! apply_flags {
    ($flags:expr => $config:expr; $($key:ident),* $(,)?) => {
        $( if let Some(v) = &$flags.$key { $config.$key = ::std::clone::Clone::clone(v); } )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named file must exist; without `--config`, ./config.toml is optional.
    #[test]
    fn config_file_rule() {
        let named = ConfigFile::from_flag(Some(Path::new("/etc/crawler.toml")));
        assert_eq!(named.path, Path::new("/etc/crawler.toml"));
        assert!(named.required);
        let default = ConfigFile::from_flag(None);
        assert_eq!(default.path, Path::new("config.toml"));
        assert!(!default.required);
    }

    /// A cause already quoted by the error above it is printed once.
    #[test]
    fn message_skips_quoted_causes() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "cannot open store: {}", self.0)
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let quoted = Outer(std::io::Error::other("disk full"));
        assert_eq!(message(&quoted), "cannot open store: disk full");
    }

    /// Flags that were given win; absent ones leave the file's value.
    #[test]
    fn apply_flags_overrides_given_keys_only() {
        struct Flags {
            port: Option<u16>,
            bind: Option<String>,
        }
        struct Config {
            port: u16,
            bind: String,
        }
        let flags = Flags {
            port: Some(1),
            bind: None,
        };
        let mut config = Config {
            port: 9000,
            bind: "127.0.0.1".into(),
        };
        crate::apply_flags!(flags => config; port, bind);
        assert_eq!((config.port, config.bind.as_str()), (1, "127.0.0.1"));
    }
}
