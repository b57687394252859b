//! Realtime connections (client-protocol.md §6).
//!
//! One background task per [`Connection`] owns the WebSocket. Callers talk to it through an
//! unbounded command channel, so actions and subscription changes reach the socket in the
//! order they were made (a listener added before an action is subscribed before the action
//! is sent). The task resolves the actor, opens `/gateway/{id}/connect`, waits for `Init`,
//! subscribes every event that has listeners, sends the actions queued meanwhile, and then
//! matches answers to pending actions by id. When a socket that had reached `Init` closes,
//! pending actions fail and the task reconnects with backoff; actions made while no socket
//! is connected wait in the queue for the next `Init`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rivet_client_protocol::{
    from_value, to_value, ActionRequest, Encoding, ErrorMessage, Init, Message,
    SubscriptionRequest, ToClient, ToServer, Value,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::Message as Frame;

use crate::client::{ActorHandle, USER_AGENT};
use crate::error::{ClientError, RemoteError};
use crate::raw::CLOSE_WAIT;
use crate::retry;
use crate::ws::{self, Socket};

/// Where a [`Connection`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// Resolving the actor, opening a socket or waiting for its `Init`.
    Connecting,
    /// `Init` received: actions and subscriptions go out at once.
    Connected,
    /// An established socket closed; waiting before the next reconnect attempt.
    Disconnected,
    /// Closed for good, by [`Connection::close`] (or dropping it) or by a failure that is
    /// not retried; [`Connection::wait_connected`] returns why.
    Closed,
}

/// A realtime connection to one actor, from [`ActorHandle::connect`]. Cheap to clone; the
/// connection closes when the last clone is dropped or [`Connection::close`] is called.
#[derive(Clone)]
pub struct Connection {
    owner: Arc<Owner>,
}

/// Closes the connection when the last [`Connection`] clone goes away. Listener guards hold
/// [`Shared`] but not this, so an event stream alone does not keep a connection open.
struct Owner {
    shared: Arc<Shared>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.shared.commands.send(Command::Close(None));
    }
}

/// State shared by the connection task, the [`Connection`] clones and the listener guards.
struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Sender<ConnectionStatus>,
    identity: Mutex<Identity>,
    listeners: Mutex<Listeners>,
    /// Why the connection closed for good, once it has.
    closed: Mutex<Option<ClientError>>,
    timeout: Duration,
    /// Names the connection in errors.
    description: String,
}

#[derive(Default)]
struct Identity {
    actor_id: Option<String>,
    connection_id: Option<String>,
}

/// Event listeners by event name. A name is present only while it has listeners.
#[derive(Default)]
struct Listeners {
    next_id: u64,
    by_event: HashMap<String, Vec<(u64, Listener)>>,
    /// The connection closed for good: new listeners are dropped at once.
    closed: bool,
}

type Callback = Arc<dyn Fn(Vec<Value>) + Send + Sync>;

enum Listener {
    Callback(Callback),
    Stream(mpsc::UnboundedSender<Vec<Value>>),
    /// Taken when the event fires.
    Once(Option<oneshot::Sender<Vec<Value>>>),
}

enum Command {
    Action(PendingAction),
    /// The listeners of this event went from none to some or back: subscribe or
    /// unsubscribe to match.
    Sync(String),
    /// Close the connection; the sender (if any) is told when the socket is closed.
    Close(Option<oneshot::Sender<()>>),
}

struct PendingAction {
    name: String,
    args: Value,
    reply: oneshot::Sender<Result<Value, ClientError>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic elsewhere while holding it; every value guarded
    // here stays consistent between statements, so keep going.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn set_status(&self, status: ConnectionStatus) {
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }

    /// The error that callers get once the connection is closed for good.
    fn closed_error(&self) -> ClientError {
        lock(&self.closed)
            .clone()
            .unwrap_or_else(|| ClientError::ConnectionClosed {
                code: None,
                reason: format!("{} is closed", self.description),
            })
    }

    fn has_listeners(&self, event: &str) -> bool {
        lock(&self.listeners).by_event.contains_key(event)
    }

    fn listened_events(&self) -> Vec<String> {
        lock(&self.listeners).by_event.keys().cloned().collect()
    }

    /// Hands an event to its listeners; true when that left the event without listeners
    /// (a `once` fired), so the server should stop sending it.
    fn dispatch(&self, event: &str, args: Vec<Value>) -> bool {
        let mut callbacks = Vec::new();
        let emptied = {
            let mut listeners = lock(&self.listeners);
            let Some(list) = listeners.by_event.get_mut(event) else {
                return false;
            };
            for (_, listener) in list.iter_mut() {
                match listener {
                    Listener::Callback(f) => callbacks.push(f.clone()),
                    Listener::Stream(tx) => {
                        let _ = tx.send(args.clone());
                    }
                    Listener::Once(tx) => {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(args.clone());
                        }
                    }
                }
            }
            list.retain(|(_, l)| !matches!(l, Listener::Once(None)));
            let emptied = list.is_empty();
            if emptied {
                listeners.by_event.remove(event);
            }
            emptied
        };
        // Outside the lock: a callback may add or drop listeners.
        for callback in callbacks {
            let args = args.clone();
            if std::panic::catch_unwind(AssertUnwindSafe(|| callback(args))).is_err() {
                tracing::error!(event, "an event callback panicked");
            }
        }
        emptied
    }
}

