//! Actor lifecycle benchmark: our `rivet-engine` against the reference engine, both driven
//! through the REST API and the in-repo actor host (`rivet-test-host`). Figures are recorded in
//! docs/benchmarks.md, which also states the definitions below.
//!
//! Phases (run in the order 1, 3, 2, 4, so that the wakes do not queue behind the reference's
//! backlog from phase 2), each in rounds that alternate between the engines (ours, reference,
//! ours, …) so that machine noise hits both:
//!
//! 1. *create → connectable*, sequential: from writing `POST /actors` until the first
//!    `GET /actors?actor_ids=<id>` response that shows `connectable_ts`. Polling starts once the
//!    host has sent `Running` and issues GETs back to back on one keep-alive connection.
//! 2. *creates/s*: for each level in `concurrency`, that many keep-alive clients create actors
//!    open-loop; the clock stops when the host has answered every `StartActor` with `Running`.
//! 3. *wake*: a running actor sets an alarm at T, then asks to sleep; the host answers the
//!    `StopActor`; figure = (time the host receives the next `StartActor`) − T.
//! 4. *RSS*: `VmRSS` of the engine process when idle, after phase 2, and after `sleeping`
//!    actors were created and then all put to sleep by the host (`ActorIntent{Sleep}`).

pub mod engines;
pub mod http;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use rivet_test_host::protocol::Command;
use rivet_test_host::TestHost;

pub use engines::{our_binary, reference_binary, Launch, Running, Which};
use http::Conn;

/// Longest wait for any single lifecycle step before the run fails.
const WAIT: Duration = Duration::from_secs(60);
/// Phase 2 gives up on actors that have not run when no other actor started for this long.
const NO_PROGRESS: Duration = Duration::from_secs(15);
/// Body of every create: no key (so neither engine reserves one), the host's pool.
const CREATE_BODY: &str =
    r#"{"name":"bench","runner_name_selector":"default","crash_policy":"sleep"}"#;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// How to run our engine.
    pub ours: Launch,
    /// How to run the reference engine; `None` skips it.
    pub reference: Option<Launch>,
    /// Rounds each phase is split into (alternating engines per round).
    pub rounds: usize,
    /// Sequential creates per engine (phase 1).
    pub latency_creates: usize,
    /// Concurrent creates on our engine (phase 2).
    pub throughput_creates: usize,
    /// Concurrent creates on the reference (phase 2): it is about 100 times slower, so the
    /// same count would take most of an hour.
    pub reference_throughput_creates: usize,
    /// Concurrent HTTP client counts in phase 2, each a separate measurement; the last one also
    /// creates the sleeping actors.
    pub concurrency: Vec<usize>,
    /// Highest concurrency the reference runs in phase 2: at 64 it fails ~30 % of creates with
    /// `pegboard_actor_create timed out` and takes minutes for a few hundred.
    pub reference_max_concurrency: usize,
    /// Wakes per engine (phase 3).
    pub wakes: usize,
    /// How far ahead of "now" each alarm is set.
    pub alarm_delay: Duration,
    /// Actors created then put to sleep before the last RSS reading (0 skips it).
    pub sleeping: usize,
    /// Run the `sleeping` phase on the reference too.
    pub sleeping_reference: bool,
}

impl Options {
    /// The measured run: both engines as child processes.
    pub fn full(ours: Launch, reference: Option<Launch>) -> Self {
        Self {
            ours,
            reference,
            rounds: 10,
            latency_creates: 300,
            throughput_creates: 10_000,
            reference_throughput_creates: 500,
            concurrency: vec![8, 64],
            reference_max_concurrency: 8,
            wakes: 30,
            // The reference takes ~50-100 ms to stop an actor; the stop must land before T.
            alarm_delay: Duration::from_millis(500),
            sleeping: 100_000,
            sleeping_reference: false,
        }
    }

