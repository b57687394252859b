//! The engine's HTTP listeners: guard (public), peer and metrics.

pub mod envoy_socket;
pub mod guard;
pub mod metrics;
pub mod peer;
pub mod quickack;
mod ray_id;

use serde::Serialize;

/// The `GET /health` body. `runtime` must be `"engine"`: the npm actor host reuses a server on
/// its port only when it is.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Always `"engine"`.
    pub runtime: &'static str,
    /// Always `"ok"` while the engine serves.
    pub status: &'static str,
    /// This engine's version.
    pub version: &'static str,
}

/// The health body of this build.
pub const HEALTH: Health = Health {
    runtime: "engine",
    status: "ok",
    version: crate::VERSION,
};
