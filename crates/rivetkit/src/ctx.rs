//! The context handed to actions and hooks.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use rivet_client_protocol::{Event, ToClient};
use rivet_envoy_protocol::{KvRequestData, ToRivetTunnelMessageKind, ToRivetWebSocketMessage};
use serde::Serialize;
use tokio::sync::Notify;

use crate::actor::{Actor, ActorOptions};
use crate::conn::{ws_kind, Conn, ConnId};
use crate::gate::{Gate, Out};
use crate::host::{Host, TunnelKey};
use crate::instance::Input;
use crate::kv::Kv;
use crate::schedule::{Schedule, ScheduleState};
use crate::{Error, Value};

/// What actor code asked for during a turn, handled by the actor task after it.
#[derive(Default)]
pub(crate) struct Requests {
    pub sleep: bool,
    pub destroy: bool,
    pub disconnect: Vec<(ConnId, String)>,
}

/// The non-generic part of a live actor, shared with the host, its connections and tasks.
/// Kept small: an idle actor is this, its task and its state.
pub(crate) struct Core {
    pub host: Arc<Host>,
    /// Shared with the host's table of running actors (one allocation per actor).
    pub actor_id: Arc<str>,
    /// Shared by every actor of the type.
    pub name: Arc<str>,
    pub key: Option<String>,
    pub generation: u32,
    pub options: Arc<ActorOptions>,
    /// Inputs from the host, handled one at a time.
    inbox: Mutex<VecDeque<Input>>,
    /// The actor task has ended: inputs are refused.
    ended: AtomicBool,
    /// Outputs of the current turn, released through the gate when it ends.
    pub outputs: Mutex<Vec<Out>>,
    /// The output gate.
    pub gate: Gate,
    pub requests: Mutex<Requests>,
    /// Raw WebSockets the client closed, for the actor task to forget.
    pub raw_closed: Mutex<Vec<TunnelKey>>,
    /// `keep_awake` futures still running.
    pub keep_awake: AtomicUsize,
    /// Wakes the actor task: an input, a request, a finished `keep_awake`, a failed write.
    pub wake: Notify,
}

impl Core {
    /// A live actor's shared part.
    pub fn new(
        host: Arc<Host>,
        start: &crate::instance::Start,
        options: Arc<ActorOptions>,
    ) -> Core {
        Core {
            host,
            actor_id: Arc::from(start.actor_id.as_str()),
            name: start.name.clone(),
            key: start.key.clone(),
            generation: start.generation,
            options,
            inbox: Mutex::new(VecDeque::new()),
            ended: AtomicBool::new(false),
            outputs: Mutex::new(Vec::new()),
            gate: Gate::default(),
            requests: Mutex::new(Requests::default()),
            raw_closed: Mutex::new(Vec::new()),
            keep_awake: AtomicUsize::new(0),
            wake: Notify::new(),
        }
    }

    /// Queues an input; `false` once the actor has ended.
    pub fn deliver(&self, input: Input) -> bool {
        {
            let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
            // Checked under the lock `end` takes, so nothing is queued after the last look.
            if self.ended.load(Ordering::Acquire) {
                return false;
            }
            inbox.push_back(input);
        }
        self.wake.notify_one();
        true
    }

