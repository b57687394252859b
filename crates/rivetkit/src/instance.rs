//! One live actor: the task that owns its state and handles its inputs one at a time.
//!
//! Every input (an HTTP action, a socket message, a schedule falling due, a `run` update) is
//! one *turn*. After a turn the state is serialized; if it changed it is written to the
//! engine, and the turn's outputs (replies, events) are handed to the output gate, which
//! releases them once the write committed. The task never waits for the write itself.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use indexmap::IndexMap;
use rivet_client_protocol::{
    decode_payload, ActionResponse, ActorSpecifier, Encoding, ErrorMessage, HttpActionRequest,
    HttpActionResponse, Init, Message, ToClient, ToServer, Value,
};
use rivet_envoy_protocol::{
    ActorIntent, ActorState, ActorStateStopped, Event, EventActorIntent, EventActorSetAlarm,
    EventActorStateUpdate, Headers, KvDeleteRequest, KvGetRequest, KvListPrefixQuery, KvListQuery,
    KvListRequest, KvPutRequest, KvRequestData, KvResponseData, StopActorReason, StopCode,
    ToEnvoyRequestStart, ToEnvoyWebSocketClose, ToEnvoyWebSocketOpen, ToRivetResponseStart,
    ToRivetTunnelMessageKind, ToRivetWebSocketClose, ToRivetWebSocketOpen, WebSocketMessage,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use crate::actor::{Actor, ActorOptions, Persistence};
use crate::conn::{record_tunnel, Conn, ConnId, ConnRecord, ConnSocket};
use crate::ctx::{Core, Ctx, Requests};
use crate::error::{KvError, PublicError};
use crate::gate::Out;
use crate::host::{Factory, Host, TunnelKey};
use crate::kv::{CONN_PREFIX, SCHEDULE_KEY, STATE_PREFIX};
use crate::raw_ws::{RawIn, WebSocket, WsMessage};
use crate::routes::{self, Route};
use crate::run_ctx::RunCtx;
use crate::schedule::{now_ms, ScheduledEvent};
use crate::Error;

/// State chunks are at most this big (the engine's KV value limit is 128 KiB).
const CHUNK: usize = 120 * 1024;
/// At most this many chunks, so one put stays under the engine's 976 KiB payload limit.
const MAX_CHUNKS: usize = 7;
/// Keys per put (the engine takes 128).
const PUT_MAX_KEYS: usize = 100;
/// Value bytes per put (the engine takes 976 KiB of keys and values).
const PUT_MAX_BYTES: usize = 900 * 1024;

/// What the engine asked for when starting the actor.
pub(crate) struct Start {
    pub actor_id: String,
    pub generation: u32,
    pub name: Arc<str>,
    pub key: Option<String>,
    pub input: Option<Vec<u8>>,
    /// Client sockets kept open by the gateway while the actor slept, to restore.
    pub hibernating: Vec<TunnelKey>,
}

/// Inputs routed to an actor by the host. Large payloads are boxed: inputs wait in a queue
/// whose slots every actor keeps.
pub(crate) enum Input {
    Http {
        key: TunnelKey,
        request: Box<ToEnvoyRequestStart>,
    },
    WsOpen {
        key: TunnelKey,
        open: Box<ToEnvoyWebSocketOpen>,
    },
    WsMessage {
        key: TunnelKey,
        /// The gateway's `messageIndex`, acknowledged once processed (hibernatable sockets).
        index: u16,
        msg: WebSocketMessage,
    },
    WsClose {
        key: TunnelKey,
        close: ToEnvoyWebSocketClose,
    },
    Stop(StopActorReason),
    /// The engine gave this start up (a newer generation runs): stop without reporting.
    Lost,
}

/// What the actor task does next.
enum Step {
    /// Handle an input from the host.
    Input(Input),
    /// Run the scheduled actions that fell due.
    Schedules,
    /// A turn's work was done in place (a `run` update, a flush, a sleep request).
    Ran,
    /// Stop after a failure.
    Crash(String),
    /// Nothing to do until woken or until this time.
    Wait(Option<Instant>),
}

/// How long an actor stays idle before its buffers are given back.
const COMPACT_AFTER: Duration = Duration::from_secs(1);

/// A closure run as one turn of the actor (`RunCtx::update`).
pub(crate) type Job<A> = Box<dyn FnOnce(&mut A, &mut Ctx<A>) + Send>;

/// `RunCtx::update` closures waiting for their turn.
pub(crate) type Jobs<A> = std::sync::Mutex<std::collections::VecDeque<Job<A>>>;

/// Starts actors of type `A`.
pub(crate) struct TypeFactory<A> {
    /// Read once per type; every actor of the type shares it.
    options: Arc<ActorOptions>,
    _type: PhantomData<fn() -> A>,
}

impl<A: Actor> TypeFactory<A> {
    pub fn new() -> Self {
        TypeFactory {
            options: Arc::new(A::options()),
            _type: PhantomData,
        }
    }
}

impl<A: Actor> Factory for TypeFactory<A> {
    fn spawn(&self, host: Arc<Host>, start: Start) -> Arc<Core> {
        let core = Arc::new(Core::new(host.clone(), &start, self.options.clone()));
        let span = tracing::info_span!(
            "actor",
            actor_id = %start.actor_id,
            name = %start.name,
            key = start.key.as_deref().unwrap_or(""),
            generation = start.generation,
        );
        let task_core = core.clone();
        tokio::spawn(
            async move {
                // A panic outside an action (in a hook) ends the task; the engine must still
                // learn that the actor stopped.
                let ended = AssertUnwindSafe(run::<A>(task_core.clone(), Box::new(start)))
                    .catch_unwind()
                    .await;
                if let Err(p) = ended {
                    let msg = format!("actor code panicked: {}", panic_message(&*p));
                    tracing::error!(reason = %msg, "actor crashed");
                    report_stopped(&task_core, StopCode::Error, Some(msg));
                    finish(&task_core);
                }
            }
            .instrument(span),
        );
        core
    }
}

/// The actor task has ended (after its Stopped event, if any): inputs still queued are
/// answered so their clients retry (§9.3 `actor.stopping`), and the host forgets the actor.
fn finish(core: &Core) {
    // Outputs waiting for an event acknowledgement that will not come any more.
    core.gate.events_acked(None);
    for input in core.end() {
        match input {
            Input::Http { key, request } => {
                let err = routes::public("actor", "stopping", "The actor is stopping.");
                let spec = ActorSpecifier {
                    actor_id: core.actor_id.to_string(),
                    generation: u64::from(core.generation),
                    key: core.key.clone(),
                };
                let answer = routes::error_response(
                    &err,
                    503,
                    routes::http_encoding(&request.headers),
                    &spec,
                );
                core.host
                    .tunnel(key, 0, ToRivetTunnelMessageKind::ResponseStart(answer));
            }
            Input::WsOpen { key, .. } => {
                close_socket(&core.host, key, 1, 1011, "actor.stopping".into());
                core.host.forget_tunnel(&key);
            }
            // Unacknowledged messages of hibernatable sockets are delivered again to the next
            // start; other sockets were closed by the stop.
            _ => {}
        }
    }
    core.host.actor_finished(&core.actor_id, core.generation);
}

struct Instance<A: Actor> {
    state: A,
    ctx: Ctx<A>,
    /// `RunCtx::update` closures, when the actor has a `run` task.
    jobs: Option<Arc<Jobs<A>>>,
    conn_by_key: HashMap<TunnelKey, ConnId>,
    raw: HashMap<TunnelKey, mpsc::UnboundedSender<RawIn>>,
    run_task: Option<tokio::task::JoinHandle<()>>,
    stop_tx: Option<watch::Sender<bool>>,
    last_activity: Instant,
    sleep_sent: bool,
    destroy_sent: bool,
    /// Relaxed mode: when the pending change must be written.
    flush_at: Option<Instant>,
    /// A panic in actor code: the state may be half-changed, so the actor crashes.
    poisoned: Option<String>,
    /// Buffers given back since the last turn.
    compacted: bool,
}

/// An async fn's arguments stay in its future for its whole life (even once moved out), so
/// the long-lived ones take boxes.
async fn run<A: Actor>(core: Arc<Core>, start: Box<Start>) {
    // Starting is boxed: the task of a running actor keeps only the waiting loop.
    let prepare = Box::pin(prepare::<A>(core, start));
    let serve = match prepare.await {
        Some(inst) => inst.main(),
        None => return,
    };
    serve.await;
}

/// Boots the actor and reports it running; `None` if it could not start (already reported).
async fn prepare<A: Actor>(core: Arc<Core>, start: Box<Start>) -> Option<Box<Instance<A>>> {
    let mut ctx = Ctx::<A> {
        core: core.clone(),
        vars: None,
        conns: IndexMap::new(),
        current: None,
        schedule: Default::default(),
        saved_hash: None,
        touched: Vec::new(),
        all_touched: false,
    };
    let booted = AssertUnwindSafe(boot::<A>(&mut ctx, start.input, &start.hibernating))
        .catch_unwind()
        .await
        .unwrap_or_else(|p| Err(Error::internal(format!("panic: {}", panic_message(&p)))));
    let Booted {
        state,
        stale,
        orphans,
    } = match booted {
        Ok(booted) => booted,
        Err(e) => {
            tracing::error!(error = %e, "actor failed to start");
            report_stopped(&core, StopCode::Error, Some(format!("start failed: {e}")));
            finish(&core);
            return None;
        }
    };
    let (jobs, stop_tx, run_task) = if A::has_run() {
        let jobs: Arc<Jobs<A>> = Arc::default();
        let (stop_tx, stop_rx) = watch::channel(false);
        let rctx = RunCtx {
            core: core.clone(),
            jobs: jobs.clone(),
            stop: stop_rx,
        };
        let task = tokio::spawn(
            async move {
                if let Err(e) = A::run(rctx).await {
                    tracing::error!(error = %e, "run failed");
                }
            }
            .in_current_span(),
        );
        (Some(jobs), Some(stop_tx), Some(task))
    } else {
        (None, None, None)
    };
    let conn_by_key = ctx
        .conns
        .values()
        .filter_map(|c| c.socket.as_ref().map(|s| (s.key, c.id.clone())))
        .collect();
    let mut inst = Box::new(Instance {
        state,
        ctx,
        jobs,
        conn_by_key,
        raw: HashMap::new(),
        run_task,
        stop_tx,
        last_activity: Instant::now(),
        sleep_sent: false,
        destroy_sent: false,
        flush_at: None,
        poisoned: None,
        compacted: false,
    });
    let alarm = inst.ctx.schedule.next_due();
    inst.ctx.schedule.alarm = alarm;
    inst.ctx.schedule.alarm_known = true;
    core.host.send_events(
        &core.actor_id,
        core.generation,
        vec![
            Event::SetAlarm(EventActorSetAlarm { alarm_ts: alarm }),
            Event::StateUpdate(EventActorStateUpdate {
                state: ActorState::Running,
            }),
        ],
    );
    tracing::debug!("actor running");
    inst.drop_stale(stale, orphans).await;
    Some(inst)
}

/// A started actor before it serves.
struct Booted<A> {
    state: A,
    /// Saved connections whose sockets closed while the actor slept.
    stale: Vec<(TunnelKey, Vec<u8>)>,
    /// Sockets the gateway kept for which nothing was saved.
    orphans: Vec<TunnelKey>,
}

/// Loads or creates the state, builds the vars, restores hibernated connections, runs
/// `on_wake`; the created state is committed before the actor reports running.
async fn boot<A: Actor>(
    ctx: &mut Ctx<A>,
    input: Option<Vec<u8>>,
    hibernating: &[TunnelKey],
) -> Result<Booted<A>, Error> {
    let hook_timeout = ctx.core.options.hook_timeout;
    let loaded = load(&ctx.core).await?;
    if let Some(entries) = loaded.schedule {
        ctx.schedule.entries = entries;
    }
    let mut state = match loaded.state {
        Some(bytes) => {
            let state: A = ciborium::from_reader(bytes.as_slice())
                .map_err(|e| Error::internal(format!("stored state does not decode: {e}")))?;
            ctx.saved_hash = Some(hash_bytes(&bytes));
            state
        }
        None => {
            let input_value = match &input {
                Some(bytes) => decode_payload(bytes)
                    .map_err(|e| Error::internal(format!("creation input does not decode: {e}")))?,
                None => Value::Null,
            };
            // `create_state` takes the input by value and `on_create` by reference; the input
            // type need not be Clone, so decode it twice.
            let decode = || {
                rivet_client_protocol::from_value::<A::Input>(&input_value).map_err(|e| {
                    Error::internal(format!("creation input has the wrong shape: {e}"))
                })
            };
            let (input, for_create) = (decode()?, decode()?);
            let mut state =
                with_timeout(hook_timeout, "create_state", A::create_state(ctx, input)).await?;
            with_timeout(hook_timeout, "on_create", state.on_create(ctx, &for_create)).await?;
            write_state(ctx, &state, true)?;
            if !ctx.core.gate.barrier().await {
                return Err(Error::internal("initial state write failed"));
            }
            state
        }
    };
    let vars = with_timeout(hook_timeout, "create_vars", A::create_vars(ctx)).await?;
    ctx.vars = Some(vars);
    let mut stale = Vec::new();
    let mut orphans: Vec<TunnelKey> = hibernating.to_vec();
    for (key, bytes) in loaded.conns {
        if !hibernating.contains(&key) {
            stale.push((key, bytes));
            continue;
        }
        orphans.retain(|k| *k != key);
        match restore_conn::<A>(&ctx.core, key, &bytes) {
            Ok(conn) => {
                tracing::debug!(conn = %conn.id, "connection restored after hibernation");
                ctx.conns.insert(conn.id.clone(), conn);
            }
            Err(e) => {
                tracing::warn!(error = %e, "saved connection does not decode; closing it");
                orphans.push(key);
                stale.push((key, bytes));
            }
        }
    }
    with_timeout(hook_timeout, "on_wake", state.on_wake(ctx)).await?;
    write_state(ctx, &state, false)?;
    let outs = ctx.core.take_outputs();
    ctx.core.gate.release(outs);
    Ok(Booted {
        state,
        stale,
        orphans,
    })
}

/// A hibernated connection from its saved record.
fn restore_conn<A: Actor>(
    core: &Arc<Core>,
    key: TunnelKey,
    bytes: &[u8],
) -> Result<Conn<A>, Error> {
    let record: ConnRecord = ciborium::from_reader(bytes)
        .map_err(|e| Error::internal(format!("saved connection does not decode: {e}")))?;
    let params = parse_params::<A>(record.params.as_deref())?;
    let state: A::ConnState = record
        .state
        .deserialized()
        .map_err(|e| Error::internal(format!("saved connection state does not decode: {e}")))?;
    let encoding = Encoding::from_name(&record.encoding).ok_or_else(|| {
        Error::internal(format!("saved connection encoding {:?}", record.encoding))
    })?;
    Ok(Conn {
        id: ConnId(record.id.into()),
        params,
        state,
        socket: Some(ConnSocket {
            key,
            encoding,
            subscriptions: record.subscriptions.into_iter().collect(),
            // Host message indexes are not checked by the gateway (§13); restart at 1.
            next_index: AtomicU16::new(1),
            hibernatable: true,
            params_json: record.params,
            last_message: None,
            saved: Some(hash_bytes(bytes)),
        }),
        core: core.clone(),
    })
}

/// What a start reads from storage.
struct Loaded {
    state: Option<Vec<u8>>,
    schedule: Option<Vec<ScheduledEvent>>,
    conns: Vec<(TunnelKey, Vec<u8>)>,
}

/// Reads the state chunks, the schedule and the saved connections (two requests in flight
/// at once, a third only for a state larger than one chunk).
async fn load(core: &Core) -> Result<Loaded, Error> {
    let first = vec![STATE_PREFIX, 0];
    let get = core.host.kv_start(
        &core.actor_id,
        KvRequestData::Get(KvGetRequest {
            keys: vec![first.clone(), SCHEDULE_KEY.to_vec()],
        }),
    )?;
    let list = core.host.kv_start(
        &core.actor_id,
        KvRequestData::List(KvListRequest {
            query: KvListQuery::Prefix(KvListPrefixQuery {
                key: vec![CONN_PREFIX],
            }),
            reverse: None,
            limit: None,
        }),
    )?;
    let (found, listed) = (answer(get).await?, answer(list).await?);
    let KvResponseData::Get(found) = found else {
        return Err(Error::internal("unexpected KV answer while loading"));
    };
    let KvResponseData::List(listed) = listed else {
        return Err(Error::internal("unexpected KV answer while loading"));
    };
    let conns = listed
        .keys
        .into_iter()
        .zip(listed.values)
        .filter_map(|(k, v)| record_tunnel(&k).map(|t| (t, v)))
        .collect();
    let mut head = None;
    let mut schedule = None;
    for (k, v) in found.keys.into_iter().zip(found.values) {
        if k == first {
            head = Some(v);
        } else if k == SCHEDULE_KEY {
            schedule = Some(
                ciborium::from_reader::<Vec<ScheduledEvent>, _>(v.as_slice()).map_err(|e| {
                    Error::internal(format!("stored schedule does not decode: {e}"))
                })?,
            );
        }
    }
    let Some(head) = head else {
        return Ok(Loaded {
            state: None,
            schedule,
            conns,
        });
    };
    let Some((&count, data)) = head.split_first() else {
        return Err(Error::internal("stored state header is empty"));
    };
    let mut bytes = data.to_vec();
    if count > 1 {
        let keys: Vec<Vec<u8>> = (1..count).map(|i| vec![STATE_PREFIX, i]).collect();
        let answer = core
            .host
            .kv(
                &core.actor_id,
                KvRequestData::Get(KvGetRequest { keys: keys.clone() }),
            )
            .await?;
        let KvResponseData::Get(rest) = answer else {
            return Err(Error::internal("unexpected KV answer while loading"));
        };
        if rest.keys != keys {
            return Err(Error::internal("stored state is missing chunks"));
        }
        for v in rest.values {
            bytes.extend_from_slice(&v);
        }
    }
    Ok(Loaded {
        state: Some(bytes),
        schedule,
        conns,
    })
}

/// Waits for a KV answer sent with `Host::kv_start`.
async fn answer(
    rx: tokio::sync::oneshot::Receiver<KvResponseData>,
) -> Result<KvResponseData, Error> {
    match rx.await {
        Ok(KvResponseData::Error(e)) => Err(KvError::Engine(e.message).into()),
        Ok(answer) => Ok(answer),
        Err(_) => Err(KvError::Closed.into()),
    }
}

/// A 64-bit hash of saved bytes: enough to tell a changed state or connection from the saved
/// one without keeping a copy of it per actor.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// CBOR of the state.
fn encode_state<A: Actor>(state: &A) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(64);
    ciborium::into_writer(state, &mut out)
        .map_err(|e| Error::internal(format!("state not serializable: {e}")))?;
    Ok(out)
}

