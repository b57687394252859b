//! Rust SDK benchmark: Rust actors (`rivetkit`) on our engine against npm rivetkit 2.3.19 on the
//! reference engine, side by side in one run, with the same client (`rivetkit-client`) for both.
//! Figures and definitions are recorded in docs/benchmarks.md ("Rust SDK").
//!
//! Targets: *ours strict* (`bench`, [`rivetkit::Persistence::Strict`]), *ours relaxed*
//! (`benchRelaxed`, saved at most every second) — both on one engine and one Rust host process
//! — and *reference* (npm's `bench` actor). Every phase runs for each target in turn; the order
//! of the targets alternates between rounds, so that drift in machine load hits all of them.
//!
//! Phases (per round):
//! 1. sequential action round trip over HTTP (getForId handle, kept-alive connection): `ping`
//!    and `increment` (and on the reference `incrementSaved`, which awaits its save);
//! 2. the same over a connection (`connect()`, then actions over the socket);
//! 3. throughput: `tp_callers` concurrent callers over `tp_actors` actors (all woken first;
//!    caller i calls actors i, i + callers, …), `ping` and `increment`, over HTTP and over one
//!    connection per actor: actions/s;
//! 4. create + first action: `get_or_create` with a new key, then `ping`;
//! 5. wake + first action: `goToSleep`, wait until `GET /actors` shows `sleep_ts`, then time
//!    `ping`;
//! 6. broadcast: `fan` connections listen to `tick` on one actor; time from calling
//!    `broadcast(seq)` over HTTP until every connection got `seq`.
//!
//! After the rounds, once per stack: host RSS before and after waking `mem_actors` actors
//! (`benchAwake`, one `ping` each, then idle).

pub mod actors;
pub mod stacks;

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rivet_bench_engine::http::Conn;
use rivetkit_client::{ActorHandle, Client, Connection, Value};
use serde::de::IgnoredAny;
use tokio::sync::oneshot;

pub use stacks::{EngineLaunch, ReferenceLaunch, Stack, Which};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How to run our engine.
    pub engine: EngineLaunch,
    /// The binary that serves the Rust actors (`<bin> host --endpoint URL`).
    pub host_bin: PathBuf,
    /// The reference stack; `None` skips it.
    pub reference: Option<ReferenceLaunch>,
    /// Rounds of every phase.
    pub rounds: usize,
    /// Sequential calls per action, transport and round on our targets (after warm-up).
    pub seq_calls: usize,
    /// The same on the reference.
    pub seq_calls_reference: usize,
    /// Calls before the sequential measurement.
    pub warmup: usize,
    /// Length of each throughput measurement.
    pub tp_duration: Duration,
    /// Concurrent callers.
    pub tp_callers: usize,
    /// Actors the callers share.
    pub tp_actors: usize,
    /// Creates per round on our targets.
    pub creates: usize,
    /// Creates per round on the reference.
    pub creates_reference: usize,
    /// Wakes per round on our targets.
    pub wakes: usize,
    /// Wakes per round on the reference.
    pub wakes_reference: usize,
    /// Connections listening to one actor.
    pub fan: usize,
    /// Timed broadcasts per round.
    pub broadcasts: usize,
    /// Actors woken for the memory figure on our host.
    pub mem_actors: usize,
    /// The same on the npm host.
    pub mem_actors_reference: usize,
    /// Concurrent wakes in the memory phase.
    pub mem_concurrency: usize,
    /// Time between the last wake and the RSS reading (and before the first reading).
    pub mem_settle: Duration,
    /// Targets to measure (`strict`, `relaxed`, `reference`); all by default (the reference
    /// only when [`Options::reference`] is set).
    pub targets: Vec<String>,
    /// Phases to run (names in [`PHASES`]); all by default.
    pub phases: Vec<String>,
    /// Count the Rust host's live heap bytes (see [`actors::CountingAlloc`]) for the memory
    /// figure; costs ~4 % of the host's CPU, so off for latency and throughput runs.
    pub count_heap: bool,
    /// Print progress to stderr.
    pub verbose: bool,
}

/// Target names for [`Options::targets`].
pub const TARGETS: [&str; 3] = ["strict", "relaxed", "reference"];

/// Phase names, in the order they run (`memory` runs once, after the rounds).
pub const PHASES: [&str; 7] = [
    "http",
    "conn",
    "throughput",
    "create",
    "wake",
    "broadcast",
    "memory",
];

