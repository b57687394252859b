//! Rust client for Rivet actors, speaking client protocol version 4 like the npm
//! `rivetkit/client`.
//!
//! A [`Client`] points at an engine endpoint. Handles ([`ActorHandle`]) name an actor by id
//! or by name and key; [`ActorHandle::resolve`] finds (or creates) the actor through the
//! engine's REST API (`GET`/`PUT`/`POST /actors`) and caches its id, and:
//!
//! - [`ActorHandle::action`] calls an action over HTTP through the gateway
//!   (`/gateway/{actor_id}/action/{name}`) in the client's [`Encoding`], on kept-alive
//!   connections;
//! - [`ActorHandle::connect`] opens a realtime [`Connection`] (`/connect` WebSocket): actions
//!   over the socket, events ([`Connection::on`], [`Connection::events`],
//!   [`Connection::once`]), automatic reconnection;
//! - [`ActorHandle::fetch`] and [`ActorHandle::websocket`] reach the actor's own HTTP and
//!   WebSocket handlers.
//!
//! Stale resolutions (the actor was destroyed and a get/getOrCreate handle finds its
//! successor) and transient gateway failures are retried as the npm client does.
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
//!
//! let conn = counter.connect();
//! let mut changes = conn.events("changed");
//! conn.wait_connected().await?;
//! let _: i64 = conn.action("increment", (1,)).await?;
//! if let Some(Ok((now,))) = changes.recv_as::<(i64,)>().await {
//!     assert_eq!(now, count + 1);
//! }
//! conn.close().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod client;
mod conn;
mod error;
mod http;
mod key;
mod raw;
mod retry;
mod ws;

pub use client::{ActorHandle, Client, ClientBuilder};
pub use conn::{Connection, ConnectionStatus, EventStream, EventSubscription};
pub use error::{ClientError, RemoteError};
pub use key::serialize_key;
pub use raw::{FetchResponse, RawWebSocket, WebSocketMessage};
pub use rivet_client_protocol::{Encoding, Value};