/// Issues the write of the state (if changed, or `force`) and of the schedule (if changed),
/// and updates the engine alarm. Returns whether a write was issued.
pub(crate) fn write_state<A: Actor>(
    ctx: &mut Ctx<A>,
    state: &A,
    force: bool,
) -> Result<bool, Error> {
    let bytes = encode_state(state)?;
    let state_changed = force || ctx.saved_hash != Some(hash_bytes(&bytes));
    write_encoded(ctx, bytes, state_changed)
}

fn write_encoded<A: Actor>(
    ctx: &mut Ctx<A>,
    bytes: Vec<u8>,
    state_changed: bool,
) -> Result<bool, Error> {
    let mut keys = Vec::new();
    let mut values = Vec::new();
    if state_changed {
        let chunks: Vec<&[u8]> = if bytes.is_empty() {
            vec![&[][..]]
        } else {
            bytes.chunks(CHUNK).collect()
        };
        if chunks.len() > MAX_CHUNKS {
            return Err(Error::internal(format!(
                "state is {} bytes; at most {} bytes can be saved (keep large data in ctx.kv())",
                bytes.len(),
                CHUNK * MAX_CHUNKS
            )));
        }
        for (i, chunk) in chunks.iter().enumerate() {
            keys.push(vec![STATE_PREFIX, i as u8]);
            let mut v = Vec::with_capacity(chunk.len() + 1);
            if i == 0 {
                v.push(chunks.len() as u8);
            }
            v.extend_from_slice(chunk);
            values.push(v);
        }
    }
    if ctx.schedule.dirty {
        let mut v = Vec::new();
        ciborium::into_writer(&ctx.schedule.entries, &mut v)
            .map_err(|e| Error::internal(format!("schedule not serializable: {e}")))?;
        keys.push(SCHEDULE_KEY.to_vec());
        values.push(v);
    }
    let conns = ctx.changed_conn_records();
    if keys.is_empty() && conns.is_empty() {
        return Ok(false);
    }
    // Connection records ride along in the state's put, in further puts beyond the engine's
    // per-request limits (a turn that touched many connections).
    let mut size: usize = values.iter().map(Vec::len).sum();
    let mut saved = Vec::with_capacity(conns.len());
    for (id, key, record) in conns {
        if keys.len() >= PUT_MAX_KEYS || size + record.len() > PUT_MAX_BYTES {
            let batch = KvPutRequest {
                keys: std::mem::take(&mut keys),
                values: std::mem::take(&mut values),
            };
            ctx.core.write(KvRequestData::Put(batch))?;
            size = 0;
        }
        size += record.len();
        keys.push(key);
        saved.push((id, hash_bytes(&record)));
        values.push(record);
    }
    ctx.core
        .write(KvRequestData::Put(KvPutRequest { keys, values }))?;
    for (id, hash) in saved {
        if let Some(socket) = ctx.conns.get_mut(&id).and_then(|c| c.socket.as_mut()) {
            socket.saved = Some(hash);
        }
    }
    if state_changed {
        ctx.saved_hash = Some(hash_bytes(&bytes));
    }
    if ctx.schedule.dirty {
        ctx.schedule.dirty = false;
        let due = ctx.schedule.next_due();
        if !ctx.schedule.alarm_known || ctx.schedule.alarm != due {
            ctx.schedule.alarm = due;
            ctx.schedule.alarm_known = true;
            ctx.core.host.send_events(
                &ctx.core.actor_id,
                ctx.core.generation,
                vec![Event::SetAlarm(EventActorSetAlarm { alarm_ts: due })],
            );
        }
    }
    Ok(true)
}

