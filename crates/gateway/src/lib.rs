//! The actor gateway (engine-api.md §8–§10).
//!
//! This crate is the functional core of the gateway: [`route()`] turns the raw parts of a request
//! into a [`Route`] without any I/O, [`GatewayError`] is every error the gateway can answer with
//! (and how it is delivered over HTTP or as a WebSocket close), [`cors`] computes the CORS headers
//! of gateway responses and [`key`] is the actor key serialization of §7.9. Resolving, waking and
//! tunnelling live in the engine's shell, which calls into this crate.

#![warn(missing_docs)]

pub mod cors;
pub mod error;
pub mod key;
mod percent;
pub mod route;

pub use error::GatewayError;
pub use route::{route, ActorRef, QueryMethod, RequestParts, Route, Target};