/// Keeps one listener registered; dropping it removes the listener, and dropping the last
/// listener of an event unsubscribes from it.
struct ListenerGuard {
    shared: Arc<Shared>,
    event: String,
    id: u64,
}

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        let mut listeners = lock(&self.shared.listeners);
        let Some(list) = listeners.by_event.get_mut(&self.event) else {
            return;
        };
        let before = list.len();
        list.retain(|(id, _)| *id != self.id);
        if list.len() != before && list.is_empty() {
            listeners.by_event.remove(&self.event);
            // Under the lock, so that the task sees syncs in the order the changes happened.
            let _ = self.shared.commands.send(Command::Sync(self.event.clone()));
        }
    }
}

fn add_listener(shared: &Arc<Shared>, event: &str, listener: Listener) -> ListenerGuard {
    let mut listeners = lock(&shared.listeners);
    let id = listeners.next_id;
    listeners.next_id += 1;
    if !listeners.closed {
        let list = listeners.by_event.entry(event.to_string()).or_default();
        list.push((id, listener));
        if list.len() == 1 {
            let _ = shared.commands.send(Command::Sync(event.to_string()));
        }
    }
    ListenerGuard {
        shared: shared.clone(),
        event: event.to_string(),
        id,
    }
}

/// A listener registered with [`Connection::on`]; dropping it (or
/// [`EventSubscription::unsubscribe`]) removes the callback.
#[must_use = "dropping the subscription removes the listener at once"]
pub struct EventSubscription {
    guard: ListenerGuard,
}

impl EventSubscription {
    /// Removes the listener (the same as dropping it).
    pub fn unsubscribe(self) {}
}

impl std::fmt::Debug for EventSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSubscription")
            .field("event", &self.guard.event)
            .finish()
    }
}

/// The arguments of every occurrence of one event, from [`Connection::events`], in the
/// order the actor emitted them. Ends when the connection closes for good; dropping it
/// removes the listener. Buffers without bound: read it, or drop it.
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<Vec<Value>>,
    guard: ListenerGuard,
}

impl EventStream {
    /// The arguments of the next occurrence; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Vec<Value>> {
        self.rx.recv().await
    }

    /// The next occurrence's argument array decoded as `T` (a tuple such as `(i64,)` for an
    /// event broadcast with one number).
    pub async fn recv_as<T: DeserializeOwned>(&mut self) -> Option<Result<T, ClientError>> {
        let args = self.rx.recv().await?;
        Some(decode_args(&self.guard.event, args))
    }

    /// The event this stream listens to.
    pub fn event(&self) -> &str {
        &self.guard.event
    }
}

impl futures::Stream for EventStream {
    type Item = Vec<Value>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<Value>>> {
        self.rx.poll_recv(cx)
    }
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("event", &self.guard.event)
            .finish()
    }
}

fn decode_args<T: DeserializeOwned>(event: &str, args: Vec<Value>) -> Result<T, ClientError> {
    from_value(&Value::Array(args)).map_err(|e| ClientError::Decode {
        url: format!("event {event:?}"),
        reason: e.to_string(),
    })
}

impl Connection {
    /// The status now.
    pub fn status(&self) -> ConnectionStatus {
        *self.owner.shared.status.borrow()
    }

    /// A receiver that sees every status change.
    pub fn status_watch(&self) -> watch::Receiver<ConnectionStatus> {
        self.owner.shared.status.subscribe()
    }

    /// The actor's id from the latest `Init`; `None` before the first one.
    pub fn actor_id(&self) -> Option<String> {
        lock(&self.owner.shared.identity).actor_id.clone()
    }

    /// The connection id the actor gave the current socket; `None` while not connected. A
    /// reconnect gets a new one.
    pub fn connection_id(&self) -> Option<String> {
        lock(&self.owner.shared.identity).connection_id.clone()
    }

    /// Waits until the connection is established (`Init` received), or fails with the
    /// reason it closed for good: e.g. the actor's `onBeforeConnect` refused it (its error's
    /// group and code), or the actor does not exist.
    pub async fn wait_connected(&self) -> Result<(), ClientError> {
        let shared = &self.owner.shared;
        let mut status = shared.status.subscribe();
        loop {
            match *status.borrow_and_update() {
                ConnectionStatus::Connected => return Ok(()),
                ConnectionStatus::Closed => return Err(shared.closed_error()),
                ConnectionStatus::Connecting | ConnectionStatus::Disconnected => {}
            }
            if status.changed().await.is_err() {
                return Err(shared.closed_error());
            }
        }
    }