async fn with_timeout<T>(
    limit: Duration,
    what: &'static str,
    fut: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::public(
            "actor",
            "callback_timed_out",
            format!("The {what} callback timed out."),
        )),
    }
}

fn report_stopped(core: &Core, code: StopCode, message: Option<String>) {
    core.host.send_events(
        &core.actor_id,
        core.generation,
        vec![Event::StateUpdate(EventActorStateUpdate {
            state: ActorState::Stopped(ActorStateStopped { code, message }),
        })],
    );
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".into()
    }
}

impl<A: Actor> Instance<A> {
    fn host(&self) -> &Arc<Host> {
        &self.ctx.core.host
    }

    fn specifier(&self) -> ActorSpecifier {
        ActorSpecifier {
            actor_id: self.ctx.core.actor_id.to_string(),
            generation: u64::from(self.ctx.core.generation),
            key: self.ctx.core.key.clone(),
        }
    }

    /// Whether nothing keeps the actor awake: hibernatable connections do not (the gateway
    /// holds their sockets while it sleeps), other sockets and `keep_awake` work do.
    fn may_sleep(&self) -> bool {
        self.ctx.core.options.can_sleep
            && self.ctx.core.keep_awake.load(Ordering::SeqCst) == 0
            && self.raw.is_empty()
            && self
                .ctx
                .conns
                .values()
                .all(|c| c.socket.as_ref().is_none_or(|s| s.hibernatable))
    }