    /// A few-second run of every phase on our engine, in-process.
    pub fn smoke() -> Self {
        Self {
            ours: Launch::InProcess,
            reference: None,
            rounds: 2,
            latency_creates: 6,
            throughput_creates: 60,
            reference_throughput_creates: 60,
            concurrency: vec![2, 8],
            reference_max_concurrency: 8,
            wakes: 2,
            alarm_delay: Duration::from_millis(100),
            sleeping: 100,
            sleeping_reference: false,
        }
    }
}

/// Percentiles of a set of samples, in milliseconds.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    samples: Vec<f64>,
}

impl Stats {
    fn push(&mut self, ms: f64) {
        self.samples.push(ms);
    }

    /// Adds one sample.
    pub fn push_duration(&mut self, d: Duration) {
        self.push(d.as_secs_f64() * 1e3);
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// Nearest-rank percentile (`q` in 0..=1); NaN without samples.
    pub fn percentile(&self, q: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    /// Median.
    pub fn p50(&self) -> f64 {
        self.percentile(0.5)
    }

    /// 99th percentile.
    pub fn p99(&self) -> f64 {
        self.percentile(0.99)
    }

    /// Smallest sample.
    pub fn min(&self) -> f64 {
        self.percentile(0.0)
    }

    /// Largest sample.
    pub fn max(&self) -> f64 {
        self.percentile(1.0)
    }
}

/// Everything measured on one engine.
#[derive(Debug, Clone)]
pub struct Figures {
    /// Which engine.
    pub which: Which,
    /// Whether it ran inside the benchmark process (RSS then includes the benchmark).
    pub in_process: bool,
    /// Phase 1: POST written → first GET showing `connectable_ts`.
    pub create_to_connectable: Stats,
    /// Phase 1: POST written → POST response read.
    pub create_response: Stats,
    /// Phase 1: POST written → the host sent `Running`.
    pub create_to_host_running: Stats,
    /// Phase 1: POST written → the engine acknowledged `Running` (ours only).
    pub create_to_running_acked: Stats,
    /// Phase 1: round trip of each polling GET (the resolution of the figure above).
    pub poll_get: Stats,
    /// Creates answered 5xx, all phases.
    pub failed_creates: usize,
    /// Phase 2 and 4: created actors the host never got to run.
    pub never_ran: usize,
    /// Phase 2, one entry per concurrency level run.
    pub throughput: Vec<Throughput>,
    /// Phase 3: (StartActor received) − alarm time, ms; negative = early.
    pub wake: Stats,
    /// Phase 3: wakes not counted because the actor was stopped only after its alarm time.
    pub wakes_skipped: usize,
    /// RSS after start-up, KiB.
    pub rss_idle_kib: u64,
    /// RSS after phase 2 (every actor created so far running), with that actor count.
    pub rss_running: (usize, u64),
    /// RSS with this many actors asleep, KiB (2 s after the last one slept).
    pub rss_sleeping: Option<(usize, u64)>,
    /// RSS 14 s after the last one slept, KiB.
    pub rss_sleeping_settled: Option<u64>,
}

impl Figures {
    fn new(which: Which, in_process: bool) -> Self {
        Self {
            which,
            in_process,
            create_to_connectable: Stats::default(),
            create_response: Stats::default(),
            create_to_host_running: Stats::default(),
            create_to_running_acked: Stats::default(),
            poll_get: Stats::default(),
            failed_creates: 0,
            never_ran: 0,
            throughput: Vec::new(),
            wake: Stats::default(),
            wakes_skipped: 0,
            rss_idle_kib: 0,
            rss_running: (0, 0),
            rss_sleeping: None,
            rss_sleeping_settled: None,
        }
    }

    /// Phase 2 at `concurrency` clients, if run.
    pub fn throughput_at(&self, concurrency: usize) -> Option<&Throughput> {
        self.throughput
            .iter()
            .find(|t| t.concurrency == concurrency)
    }
}

/// Phase 2 at one concurrency level, summed over its rounds.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    /// Concurrent HTTP clients.
    pub concurrency: usize,
    /// Actors created (successful creates only).
    pub creates: usize,
    /// Creates answered 5xx.
    pub failed: usize,
    /// From the first POST until the host ran the last actor.
    pub elapsed: Duration,
    /// From the first POST until the last POST response.
    pub posts_elapsed: Duration,
    /// POST response times.
    pub response: Stats,
}

impl Throughput {
    /// Creates per second, counted until the host ran every actor.
    pub fn per_s(&self) -> f64 {
        self.creates as f64 / self.elapsed.as_secs_f64()
    }
}

/// One engine under test and what it has run so far.
struct Subject {
    engine: Running,
    conn: Conn,
    figures: Figures,
    /// Actors created in phase 1, the ones phase 3 wakes.
    sequential: Vec<String>,
    created: usize,
}

/// Runs every phase and returns the figures, ours first.
pub async fn run(opts: &Options) -> anyhow::Result<Vec<Figures>> {
    if opts.wakes > opts.latency_creates {
        bail!("each wake uses an actor of phase 1: wakes must not exceed sequential creates");
    }
    let mut launches = vec![(Which::Ours, opts.ours.clone())];
    if let Some(reference) = &opts.reference {
        launches.push((Which::Reference, reference.clone()));
    }
    let mut subjects = Vec::new();
    for (which, launch) in launches {
        let engine = Running::start(which, &launch).await?;
        tracing_line(&format!(
            "{} engine ready on {} (pid {})",
            which.label(),
            engine.guard,
            engine.pid
        ));
        subjects.push(Subject {
            conn: Conn::new(engine.guard),
            figures: Figures::new(which, engine.in_process),
            engine,
            sequential: Vec::new(),
            created: 0,
        });
    }
    // Start-up work (store recovery, first compactions) settles within a moment; the idle
    // figure is about the steady state, not the first second.
    tokio::time::sleep(Duration::from_secs(if opts.rounds > 2 { 3 } else { 0 })).await;
    for s in &mut subjects {
        s.figures.rss_idle_kib = s.engine.rss_kib()?;
    }

    let result = phases(opts, &mut subjects).await;
    if let Err(e) = &result {
        for s in &subjects {
            if let Some(path) = s.engine.save_log() {
                eprintln!("{} engine log: {}", s.engine.which.label(), path.display());
            }
        }
        eprintln!("benchmark failed: {e:#}; figures so far:");
        let so_far: Vec<Figures> = subjects.iter().map(|s| s.figures.clone()).collect();
        eprint!("{}", table(&so_far));
    }
    let figures = subjects.iter().map(|s| s.figures.clone()).collect();
    for s in subjects {
        s.engine.stop().await?;
    }
    result.map(|()| figures)
}

async fn phases(opts: &Options, subjects: &mut [Subject]) -> anyhow::Result<()> {
    let rounds = opts.rounds.max(1);
    tracing_line("phase 1: sequential create → connectable");
    for round in 0..rounds {
        let n = share(opts.latency_creates, rounds, round);
        for s in subjects.iter_mut() {
            sequential_creates(s, n)
                .await
                .with_context(|| format!("{} sequential creates", s.engine.which.label()))?;
        }
    }
    tracing_line("phase 3: alarm wakes");
    for _ in 0..opts.wakes {
        for s in subjects.iter_mut() {
            wake(s, opts.alarm_delay)
                .await
                .with_context(|| format!("{} wake", s.engine.which.label()))?;
        }
    }
    for &concurrency in &opts.concurrency {
        tracing_line(&format!(
            "phase 2: concurrent creates, {concurrency} clients"
        ));
        let reference_runs = concurrency <= opts.reference_max_concurrency;
        pause_reference(subjects, !reference_runs)?;
        for round in 0..rounds {
            for s in subjects.iter_mut() {
                let total = match s.engine.which {
                    Which::Ours => opts.throughput_creates,
                    Which::Reference if concurrency <= opts.reference_max_concurrency => {
                        opts.reference_throughput_creates
                    }
                    Which::Reference => continue,
                };
                let n = share(total, rounds, round);
                concurrent_creates(s, n, concurrency, true)
                    .await
                    .with_context(|| format!("{} concurrent creates", s.engine.which.label()))?;
            }
        }
    }
    pause_reference(subjects, false)?;
    for s in subjects.iter_mut() {
        s.figures.rss_running = (s.created, s.engine.rss_kib()?);
    }
    // The reading above is the reference's last unless it sleeps actors too.
    pause_reference(subjects, !opts.sleeping_reference)?;
    if opts.sleeping > 0 {
        for s in subjects.iter_mut() {
            if s.engine.which == Which::Reference && !opts.sleeping_reference {
                continue;
            }
            tracing_line(&format!(
                "phase 4: {} actors put to sleep on {}",
                opts.sleeping,
                s.engine.which.label()
            ));
            let concurrency = opts.concurrency.last().copied().unwrap_or(1);
            sleep_many(s, opts.sleeping, concurrency)
                .await
                .with_context(|| format!("{} sleeping actors", s.engine.which.label()))?;
        }
    }
    Ok(())
}

fn pause_reference(subjects: &[Subject], paused: bool) -> anyhow::Result<()> {
    for s in subjects {
        if s.engine.which == Which::Reference {
            s.engine.pause(paused)?;
        }
    }
    Ok(())
}

/// Round `round`'s part of `total` split over `rounds`.
fn share(total: usize, rounds: usize, round: usize) -> usize {
    total / rounds + usize::from(round < total % rounds)
}

/// Progress lines on stderr, so that stdout holds only the results.
fn tracing_line(text: &str) {
    eprintln!("[{:>8.3}s] {text}", uptime().as_secs_f64());
}

fn uptime() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1e3)
        .unwrap_or(0.0)
}

