//! Reading configuration sources and merging them into one value tree.
//!
//! Every leaf remembers where it came from (a file path or an environment variable name), so an
//! error can say which source to fix.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::ConfigError;

/// Extensions accepted for config files, in the order `/etc/rivet/config.*` is probed.
pub const EXTENSIONS: [&str; 5] = ["json", "json5", "jsonc", "yaml", "yml"];

/// Environment variables that set nested keys: `RIVET__guard__port`.
pub const ENV_PREFIX: &str = "RIVET__";

/// Single-underscore environment variables with a fixed key.
const ENV_SHORTCUTS: [(&str, &str); 5] = [
    ("RIVET_LOG_LEVEL", "logs.level"),
    ("RIVET_LOG_FORMAT", "logs.format"),
    ("RIVET_OTEL_ENABLED", "otel.enabled"),
    ("RIVET_OTEL_GRPC_ENDPOINT", "otel.grpc_endpoint"),
    ("RIVET_OTEL_SAMPLER_RATIO", "otel.sampler_ratio"),
];

/// The merged configuration tree and the origin of each key that was set.
#[derive(Debug, Default)]
pub struct Merged {
    /// The merged tree.
    pub value: Value,
    /// Dotted key path → the file path or environment variable that set it.
    pub origins: BTreeMap<String, String>,
}

impl Merged {
    /// The source that set `path` or, failing that, its nearest parent.
    pub fn origin_of(&self, path: &str) -> String {
        let mut candidate = path;
        loop {
            if let Some(origin) = self.origins.get(candidate) {
                return origin.clone();
            }
            match candidate.rfind('.') {
                Some(dot) => candidate = &candidate[..dot],
                None => return "defaults".to_string(),
            }
        }
    }

    /// Merges `overlay` over the tree: objects merge key by key, anything else replaces.
    fn merge(&mut self, overlay: Value, origin: &str) {
        if !self.value.is_object() {
            self.value = Value::Object(Map::new());
        }
        merge_into(&mut self.value, overlay, "", origin, &mut self.origins);
    }

    /// Sets one key path to a string value.
    fn set_path(&mut self, path: &[String], value: String, origin: &str) {
        let mut overlay = Value::String(value);
        for segment in path.iter().rev() {
            let mut map = Map::new();
            map.insert(segment.clone(), overlay);
            overlay = Value::Object(map);
        }
        self.merge(overlay, origin);
    }
}

fn merge_into(
    target: &mut Value,
    overlay: Value,
    prefix: &str,
    origin: &str,
    origins: &mut BTreeMap<String, String>,
) {
    match (target, overlay) {
        (Value::Object(target), Value::Object(overlay)) => {
            for (key, value) in overlay {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match target.get_mut(&key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_into(existing, value, &path, origin, origins);
                    }
                    _ => {
                        record(&value, &path, origin, origins);
                        target.insert(key, value);
                    }
                }
            }
        }
        (target, overlay) => {
            record(&overlay, prefix, origin, origins);
            *target = overlay;
        }
    }
}

fn record(value: &Value, path: &str, origin: &str, origins: &mut BTreeMap<String, String>) {
    origins.insert(path.to_string(), origin.to_string());
    if let Value::Object(map) = value {
        for (key, child) in map {
            record(child, &format!("{path}.{key}"), origin, origins);
        }
    }
}

/// Parses one config file by its extension.
pub fn read_file(path: &Path) -> Result<Value, ConfigError> {
    let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let parsed = match extension.as_str() {
        "json" => serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()),
        "json5" | "jsonc" => json5::from_str::<Value>(&text).map_err(|e| e.to_string()),
        "yaml" | "yml" => serde_yaml_ng::from_str::<Value>(&text).map_err(|e| e.to_string()),
        _ => {
            return Err(ConfigError::UnsupportedFile {
                path: path.to_path_buf(),
            })
        }
    };
    let value = parsed.map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })?;
    match value {
        // An empty YAML file parses as null: it sets nothing.
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ConfigError::Parse {
            path: path.to_path_buf(),
            message: "the top level must be a map of sections".to_string(),
        }),
    }
}

/// The files a `--config` path stands for: the file itself, or a directory's config files in
/// name order.
pub fn expand(path: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let metadata = fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = fs::read_dir(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = entry.path();
        let known = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if known && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Merges files (in order) and then environment variables into one tree.
pub fn merge_sources(files: &[PathBuf], env: &[(String, String)]) -> Result<Merged, ConfigError> {
    let mut merged = Merged::default();
    for file in files {
        let value = read_file(file)?;
        merged.merge(value, &file.display().to_string());
    }
    for (name, value) in env {
        if let Some(path) = env_path(name)? {
            merged.set_path(&path, value.clone(), name);
        }
    }
    Ok(merged)
}

/// The key path an environment variable sets, if it is one of ours.
fn env_path(name: &str) -> Result<Option<Vec<String>>, ConfigError> {
    if let Some((_, path)) = ENV_SHORTCUTS.iter().find(|(var, _)| *var == name) {
        return Ok(Some(path.split('.').map(str::to_string).collect()));
    }
    let prefix_len = ENV_PREFIX.len();
    if name.len() <= prefix_len || !name[..prefix_len].eq_ignore_ascii_case(ENV_PREFIX) {
        return Ok(None);
    }
    let segments: Vec<String> = name[prefix_len..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if segments.iter().any(String::is_empty) {
        return Err(ConfigError::Env {
            name: name.to_string(),
            message: "empty key segment (use `__` only between key names)".to_string(),
        });
    }
    Ok(Some(segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_case_insensitive_and_nested() {
        assert_eq!(
            env_path("RIVET__Guard__PORT").unwrap(),
            Some(vec!["guard".to_string(), "port".to_string()])
        );
        assert_eq!(
            env_path("rivet__auth__admin_token").unwrap().unwrap().len(),
            2
        );
        assert_eq!(env_path("RIVET_ENDPOINT").unwrap(), None);
        assert!(env_path("RIVET__guard____port").is_err());
    }

    #[test]
    fn later_sources_win_and_origins_follow() {
        let mut merged = Merged::default();
        merged.merge(
            serde_json::json!({"guard": {"port": 1, "host": "a"}}),
            "one.json",
        );
        merged.merge(serde_json::json!({"guard": {"port": 2}}), "two.yaml");
        assert_eq!(merged.value["guard"]["port"], 2);
        assert_eq!(merged.value["guard"]["host"], "a");
        assert_eq!(merged.origin_of("guard.port"), "two.yaml");
        assert_eq!(merged.origin_of("guard.host"), "one.json");
        assert_eq!(merged.origin_of("guard.host.deeper"), "one.json");
        assert_eq!(merged.origin_of("metrics"), "defaults");
    }
}