    /// After a wake: connections whose sockets closed while the actor slept are removed
    /// (`on_disconnect` runs), sockets kept without a saved connection are closed.
    async fn drop_stale(&mut self, stale: Vec<(TunnelKey, Vec<u8>)>, orphans: Vec<TunnelKey>) {
        if stale.is_empty() && orphans.is_empty() {
            return;
        }
        for (key, bytes) in stale {
            match restore_conn::<A>(&self.ctx.core, key, &bytes) {
                Ok(conn) => {
                    let id = conn.id.clone();
                    tracing::debug!(conn = %id, "connection closed while the actor slept");
                    self.ctx.conns.insert(id.clone(), conn);
                    self.remove_conn(&id, None).await;
                }
                Err(_) => {
                    let delete = KvRequestData::Delete(KvDeleteRequest {
                        keys: vec![crate::conn::record_key(&key)],
                    });
                    if let Err(e) = self.ctx.core.write(delete) {
                        tracing::warn!(error = %e, "stale connection record not deleted");
                    }
                }
            }
        }
        for key in orphans {
            // The client reconnects on this close and gets a new connection.
            close_socket(self.host(), key, u16::MAX, 1011, "actor.stopped".into());
            self.host().forget_tunnel(&key);
        }
        self.after_turn().await;
    }

    /// Serves until the actor stops. The waiting loop keeps only `self` and the wait's two
    /// futures across its await points; everything else runs in boxed futures, so an idle
    /// actor's task stays small.
    async fn main(mut self: Box<Self>) {
        loop {
            match self.next_step() {
                Step::Wait(deadline) => {
                    let core = self.ctx.core.clone();
                    tokio::select! {
                        _ = core.wake.notified() => {}
                        _ = sleep_until(deadline) => {}
                    }
                }
                step => {
                    // Boxed in its own statement: a temporary of the enclosing statement would
                    // keep room for the whole unboxed turn in this (long-lived) future.
                    let turn = Box::pin(self.turn(step));
                    if turn.await {
                        return;
                    }
                }
            }
        }
    }