/// Creates one actor; `None` when the engine answered 5xx (the reference times out some
/// creates under concurrency: counted as failures, not fatal).
async fn create(conn: &mut Conn) -> anyhow::Result<Option<String>> {
    let reply = conn
        .request("POST", "/actors?namespace=default", Some(CREATE_BODY))
        .await?;
    let body = reply.json()?;
    if reply.status >= 500 {
        tracing_line(&format!("create failed: {} {body}", reply.status));
        return Ok(None);
    }
    if reply.status != 200 {
        bail!("create: {} {body}", reply.status);
    }
    body["actor"]["actor_id"]
        .as_str()
        .map(|id| Some(id.to_owned()))
        .with_context(|| format!("create answer without actor_id: {body}"))
}

/// Fails the run once an engine failed this many creates: its figures would mean little.
const MAX_FAILED_CREATES: usize = 1_000;

fn count_failures(figures: &mut Figures, failed: usize) -> anyhow::Result<()> {
    figures.failed_creates += failed;
    if figures.failed_creates > MAX_FAILED_CREATES {
        bail!("{} creates failed", figures.failed_creates);
    }
    Ok(())
}

/// The actor's JSON from `GET /actors?actor_ids=<id>`.
async fn actor(conn: &mut Conn, id: &str) -> anyhow::Result<serde_json::Value> {
    let reply = conn
        .get(&format!("/actors?namespace=default&actor_ids={id}"))
        .await?;
    let mut body = reply.json()?;
    if reply.status != 200 {
        bail!("get actor: {} {body}", reply.status);
    }
    Ok(body["actors"][0].take())
}