    /// Calls action `name` over the socket (`args` as in [`ActorHandle::action`]) and
    /// decodes its return value. Made while not connected, the call waits in a queue and is
    /// sent after the next `Init`. A call already sent fails if the socket closes before the
    /// answer (it may or may not have run). Bounded by the client's timeout.
    pub async fn action<A, O>(&self, name: &str, args: A) -> Result<O, ClientError>
    where
        A: Serialize,
        O: DeserializeOwned,
    {
        let shared = &self.owner.shared;
        let args = to_value(&args).map_err(|source| ClientError::Encode {
            what: "action arguments",
            source,
        })?;
        let (reply, answer) = oneshot::channel();
        let command = Command::Action(PendingAction {
            name: name.to_string(),
            args,
            reply,
        });
        if shared.commands.send(command).is_err() {
            return Err(shared.closed_error());
        }
        let output = match tokio::time::timeout(shared.timeout, answer).await {
            Err(_) => {
                return Err(ClientError::Timeout {
                    url: format!("{} (action {name:?})", shared.description),
                    timeout: shared.timeout,
                })
            }
            Ok(Err(_)) => return Err(shared.closed_error()),
            Ok(Ok(result)) => result?,
        };
        from_value(&output).map_err(|e| ClientError::Decode {
            url: format!("{} (action {name:?})", shared.description),
            reason: e.to_string(),
        })
    }

    /// Calls `callback` with the arguments of every occurrence of `event` until the returned
    /// subscription is dropped. The first listener of an event subscribes to it on the
    /// actor; it is subscribed again after every reconnect.
    pub fn on<F>(&self, event: &str, callback: F) -> EventSubscription
    where
        F: Fn(Vec<Value>) + Send + Sync + 'static,
    {
        let guard = add_listener(
            &self.owner.shared,
            event,
            Listener::Callback(Arc::new(callback)),
        );
        EventSubscription { guard }
    }

    /// A stream of the arguments of every occurrence of `event` (see [`Connection::on`]).
    pub fn events(&self, event: &str) -> EventStream {
        let (tx, rx) = mpsc::unbounded_channel();
        let guard = add_listener(&self.owner.shared, event, Listener::Stream(tx));
        EventStream { rx, guard }
    }

    /// The arguments of the next occurrence of `event`. The listener is registered when
    /// this is called, not when the future is first polled, so an event triggered after the
    /// call is not missed. Fails if the connection closes for good first.
    pub fn once(
        &self,
        event: &str,
    ) -> impl Future<Output = Result<Vec<Value>, ClientError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let guard = add_listener(&self.owner.shared, event, Listener::Once(Some(tx)));
        async move {
            let result = rx.await;
            let shared = guard.shared.clone();
            drop(guard);
            result.map_err(|_| shared.closed_error())
        }
    }

    /// Closes the connection with code 1000 and waits until the socket is closed. Pending
    /// and queued actions fail; event streams end. Closing twice is harmless.
    pub async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self
            .owner
            .shared
            .commands
            .send(Command::Close(Some(ack)))
            .is_ok()
        {
            let _ = done.await;
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("to", &self.owner.shared.description)
            .field("status", &self.status())
            .field("connection_id", &self.connection_id())
            .finish()
    }
}

/// Starts the connection task of a new connection to `handle`'s actor.
pub(crate) fn spawn(handle: ActorHandle) -> Connection {
    let (commands, inbox) = mpsc::unbounded_channel();
    let (status, _) = watch::channel(ConnectionStatus::Connecting);
    let shared = Arc::new(Shared {
        commands,
        status,
        identity: Mutex::new(Identity::default()),
        listeners: Mutex::new(Listeners::default()),
        closed: Mutex::new(None),
        timeout: handle.timeout(),
        description: format!(
            "connection to actor {:?} at {}",
            handle.name(),
            handle.endpoint().display
        ),
    });
    let driver = Driver {
        handle,
        shared: shared.clone(),
        inbox: Inbox {
            commands: inbox,
            queue: VecDeque::new(),
            close_acks: Vec::new(),
        },
    };
    tokio::spawn(driver.run());
    Connection {
        owner: Arc::new(Owner { shared }),
    }
}

/// The connection was closed on request: stop.
struct Shutdown;

/// Commands, and the actions waiting for a connected socket.
struct Inbox {
    commands: mpsc::UnboundedReceiver<Command>,
    /// Actions made while no socket was connected, in order.
    queue: VecDeque<PendingAction>,
    /// Callers of [`Connection::close`] waiting for the socket to close.
    close_acks: Vec<oneshot::Sender<()>>,
}

impl Inbox {
    /// Runs `fut` to completion while taking commands as they come.
    async fn during<F: Future>(&mut self, fut: F) -> Result<F::Output, Shutdown> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Ok(out),
                command = self.commands.recv() => self.offline(command)?,
            }
        }
    }

    /// Takes a command while no socket is connected.
    fn offline(&mut self, command: Option<Command>) -> Result<(), Shutdown> {
        match command {
            Some(Command::Action(action)) => {
                self.queue.push_back(action);
                Ok(())
            }
            // Every event with listeners is subscribed right after the next Init.
            Some(Command::Sync(_)) => Ok(()),
            Some(Command::Close(ack)) => {
                self.close_acks.extend(ack);
                Err(Shutdown)
            }
            None => Err(Shutdown),
        }
    }
}

