//! Write Rivet actors in Rust.
//!
//! An actor is a struct (its persisted state) and an `impl` block under
//! [`#[rivetkit::actor]`](actor). Every `async fn` of the block becomes an action with typed
//! arguments and result; methods named like a hook become that hook.
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
//!         ctx.broadcast("newCount", &self.count);
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
//! # Actions
//!
//! - Every `async fn` in the block is an action, called by clients under its name
//!   (`rename_all = "camelCase"` turns `get_count` into `getCount`, as TypeScript clients
//!   expect; `#[action(name = "…")]` names one explicitly, `#[action(skip)]` keeps an
//!   `async fn` private). Plain `fn`s are helpers.
//! - Receiver `&self` or `&mut self`; an optional `ctx: &mut Ctx<Self>` (or `&Ctx<Self>`)
//!   anywhere in the parameters; every other parameter is one argument of the call,
//!   deserialized with serde (missing trailing arguments are `null`, so `Option`s may be left
//!   out; extra ones are ignored, as JavaScript does).
//! - The result is any `Serialize` value, or `Result<T, E>` where `E` converts into
//!   [`Error`]: a [`UserError`] reaches the client as `{group: "user", code, message,
//!   metadata}`; any other error (anything implementing `std::error::Error`, via `?`) is
//!   logged in full on the host and reaches the client as `rivetkit.internal_error` with a
//!   generic message; [`Error::public`] sends a chosen group and code.
//! - An action runs at most [`ActorOptions::action_timeout`] (60 s), then the client gets
//!   `actor.action_timed_out`. A panicking action answers `rivetkit.internal_error`, its
//!   events are dropped and the actor restarts from its last saved state.
//!
//! # Hooks
//!
//! Methods with these names are hooks. The context and trailing parameters may be left out,
//! each may be `async` (except `on_state_change`) and may return `Result<_, E>`:
//!
//! | hook | when |
//! |---|---|
//! | `async fn create_state(ctx, input: I) -> Self` | first start only (default: `Default`) |
//! | `async fn on_create(&mut self, ctx, input: &I)` | first start, after `create_state` |
//! | `async fn create_vars(ctx) -> V` | every start: ephemeral [`Ctx::vars`] |
//! | `async fn on_wake(&mut self, ctx)` | every start, before the actor is reachable |
//! | `async fn on_sleep(&mut self, ctx)` | graceful stop (sleep, drain); state saved after |
//! | `async fn on_destroy(&mut self, ctx)` | destroy; storage deleted after |
//! | `fn on_state_change(&mut self, ctx)` | after a turn changed the state, before saving |
//! | `async fn on_before_connect(&mut self, ctx, params: &P)` | an error refuses the connection |
//! | `async fn create_conn_state(&mut self, ctx, params: &P) -> C` | per connection (default: `Default`) |
//! | `async fn on_connect(&mut self, ctx, conn: ConnId)` / `on_disconnect` | connection opened / closed |
//! | `async fn on_request(&mut self, ctx, req: http::Request) -> Option<http::Response>` | raw HTTP under `/request/…` (none: 404) |
//! | `async fn on_websocket(&mut self, ctx, socket: raw_ws::WebSocket)` | raw WebSocket under `/websocket/…` |
//! | `async fn on_before_action_response(&mut self, ctx, action: &str, output: Value) -> Value` | transform an action's output |
//! | `async fn run(ctx: RunCtx<Self>)` | background task from wake to stop |
//! | `fn options() -> ActorOptions` | timeouts, persistence mode, sleep settings |
//!
//! `type Input`, `type Vars`, `type ConnParams` and `type ConnState` may be declared in the
//! block; when they are not, they are read off the hooks above (`input: MyInput` makes
//! `Input = MyInput`), else they default to [`JsonValue`], `()`, [`JsonValue`] and `()`.
//! Hooks are bounded by [`ActorOptions::hook_timeout`] (5 s; stopping hooks by
//! [`ActorOptions::sleep_grace`], 15 s).
//!
//! # Persistence
//!
//! State is saved (CBOR, through the engine's actor KV) after every action or hook that
//! changed it, **before** the reply or the events it produced leave the host
//! ([`Persistence::Strict`], the default): an acknowledged change survives a crash of the host
//! or the engine. The actor does not wait for the write to go on with its next input; writes
//! of many actors share the engine's commits. [`Ctx::save_state`] saves mid-action.
//! [`Persistence::Relaxed`] saves at most every N ms and lets replies go at once (npm
//! rivetkit's behaviour; a crash loses at most the last interval).
//!
//! # Concurrency
//!
//! One task per live actor owns its state and handles inputs (actions, connection messages,
//! schedules, raw requests, [`RunCtx::update`]) one at a time, so actor code needs no locks.
//! An action that awaits I/O holds the actor until it returns; long work belongs in
//! [`Ctx::keep_awake`] tasks, which report back through the client or `RunCtx`. An actor must
//! not call its own actions through [`Ctx::client`] (it would wait for itself until the
//! action timeout).
//!
//! # Connections, sleep, schedules
//!
//! Realtime connections carry parameters and per-connection state, receive
//! [`Ctx::broadcast`] events they subscribed to and [`Conn::send`] events. They are
//! hibernatable: the actor may sleep while they are open (the gateway keeps the client's
//! socket), and they are restored, state and subscriptions included, when it wakes. The actor
//! sleeps after [`ActorOptions::sleep_timeout`] (30 s) without inputs, or on [`Ctx::sleep`];
//! [`Ctx::destroy`] ends it for good. [`Ctx::schedule`] calls actions later, durably: the
//! engine's alarm starts a sleeping actor when one falls due, across host and engine restarts
//! (at least once).
//!
//! # Hosting
//!
//! [`Registry::start`] connects to an engine over the envoy protocol, configured from
//! `RIVET_ENDPOINT` (or `RIVET_ENGINE`; `http://[namespace:token@]host:port`), `RIVET_TOKEN`,
//! `RIVET_NAMESPACE` and `RIVET_POOL`, creates the pool's runner config if it is missing,
//! reconnects with backoff and drains on SIGTERM ([`RunningRegistry::wait`]).
//! [`Registry::start_embedded`] runs an engine in this process (embedded store, gateway on
//! port 6420) so one `cargo run` serves engine, actors and gateway. Clients (npm
//! `rivetkit/client` or [`client`], the `rivetkit-client` crate) reach the actors through the
//! engine's gateway with client protocol v4.

#![warn(missing_docs)]

// `#[actor]` expands to `::rivetkit::…` paths; this lets the crate's own tests use it.
extern crate self as rivetkit;

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