/// Commands the host received are kept until taken; the benchmark does not need them.
async fn drain_commands(host: &TestHost) {
    while host.next_command(Duration::ZERO).await.is_some() {}
}

async fn sequential_creates(s: &mut Subject, n: usize) -> anyhow::Result<()> {
    for _ in 0..n {
        let start = Instant::now();
        let Some(id) = create(&mut s.conn).await? else {
            count_failures(&mut s.figures, 1)?;
            continue;
        };
        s.figures.create_response.push_duration(start.elapsed());
        s.engine
            .host
            .wait_running(&id, WAIT)
            .await
            .with_context(|| format!("host never ran {id}"))?;
        s.figures
            .create_to_host_running
            .push_duration(start.elapsed());
        let generation = 1;
        // Our engine acknowledges each burst of events once committed; timed alongside the
        // polling as a breakdown. The reference acknowledges only in batches of >250 events.
        let acked = async {
            if s.engine.which != Which::Ours {
                return None;
            }
            let acked = s
                .engine
                .host
                .wait_acked_event(&id, generation, 0, WAIT)
                .await;
            acked.then(|| start.elapsed())
        };
        let conn = &mut s.conn;
        let poll_get = &mut s.figures.poll_get;
        let polled = async {
            loop {
                let poll = Instant::now();
                let actor = actor(conn, &id).await?;
                poll_get.push_duration(poll.elapsed());
                if !actor["connectable_ts"].is_null() {
                    return Ok::<_, anyhow::Error>(start.elapsed());
                }
                if start.elapsed() > WAIT {
                    bail!("{id} not connectable after {WAIT:?}: {actor}");
                }
            }
        };
        let (acked, polled) = tokio::join!(acked, polled);
        s.figures.create_to_connectable.push_duration(polled?);
        if let Some(acked) = acked {
            s.figures.create_to_running_acked.push_duration(acked);
        }
        s.sequential.push(id);
        s.created += 1;
    }
    drain_commands(&s.engine.host).await;
    Ok(())
}

