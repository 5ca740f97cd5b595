//! Errors and warnings of configuration loading.

use std::fmt;
use std::path::PathBuf;

/// Why the configuration could not be loaded. Every message names the key, where it was
/// found (a file path or `command-line flags`) and the rule it broke.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}: {error}", path.display())]
    Io {
        /// What was being done ("read", "write", "list").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A file is not valid JSON or HCL, or has an unsupported extension.
    #[error("cannot parse {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The syntax error, with its position.
        message: String,
    },
    /// A key that neither Consul nor Sekisho knows.
    #[error("unknown key {key:?} in {origin}{}", did_you_mean(.suggestion.as_deref()))]
    UnknownKey {
        /// Dotted key path (`ports.htp`).
        key: String,
        /// File path or `command-line flags`.
        origin: String,
        /// The closest known key, if one is close enough.
        suggestion: Option<String>,
    },
    /// A value of the wrong JSON type.
    #[error("key {key:?} in {origin}: expected {expected}, found {found}")]
    Type {
        /// Dotted key path.
        key: String,
        /// File path or `command-line flags`.
        origin: String,
        /// The type the key takes ("integer", "duration", ...).
        expected: &'static str,
        /// The value found, described (`string "abc"`).
        found: String,
    },
    /// A value of the right type that breaks a rule (range, format, ...).
    #[error("key {key:?} in {origin}: {message}")]
    Invalid {
        /// Dotted key path.
        key: String,
        /// File path or `command-line flags`.
        origin: String,
        /// The rule, with the offending value.
        message: String,
    },
    /// Keys that are valid alone but not together, checked after everything is merged.
    #[error("{0}")]
    Conflict(String),
}

impl ConfigError {
    /// The dotted key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::UnknownKey { key, .. }
            | ConfigError::Type { key, .. }
            | ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

fn did_you_mean(suggestion: Option<&str>) -> String {
    suggestion.map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default()
}

/// Something worth telling the operator that does not stop the agent, such as a key
/// Consul knows but Sekisho does not implement yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Dotted key the warning is about, if any.
    pub key: Option<String>,
    /// File path, `command-line flags`, or `None` for the merged configuration.
    pub origin: Option<String>,
    /// The full text.
    pub message: String,
}

impl Warning {
    pub(crate) fn unimplemented(key: &str, origin: &str) -> Warning {
        Warning {
            key: Some(key.to_owned()),
            origin: Some(origin.to_owned()),
            message: format!("config key {key:?} in {origin} is accepted but not implemented yet by Sekisho"),
        }
    }

    pub(crate) fn general(key: Option<&str>, origin: Option<&str>, message: String) -> Warning {
        Warning { key: key.map(str::to_owned), origin: origin.map(str::to_owned), message }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
