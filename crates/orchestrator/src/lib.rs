//! Namespaces, runner configs, envoys and actors: where an actor runs, when it sleeps, wakes or is lost.

pub mod actor;
pub mod actor_data;
pub mod actor_kv;
pub mod actor_sqlite;
pub mod allocation;
pub mod envoy;
pub mod error;
pub mod hibernation;
pub mod id;
mod keys;
pub mod lifecycle;
pub mod namespace;
pub mod runner_config;
pub mod serverless;
pub mod shell;