/// Creates `n` actors from `concurrency` clients and waits until the host runs all of them;
/// `record` adds the figures to phase 2. Returns the ids.
async fn concurrent_creates(
    s: &mut Subject,
    n: usize,
    concurrency: usize,
    record: bool,
) -> anyhow::Result<Vec<String>> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let mut conn = Conn::new(s.engine.guard);
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut latencies = Stats::default();
            let mut failed = 0;
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t = Instant::now();
                match create(&mut conn).await? {
                    Some(id) => ids.push(id),
                    None => failed += 1,
                }
                latencies.push_duration(t.elapsed());
            }
            Ok::<_, anyhow::Error>((ids, latencies, failed))
        }));
    }
    let mut ids = Vec::with_capacity(n);
    let mut figures = Throughput {
        concurrency,
        ..Throughput::default()
    };
    for worker in workers {
        let (mut part, latencies, failed) = worker.await??;
        ids.append(&mut part);
        count_failures(&mut s.figures, failed)?;
        figures.failed += failed;
        figures.response.samples.extend(latencies.samples);
    }
    let posted = start.elapsed();
    // Stop the clock at the last actor seen running. The reference loses an actor now and
    // then under load ("actor lost", transition=starting); give up on stragglers once nothing
    // has started for a while and count them instead of waiting for each in turn.
    let mut pending = ids.clone();
    let mut last_progress = start.elapsed();
    loop {
        let before = pending.len();
        let mut still = Vec::with_capacity(pending.len());
        for id in pending {
            if s.engine
                .host
                .wait_running(&id, Duration::ZERO)
                .await
                .is_none()
            {
                still.push(id);
            }
        }
        pending = still;
        if pending.len() < before {
            last_progress = start.elapsed();
        }
        if pending.is_empty() || start.elapsed() - last_progress > NO_PROGRESS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if !pending.is_empty() {
        tracing_line(&format!(
            "{}: {} created actors never ran (e.g. {})",
            s.engine.which.label(),
            pending.len(),
            pending[0]
        ));
        s.figures.never_ran += pending.len();
    }
    let elapsed = last_progress;
    if record {
        figures.creates = ids.len();
        figures.elapsed = elapsed;
        figures.posts_elapsed = posted;
        let all = &mut s.figures.throughput;
        match all.iter_mut().find(|t| t.concurrency == concurrency) {
            Some(t) => {
                t.creates += figures.creates;
                t.failed += figures.failed;
                t.elapsed += figures.elapsed;
                t.posts_elapsed += figures.posts_elapsed;
                t.response.samples.extend(figures.response.samples);
            }
            None => all.push(figures),
        }
    }
    s.created += ids.len();
    drain_commands(&s.engine.host).await;
    Ok(ids)
}

