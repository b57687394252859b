//! Typed engine configuration: defaults, config files (JSON, JSON5, YAML) and RIVET__ environment variables.