/// How one socket (or the attempt to open one) ended.
struct Lost {
    error: ClientError,
    reached_init: bool,
    /// The actor id the attempt used, if it got that far.
    actor_id: Option<String>,
    /// The attempt failed while looking the actor up (not at the gateway).
    resolving: bool,
}

/// What one connected socket needs: the actions sent on it and its subscriptions.
#[derive(Default)]
struct Live {
    next_id: u64,
    pending: HashMap<u64, oneshot::Sender<Result<Value, ClientError>>>,
    subscribed: HashSet<String>,
    /// The latest connection-level `Error`: the close that follows is reported with it.
    error: Option<ClientError>,
}

impl Live {
    /// Takes an answer slot for a new action; returns the id to send it with.
    fn register(&mut self, reply: oneshot::Sender<Result<Value, ClientError>>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, reply);
        id
    }

    /// Hands the answer to action `id` to its caller; false when no action has that id.
    fn complete(&mut self, id: u64, answer: Result<Value, ClientError>) -> bool {
        match self.pending.remove(&id) {
            Some(reply) => {
                let _ = reply.send(answer);
                true
            }
            None => false,
        }
    }

    fn fail_pending(&mut self, error: &ClientError) {
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(error.clone()));
        }
    }

    /// Records that `event` should (`wanted`) or should not be subscribed; the request to
    /// send (`Some(subscribe)`) when that changes what the actor was told.
    fn subscription_change(&mut self, event: &str, wanted: bool) -> Option<bool> {
        if wanted == self.subscribed.contains(event) {
            return None;
        }
        if wanted {
            self.subscribed.insert(event.to_string());
        } else {
            self.subscribed.remove(event);
        }
        Some(wanted)
    }
}

enum Read {
    Message(ToClient),
    Skip,
    Closed(ClientError),
}

/// What decides whether a failed attempt is followed by another.
#[derive(Debug, Clone, Copy)]
struct Attempt {
    /// A get/getOrCreate handle, which can look its actor up again.
    dynamic: bool,
    /// Attempts a first connection gets on stale resolutions (§10.3).
    max_attempts: u32,
    /// A socket of this connection has reached `Init` before.
    established: bool,
    /// Failed attempts since the start or the latest `Init`, this one excluded.
    failures: u32,
    /// This attempt failed while looking the actor up, not at the gateway.
    resolving: bool,
}

/// The delay before the next attempt, or `None` to give up (§6.5): a connection that was
/// established reconnects forever with backoff, unless its getForId actor is gone; a first
/// connection is retried only on stale resolutions (get/getOrCreate), scheduling failures
/// without a recorded error and lifecycle codes, a bounded number of times.
fn reconnect_after(attempt: &Attempt, remote: Option<&RemoteError>) -> Option<Duration> {
    let Some(remote) = remote else {
        // Transport failures: only an established connection keeps trying.
        return attempt
            .established
            .then(|| retry::reconnect_delay(attempt.failures));
    };
    if !attempt.dynamic && retry::is_gone(remote) {
        // A getForId handle has no other actor to find.
        return None;
    }
    if attempt.established {
        return Some(retry::reconnect_delay(attempt.failures));
    }
    let attempts = attempt.failures + 1;
    let more = attempts < attempt.max_attempts;
    if attempt.dynamic && retry::is_stale(remote) && !attempt.resolving && more {
        return Some(if retry::stale_needs_wait(remote) {
            retry::STALE_RETRY_DELAY
        } else {
            Duration::ZERO
        });
    }
    if attempt.dynamic && retry::is_scheduling(remote) && more {
        return Some(retry::STALE_RETRY_DELAY);
    }
    if retry::is_reconnect_signal(remote) && attempts < retry::LIFECYCLE_ATTEMPTS {
        return Some(retry::lifecycle_delay(attempt.failures));
    }
    None
}

struct Driver {
    handle: ActorHandle,
    shared: Arc<Shared>,
    inbox: Inbox,
}

impl Driver {
    async fn run(mut self) {
        let mut established = false;
        // Failed attempts since the start or the latest Init.
        let mut failures: u32 = 0;
        let error = loop {
            self.shared.set_status(ConnectionStatus::Connecting);
            let lost = match self.session().await {
                Ok(lost) => lost,
                Err(Shutdown) => break None,
            };
            if lost.reached_init {
                established = true;
                failures = 0;
            }
            let (delay, error) = self.next_attempt(established, failures, lost).await;
            failures = failures.saturating_add(1);
            let Some(delay) = delay else {
                break Some(error);
            };
            tracing::info!(%error, ?delay, attempt = failures, "connection lost; reconnecting");
            if established {
                self.shared.set_status(ConnectionStatus::Disconnected);
            }
            if self.inbox.during(tokio::time::sleep(delay)).await.is_err() {
                break None;
            }
        };
        self.finish(error);
    }