    /// The next input.
    pub fn next_input(&self) -> Option<Input> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        let input = inbox.pop_front();
        if inbox.is_empty() && inbox.capacity() > 16 {
            inbox.shrink_to_fit();
        }
        input
    }

    /// Marks the actor ended and returns what was still queued.
    pub fn end(&self) -> Vec<Input> {
        let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
        self.ended.store(true, Ordering::Release);
        inbox.drain(..).collect()
    }

    /// Gives back the capacity the inbox and the turn's output list kept after a burst.
    pub fn compact(&self) {
        self.inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .shrink_to_fit();
        self.lock_outputs().shrink_to_fit();
        self.gate.compact();
    }

    /// Registers a state write with the gate and sends it.
    pub fn write(self: &Arc<Self>, data: KvRequestData) -> Result<(), crate::error::KvError> {
        self.host.kv_gated(self, data)
    }

    fn lock_outputs(&self) -> MutexGuard<'_, Vec<Out>> {
        self.outputs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn lock_requests(&self) -> MutexGuard<'_, Requests> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an output of the current turn.
    pub fn push_out(&self, out: Out) {
        self.lock_outputs().push(out);
    }

    /// How many outputs the current turn has so far.
    pub fn outputs_mark(&self) -> usize {
        self.lock_outputs().len()
    }

    /// Drops the outputs queued after `mark` (those of an action that panicked: they may
    /// describe changes that will never be saved).
    pub fn truncate_outputs(&self, mark: usize) {
        self.lock_outputs().truncate(mark);
    }

    /// Takes the current turn's outputs.
    pub fn take_outputs(&self) -> Vec<Out> {
        std::mem::take(&mut *self.lock_outputs())
    }

    /// Queues a WebSocket frame to a client socket.
    pub fn push_ws(&self, key: TunnelKey, index: u16, frame: ToRivetWebSocketMessage) {
        let host = self.host.clone();
        self.push_out(Box::new(move |ok| {
            if ok {
                host.tunnel(key, index, ws_kind(frame));
            }
        }));
    }

    /// Queues the acknowledgement of a hibernatable socket's message `index`.
    pub fn push_ack(&self, socket: &crate::conn::ConnSocket, index: u16) {
        let host = self.host.clone();
        let key = socket.key;
        let at = socket.next_index.fetch_add(1, Ordering::Relaxed);
        self.push_out(Box::new(move |ok| {
            if ok {
                host.tunnel(
                    key,
                    at,
                    ToRivetTunnelMessageKind::WebSocketMessageAck(
                        rivet_envoy_protocol::ToRivetWebSocketMessageAck { index },
                    ),
                );
            }
        }));
    }

    /// Whether actor code asked for something the actor task has not handled yet.
    pub fn has_requests(&self) -> bool {
        let r = self.lock_requests();
        r.sleep || r.destroy || !r.disconnect.is_empty()
    }

    /// Asks the actor task to close a connection after the current turn.
    pub fn request_disconnect(&self, id: ConnId, reason: String) {
        self.lock_requests().disconnect.push((id, reason));
        self.wake.notify_one();
    }
}

/// What actions and hooks get besides the state: identity, vars, connections, events,
/// schedules, storage, lifecycle requests, other actors.
pub struct Ctx<A: Actor> {
    pub(crate) core: Arc<Core>,
    pub(crate) vars: Option<A::Vars>,
    pub(crate) conns: IndexMap<ConnId, Conn<A>>,
    pub(crate) current: Option<ConnId>,
    pub(crate) schedule: ScheduleState,
    /// Hash of the state as last written (CBOR), to detect changes without keeping a copy.
    pub(crate) saved_hash: Option<u64>,
    /// Connections whose saved record may have changed this turn.
    pub(crate) touched: Vec<ConnId>,
    /// Every connection may have changed (`conns_mut`).
    pub(crate) all_touched: bool,
}

impl<A: Actor> Ctx<A> {
    /// The actor's id.
    pub fn actor_id(&self) -> &str {
        &self.core.actor_id
    }

    /// The actor type's registered name.
    pub fn name(&self) -> &str {
        &self.core.name
    }

    /// The actor's key, serialized (`a/b` for `["a","b"]`); `None` for key-less actors.
    pub fn key(&self) -> Option<&str> {
        self.core.key.as_deref()
    }

    /// Where the actor runs (the host's region).
    pub fn region(&self) -> &str {
        &self.core.host.cfg.region
    }

    /// This start's generation (1 for the first start, +1 per wake).
    pub fn generation(&self) -> u32 {
        self.core.generation
    }

    /// The vars built by `create_vars` on this start.
    ///
    /// # Panics
    /// Inside `create_vars` itself, where they do not exist yet.
    pub fn vars(&self) -> &A::Vars {
        match &self.vars {
            Some(v) => v,
            None => panic!("ctx.vars() used inside create_vars, before the vars exist"),
        }
    }

    /// The vars, mutably.
    ///
    /// # Panics
    /// Inside `create_vars` itself.
    pub fn vars_mut(&mut self) -> &mut A::Vars {
        match &mut self.vars {
            Some(v) => v,
            None => panic!("ctx.vars_mut() used inside create_vars, before the vars exist"),
        }
    }

    /// Sends an event to every connection subscribed to `event`. Like replies, it leaves
    /// after the state this turn changed is saved.
    pub fn broadcast<T: Serialize + ?Sized>(&self, event: &str, payload: &T) {
        match rivet_client_protocol::to_value(payload) {
            Ok(v) => self.broadcast_args(event, vec![v]),
            Err(e) => tracing::error!(error = %e, event, "event payload not serializable"),
        }
    }

