//! Write Rivet actors in Rust.
//!
//! An actor is a struct (its persisted state) and an `impl` block under
//! [`#[rivetkit::actor]`](actor): every `async fn` becomes an action with typed arguments and
//! result, and methods named like a hook (`create_state`, `on_wake`, `on_connect`, …) become
//! that hook.
//!
//! ```no_run
//! use rivetkit::{actor, Ctx, Registry, UserError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Counter {
//!     count: i64,
//! }
//!
//! #[actor(rename_all = "camelCase")]
//! impl Counter {
//!     async fn increment(&mut self, ctx: &mut Ctx<Self>, by: i64) -> Result<i64, UserError> {
//!         if by < 0 {
//!             return Err(UserError::with_code("negative", "count only goes up"));
//!         }
//!         self.count += by;
//!         ctx.broadcast("changed", &self.count);
//!         Ok(self.count)
//!     }
//!
//!     async fn get_count(&self) -> i64 {
//!         self.count
//!     }
//! }
//!
//! # async fn demo() -> Result<(), rivetkit::HostError> {
//! Registry::new().register::<Counter>("counter").start_embedded().await?.wait().await
//! # }
//! ```
//!
//! The host connects to an engine over the envoy protocol ([`Registry::start`], configured
//! from `RIVET_ENDPOINT`, `RIVET_TOKEN`, `RIVET_NAMESPACE`, `RIVET_POOL`) or runs one
//! in-process ([`Registry::start_embedded`], gateway on port 6420). Clients (npm
//! `rivetkit/client` or `rivetkit-client`) reach the actors through the engine's gateway with
//! client protocol v4.
//!
//! **Persistence.** State is saved (CBOR) after every action or hook that changed it, before
//! the reply or the events it produced leave the host ([`Persistence::Strict`], the default).
//! [`Persistence::Relaxed`] saves at most every N ms instead.
//!
//! **Concurrency.** One task per live actor owns its state and handles inputs (actions,
//! connection messages, schedules, raw requests) one at a time, so actor code needs no locks.

#![warn(missing_docs)]

mod actor;
mod conn;
mod ctx;
mod error;
mod gate;
mod host;
pub mod http;
mod instance;
mod kv;
pub mod raw_ws;
mod registry;
mod routes;
mod run_ctx;
mod schedule;

pub use actor::{Actor, ActorOptions, BoxFuture, Persistence};
pub use conn::{Conn, ConnId};
pub use ctx::Ctx;
pub use error::{Error, HostError, KvError, PublicError, UserError};
pub use kv::Kv;
pub use registry::{EmbeddedOptions, Registry, RegistryConfig, RunningRegistry};
pub use rivet_client_protocol::Value;
pub use rivetkit_client as client;
pub use rivetkit_macros::actor;
pub use run_ctx::RunCtx;
pub use schedule::{Schedule, ScheduledEvent};
/// JSON values: the default type of creation input and connection parameters.
pub use serde_json::Value as JsonValue;

/// Support code for `#[actor]`; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::BoxFuture;
    use crate::{Error, Value};
    use serde::de::DeserializeOwned;
    use serde::Serialize;
    pub use serde_json;

    /// Decodes an action's argument array into the tuple of its parameters. A non-array is
    /// one argument, `null`/absent none; missing trailing arguments are `null` (so `Option`
    /// parameters may be left out).
    pub fn decode_args<T: DeserializeOwned>(args: Value, arity: usize) -> Result<T, Error> {
        let mut items = match args {
            Value::Array(items) => items,
            Value::Null | Value::Undefined => Vec::new(),
            other => vec![other],
        };
        // Extra arguments are ignored, as JavaScript actions ignore them.
        items.resize(arity, Value::Null);
        rivet_client_protocol::from_value(&Value::Array(items)).map_err(|e| {
            Error::public(
                "actor",
                "invalid_request",
                format!("invalid action arguments: {e}"),
            )
        })
    }

    /// Encodes an action's output.
    pub fn encode_output<T: Serialize>(output: &T) -> Result<Value, Error> {
        rivet_client_protocol::to_value(output)
            .map_err(|e| Error::internal(format!("action output not serializable: {e}")))
    }

    /// Converts an action's error type.
    pub fn into_error<E: Into<Error>>(e: E) -> Error {
        e.into()
    }

    /// The default `create_state`: `Default::default()`.
    pub fn default_state<A: InitialState>() -> Result<A, Error> {
        Ok(A::initial())
    }

    /// The default `create_vars` / `create_conn_state`: `Default::default()`.
    pub fn default_value<T: DefaultValue>() -> Result<T, Error> {
        Ok(T::default_value())
    }

    /// The state of an actor without `create_state`.
    #[diagnostic::on_unimplemented(
        message = "actor state `{Self}` has no initial value",
        label = "derive or implement `Default` for it",
        note = "or define `async fn create_state(ctx: &mut Ctx<Self>, input: YourInput) -> Result<Self, Error>` in the #[actor] impl"
    )]
    pub trait InitialState {
        /// The initial state.
        fn initial() -> Self;
    }

    impl<T: Default> InitialState for T {
        fn initial() -> Self {
            T::default()
        }
    }

    /// Vars or connection state without a hook that builds them.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` has no default value",
        label = "derive or implement `Default` for it",
        note = "or define `create_vars` (for `type Vars`) / `create_conn_state` (for `type ConnState`) in the #[actor] impl"
    )]
    pub trait DefaultValue {
        /// The value.
        fn default_value() -> Self;
    }

    impl<T: Default> DefaultValue for T {
        fn default_value() -> Self {
            T::default()
        }
    }

    /// What `on_request` may return: a response, or `None` for 404.
    pub trait IntoRequestAnswer {
        /// As the hook's answer.
        fn into_answer(self) -> Option<crate::http::Response>;
    }

    impl IntoRequestAnswer for crate::http::Response {
        fn into_answer(self) -> Option<crate::http::Response> {
            Some(self)
        }
    }

    impl IntoRequestAnswer for Option<crate::http::Response> {
        fn into_answer(self) -> Option<crate::http::Response> {
            self
        }
    }
}