    /// Whether and when to try again after `lost` (§6.5), and the error to report if not.
    async fn next_attempt(
        &self,
        established: bool,
        failures: u32,
        lost: Lost,
    ) -> (Option<Duration>, ClientError) {
        let handle = &self.handle;
        let error = lost.error;
        let attempt = Attempt {
            dynamic: handle.is_dynamic(),
            max_attempts: handle.max_attempts(),
            established,
            failures,
            resolving: lost.resolving,
        };
        if let (Some(remote), Some(id)) = (error.remote(), &lost.actor_id) {
            // The next attempt looks the actor up again (a no-op for getForId handles).
            if retry::is_stale(remote) {
                handle.invalidate(id);
            }
            if !established && retry::is_scheduling(remote) {
                if let Some(failure) = handle.scheduling_failure(id, remote).await {
                    return (None, failure);
                }
                handle.invalidate(id);
            }
        }
        (reconnect_after(&attempt, error.remote()), error)
    }

    /// One socket: resolve, open, handshake, run until it closes.
    async fn session(&mut self) -> Result<Lost, Shutdown> {
        let handle = self.handle.clone();
        let actor_id = match self.inbox.during(handle.resolve()).await? {
            Ok(id) => id,
            Err(error) => {
                return Ok(Lost {
                    error,
                    reached_init: false,
                    actor_id: None,
                    resolving: true,
                })
            }
        };
        let failed = |error| Lost {
            error,
            reached_init: false,
            actor_id: Some(actor_id.clone()),
            resolving: false,
        };
        let path = handle.gateway_path(&actor_id, "/connect");
        let protocols = ws::subprotocols(handle.encoding().as_str(), handle.params_json());
        let open = ws::open(
            handle.endpoint(),
            &path,
            &protocols,
            USER_AGENT,
            handle.timeout(),
        );
        let mut socket = match self.inbox.during(open).await? {
            Ok(socket) => socket,
            Err(error) => return Ok(failed(error)),
        };
        let init = match self.handshake(&mut socket).await? {
            Ok(init) => init,
            Err(error) => {
                settle(&mut socket).await;
                return Ok(failed(error));
            }
        };
        let error = self.connected(&mut socket, init).await?;
        Ok(Lost {
            error,
            reached_init: true,
            actor_id: Some(actor_id),
            resolving: false,
        })
    }

