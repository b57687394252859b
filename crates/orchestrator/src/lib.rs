//! Namespaces, runner configs, envoys and actors: where an actor runs, when it sleeps, wakes or is lost.

pub mod allocation;
pub mod error;
pub mod id;
pub mod lifecycle;
pub mod namespace;
pub mod runner_config;
