//! The actor gateway (engine-api.md §8–§10).
//!
//! The functional core: [`route()`] turns the raw parts of a request into a [`Route`] without any
//! I/O, [`GatewayError`] is every error the gateway can answer with (and how it is delivered over
//! HTTP or as a WebSocket close), [`cors`] computes the CORS headers of gateway responses and
//! [`key`] is the actor key serialization of §7.9. The shell, [`proxy`], resolves and wakes
//! actors through the orchestrator and tunnels the traffic to their hosts.

#![warn(missing_docs)]

pub mod cors;
pub mod error;
pub mod key;
mod percent;
pub mod proxy;
pub mod route;

pub use error::GatewayError;
pub use route::{route, ActorRef, QueryMethod, RequestParts, Route, Target};