    /// Waits for `Init` (§6.2), queueing actions meanwhile.
    async fn handshake(
        &mut self,
        socket: &mut Socket,
    ) -> Result<Result<Init, ClientError>, Shutdown> {
        let deadline = Instant::now() + self.handle.timeout();
        let mut refusal = None;
        loop {
            tokio::select! {
                frame = socket.next() => match self.read(frame) {
                    Read::Message(ToClient::Init(init)) => return Ok(Ok(init)),
                    Read::Message(ToClient::Error(e)) if e.action_id.is_none() => {
                        // The close that follows carries only group.code; keep the details.
                        refusal = Some(remote_error(e));
                    }
                    Read::Message(_) => tracing::debug!("message before Init ignored"),
                    Read::Skip => {}
                    Read::Closed(error) => return Ok(Err(refusal.unwrap_or(error))),
                },
                command = self.inbox.commands.recv() => {
                    if let Err(shutdown) = self.inbox.offline(command) {
                        close_socket(socket).await;
                        return Err(shutdown);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    return Ok(Err(ClientError::Timeout {
                        url: format!("{} (waiting for Init)", self.shared.description),
                        timeout: self.handle.timeout(),
                    }));
                }
            }
        }
    }

    /// Runs a connected socket until it closes; returns why it closed.
    async fn connected(
        &mut self,
        socket: &mut Socket,
        init: Init,
    ) -> Result<ClientError, Shutdown> {
        {
            let mut identity = lock(&self.shared.identity);
            identity.actor_id = Some(init.actor_id);
            identity.connection_id = Some(init.connection_id);
        }
        let mut live = Live::default();
        let error = match self.start(socket, &mut live).await {
            Ok(()) => {
                self.shared.set_status(ConnectionStatus::Connected);
                self.serve(socket, &mut live).await
            }
            Err(error) => Ok(error),
        };
        let error = match error {
            Ok(error) => error,
            Err(Shutdown) => {
                let closed = ClientError::ConnectionClosed {
                    code: Some(1000),
                    reason: "closed by the client".to_string(),
                };
                live.fail_pending(&closed);
                close_socket(socket).await;
                return Err(Shutdown);
            }
        };
        live.fail_pending(&error);
        lock(&self.shared.identity).connection_id = None;
        settle(socket).await;
        Ok(error)
    }

    /// After `Init`: subscribe every event with listeners, then send the queued actions.
    async fn start(&mut self, socket: &mut Socket, live: &mut Live) -> Result<(), ClientError> {
        for event in self.shared.listened_events() {
            self.sync(socket, live, &event).await?;
        }
        while let Some(action) = self.inbox.queue.pop_front() {
            self.send_action(socket, live, action).await?;
        }
        Ok(())
    }

    async fn serve(
        &mut self,
        socket: &mut Socket,
        live: &mut Live,
    ) -> Result<ClientError, Shutdown> {
        loop {
            tokio::select! {
                frame = socket.next() => match self.read(frame) {
                    Read::Message(message) => {
                        if let Err(error) = self.on_message(socket, live, message).await {
                            return Ok(error);
                        }
                    }
                    Read::Skip => {}
                    Read::Closed(error) => return Ok(live.error.take().unwrap_or(error)),
                },
                command = self.inbox.commands.recv() => {
                    let sent = match command {
                        Some(Command::Action(action)) => self.send_action(socket, live, action).await,
                        Some(Command::Sync(event)) => self.sync(socket, live, &event).await,
                        Some(Command::Close(ack)) => {
                            self.inbox.close_acks.extend(ack);
                            return Err(Shutdown);
                        }
                        None => return Err(Shutdown),
                    };
                    if let Err(error) = sent {
                        return Ok(error);
                    }
                }
            }
        }
    }

    async fn on_message(
        &mut self,
        socket: &mut Socket,
        live: &mut Live,
        message: ToClient,
    ) -> Result<(), ClientError> {
        match message {
            ToClient::ActionResponse(response) => {
                if !live.complete(response.id, Ok(response.output)) {
                    tracing::warn!(id = response.id, "answer to an unknown action");
                }
            }
            ToClient::Error(e) => {
                let action_id = e.action_id;
                let error = remote_error(e);
                match action_id {
                    Some(id) => {
                        if let (Some(remote), Some(actor_id)) =
                            (error.remote(), self.shared_actor_id())
                        {
                            if retry::is_stale(remote) {
                                self.handle.invalidate(&actor_id);
                            }
                        }
                        if !live.complete(id, Err(error)) {
                            tracing::warn!(id, "error for an unknown action");
                        }
                    }
                    None => {
                        // A connection-level error fails everything in flight (§6.3).
                        tracing::warn!(%error, "connection error");
                        live.fail_pending(&error);
                        live.error = Some(error);
                    }
                }
            }
            ToClient::Event(event) => {
                let args = match event.args {
                    Value::Array(args) => args,
                    other => vec![other],
                };
                if self.shared.dispatch(&event.name, args) {
                    self.sync(socket, live, &event.name).await?;
                }
            }
            ToClient::Init(_) => tracing::debug!("second Init ignored"),
        }
        Ok(())
    }

    fn shared_actor_id(&self) -> Option<String> {
        lock(&self.shared.identity).actor_id.clone()
    }

    /// Subscribes to or unsubscribes from `event` so that the actor sends it exactly while
    /// it has listeners, with one request per change.
    async fn sync(
        &self,
        socket: &mut Socket,
        live: &mut Live,
        event: &str,
    ) -> Result<(), ClientError> {
        let wanted = self.shared.has_listeners(event);
        let Some(subscribe) = live.subscription_change(event, wanted) else {
            return Ok(());
        };
        let request = ToServer::SubscriptionRequest(SubscriptionRequest {
            event_name: event.to_string(),
            subscribe,
        });
        self.send(socket, &request).await
    }

    async fn send_action(
        &self,
        socket: &mut Socket,
        live: &mut Live,
        action: PendingAction,
    ) -> Result<(), ClientError> {
        if action.reply.is_closed() {
            // The caller gave up (timed out or was dropped) before the action was sent.
            return Ok(());
        }
        let request = ToServer::ActionRequest(ActionRequest {
            id: live.register(action.reply),
            name: action.name,
            args: action.args,
        });
        self.send(socket, &request).await
    }

    async fn send(&self, socket: &mut Socket, message: &ToServer) -> Result<(), ClientError> {
        let frame = match self.handle.encoding() {
            Encoding::Json => Frame::text(message.encode_json()),
            encoding => Frame::binary(message.encode(encoding)),
        };
        socket
            .send(frame)
            .await
            .map_err(|e| ClientError::ConnectionClosed {
                code: None,
                reason: format!("sending failed: {e}"),
            })
    }

    fn read(&self, frame: Option<Result<Frame, tokio_tungstenite::tungstenite::Error>>) -> Read {
        let bytes = match &frame {
            Some(Ok(Frame::Text(text))) => text.as_bytes(),
            Some(Ok(Frame::Binary(data))) => &data[..],
            Some(Ok(Frame::Close(close))) => return Read::Closed(ws::close_error(close.as_ref())),
            Some(Ok(Frame::Ping(_) | Frame::Pong(_) | Frame::Frame(_))) => return Read::Skip,
            Some(Err(e)) => {
                return Read::Closed(ClientError::ConnectionClosed {
                    code: None,
                    reason: format!("the connection was lost: {e}"),
                })
            }
            None => return Read::Closed(ws::close_error(None)),
        };
        match ToClient::decode(bytes, self.handle.encoding()) {
            Ok(message) => Read::Message(message),
            Err(error) => {
                tracing::warn!(%error, "undecodable message from the actor ignored");
                Read::Skip
            }
        }
    }

    /// The connection is closed for good: tell everyone waiting.
    fn finish(mut self, error: Option<ClientError>) {
        let error = match error {
            Some(error) => {
                tracing::warn!(%error, "connection failed");
                error
            }
            None => ClientError::ConnectionClosed {
                code: Some(1000),
                reason: "closed by the client".to_string(),
            },
        };
        // The error first: whoever sees `Closed` or a closed channel reads it.
        *lock(&self.shared.closed) = Some(error.clone());
        self.inbox.commands.close();
        while let Ok(command) = self.inbox.commands.try_recv() {
            match command {
                Command::Action(action) => self.inbox.queue.push_back(action),
                Command::Close(ack) => self.inbox.close_acks.extend(ack),
                Command::Sync(_) => {}
            }
        }
        for action in self.inbox.queue.drain(..) {
            let _ = action.reply.send(Err(error.clone()));
        }
        {
            let mut listeners = lock(&self.shared.listeners);
            listeners.closed = true;
            // Dropping the senders ends the streams and fails the `once` futures.
            listeners.by_event.clear();
        }
        {
            let mut identity = lock(&self.shared.identity);
            identity.connection_id = None;
        }
        self.shared.set_status(ConnectionStatus::Closed);
        for ack in self.inbox.close_acks.drain(..) {
            let _ = ack.send(());
        }
    }
}

fn remote_error(e: ErrorMessage) -> ClientError {
    ClientError::Remote(Box::new(RemoteError {
        group: e.group,
        code: e.code,
        message: e.message,
        metadata: e.metadata,
        actor: e.actor,
        status: None,
    }))
}

/// Finishes a socket that is done: sends the answer to the peer's close (tungstenite queues
/// it when the close arrives; without a flush the peer sees the connection drop instead), or
/// closes with 1000 if the peer has not closed. Bounded, so that a dead peer cannot delay a
/// reconnect much.
async fn settle(socket: &mut Socket) {
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
}

/// Closes with 1000 and waits (bounded) for the peer's close.
async fn close_socket(socket: &mut Socket) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    if socket.close(Some(frame)).await.is_err() {
        return;
    }
    let drain = async { while let Some(Ok(_)) = socket.next().await {} };
    let _ = tokio::time::timeout(CLOSE_WAIT, drain).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(group: &str, code: &str) -> RemoteError {
        RemoteError {
            group: group.to_string(),
            code: code.to_string(),
            message: String::new(),
            metadata: None,
            actor: None,
            status: None,
        }
    }