impl Options {
    /// The measured run.
    pub fn full(
        engine_bin: PathBuf,
        host_bin: PathBuf,
        reference: Option<ReferenceLaunch>,
    ) -> Options {
        Options {
            engine: EngineLaunch::Binary(engine_bin),
            host_bin,
            reference,
            rounds: 3,
            seq_calls: 1000,
            seq_calls_reference: 300,
            warmup: 50,
            tp_duration: Duration::from_secs(5),
            tp_callers: 64,
            tp_actors: 100,
            creates: 200,
            creates_reference: 20,
            wakes: 30,
            wakes_reference: 10,
            fan: 100,
            broadcasts: 20,
            mem_actors: 10_000,
            mem_actors_reference: 300,
            mem_concurrency: 8,
            mem_settle: Duration::from_secs(5),
            phases: PHASES.map(String::from).to_vec(),
            targets: TARGETS.map(String::from).to_vec(),
            count_heap: false,
            verbose: true,
        }
    }

    /// A few-second run of every phase, our stack only, engine in-process.
    pub fn smoke(host_bin: PathBuf) -> Options {
        Options {
            engine: EngineLaunch::InProcess,
            host_bin,
            reference: None,
            rounds: 1,
            seq_calls: 10,
            seq_calls_reference: 10,
            warmup: 2,
            tp_duration: Duration::from_millis(300),
            tp_callers: 4,
            tp_actors: 6,
            creates: 3,
            creates_reference: 3,
            wakes: 2,
            wakes_reference: 2,
            fan: 5,
            broadcasts: 2,
            mem_actors: 20,
            mem_actors_reference: 20,
            mem_concurrency: 4,
            mem_settle: Duration::from_millis(200),
            phases: PHASES.map(String::from).to_vec(),
            targets: TARGETS.map(String::from).to_vec(),
            count_heap: true,
            verbose: false,
        }
    }
}

/// Latency samples in milliseconds (the engine benchmark's).
pub use rivet_bench_engine::Stats;

/// Throughput measurements (actions/s), one per round.
#[derive(Debug, Clone, Default)]
pub struct Rates {
    per_round: Vec<f64>,
    /// Calls that failed.
    pub errors: u64,
    /// HTTP connections the client opened during the measurements (HTTP only).
    pub connections_opened: u64,
}

impl Rates {
    /// Number of measurements.
    pub fn count(&self) -> usize {
        self.per_round.len()
    }

    /// Median of the rounds; NaN without any.
    pub fn median(&self) -> f64 {
        let mut s = self.per_round.clone();
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            f64::NAN
        } else {
            s[(s.len() - 1) / 2]
        }
    }
}

/// One target: a stack and the actor name measured on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Our engine, Rust actor with strict persistence.
    OursStrict,
    /// Our engine, Rust actor with relaxed persistence.
    OursRelaxed,
    /// The reference engine, npm actor.
    Reference,
}

impl Target {
    /// Column label.
    pub fn label(self) -> &'static str {
        match self {
            Target::OursStrict => "ours strict",
            Target::OursRelaxed => "ours relaxed",
            Target::Reference => "reference",
        }
    }

    /// The actor name.
    pub fn actor(self) -> &'static str {
        match self {
            Target::OursStrict => actors::STRICT,
            Target::OursRelaxed => actors::RELAXED,
            Target::Reference => "bench",
        }
    }

    /// The stack it runs on.
    pub fn which(self) -> Which {
        match self {
            Target::OursStrict | Target::OursRelaxed => Which::Ours,
            Target::Reference => Which::Reference,
        }
    }
}

/// Everything measured on one target.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Which target.
    pub target: Target,
    /// Sequential `ping` over HTTP.
    pub http_ping: Stats,
    /// Sequential `increment` over HTTP.
    pub http_increment: Stats,
    /// Sequential `incrementSaved` over HTTP (reference only).
    pub http_increment_saved: Stats,
    /// Sequential `ping` over a connection.
    pub conn_ping: Stats,
    /// Sequential `increment` over a connection.
    pub conn_increment: Stats,
    /// Throughput, `ping` over HTTP.
    pub tp_http_ping: Rates,
    /// Throughput, `increment` over HTTP.
    pub tp_http_increment: Rates,
    /// Throughput, `ping` over connections.
    pub tp_conn_ping: Rates,
    /// Throughput, `increment` over connections.
    pub tp_conn_increment: Rates,
    /// Create + first action.
    pub create: Stats,
    /// Wake + first action.
    pub wake: Stats,
    /// `goToSleep` sent → `sleep_ts` seen (context for the wake figure).
    pub sleep: Stats,
    /// Broadcast → every connection has the event.
    pub broadcast: Stats,
    /// CPU used by the engine, the host and this process (the client) during each sequential
    /// and throughput measurement (`"HTTP `ping`"`, …), summed over rounds: (calls, usage).
    pub cpu: Vec<(String, u64, Usage)>,
}

impl Figures {
    fn add_cpu(&mut self, what: &str, calls: usize, used: Usage) {
        match self.cpu.iter_mut().find(|(w, _, _)| w == what) {
            Some((_, c, u)) => {
                *c += calls as u64;
                for i in 0..3 {
                    u.ns[i] += used.ns[i];
                    u.runs[i] += used.runs[i];
                }
            }
            None => self.cpu.push((what.to_string(), calls as u64, used)),
        }
    }

