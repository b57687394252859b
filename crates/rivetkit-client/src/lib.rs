//! Rust client for Rivet actors, speaking client protocol version 4 like the npm
//! `rivetkit/client`.
//!
//! A [`Client`] points at an engine endpoint. Handles ([`ActorHandle`]) name an actor by id
//! or by name and key; [`ActorHandle::resolve`] finds (or creates) the actor through the
//! engine's REST API (`GET`/`PUT`/`POST /actors`), and [`ActorHandle::action`] calls an
//! action over HTTP through the gateway (`/gateway/{actor_id}/action/{name}`) in the
//! client's [`Encoding`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), rivetkit_client::ClientError> {
//! use rivetkit_client::{Client, Encoding};
//!
//! let client = Client::builder("http://127.0.0.1:6420")
//!     .encoding(Encoding::Cbor)
//!     .build()?;
//! let counter = client.get_or_create("counter", ["room-1"]);
//! let count: i64 = counter.action("increment", (5,)).await?;
//! # let _ = count;
//! # Ok(())
//! # }
//! ```

mod client;
mod error;
mod http;
mod key;

pub use client::{ActorHandle, Client, ClientBuilder};
pub use error::{ClientError, RemoteError};
pub use key::serialize_key;
pub use rivet_client_protocol::{Encoding, Value};