    #[test]
    fn answers_reach_their_callers_by_id_in_any_order() {
        let mut live = Live::default();
        let mut answers: Vec<_> = (0..3)
            .map(|_| {
                let (tx, rx) = oneshot::channel();
                (live.register(tx), rx)
            })
            .collect();
        assert_eq!(
            answers.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(live.complete(2, Ok(Value::text("two"))));
        assert!(live.complete(0, Ok(Value::text("zero"))));
        assert!(!live.complete(0, Ok(Value::Null)), "answered already");
        assert!(!live.complete(7, Ok(Value::Null)), "never sent");
        // A close fails what is still pending.
        live.fail_pending(&ClientError::ConnectionClosed {
            code: None,
            reason: "gone".to_string(),
        });
        let results: Vec<_> = answers
            .iter_mut()
            .map(|(_, rx)| rx.try_recv().unwrap())
            .collect();
        assert_eq!(results[0].as_ref().unwrap(), &Value::text("zero"));
        assert!(matches!(
            results[1],
            Err(ClientError::ConnectionClosed { .. })
        ));
        assert_eq!(results[2].as_ref().unwrap(), &Value::text("two"));
        // Ids keep counting on the same socket.
        let (tx, _rx) = oneshot::channel();
        assert_eq!(live.register(tx), 3);
    }

    #[test]
    fn one_subscription_request_per_change() {
        let mut live = Live::default();
        assert_eq!(live.subscription_change("e", true), Some(true));
        assert_eq!(live.subscription_change("e", true), None);
        assert_eq!(live.subscription_change("other", false), None);
        assert_eq!(live.subscription_change("e", false), Some(false));
        assert_eq!(live.subscription_change("e", false), None);
    }

    fn shared() -> (Arc<Shared>, mpsc::UnboundedReceiver<Command>) {
        let (commands, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            commands,
            status: watch::channel(ConnectionStatus::Connecting).0,
            identity: Mutex::new(Identity::default()),
            listeners: Mutex::new(Listeners::default()),
            closed: Mutex::new(None),
            timeout: Duration::from_secs(1),
            description: "test".to_string(),
        });
        (shared, rx)
    }