    fn new(target: Target) -> Figures {
        Figures {
            target,
            http_ping: Stats::default(),
            http_increment: Stats::default(),
            http_increment_saved: Stats::default(),
            conn_ping: Stats::default(),
            conn_increment: Stats::default(),
            tp_http_ping: Rates::default(),
            tp_http_increment: Rates::default(),
            tp_conn_ping: Rates::default(),
            tp_conn_increment: Rates::default(),
            create: Stats::default(),
            wake: Stats::default(),
            sleep: Stats::default(),
            broadcast: Stats::default(),
            cpu: Vec::new(),
        }
    }
}

/// Host memory of one stack.
#[derive(Debug, Clone)]
pub struct Memory {
    /// Which stack.
    pub which: Which,
    /// Actors woken.
    pub actors: usize,
    /// Host RSS before, KiB.
    pub before_kib: u64,
    /// Host RSS after, KiB.
    pub after_kib: u64,
    /// How long waking them took.
    pub wake_time: Duration,
    /// Host RSS once they have all been put to sleep, KiB.
    pub asleep_kib: u64,
    /// Live heap bytes in the host (counted by its allocator; our host only) before, after
    /// waking and after they slept.
    pub heap: Option<[u64; 3]>,
}

impl Memory {
    /// (after − before) / actors, bytes.
    pub fn per_actor_bytes(&self) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) * 1024.0 / self.actors as f64
    }
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per target, in [`Target`] order (the reference only when it ran).
    pub figures: Vec<Figures>,
    /// Per stack.
    pub memory: Vec<Memory>,
    /// `/proc/loadavg` (1, 5, 15 min) at the start and at the end.
    pub load: ([f64; 3], [f64; 3]),
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Options used (for the table's labels).
    pub options: Options,
}

/// `/proc/loadavg`'s three averages.
pub fn loadavg() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(f64::NAN));
    [
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
        it.next().unwrap_or(f64::NAN),
    ]
}

/// CPU time (ns) a process has used so far and how many times its threads were scheduled
/// onto a CPU: the sums of its threads' `schedstat` (fields 1 and 3).
pub fn sched(pid: u32) -> (u64, u64) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut total = (0, 0);
    for t in dir.flatten() {
        let Ok(text) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        let f: Vec<u64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 3 {
            total.0 += f[0];
            total.1 += f[2];
        }
    }
    total
}

/// CPU time and scheduling counts of the engine, the host and this process (the client).
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU time, ns.
    pub ns: [u64; 3],
    /// Times a thread was put on a CPU (≈ wake-ups).
    pub runs: [u64; 3],
}

fn cpu_now(stack: &Stack) -> Usage {
    let mut u = Usage::default();
    for (i, pid) in [stack.engine_pid, stack.host_pid, std::process::id()]
        .into_iter()
        .enumerate()
    {
        (u.ns[i], u.runs[i]) = sched(pid);
    }
    u
}

fn cpu_since(stack: &Stack, start: Usage) -> Usage {
    let now = cpu_now(stack);
    Usage {
        ns: [0, 1, 2].map(|i| now.ns[i].saturating_sub(start.ns[i])),
        runs: [0, 1, 2].map(|i| now.runs[i].saturating_sub(start.runs[i])),
    }
}

/// Fails with `what` when `fut` takes longer than `limit`.
async fn within<T, E>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: no answer within {limit:?}"),
    }
}

const CALL: Duration = Duration::from_secs(60);

/// A stack with its client.
struct Live {
    stack: Stack,
    client: Client,
}

/// The per-target state kept between rounds.
struct TargetState {
    figures: Figures,
    /// getForId handle of the latency actor.
    latency: Option<ActorHandle>,
    /// getForId handles of the throughput actors.
    tp: Vec<ActorHandle>,
    /// getForId handle of the wake actor.
    wake: Option<ActorHandle>,
}

/// Runs the benchmark.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let load_start = loadavg();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let run_id = format!("{:08x}", std::process::id().rotate_left(16) ^ nanos);
    let say = |msg: String| {
        if opts.verbose {
            eprintln!(
                "[{:7.1}s load {:.2}] {msg}",
                started.elapsed().as_secs_f64(),
                loadavg()[0]
            );
        }
    };
    let ours = Stack::start_ours(&opts.engine, &opts.host_bin, opts.count_heap).await?;
    say(format!(
        "ours ready at {} (engine pid {}, host pid {})",
        ours.endpoint, ours.engine_pid, ours.host_pid
    ));
    let mut stacks = vec![live(ours)?];
    if let Some(reference) = &opts.reference {
        let reference = match Stack::start_reference(reference).await {
            Ok(s) => s,
            Err(e) => {
                stop_all(stacks).await;
                return Err(e);
            }
        };
        say(format!(
            "reference ready at {} (engine pid {}, host pid {})",
            reference.endpoint, reference.engine_pid, reference.host_pid
        ));
        stacks.push(live(reference)?);
    }
    let result = measure(opts, &stacks, &run_id, &say).await;
    if result.is_err() {
        for s in &stacks {
            eprintln!("{}", s.stack.log_tail());
        }
    }
    stop_all(stacks).await;
    let (figures, memory) = result?;
    Ok(Report {
        figures,
        memory,
        load: (load_start, loadavg()),
        elapsed: started.elapsed(),
        options: opts.clone(),
    })
}