    /// What to do next, without waiting.
    fn next_step(&mut self) -> Step {
        if self.ctx.core.gate.failed() {
            return Step::Crash("a state write failed".into());
        }
        let closed = std::mem::take(
            &mut *self
                .ctx
                .core
                .raw_closed
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for key in closed {
            self.raw.remove(&key);
        }
        let now = Instant::now();
        if let Some(input) = self.ctx.core.next_input() {
            return Step::Input(input);
        }
        if let Some(job) = self.next_job() {
            let (state, ctx) = (&mut self.state, &mut self.ctx);
            if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| job(state, ctx))) {
                self.poisoned = Some(panic_message(&*p));
            }
            return Step::Ran;
        }
        let due_at = self.ctx.schedule.next_due().map(|ms| {
            let wait = u64::try_from(ms.saturating_sub(now_ms())).unwrap_or(0);
            now + Duration::from_millis(wait)
        });
        if due_at.is_some_and(|at| at <= now) {
            return Step::Schedules;
        }
        if self.flush_at.is_some_and(|at| at <= now) {
            self.flush_at = None;
            if let Err(e) = write_state(&mut self.ctx, &self.state, false) {
                tracing::error!(error = %e, "state not saved");
            }
            return Step::Ran;
        }
        let idle_at = (self.may_sleep() && !self.sleep_sent)
            .then(|| self.last_activity + self.ctx.core.options.sleep_timeout);
        if idle_at.is_some_and(|at| at <= now) {
            tracing::debug!("idle; asking to sleep");
            self.ctx.core.lock_requests().sleep = true;
            return Step::Ran;
        }
        if self.ctx.core.has_requests() {
            return Step::Ran;
        }
        let compact_at = (!self.compacted).then(|| self.last_activity + COMPACT_AFTER);
        if compact_at.is_some_and(|at| at <= now) {
            self.compact();
        }
        let compact_at = (!self.compacted).then(|| self.last_activity + COMPACT_AFTER);
        Step::Wait(
            [idle_at, due_at, self.flush_at, compact_at]
                .into_iter()
                .flatten()
                .min(),
        )
    }

    /// Runs one turn; true when the actor has stopped.
    async fn turn(&mut self, step: Step) -> bool {
        match step {
            Step::Input(Input::Lost) => {
                tracing::info!("actor given up by the engine; stopping without report");
                self.abandon();
                return true;
            }
            Step::Input(Input::Stop(reason)) => {
                self.stop(reason).await;
                return true;
            }
            Step::Input(input) => self.handle(input).await,
            Step::Schedules => self.fire_schedules().await,
            Step::Crash(why) => {
                self.crash(&why).await;
                return true;
            }
            Step::Ran | Step::Wait(_) => {}
        }
        if let Some(p) = self.poisoned.take() {
            // The error reply (and acknowledgement) of the failed action still leave.
            let outs = self.ctx.core.take_outputs();
            self.ctx.core.gate.release(outs);
            self.crash(&format!("actor code panicked: {p}")).await;
            return true;
        }
        self.after_turn().await;
        self.last_activity = Instant::now();
        self.compacted = false;
        false
    }

    /// Gives back what the actor's buffers kept from its last burst of work: an actor that
    /// stays idle costs its state and little else.
    fn compact(&mut self) {
        self.compacted = true;
        self.ctx.core.compact();
        self.ctx.conns.shrink_to_fit();
        self.ctx.touched.shrink_to_fit();
        self.conn_by_key.shrink_to_fit();
        self.raw.shrink_to_fit();
    }

    /// The next `RunCtx::update` closure.
    fn next_job(&self) -> Option<Job<A>> {
        let jobs = self.jobs.as_ref()?;
        jobs.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
    }

    /// Handles what actor code requested, then saves and releases the turn's outputs.
    async fn after_turn(&mut self) {
        loop {
            let Requests {
                sleep,
                destroy,
                disconnect,
            } = std::mem::take(&mut *self.ctx.core.lock_requests());
            let nothing = disconnect.is_empty();
            for (id, reason) in disconnect {
                self.remove_conn(&id, Some((1000, reason))).await;
            }
            let core = self.ctx.core.clone();
            if destroy && !self.destroy_sent {
                self.destroy_sent = true;
                // The turn's reply leaves once the engine recorded the destroy, so a client
                // that gets it finds the actor gone (as npm actors behave).
                let index = core.host.send_events(
                    &core.actor_id,
                    core.generation,
                    vec![Event::Intent(EventActorIntent {
                        intent: ActorIntent::Stop,
                    })],
                );
                core.gate.event(index);
                // Its acknowledgement may have come back before the gate knew to wait for it.
                if core
                    .host
                    .event_acked(&core.actor_id, core.generation, index)
                {
                    core.gate.events_acked(Some(index));
                }
            } else if sleep && !self.sleep_sent && !self.destroy_sent {
                self.sleep_sent = true;
                core.host.send_events(
                    &core.actor_id,
                    core.generation,
                    vec![Event::Intent(EventActorIntent {
                        intent: ActorIntent::Sleep,
                    })],
                );
            }
            if nothing {
                break;
            }
        }
        self.end_turn();
    }

    /// Saves a changed state (strict: now, gating the outputs; relaxed: within the
    /// interval) and releases the turn's outputs.
    fn end_turn(&mut self) {
        let mut bytes = match encode_state(&self.state) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "state not saved");
                let outs = self.ctx.core.take_outputs();
                self.ctx.core.gate.release(outs);
                return;
            }
        };
        let mut changed = self.ctx.saved_hash != Some(hash_bytes(&bytes));
        if changed {
            self.state.on_state_change(&mut self.ctx);
            if let Ok(again) = encode_state(&self.state) {
                bytes = again;
                changed = self.ctx.saved_hash != Some(hash_bytes(&bytes));
            }
        }
        let outs = self.ctx.core.take_outputs();
        match self.ctx.core.options.persistence {
            Persistence::Strict => {
                if let Err(e) = write_encoded(&mut self.ctx, bytes, changed) {
                    tracing::error!(error = %e, "state not saved");
                }
                self.ctx.core.gate.release(outs);
            }
            Persistence::Relaxed { interval } => {
                if (changed || self.ctx.schedule.dirty) && self.flush_at.is_none() {
                    self.flush_at = Some(Instant::now() + interval);
                }
                for out in outs {
                    out(true);
                }
            }
        }
    }

    async fn handle(&mut self, input: Input) {
        match input {
            Input::Http { key, request } => self.http(key, *request).await,
            Input::WsOpen { key, open } => self.ws_open(key, *open).await,
            Input::WsMessage { key, index, msg } => self.ws_message(key, index, msg).await,
            Input::WsClose { key, close } => {
                if let Some(id) = self.conn_by_key.get(&key).cloned() {
                    self.remove_conn(&id, None).await;
                } else if let Some(tx) = self.raw.remove(&key) {
                    let _ = tx.send(RawIn::Closed {
                        code: close.code,
                        reason: close.reason,
                    });
                }
            }
            Input::Stop(_) | Input::Lost => {}
        }
    }

    /// Runs an action with the timeout and `on_before_action_response`.
    async fn run_action(&mut self, name: &str, args: Value) -> Result<Value, Error> {
        let limit = self.ctx.core.options.action_timeout;
        let mark = self.ctx.core.outputs_mark();
        let Some(fut) = self.state.dispatch(&mut self.ctx, name, args) else {
            return Err(Error::public(
                "actor",
                "action_not_found",
                format!("Action `{name}` was not found."),
            ));
        };
        let result = match tokio::time::timeout(limit, AssertUnwindSafe(fut).catch_unwind()).await {
            Err(_) => Err(Error::public(
                "actor",
                "action_timed_out",
                "Action timed out",
            )),
            Ok(Err(p)) => {
                let msg = panic_message(&*p);
                tracing::error!(action = name, panic = %msg, "action panicked");
                self.ctx.core.truncate_outputs(mark);
                self.poisoned = Some(msg.clone());
                Err(Error::internal(format!("action panicked: {msg}")))
            }
            Ok(Ok(r)) => r,
        };
        let result = match result {
            Ok(out) => {
                self.state
                    .on_before_action_response(&mut self.ctx, name, out)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if e.is_internal() {
                tracing::error!(action = name, error = %e, "action failed");
            } else {
                tracing::debug!(action = name, error = %e, "action failed");
            }
        }
        result
    }

    /// Runs the connection hooks and registers the connection.
    async fn connect(
        &mut self,
        params: A::ConnParams,
        socket: Option<ConnSocket>,
    ) -> Result<ConnId, Error> {
        let limit = self.ctx.core.options.hook_timeout;
        with_timeout(
            limit,
            "onBeforeConnect",
            self.state.on_before_connect(&mut self.ctx, &params),
        )
        .await?;
        let conn_state = with_timeout(
            limit,
            "createConnState",
            self.state.create_conn_state(&mut self.ctx, &params),
        )
        .await?;
        let id = ConnId::random();
        let key = socket.as_ref().map(|s| s.key);
        self.ctx.conns.insert(
            id.clone(),
            Conn {
                id: id.clone(),
                params,
                state: conn_state,
                socket,
                core: self.ctx.core.clone(),
            },
        );
        if let Some(key) = key {
            self.conn_by_key.insert(key, id.clone());
        }
        let previous = self.ctx.current.replace(id.clone());
        let connected = with_timeout(
            limit,
            "onConnect",
            self.state.on_connect(&mut self.ctx, id.clone()),
        )
        .await;
        self.ctx.current = previous;
        if let Err(e) = connected {
            self.ctx.conns.shift_remove(&id);
            if let Some(key) = key {
                self.conn_by_key.remove(&key);
            }
            return Err(e);
        }
        Ok(id)
    }

    /// Runs `on_disconnect` and forgets the connection; closes its socket with `close`.
    async fn remove_conn(&mut self, id: &ConnId, close: Option<(u16, String)>) {
        if !self.ctx.conns.contains_key(id) {
            return;
        }
        let limit = self.ctx.core.options.hook_timeout;
        let previous = self.ctx.current.replace(id.clone());
        if let Err(e) = with_timeout(
            limit,
            "onDisconnect",
            self.state.on_disconnect(&mut self.ctx, id.clone()),
        )
        .await
        {
            tracing::warn!(error = %e, conn = %id, "onDisconnect failed");
        }
        self.ctx.current = previous.filter(|p| p != id);
        let Some(conn) = self.ctx.conns.shift_remove(id) else {
            return;
        };
        if let Some(socket) = conn.socket {
            self.conn_by_key.remove(&socket.key);
            self.host().forget_tunnel(&socket.key);
            if socket.saved.is_some() {
                let delete = KvRequestData::Delete(KvDeleteRequest {
                    keys: vec![crate::conn::record_key(&socket.key)],
                });
                match self.ctx.core.write(delete) {
                    Ok(()) => {}
                    Err(e) => {
                        tracing::error!(error = %e, conn = %id, "saved connection not deleted")
                    }
                }
            }
            if let Some((code, reason)) = close {
                let host = self.host().clone();
                let index = socket.next_index.fetch_add(1, Ordering::Relaxed);
                self.ctx.core.push_out(Box::new(move |_| {
                    host.tunnel(
                        socket.key,
                        index,
                        ToRivetTunnelMessageKind::WebSocketClose(ToRivetWebSocketClose {
                            code: Some(code),
                            reason: Some(reason),
                            hibernate: false,
                        }),
                    );
                }));
            }
        }
    }

    async fn http(&mut self, key: TunnelKey, request: ToEnvoyRequestStart) {
        let encoding = routes::http_encoding(&request.headers);
        let mut response = match routes::route(&request.method, &request.path) {
            Route::Action(name) => self.http_action(&name, &request).await,
            Route::Request(path) => self.http_raw(path, request).await,
            Route::Metadata => routes::plain(
                200,
                "application/json",
                br#"{"runtime":"rivetkit","type":"local","version":"2.3.19"}"#,
            ),
            Route::Health => routes::plain(200, "text/plain; charset=utf-8", b"ok"),
            Route::Root => routes::plain(
                200,
                "text/plain; charset=utf-8",
                b"This is an RivetKit actor.\n\nLearn more at https://rivetkit.org",
            ),
            Route::Metrics => routes::plain(200, "text/plain; version=0.0.4", b""),
            Route::MethodNotAllowed => {
                let err = routes::public(
                    "actor",
                    "method_not_allowed",
                    format!("Method {} is not allowed.", request.method),
                );
                routes::error_response(&err, 405, encoding, &self.specifier())
            }
            Route::NotFound(path) => {
                let err = routes::route_not_found(&path);
                routes::error_response(&err, 404, encoding, &self.specifier())
            }
        };
        let host = self.host().clone();
        let mut fallback = routes::error_response(
            &routes::public("rivetkit", "internal_error", "An internal error occurred"),
            500,
            encoding,
            &self.specifier(),
        );
        self.add_actor_headers(&mut response);
        self.add_actor_headers(&mut fallback);
        self.ctx.core.push_out(Box::new(move |ok| {
            let answer = if ok { response } else { fallback };
            host.tunnel(key, 0, ToRivetTunnelMessageKind::ResponseStart(answer));
        }));
    }

    /// The actor's id, generation and key, which npm puts on every response of an actor
    /// (errors and raw requests too); headers the handler set are kept.
    fn add_actor_headers(&self, response: &mut ToRivetResponseStart) {
        let spec = self.specifier();
        let headers = &mut response.headers;
        headers
            .entry("x-rivet-actor".into())
            .or_insert(spec.actor_id);
        headers
            .entry("x-rivet-actor-generation".into())
            .or_insert_with(|| spec.generation.to_string());
        if let Some(k) = spec.key {
            headers.entry("x-rivet-actor-key".into()).or_insert(k);
        }
    }

    async fn http_action(
        &mut self,
        name: &str,
        request: &ToEnvoyRequestStart,
    ) -> ToRivetResponseStart {
        let encoding = routes::http_encoding(&request.headers);
        let spec = self.specifier();
        let fail =
            |err: PublicError, status: u16| routes::error_response(&err, status, encoding, &spec);
        let body = request.body.as_deref().unwrap_or_default();
        let options = self.ctx.core.options.clone();
        if body.len() > options.max_incoming_message_size {
            return fail(
                routes::public("message", "incoming_too_long", "Incoming message too long"),
                400,
            );
        }
        let Ok(decoded) = HttpActionRequest::decode(body, encoding) else {
            return fail(routes::decode_failure(), 400);
        };
        let params = match parse_params::<A>(
            request
                .headers
                .get("x-rivet-conn-params")
                .map(String::as_str),
        ) {
            Ok(p) => p,
            Err(_) => return fail(routes::decode_failure(), 400),
        };
        let conn = match self.connect(params, None).await {
            Ok(id) => id,
            Err(e) => {
                let p = e.to_public();
                let status = routes::status_of(&p);
                return fail(p, status);
            }
        };
        let previous = self.ctx.current.replace(conn.clone());
        let result = self.run_action(name, decoded.args).await;
        self.ctx.current = previous;
        self.remove_conn(&conn, None).await;
        match result {
            Ok(output) => {
                let body = HttpActionResponse { output }.encode(encoding);
                if body.len() > options.max_outgoing_message_size {
                    return fail(
                        routes::public("message", "outgoing_too_long", "Outgoing message too long"),
                        400,
                    );
                }
                let mut headers = Headers::new();
                headers.insert("content-type".into(), encoding.content_type().into());
                ToRivetResponseStart {
                    status: 200,
                    headers,
                    body: Some(body),
                    stream: false,
                }
            }
            Err(e) => {
                let p = e.to_public();
                let status = routes::status_of(&p);
                fail(p, status)
            }
        }
    }

    async fn http_raw(
        &mut self,
        path: String,
        request: ToEnvoyRequestStart,
    ) -> ToRivetResponseStart {
        let req = crate::http::Request {
            method: request.method,
            path,
            headers: request.headers.into_iter().collect(),
            body: request.body.unwrap_or_default(),
        };
        let limit = self.ctx.core.options.action_timeout;
        let answered = tokio::time::timeout(limit, self.state.on_request(&mut self.ctx, req)).await;
        match answered {
            Ok(Ok(Some(resp))) => {
                let mut headers = Headers::new();
                for (k, v) in resp.headers {
                    headers.insert(k.to_ascii_lowercase(), v);
                }
                ToRivetResponseStart {
                    status: resp.status,
                    headers,
                    body: Some(resp.body),
                    stream: false,
                }
            }
            // An empty 404, as npm answers when no handler takes the request: an
            // `actor.not_found` body would make the npm client take the actor for gone and
            // re-resolve it for seconds before returning the 404.
            Ok(Ok(None)) => ToRivetResponseStart {
                status: 404,
                headers: Headers::new(),
                body: Some(Vec::new()),
                stream: false,
            },
            Ok(Err(e)) => {
                if e.is_internal() {
                    tracing::error!(error = %e, "onRequest failed");
                }
                let p = e.to_public();
                routes::error_response(&p, 500, Encoding::Json, &self.specifier())
            }
            Err(_) => routes::error_response(
                &routes::public("actor", "action_timed_out", "Request timed out."),
                408,
                Encoding::Json,
                &self.specifier(),
            ),
        }
    }

    async fn ws_open(&mut self, key: TunnelKey, open: ToEnvoyWebSocketOpen) {
        let host = self.host().clone();
        let path = open.path.split('?').next().unwrap_or("/").to_string();
        host.tunnel(
            key,
            0,
            ToRivetTunnelMessageKind::WebSocketOpen(ToRivetWebSocketOpen {
                can_hibernate: path == "/connect" && self.ctx.core.options.hibernatable_connections,
            }),
        );
        if path == "/connect" {
            self.connect_socket(key, open).await;
        } else if path == "/inspector/connect" {
            close_socket(&host, key, 1, 1011, "actor.not_found".into());
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            self.raw.insert(key, tx);
            let ws = WebSocket {
                key,
                host: host.clone(),
                rx,
                next_index: 1,
                closed: false,
                path: open.path,
                headers: open.headers.into_iter().collect(),
                on_close: Some(self.ctx.core.clone()),
            };
            let limit = self.ctx.core.options.hook_timeout;
            if let Err(e) = with_timeout(
                limit,
                "onWebSocket",
                self.state.on_websocket(&mut self.ctx, ws),
            )
            .await
            {
                tracing::warn!(error = %e, "onWebSocket failed");
            }
        }
    }

    async fn connect_socket(&mut self, key: TunnelKey, open: ToEnvoyWebSocketOpen) {
        let host = self.host().clone();
        let protocols = routes::socket_protocols(&open.headers);
        let encoding = match protocols.encoding {
            None => Encoding::Json,
            Some(Ok(e)) => e,
            Some(Err(name)) => {
                tracing::debug!(encoding = %name, "unsupported websocket encoding");
                close_socket(
                    &host,
                    key,
                    1,
                    1003,
                    "actor.unsupported_websocket_encoding".into(),
                );
                host.forget_tunnel(&key);
                return;
            }
        };
        let socket = ConnSocket {
            key,
            encoding,
            subscriptions: Default::default(),
            next_index: AtomicU16::new(1),
            hibernatable: self.ctx.core.options.hibernatable_connections,
            params_json: protocols.params.clone(),
            last_message: None,
            saved: None,
        };
        let refused = match parse_params::<A>(protocols.params.as_deref()) {
            Err(e) => Err(e),
            Ok(params) => match self.connect(params, Some(socket)).await {
                Ok(id) => {
                    // Saved with this turn's write, so Init leaves once the connection would
                    // survive a sleep.
                    self.ctx.touched.push(id.clone());
                    let init = ToClient::Init(Init {
                        actor_id: self.ctx.core.actor_id.to_string(),
                        connection_id: id.to_string(),
                    });
                    if let Some(s) = self.ctx.conns.get(&id).and_then(|c| c.socket.as_ref()) {
                        s.push(&self.ctx.core, &init);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = refused {
            let p = e.to_public();
            let msg = ToClient::Error(ErrorMessage {
                group: p.group.clone(),
                code: p.code.clone(),
                message: p.message.clone(),
                metadata: p.metadata.clone(),
                action_id: None,
                actor: Some(self.specifier()),
            });
            let frame = crate::conn::encode_frame(&msg, encoding);
            let reason = format!("{}.{}", p.group, p.code);
            self.ctx.core.push_out(Box::new(move |_| {
                host.tunnel(key, 1, ToRivetTunnelMessageKind::WebSocketMessage(frame));
                close_socket(&host, key, 2, 1011, reason);
                host.forget_tunnel(&key);
            }));
        }
    }

    async fn ws_message(&mut self, key: TunnelKey, index: u16, msg: WebSocketMessage) {
        if let Some(tx) = self.raw.get(&key) {
            let m = if msg.binary {
                WsMessage::Binary(msg.data)
            } else {
                match String::from_utf8(msg.data) {
                    Ok(t) => WsMessage::Text(t),
                    Err(_) => {
                        close_socket(self.host(), key, 0, 1007, "message.invalid_utf8".into());
                        self.raw.remove(&key);
                        return;
                    }
                }
            };
            let _ = tx.send(RawIn::Message(m));
            return;
        }
        let Some(id) = self.conn_by_key.get(&key).cloned() else {
            return;
        };
        let Some(socket) = self.ctx.conns.get_mut(&id).and_then(|c| c.socket.as_mut()) else {
            return;
        };
        let encoding = socket.encoding;
        if socket.hibernatable {
            // The gateway keeps each message until acknowledged; the acknowledgement leaves
            // with the turn's outputs, after its state is saved.
            let seen = socket.seen(index);
            socket.last_message = Some(index);
            self.ctx.core.push_ack(socket, index);
            if seen {
                tracing::debug!(index, "message delivered again; skipped");
                return;
            }
            self.ctx.touched.push(id.clone());
        }
        if msg.data.len() > self.ctx.core.options.max_incoming_message_size {
            self.remove_conn(&id, Some((1011, "message.incoming_too_long".into())))
                .await;
            return;
        }
        let decoded = ToServer::decode(&msg.data, encoding);
        match decoded {
            Ok(ToServer::ActionRequest(req))
                if !matches!(req.args, Value::Undefined) || encoding == Encoding::Bare =>
            {
                let previous = self.ctx.current.replace(id.clone());
                let result = self.run_action(&req.name, req.args).await;
                self.ctx.current = previous;
                let frame = match result {
                    Ok(output) => {
                        let reply = ToClient::ActionResponse(ActionResponse { id: req.id, output });
                        let frame = crate::conn::encode_frame(&reply, encoding);
                        if frame.data.len() > self.ctx.core.options.max_outgoing_message_size {
                            let too_long = routes::public(
                                "message",
                                "outgoing_too_long",
                                "Outgoing message too long",
                            );
                            crate::conn::encode_frame(&self.error_reply(req.id, too_long), encoding)
                        } else {
                            frame
                        }
                    }
                    Err(e) => crate::conn::encode_frame(
                        &self.error_reply(req.id, e.to_public()),
                        encoding,
                    ),
                };
                if let Some(s) = self.ctx.conns.get(&id).and_then(|c| c.socket.as_ref()) {
                    s.push_frame(&self.ctx.core, frame);
                }
            }
            Ok(ToServer::SubscriptionRequest(sub)) => {
                if let Some(s) = self.ctx.conns.get_mut(&id).and_then(|c| c.socket.as_mut()) {
                    if sub.subscribe {
                        s.subscriptions.insert(sub.event_name);
                    } else {
                        s.subscriptions.remove(&sub.event_name);
                    }
                }
            }
            Ok(_) | Err(_) => {
                tracing::debug!("undecodable message on a connection; closing it");
                self.remove_conn(&id, Some((1011, "actor.invalid_request".into())))
                    .await;
            }
        }
    }

    fn error_reply(&self, action_id: u64, p: PublicError) -> ToClient {
        ToClient::Error(ErrorMessage {
            group: p.group,
            code: p.code,
            message: p.message,
            metadata: p.metadata,
            action_id: Some(action_id),
            actor: Some(self.specifier()),
        })
    }

    async fn fire_schedules(&mut self) {
        let due = self.ctx.schedule.take_due(now_ms());
        for event in due {
            let args = decode_payload(&event.args).unwrap_or(Value::Array(Vec::new()));
            tracing::debug!(action = %event.action, id = %event.id, "scheduled action due");
            if let Err(e) = self.run_action(&event.action, args).await {
                tracing::warn!(action = %event.action, error = %e, "scheduled action failed");
            }
        }
    }

    /// A graceful stop: hooks, final save, sockets closed, then `Stopped`.
    async fn stop(&mut self, reason: StopActorReason) {
        let destroy = matches!(
            reason,
            StopActorReason::Destroy | StopActorReason::StopIntent
        );
        tracing::debug!(?reason, "stopping");
        self.signal_stop();
        let grace = self.ctx.core.options.sleep_grace;
        let hook = if destroy {
            with_timeout(grace, "onDestroy", self.state.on_destroy(&mut self.ctx)).await
        } else {
            with_timeout(grace, "onSleep", self.state.on_sleep(&mut self.ctx)).await
        };
        if let Err(e) = hook {
            tracing::warn!(error = %e, "stop hook failed");
        }
        let ids: Vec<ConnId> = self.ctx.conns.keys().cloned().collect();
        for id in ids {
            let hibernates = !destroy
                && self
                    .ctx
                    .conns
                    .get(&id)
                    .and_then(|c| c.socket.as_ref())
                    .is_some_and(|s| s.hibernatable);
            if hibernates {
                self.hibernate_conn(&id);
            } else {
                self.remove_conn(&id, Some((1011, "actor.stopped".into())))
                    .await;
            }
        }
        for key in std::mem::take(&mut self.raw).into_keys() {
            close_socket(self.host(), key, u16::MAX, 1011, "actor.stopped".into());
        }
        self.after_turn().await;
        if self.flush_at.take().is_some() {
            if let Err(e) = write_state(&mut self.ctx, &self.state, false) {
                tracing::error!(error = %e, "final state save failed");
            }
        }
        let saved = tokio::time::timeout(grace, self.ctx.core.gate.barrier())
            .await
            .unwrap_or(false);
        if let Some(task) = self.run_task.take() {
            task.abort();
        }
        let core = self.ctx.core.clone();
        if saved {
            report_stopped(&core, StopCode::Ok, None);
        } else {
            report_stopped(
                &core,
                StopCode::Error,
                Some("final state save failed".into()),
            );
        }
        finish(&core);
    }

    /// Leaves a hibernatable connection to the gateway while the actor stops: its record is
    /// saved with the final write, then the socket is handed over (`hibernate: true`).
    fn hibernate_conn(&mut self, id: &ConnId) {
        let Some(socket) = self.ctx.conns.get(id).and_then(|c| c.socket.as_ref()) else {
            return;
        };
        let (key, index) = (
            socket.key,
            socket.next_index.fetch_add(1, Ordering::Relaxed),
        );
        self.ctx.touched.push(id.clone());
        let host = self.host().clone();
        self.ctx.core.push_out(Box::new(move |_| {
            host.tunnel(
                key,
                index,
                ToRivetTunnelMessageKind::WebSocketClose(ToRivetWebSocketClose {
                    code: None,
                    reason: None,
                    hibernate: true,
                }),
            );
        }));
    }

    /// Stops after a failure; the engine restarts the actor on its next request or alarm.
    /// Hibernatable connections stay with the gateway (their saved records are what the next
    /// start restores); other sockets are closed.
    async fn crash(&mut self, why: &str) {
        tracing::error!(reason = why, "actor crashed");
        self.signal_stop();
        if let Some(task) = self.run_task.take() {
            task.abort();
        }
        let host = self.host().clone();
        let mut closes: Vec<Out> = Vec::new();
        for conn in self.ctx.conns.values() {
            let Some(socket) = &conn.socket else { continue };
            let hibernate = socket.hibernatable && socket.saved.is_some();
            let (key, index) = (
                socket.key,
                socket.next_index.fetch_add(1, Ordering::Relaxed),
            );
            let host = host.clone();
            closes.push(Box::new(move |_| {
                host.tunnel(
                    key,
                    index,
                    ToRivetTunnelMessageKind::WebSocketClose(ToRivetWebSocketClose {
                        code: (!hibernate).then_some(1011),
                        reason: (!hibernate).then(|| "actor.crashed".to_string()),
                        hibernate,
                    }),
                );
                host.forget_tunnel(&key);
            }));
        }
        // After the replies already handed to the gate.
        self.ctx.core.gate.release(closes);
        let grace = self.ctx.core.options.sleep_grace;
        let _ = tokio::time::timeout(grace, self.ctx.core.gate.barrier()).await;
        for key in std::mem::take(&mut self.raw).into_keys() {
            close_socket(&host, key, u16::MAX, 1011, "actor.crashed".into());
        }
        let core = self.ctx.core.clone();
        report_stopped(&core, StopCode::Error, Some(why.to_string()));
        finish(&core);
    }

    fn abandon(&mut self) {
        self.signal_stop();
        if let Some(task) = self.run_task.take() {
            task.abort();
        }
        finish(&self.ctx.core);
    }

    /// Tells `run` the actor is stopping.
    fn signal_stop(&self) {
        if let Some(tx) = &self.stop_tx {
            let _ = tx.send(true);
        }
    }
}

fn close_socket(host: &Host, key: TunnelKey, index: u16, code: u16, reason: String) {
    host.tunnel(
        key,
        index,
        ToRivetTunnelMessageKind::WebSocketClose(ToRivetWebSocketClose {
            code: Some(code),
            reason: Some(reason),
            hibernate: false,
        }),
    );
}

fn parse_params<A: Actor>(text: Option<&str>) -> Result<A::ConnParams, Error> {
    let parsed = match text {
        Some(t) => serde_json::from_str::<A::ConnParams>(t),
        None => serde_json::from_value::<A::ConnParams>(serde_json::Value::Null),
    };
    parsed.map_err(|e| {
        Error::public(
            "actor",
            "invalid_request",
            format!("invalid connection parameters: {e}"),
        )
    })
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Tiny {
        n: u64,
    }

    #[crate::actor]
    impl Tiny {
        async fn bump(&mut self) -> u64 {
            self.n += 1;
            self.n
        }
    }

    /// What an idle actor keeps besides its state: its task (the `run` future, holding the
    /// boxed `Instance`) and `Core`. The goal is ≤ 2 KiB per idle actor.
    #[test]
    fn an_idle_actor_stays_small() {
        let (host, _rx) = Host::detached();
        let start = Start {
            actor_id: "a".into(),
            generation: 1,
            name: "tiny".into(),
            key: None,
            input: None,
            hibernating: Vec::new(),
        };
        let core = Arc::new(Core::new(host, &start, Arc::new(ActorOptions::default())));
        let task = run::<Tiny>(core, Box::new(start));
        let (task, core, input) = (
            std::mem::size_of_val(&task),
            std::mem::size_of::<Core>(),
            std::mem::size_of::<Input>(),
        );
        let instance = std::mem::size_of::<Instance<Tiny>>();
        eprintln!("run future {task} B, Core {core} B, Input {input} B, Instance {instance} B");
        assert!(input <= 64, "Input is {input} bytes: box large variants");
        assert!(core <= 512, "Core is {core} bytes");
        assert!(task <= 512, "the actor task's future is {task} bytes");
        assert!(instance <= 512, "Instance is {instance} bytes");
    }
}
