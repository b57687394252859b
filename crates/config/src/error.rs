//! Why a configuration could not be loaded.

use std::path::PathBuf;

/// A configuration error; each names the key and the source to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file or directory could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A config file is not valid JSON, JSON5 or YAML.
    #[error("cannot parse config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A config file has an extension we don't read.
    #[error("unsupported config file {path}: use .json, .json5, .jsonc, .yaml or .yml")]
    UnsupportedFile {
        /// The file.
        path: PathBuf,
    },
    /// An environment variable could not be read as configuration.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A key is unknown or its value has the wrong type or range.
    #[error("invalid config key `{key}` (set by {origin}): {message}")]
    Invalid {
        /// Full dotted key path.
        key: String,
        /// The file path or environment variable that set it, or `defaults`.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// More than one storage backend is configured.
    #[error("two storage backends are configured, `{first}` (set by {first_origin}) and `{second}` (set by {second_origin}); configure exactly one")]
    TwoBackends {
        /// The first backend's key.
        first: String,
        /// Where it was set.
        first_origin: String,
        /// The second backend's key.
        second: String,
        /// Where it was set.
        second_origin: String,
    },
}