    fn syncs(rx: &mut mpsc::UnboundedReceiver<Command>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(command) = rx.try_recv() {
            if let Command::Sync(event) = command {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn the_first_and_last_listener_of_an_event_change_the_subscription() {
        let (shared, mut rx) = shared();
        let (tx_a, mut a) = mpsc::unbounded_channel();
        let guard_a = add_listener(&shared, "e", Listener::Stream(tx_a));
        assert_eq!(syncs(&mut rx), ["e"]);
        let (tx_b, mut b) = mpsc::unbounded_channel();
        let guard_b = add_listener(&shared, "e", Listener::Stream(tx_b));
        assert!(syncs(&mut rx).is_empty(), "already subscribed");

        assert!(!shared.dispatch("e", vec![Value::Int(1)]));
        assert_eq!(a.try_recv().unwrap(), vec![Value::Int(1)]);
        assert_eq!(b.try_recv().unwrap(), vec![Value::Int(1)]);
        assert!(!shared.dispatch("unheard", vec![]));

        drop(guard_a);
        assert!(syncs(&mut rx).is_empty(), "one listener left");
        assert!(shared.has_listeners("e"));
        drop(guard_b);
        assert_eq!(syncs(&mut rx), ["e"]);
        assert!(!shared.has_listeners("e"));
    }

    #[test]
    fn a_once_listener_fires_once_and_then_leaves() {
        let (shared, mut rx) = shared();
        let (tx, mut once) = oneshot::channel();
        let guard = add_listener(&shared, "e", Listener::Once(Some(tx)));
        assert_eq!(syncs(&mut rx), ["e"]);
        assert!(
            shared.dispatch("e", vec![Value::text("x")]),
            "no listener left: unsubscribe"
        );
        assert_eq!(once.try_recv().unwrap(), vec![Value::text("x")]);
        assert!(!shared.dispatch("e", vec![Value::text("y")]));
        drop(guard);
        assert!(syncs(&mut rx).is_empty(), "the dispatch already removed it");
    }

    #[test]
    fn callbacks_run_and_a_panicking_one_does_not_stop_the_others() {
        let (shared, _rx) = shared();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let _panics = add_listener(
            &shared,
            "e",
            Listener::Callback(Arc::new(|_| panic!("listener bug"))),
        );
        let record = seen.clone();
        let _records = add_listener(
            &shared,
            "e",
            Listener::Callback(Arc::new(move |args| lock(&record).push(args))),
        );
        shared.dispatch("e", vec![Value::Int(3)]);
        assert_eq!(*lock(&seen), [vec![Value::Int(3)]]);
    }

    fn attempt(dynamic: bool, established: bool, failures: u32) -> Attempt {
        Attempt {
            dynamic,
            max_attempts: if dynamic { 24 } else { 1 },
            established,
            failures,
            resolving: false,
        }
    }

    #[test]
    fn an_established_connection_reconnects_with_backoff() {
        let lost = remote("user", "anything");
        for (failures, ms) in [(0, 250), (1, 500), (3, 2000), (20, 30_000)] {
            assert_eq!(
                reconnect_after(&attempt(true, true, failures), Some(&lost)),
                Some(Duration::from_millis(ms))
            );
        }
        // Transport failures too.
        assert_eq!(
            reconnect_after(&attempt(false, true, 1), None),
            Some(Duration::from_millis(500))
        );
        // Except a getForId actor that is gone.
        let gone = remote("actor", "not_found");
        assert_eq!(reconnect_after(&attempt(false, true, 0), Some(&gone)), None);
        assert!(reconnect_after(&attempt(true, true, 0), Some(&gone)).is_some());
    }

    #[test]
    fn a_first_connection_is_retried_only_on_the_listed_codes() {
        // Refused by the actor, or the endpoint is down: reported at once.
        assert_eq!(
            reconnect_after(&attempt(true, false, 0), Some(&remote("user", "rejected"))),
            None
        );
        assert_eq!(reconnect_after(&attempt(true, false, 0), None), None);

        // Stale resolution: get/getOrCreate resolve again (waiting while in transition).
        let not_found = remote("actor", "not_found");
        assert_eq!(
            reconnect_after(&attempt(true, false, 0), Some(&not_found)),
            Some(Duration::ZERO)
        );
        assert_eq!(
            reconnect_after(&attempt(true, false, 3), Some(&remote("actor", "stopping"))),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            reconnect_after(&attempt(true, false, 23), Some(&not_found)),
            None,
            "24 attempts in all"
        );
        assert_eq!(
            reconnect_after(&attempt(false, false, 0), Some(&not_found)),
            None
        );
        // A failed lookup is not a stale resolution.
        let lookup = Attempt {
            resolving: true,
            ..attempt(true, false, 0)
        };
        assert_eq!(reconnect_after(&lookup, Some(&not_found)), None);

        // Lifecycle codes: any handle, 5 attempts, 25 → 200 ms.
        let going_away = remote("ws", "going_away");
        assert_eq!(
            reconnect_after(&attempt(false, false, 0), Some(&going_away)),
            Some(Duration::from_millis(25))
        );
        assert_eq!(
            reconnect_after(&attempt(false, false, 3), Some(&going_away)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            reconnect_after(&attempt(false, false, 4), Some(&going_away)),
            None
        );
    }
}