async fn wake(s: &mut Subject, delay: Duration) -> anyhow::Result<()> {
    let host = &s.engine.host;
    let id = s.sequential.pop().context("no actor left to wake")?;
    let generation = host
        .wait_running(&id, WAIT)
        .await
        .with_context(|| format!("{id} not running"))?;
    drain_commands(host).await;
    let alarm = (now_ms() + delay.as_secs_f64() * 1e3).round();
    host.set_alarm(&id, generation, Some(alarm as i64)).await?;
    host.sleep_intent(&id, generation).await?;
    let mut stopped_at = None;
    loop {
        let cmd = host
            .next_command(WAIT)
            .await
            .with_context(|| format!("{id}: no command after sleep intent"))?;
        let received = now_ms();
        if cmd.checkpoint.actor_id != id {
            continue;
        }
        match &cmd.inner {
            Command::StopActor(_) => stopped_at = Some(received),
            Command::StartActor(_) if cmd.checkpoint.generation > generation => {
                let stopped_at = stopped_at.context("started again before being stopped")?;
                if stopped_at > alarm {
                    // Not a wake by the alarm: the engine was too slow to even stop the actor.
                    tracing_line(&format!(
                        "{}: {id} stopped {:.1} ms after its alarm time; sample skipped",
                        s.engine.which.label(),
                        stopped_at - alarm
                    ));
                    s.figures.wakes_skipped += 1;
                } else {
                    s.figures.wake.push(received - alarm);
                }
                return Ok(());
            }
            _ => {}
        }
    }
}