    /// Sends an event with several arguments to every subscribed connection.
    pub fn broadcast_args(&self, event: &str, args: Vec<Value>) {
        let msg = ToClient::Event(Event {
            name: event.to_string(),
            args: Value::Array(args),
        });
        // One encoding per client encoding, not per connection.
        let mut frames: [Option<ToRivetWebSocketMessage>; 3] = [None, None, None];
        for conn in self.conns.values() {
            let Some(socket) = &conn.socket else { continue };
            if !socket.subscriptions.contains(event) {
                continue;
            }
            let slot = &mut frames[socket.encoding as usize];
            let frame = slot
                .get_or_insert_with(|| crate::conn::encode_frame(&msg, socket.encoding))
                .clone();
            let index = socket
                .next_index
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.core.push_ws(socket.key, index, frame);
        }
    }

    /// Every open connection (realtime ones and the current HTTP action's).
    pub fn conns(&self) -> impl Iterator<Item = &Conn<A>> {
        self.conns.values()
    }

    /// Every open connection, mutably (e.g. to change connection state).
    pub fn conns_mut(&mut self) -> impl Iterator<Item = &mut Conn<A>> {
        self.all_touched = true;
        self.conns.values_mut()
    }

    /// The connection the current action or connection hook runs for.
    pub fn conn(&self) -> Option<&Conn<A>> {
        self.current.as_ref().and_then(|id| self.conns.get(id))
    }

    /// The current connection, mutably.
    pub fn conn_mut(&mut self) -> Option<&mut Conn<A>> {
        let id = self.current.clone()?;
        self.touched.push(id.clone());
        self.conns.get_mut(&id)
    }

    /// Records of hibernatable connections changed since they were last saved (and touched
    /// this turn): `(id, KV key, record)`.
    pub(crate) fn changed_conn_records(&mut self) -> Vec<(ConnId, Vec<u8>, Vec<u8>)> {
        let ids: Vec<ConnId> = if std::mem::take(&mut self.all_touched) {
            self.touched.clear();
            self.conns.keys().cloned().collect()
        } else {
            let mut ids = std::mem::take(&mut self.touched);
            ids.sort();
            ids.dedup();
            ids
        };
        let mut out = Vec::new();
        for id in ids {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            let Some(socket) = conn.socket.as_ref() else {
                continue;
            };
            match conn.record() {
                Some(Ok(record)) if socket.saved != Some(crate::instance::hash_bytes(&record)) => {
                    out.push((id, crate::conn::record_key(&socket.key), record));
                }
                Some(Err(e)) => tracing::error!(conn = %id, error = %e, "connection not saved"),
                _ => {}
            }
        }
        out
    }

    /// A connection by id.
    pub fn conn_by_id(&self, id: &ConnId) -> Option<&Conn<A>> {
        self.conns.get(id)
    }

    /// Schedules actions of this actor; durable through the engine's alarm.
    pub fn schedule(&mut self) -> Schedule<'_> {
        Schedule {
            state: &mut self.schedule,
        }
    }

    /// The actor's own key-value storage, for data beyond the state.
    pub fn kv(&self) -> Kv {
        Kv::new(self.core.host.clone(), self.core.actor_id.clone())
    }

    /// A client for calling other actors (same engine, namespace and token).
    pub fn client(&self) -> &rivetkit_client::Client {
        &self.core.host.client
    }

    /// Asks the engine to put the actor to sleep after the current turn.
    pub fn sleep(&self) {
        self.core.lock_requests().sleep = true;
        self.core.wake.notify_one();
    }

    /// Asks the engine to destroy the actor after the current turn (`on_destroy` runs).
    pub fn destroy(&self) {
        self.core.lock_requests().destroy = true;
        self.core.wake.notify_one();
    }

    /// Runs `fut` in the background and keeps the actor awake until it finishes.
    pub fn keep_awake<F>(&self, fut: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let core = self.core.clone();
        core.keep_awake.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _done = KeepAwakeGuard(core);
            fut.await
        })
    }

    /// Like [`Ctx::keep_awake`], for work whose result nobody awaits.
    pub fn wait_until<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.keep_awake(fut));
    }

    /// Saves the state now, mid-action, and releases the outputs produced so far. Returns
    /// once the write committed.
    pub async fn save_state(&mut self, state: &A) -> Result<(), Error> {
        crate::instance::write_state(self, state, true)?;
        let outs = self.core.take_outputs();
        self.core.gate.release(outs);
        if self.core.gate.barrier().await {
            Ok(())
        } else {
            Err(Error::internal("state write failed"))
        }
    }
}

struct KeepAwakeGuard(Arc<Core>);

impl Drop for KeepAwakeGuard {
    fn drop(&mut self) {
        self.0.keep_awake.fetch_sub(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}
