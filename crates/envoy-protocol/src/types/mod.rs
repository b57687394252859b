//! The version-independent message types.
//!
//! They follow the version 8 schema (a superset of version 6); the codec maps them to the wire
//! shape of the socket's version. Field and type names follow the npm package so that the spec
//! (`envoy-protocol.md`) reads directly onto them.

pub mod common;
pub mod envelope;
pub mod kv;
pub mod lifecycle;
pub mod sqlite;
pub mod top;
pub mod tunnel;