fn live(stack: Stack) -> anyhow::Result<Live> {
    let client = Client::builder(stack.endpoint.clone())
        .namespace("default")
        .pool("default")
        .timeout(CALL)
        .build()?;
    Ok(Live { stack, client })
}

async fn stop_all(stacks: Vec<Live>) {
    for s in stacks {
        let _ = s.stack.stop().await;
    }
}

async fn measure(
    opts: &Options,
    stacks: &[Live],
    run_id: &str,
    say: &impl Fn(String),
) -> anyhow::Result<(Vec<Figures>, Vec<Memory>)> {
    let wanted = |name: &str| opts.targets.iter().any(|t| t == name);
    let mut targets = Vec::new();
    if wanted("strict") {
        targets.push(Target::OursStrict);
    }
    if wanted("relaxed") {
        targets.push(Target::OursRelaxed);
    }
    if stacks.len() > 1 && wanted("reference") {
        targets.push(Target::Reference);
    }
    let mut states: Vec<TargetState> = targets
        .iter()
        .map(|&t| TargetState {
            figures: Figures::new(t),
            latency: None,
            tp: Vec::new(),
            wake: None,
        })
        .collect();
    let live_of = |t: Target| -> &Live {
        match t.which() {
            Which::Ours => &stacks[0],
            Which::Reference => &stacks[1],
        }
    };
    let enabled = |name: &str| opts.phases.iter().any(|p| p == name);
    for round in 0..opts.rounds {
        let mut order: Vec<usize> = (0..states.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (phase, name) in PHASES[..6].iter().enumerate() {
            if !enabled(name) {
                continue;
            }
            for &i in &order {
                let state = &mut states[i];
                let target = state.figures.target;
                let l = live_of(target);
                let t0 = Instant::now();
                let r = match phase {
                    0 => sequential_http(opts, l, state, run_id).await,
                    1 => sequential_conn(opts, l, state, run_id).await,
                    2 => throughput(opts, l, state, run_id).await,
                    3 => creates(opts, l, state, run_id, round).await,
                    4 => wakes(opts, l, state, run_id).await,
                    _ => broadcast(opts, l, state, run_id, round).await,
                };
                r.with_context(|| format!("{name} on {}", target.label()))?;
                say(format!(
                    "round {} {name} {}: {:.1} s",
                    round + 1,
                    target.label(),
                    t0.elapsed().as_secs_f64()
                ));
            }
        }
    }
    let mut memory = Vec::new();
    for l in stacks.iter().filter(|_| enabled("memory")) {
        let n = match l.stack.which {
            Which::Ours => opts.mem_actors,
            Which::Reference => opts.mem_actors_reference,
        };
        let m = host_memory(opts, l, run_id, n)
            .await
            .with_context(|| format!("memory on {}", l.stack.which.label()))?;
        say(format!(
            "memory {}: {} actors in {:.1} s, {} → {} KiB ({:.0} B/actor), {} KiB asleep, heap {:?}",
            l.stack.which.label(),
            m.actors,
            m.wake_time.as_secs_f64(),
            m.before_kib,
            m.after_kib,
            m.per_actor_bytes(),
            m.asleep_kib,
            m.heap
        ));
        memory.push(m);
    }
    Ok((states.into_iter().map(|s| s.figures).collect(), memory))
}

fn seq_calls(opts: &Options, target: Target) -> usize {
    match target.which() {
        Which::Ours => opts.seq_calls,
        Which::Reference => opts.seq_calls_reference,
    }
}

/// The actor `name` with key `key`, created if needed, as a getForId handle.
async fn by_id(l: &Live, name: &str, key: &str) -> anyhow::Result<ActorHandle> {
    let h = l.client.get_or_create(name, [key]);
    let id = within(CALL, "resolve", h.resolve()).await?;
    Ok(l.client.get_for_id(name, id))
}

async fn call(h: &ActorHandle, action: &str) -> anyhow::Result<IgnoredAny> {
    within(CALL, action, h.action::<_, IgnoredAny>(action, ())).await
}

async fn conn_call(c: &Connection, action: &str) -> anyhow::Result<IgnoredAny> {
    within(CALL, action, c.action::<_, IgnoredAny>(action, ())).await
}

async fn sequential_http(
    opts: &Options,
    l: &Live,
    state: &mut TargetState,
    run_id: &str,
) -> anyhow::Result<()> {
    let target = state.figures.target;
    if state.latency.is_none() {
        state.latency = Some(by_id(l, target.actor(), &format!("lat-{run_id}")).await?);
    }
    let h = state.latency.clone().expect("set above");
    let n = seq_calls(opts, target);
    let mut actions = vec!["ping", "increment"];
    if target == Target::Reference {
        actions.push("incrementSaved");
    }
    for action in actions {
        for _ in 0..opts.warmup {
            call(&h, action).await?;
        }
        let stats = match action {
            "ping" => &mut state.figures.http_ping,
            "increment" => &mut state.figures.http_increment,
            _ => &mut state.figures.http_increment_saved,
        };
        let cpu = cpu_now(&l.stack);
        for _ in 0..n {
            let t = Instant::now();
            call(&h, action).await?;
            stats.push_duration(t.elapsed());
        }
        let used = cpu_since(&l.stack, cpu);
        state.figures.add_cpu(&format!("HTTP `{action}`"), n, used);
    }
    Ok(())
}

async fn sequential_conn(
    opts: &Options,
    l: &Live,
    state: &mut TargetState,
    run_id: &str,
) -> anyhow::Result<()> {
    let target = state.figures.target;
    if state.latency.is_none() {
        state.latency = Some(by_id(l, target.actor(), &format!("lat-{run_id}")).await?);
    }
    let h = state.latency.clone().expect("set above");
    let conn = h.connect();
    within(CALL, "connect", conn.wait_connected()).await?;
    let n = seq_calls(opts, target);
    for action in ["ping", "increment"] {
        for _ in 0..opts.warmup {
            conn_call(&conn, action).await?;
        }
        let stats = match action {
            "ping" => &mut state.figures.conn_ping,
            _ => &mut state.figures.conn_increment,
        };
        let cpu = cpu_now(&l.stack);
        for _ in 0..n {
            let t = Instant::now();
            conn_call(&conn, action).await?;
            stats.push_duration(t.elapsed());
        }
        let used = cpu_since(&l.stack, cpu);
        state
            .figures
            .add_cpu(&format!("connection `{action}`"), n, used);
    }
    conn.close().await;
    Ok(())
}

/// Runs `callers` loops until `duration` is over; caller i calls `call(k)` for k = i,
/// i + callers, …; returns (calls/s, calls, errors).
async fn closed_loop<F, Fut>(callers: usize, duration: Duration, call: F) -> (f64, u64, u64)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + duration;
    let tasks: Vec<_> = (0..callers)
        .map(|i| {
            let (done, errors, call) = (done.clone(), errors.clone(), call.clone());
            tokio::spawn(async move {
                let mut k = i;
                while Instant::now() < end {
                    if call(k).await {
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    k += callers;
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let done = done.load(Ordering::Relaxed);
    let per_s = done as f64 / start.elapsed().as_secs_f64();
    (per_s, done, errors.load(Ordering::Relaxed))
}

async fn throughput(
    opts: &Options,
    l: &Live,
    state: &mut TargetState,
    run_id: &str,
) -> anyhow::Result<()> {
    let target = state.figures.target;
    if state.tp.is_empty() {
        for i in 0..opts.tp_actors {
            state
                .tp
                .push(by_id(l, target.actor(), &format!("tp-{run_id}-{i}")).await?);
        }
    }
    let handles = Arc::new(state.tp.clone());
    // Wake every actor before the clock starts (they may have slept since the last round).
    futures::future::try_join_all(handles.iter().map(|h| call(h, "ping"))).await?;
    for action in ["ping", "increment"] {
        let hs = handles.clone();
        let opened = l.client.http_connections_opened();
        let cpu = cpu_now(&l.stack);
        let (rate, done, errors) = closed_loop(opts.tp_callers, opts.tp_duration, move |k| {
            let h = hs[k % hs.len()].clone();
            async move { h.action::<_, IgnoredAny>(action, ()).await.is_ok() }
        })
        .await;
        let used = cpu_since(&l.stack, cpu);
        state
            .figures
            .add_cpu(&format!("throughput, HTTP `{action}`"), done as usize, used);
        let rates = match action {
            "ping" => &mut state.figures.tp_http_ping,
            _ => &mut state.figures.tp_http_increment,
        };
        rates.per_round.push(rate);
        rates.errors += errors;
        rates.connections_opened += l.client.http_connections_opened() - opened;
    }
    let conns: Vec<Connection> = handles.iter().map(|h| h.connect()).collect();
    futures::future::try_join_all(
        conns
            .iter()
            .map(|c| within(CALL, "connect", c.wait_connected())),
    )
    .await?;
    let conns = Arc::new(conns);
    for action in ["ping", "increment"] {
        let cs = conns.clone();
        let cpu = cpu_now(&l.stack);
        let (rate, done, errors) = closed_loop(opts.tp_callers, opts.tp_duration, move |k| {
            let c = cs[k % cs.len()].clone();
            async move { c.action::<_, IgnoredAny>(action, ()).await.is_ok() }
        })
        .await;
        let used = cpu_since(&l.stack, cpu);
        state.figures.add_cpu(
            &format!("throughput, connection `{action}`"),
            done as usize,
            used,
        );
        let rates = match action {
            "ping" => &mut state.figures.tp_conn_ping,
            _ => &mut state.figures.tp_conn_increment,
        };
        rates.per_round.push(rate);
        rates.errors += errors;
    }
    for c in conns.iter() {
        c.close().await;
    }
    Ok(())
}

async fn creates(
    opts: &Options,
    l: &Live,
    state: &mut TargetState,
    run_id: &str,
    round: usize,
) -> anyhow::Result<()> {
    let target = state.figures.target;
    let n = match target.which() {
        Which::Ours => opts.creates,
        Which::Reference => opts.creates_reference,
    };
    for i in 0..n {
        let key = format!("new-{run_id}-{round}-{i}");
        let t = Instant::now();
        let h = l.client.get_or_create(target.actor(), [key.as_str()]);
        call(&h, "ping").await?;
        state.figures.create.push_duration(t.elapsed());
    }
    Ok(())
}

/// Polls the engine until the actor shows `sleep_ts`.
async fn wait_asleep(l: &Live, conn: &mut Conn, actor_id: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + CALL;
    loop {
        let view = l.stack.actor_view(conn, actor_id).await?;
        if !view["sleep_ts"].is_null() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("actor {actor_id} not asleep within {CALL:?}: {view}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn wakes(
    opts: &Options,
    l: &Live,
    state: &mut TargetState,
    run_id: &str,
) -> anyhow::Result<()> {
    let target = state.figures.target;
    if state.wake.is_none() {
        state.wake = Some(by_id(l, target.actor(), &format!("wake-{run_id}")).await?);
    }
    let h = state.wake.clone().expect("set above");
    let id = within(CALL, "resolve", h.resolve()).await?;
    let mut conn = Conn::new(l.stack.guard);
    let n = match target.which() {
        Which::Ours => opts.wakes,
        Which::Reference => opts.wakes_reference,
    };
    for _ in 0..n {
        // Awake (the previous round may have left it asleep): this first call is not timed.
        call(&h, "ping").await?;
        let t = Instant::now();
        call(&h, "goToSleep").await?;
        wait_asleep(l, &mut conn, &id).await?;
        state.figures.sleep.push_duration(t.elapsed());
        let t = Instant::now();
        call(&h, "ping").await?;
        state.figures.wake.push_duration(t.elapsed());
    }
    Ok(())
}

/// Who has seen which `tick`, and who waits for everyone to see one.
struct Fan {
    seen: Vec<i64>,
    waiting: Option<(i64, usize, oneshot::Sender<Instant>)>,
}

async fn broadcast(
    opts: &Options,
    l: &Live,
    state: &mut TargetState,
    run_id: &str,
    round: usize,
) -> anyhow::Result<()> {
    let target = state.figures.target;
    let h = by_id(l, target.actor(), &format!("fan-{run_id}-{round}")).await?;
    call(&h, "ping").await?;
    let fan = Arc::new(Mutex::new(Fan {
        seen: vec![-1; opts.fan],
        waiting: None,
    }));
    let mut conns = Vec::new();
    let mut subs = Vec::new();
    for i in 0..opts.fan {
        let c = h.connect();
        let f = fan.clone();
        subs.push(c.on("tick", move |args| {
            let Some(seq) = args
                .first()
                .and_then(Value::as_integer)
                .and_then(|v| i64::try_from(v).ok())
            else {
                return;
            };
            let mut f = f.lock().unwrap_or_else(|p| p.into_inner());
            let before = f.seen[i];
            f.seen[i] = before.max(seq);
            let after = f.seen[i];
            if let Some((target, left, _)) = f.waiting.as_mut() {
                if before < *target && after >= *target {
                    *left -= 1;
                    if *left == 0 {
                        if let Some((_, _, tx)) = f.waiting.take() {
                            let _ = tx.send(Instant::now());
                        }
                    }
                }
            }
        }));
        conns.push(c);
    }
    let result = async {
        futures::future::try_join_all(
            conns
                .iter()
                .map(|c| within(CALL, "connect", c.wait_connected())),
        )
        .await?;
        // Connected comes before the subscription reaches the actor: broadcast seq 0 until
        // every connection got one.
        let deadline = Instant::now() + CALL;
        loop {
            within(
                CALL,
                "broadcast",
                h.action::<_, IgnoredAny>("broadcast", (0,)),
            )
            .await?;
            let attempt = Instant::now() + Duration::from_secs(1);
            while Instant::now() < attempt {
                if fan.lock().unwrap().seen.iter().all(|&s| s >= 0) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let got = fan.lock().unwrap().seen.iter().filter(|&&s| s >= 0).count();
            if got == opts.fan {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "after {CALL:?} of broadcasts only {got} of {} connections got one",
                    opts.fan
                );
            }
        }
        for seq in 1..=opts.broadcasts as i64 {
            let (tx, rx) = oneshot::channel();
            {
                let mut f = fan.lock().unwrap();
                let left = f.seen.iter().filter(|&&s| s < seq).count();
                f.waiting = Some((seq, left, tx));
            }
            let t = Instant::now();
            within(
                CALL,
                "broadcast",
                h.action::<_, IgnoredAny>("broadcast", (seq,)),
            )
            .await?;
            let all = within(CALL, "every connection got the event", rx).await?;
            state.figures.broadcast.push_duration(all - t);
        }
        Ok(())
    }
    .await;
    drop(subs);
    for c in &conns {
        c.close().await;
    }
    result
}

async fn host_memory(opts: &Options, l: &Live, run_id: &str, n: usize) -> anyhow::Result<Memory> {
    let name = match l.stack.which {
        Which::Ours => actors::AWAKE,
        Which::Reference => "benchAwake",
    };
    let stats = (l.stack.which == Which::Ours && opts.count_heap)
        .then(|| l.client.get_or_create(actors::STATS, ["stats"]));
    let heap = || async {
        match &stats {
            Some(h) => within(CALL, "heap", h.action::<_, u64>("heap", ()))
                .await
                .map(Some),
            None => Ok(None),
        }
    };
    heap().await?;
    tokio::time::sleep(opts.mem_settle).await;
    let before_kib = l.stack.host_rss_kib()?;
    let heap_before = heap().await?;
    let t = Instant::now();
    call_each(l, name, run_id, n, opts.mem_concurrency, "ping").await?;
    let wake_time = t.elapsed();
    tokio::time::sleep(opts.mem_settle).await;
    let after_kib = l.stack.host_rss_kib()?;
    let heap_after = heap().await?;
    // Then every one of them sleeps: what does the host keep?
    call_each(l, name, run_id, n, opts.mem_concurrency, "goToSleep").await?;
    tokio::time::sleep(opts.mem_settle * 2).await;
    let asleep_kib = l.stack.host_rss_kib()?;
    let heap_asleep = heap().await?;
    Ok(Memory {
        which: l.stack.which,
        actors: n,
        before_kib,
        after_kib,
        wake_time,
        asleep_kib,
        heap: match (heap_before, heap_after, heap_asleep) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        },
    })
}

/// Calls `action` on each of the `n` memory-phase actors `mem-{run_id}-{i}`, `concurrency`
/// at a time.
async fn call_each(
    l: &Live,
    name: &'static str,
    run_id: &str,
    n: usize,
    concurrency: usize,
    action: &'static str,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, next, run_id) = (l.client.clone(), next.clone(), run_id.to_string());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= n {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let h = client.get_or_create(name, [format!("mem-{run_id}-{i}")]);
                    call(&h, action).await?;
                }
            })
        })
        .collect();
    for w in workers {
        w.await??;
    }
    Ok(())
}

fn fmt(v: f64, digits: usize) -> String {
    if v.is_finite() {
        format!("{v:.digits$}")
    } else {
        "—".into()
    }
}

/// The result as a Markdown table (ours strict / ours relaxed / reference / ratios).
pub fn table(report: &Report) -> String {
    let f = &report.figures;
    let by = |t: Target| f.iter().find(|x| x.target == t);
    let mut rows: Vec<(String, [f64; 3], usize, bool)> = Vec::new();
    let mut lat = |name: &str, get: &dyn Fn(&Figures) -> &Stats| {
        for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
            let v = [Target::OursStrict, Target::OursRelaxed, Target::Reference]
                .map(|t| by(t).map(|x| get(x).percentile(q)).unwrap_or(f64::NAN));
            rows.push((format!("{name}, {label} (ms)"), v, 3, false));
        }
    };
    lat("HTTP `ping`", &|x| &x.http_ping);
    lat("HTTP `increment`", &|x| &x.http_increment);
    lat("HTTP `incrementSaved` (npm, awaits its save)", &|x| {
        &x.http_increment_saved
    });
    lat("connection `ping`", &|x| &x.conn_ping);
    lat("connection `increment`", &|x| &x.conn_increment);
    let o = &report.options;
    let mut tp = |name: &str, get: &dyn Fn(&Figures) -> &Rates| {
        let v = [Target::OursStrict, Target::OursRelaxed, Target::Reference]
            .map(|t| by(t).map(|x| get(x).median()).unwrap_or(f64::NAN));
        rows.push((
            format!(
                "throughput {name}, {} callers / {} actors (actions/s)",
                o.tp_callers, o.tp_actors
            ),
            v,
            0,
            true,
        ));
    };
    tp("HTTP `ping`", &|x| &x.tp_http_ping);
    tp("HTTP `increment`", &|x| &x.tp_http_increment);
    tp("connection `ping`", &|x| &x.tp_conn_ping);
    tp("connection `increment`", &|x| &x.tp_conn_increment);
    let mut lat2 = |name: &str, get: &dyn Fn(&Figures) -> &Stats| {
        for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
            let v = [Target::OursStrict, Target::OursRelaxed, Target::Reference]
                .map(|t| by(t).map(|x| get(x).percentile(q)).unwrap_or(f64::NAN));
            rows.push((format!("{name}, {label} (ms)"), v, 2, false));
        }
    };
    lat2("create + first action", &|x| &x.create);
    lat2("wake + first action", &|x| &x.wake);
    lat2("(`goToSleep` → `sleep_ts` seen)", &|x| &x.sleep);
    lat2(&format!("broadcast → {} connections", o.fan), &|x| {
        &x.broadcast
    });
    let mem = |w: Which| report.memory.iter().find(|m| m.which == w);
    let per = |w: Which| mem(w).map(|m| m.per_actor_bytes()).unwrap_or(f64::NAN);
    rows.push((
        "host memory per idle actor (bytes, RSS delta / actors)".into(),
        [per(Which::Ours), f64::NAN, per(Which::Reference)],
        0,
        false,
    ));

    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | ours strict | ours relaxed | reference | strict / ref | relaxed / ref |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    for (name, v, d, higher) in rows {
        let ratio = |a: f64| fmt(a / v[2], 2);
        let note = if higher { " ↑" } else { "" };
        let _ = writeln!(
            out,
            "| {name}{note} | {} | {} | {} | {} | {} |",
            fmt(v[0], d),
            fmt(v[1], d),
            fmt(v[2], d),
            ratio(v[0]),
            ratio(v[1])
        );
    }
    let _ = writeln!(out);
    for m in &report.memory {
        let _ = writeln!(
            out,
            "- memory, {}: {} actors woken in {:.1} s; host RSS {:.1} → {:.1} MiB, {:.1} MiB once they all slept",
            m.which.label(),
            m.actors,
            m.wake_time.as_secs_f64(),
            m.before_kib as f64 / 1024.0,
            m.after_kib as f64 / 1024.0,
            m.asleep_kib as f64 / 1024.0
        );
        if let Some([a, b, c]) = m.heap {
            let per = |x: u64| (x as f64 - a as f64) / m.actors as f64;
            let _ = writeln!(
                out,
                "  host heap in use {:.1} → {:.1} MiB ({:.0} B per live actor); {:.0} B per actor left once they slept",
                a as f64 / 1048576.0,
                b as f64 / 1048576.0,
                per(b),
                per(c)
            );
        }
    }
    for x in f {
        let errors = x.tp_http_ping.errors
            + x.tp_http_increment.errors
            + x.tp_conn_ping.errors
            + x.tp_conn_increment.errors;
        if errors > 0 {
            let _ = writeln!(out, "- throughput errors on {}: {errors}", x.target.label());
        }
        let opened = x.tp_http_ping.connections_opened + x.tp_http_increment.connections_opened;
        if x.tp_http_ping.count() > 0 {
            let _ = writeln!(
                out,
                "- HTTP connections the client opened during the HTTP throughput runs on {}: {opened}",
                x.target.label()
            );
        }
    }
    if f.iter().any(|x| !x.cpu.is_empty()) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| CPU µs (wake-ups) per call: engine / host / client | {} |",
            f.iter()
                .map(|x| x.target.label())
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(out, "|---|{}", "---:|".repeat(f.len()));
        let mut names: Vec<&str> = Vec::new();
        for x in f {
            for (w, _, _) in &x.cpu {
                if !names.contains(&w.as_str()) {
                    names.push(w);
                }
            }
        }
        for name in names {
            let cells: Vec<String> = f
                .iter()
                .map(|x| match x.cpu.iter().find(|(w, _, _)| w == name) {
                    Some((_, calls, u)) if *calls > 0 => {
                        let per = |i: usize| {
                            format!(
                                "{:.0} ({:.1})",
                                u.ns[i] as f64 / *calls as f64 / 1e3,
                                u.runs[i] as f64 / *calls as f64
                            )
                        };
                        format!("{} / {} / {}", per(0), per(1), per(2))
                    }
                    _ => "—".into(),
                })
                .collect();
            let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
        }
        let _ = writeln!(out);
    }
    let (a, b) = report.load;
    let _ = writeln!(
        out,
        "- load average at start {:.2} {:.2} {:.2}, at end {:.2} {:.2} {:.2}; {:.0} s",
        a[0],
        a[1],
        a[2],
        b[0],
        b[1],
        b[2],
        report.elapsed.as_secs_f64()
    );
    out
}