/// Creates `n` actors, then asks the host to put every running actor to sleep and waits until
/// the engine reports them asleep; records the RSS.
async fn sleep_many(s: &mut Subject, n: usize, concurrency: usize) -> anyhow::Result<()> {
    let started = Instant::now();
    let ids = concurrent_creates(s, n, concurrency, false).await?;
    tracing_line(&format!(
        "{n} created in {:.1} s; sleeping every running actor",
        started.elapsed().as_secs_f64()
    ));
    let host = &s.engine.host;
    let running = host.actors();
    for (id, generation) in &running {
        host.sleep_intent(id, *generation).await?;
    }
    let deadline = Instant::now() + WAIT * 5;
    while !host.actors().is_empty() {
        drain_commands(host).await;
        if Instant::now() > deadline {
            bail!("{} actors still running", host.actors().len());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Events are applied in order per connection: once the last actors report asleep, all do.
    for id in ids.iter().rev().take(20) {
        loop {
            let actor = actor(&mut s.conn, id).await?;
            if !actor["sleep_ts"].is_null() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{id} never asleep: {actor}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tracing_line(&format!(
        "{} actors asleep after {:.1} s",
        s.created,
        started.elapsed().as_secs_f64()
    ));
    // Let work queued behind the last sleep (store flushes, timers) finish before reading.
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.figures.rss_sleeping = Some((s.created, s.engine.rss_kib()?));
    // The engine hands freed heap back every 10 s; a second reading shows where it settles.
    if !s.figures.in_process {
        tokio::time::sleep(Duration::from_secs(12)).await;
        s.figures.rss_sleeping_settled = Some(s.engine.rss_kib()?);
    }
    Ok(())
}

/// The results as a Markdown table: one row per figure, ours / reference / ratio.
pub fn table(figures: &[Figures]) -> String {
    let ours = figures.iter().find(|f| f.which == Which::Ours);
    let reference = figures.iter().find(|f| f.which == Which::Reference);
    let mut out = String::new();
    let _ = writeln!(out, "| figure | ours | reference | ours / reference |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    let mut row = |name: &str, get: &dyn Fn(&Figures) -> Option<f64>, unit: &str, digits: usize| {
        let a = ours.and_then(get);
        let b = reference.and_then(get);
        let fmt = |v: Option<f64>| match v {
            // Small figures (the reference's creates/s) would round to nothing.
            Some(v) if v.is_finite() && v.abs() < 10.0 && digits == 0 => format!("{v:.1}{unit}"),
            Some(v) if v.is_finite() => format!("{v:.digits$}{unit}"),
            _ => "—".to_string(),
        };
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => {
                format!("{:.2}", a / b)
            }
            _ => "—".to_string(),
        };
        let _ = writeln!(out, "| {name} | {} | {} | {ratio} |", fmt(a), fmt(b));
    };
    row(
        "create → connectable p50",
        &|f| Some(f.create_to_connectable.p50()),
        " ms",
        2,
    );
    row(
        "create → connectable p99",
        &|f| Some(f.create_to_connectable.p99()),
        " ms",
        2,
    );
    row(
        "  POST response p50",
        &|f| Some(f.create_response.p50()),
        " ms",
        2,
    );
    row(
        "  POST → host sent Running p50",
        &|f| Some(f.create_to_host_running.p50()),
        " ms",
        2,
    );
    row(
        "  POST → Running acknowledged p50 (ours only)",
        &|f| Some(f.create_to_running_acked.p50()),
        " ms",
        2,
    );
    row(
        "  polling GET round trip p50",
        &|f| Some(f.poll_get.p50()),
        " ms",
        2,
    );
    let mut levels: Vec<usize> = figures
        .iter()
        .flat_map(|f| f.throughput.iter().map(|t| t.concurrency))
        .collect();
    levels.sort_unstable();
    levels.dedup();
    for c in levels {
        row(
            &format!("creates/s, {c} clients (until all running)"),
            &|f| f.throughput_at(c).map(Throughput::per_s),
            "",
            0,
        );
        row(
            "  POSTs answered/s",
            &|f| {
                f.throughput_at(c)
                    .map(|t| t.creates as f64 / t.posts_elapsed.as_secs_f64())
            },
            "",
            0,
        );
        row(
            "  POST response p50",
            &|f| f.throughput_at(c).map(|t| t.response.p50()),
            " ms",
            1,
        );
        row(
            "  POST response p99",
            &|f| f.throughput_at(c).map(|t| t.response.p99()),
            " ms",
            1,
        );
    }
    row(
        "wake: StartActor − alarm time, p50",
        &|f| Some(f.wake.p50()),
        " ms",
        1,
    );
    row(
        "  min (negative = early)",
        &|f| Some(f.wake.min()),
        " ms",
        1,
    );
    row("  max", &|f| Some(f.wake.max()), " ms", 1);
    row(
        "RSS idle",
        &|f| Some(f.rss_idle_kib as f64 / 1024.0),
        " MiB",
        1,
    );
    row(
        "RSS after phase 2 (all actors running)",
        &|f| Some(f.rss_running.1 as f64 / 1024.0),
        " MiB",
        1,
    );
    row(
        "RSS with all actors asleep",
        &|f| f.rss_sleeping.map(|(_, kib)| kib as f64 / 1024.0),
        " MiB",
        1,
    );
    row(
        "RSS with all actors asleep, 14 s later",
        &|f| f.rss_sleeping_settled.map(|kib| kib as f64 / 1024.0),
        " MiB",
        1,
    );
    for f in figures {
        let _ = writeln!(
            out,
            "\n{}: {} sequential creates, {} concurrent creates, {} failed creates (5xx), {} created \
             but never run, {} wakes ({} \
             skipped: stopped after the alarm time), {} actors running at the second RSS \
             reading{}{}",
            f.which.label(),
            f.create_to_connectable.count(),
            f.throughput.iter().map(|t| t.creates).sum::<usize>(),
            f.failed_creates,
            f.never_ran,
            f.wake.count(),
            f.wakes_skipped,
            f.rss_running.0,
            f.rss_sleeping
                .map(|(n, _)| format!(", {n} asleep at the last"))
                .unwrap_or_default(),
            if f.in_process {
                " (in-process: RSS includes the benchmark)"
            } else {
                ""
            }
        );
    }
    out
}
