//! Namespaces, runner configs, envoys and actors: where an actor runs, when it sleeps, wakes or is lost.

pub mod allocation;
pub mod lifecycle;
