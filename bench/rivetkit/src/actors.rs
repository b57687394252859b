//! The Rust bench actors and the host process that serves them (`rivet-bench-rivetkit host`).
//!
//! Three types with the same actions as npm's `bench` actor (tests/compat/host/actors.ts):
//!
//! - `bench`: strict persistence (the default): a changed state is written before the reply;
//! - `benchRelaxed`: [`Persistence::Relaxed`] with a 1 s interval (npm's default save throttle);
//! - `benchAwake`: `bench` with a 10-minute idle timeout, for the memory figure (the actors it
//!   wakes must stay awake until the last is woken), like npm's `benchAwake`.
//!
//! Actions: `ping` (changes nothing, returns nothing), `increment` (changes the state),
//! `broadcast(seq)` (event `tick` to every subscribed connection), `goToSleep`.

use std::time::Duration;

use rivetkit::{actor, ActorOptions, Ctx, Persistence, Registry, RegistryConfig};
use serde::{Deserialize, Serialize};

/// Registered names: (strict, relaxed, memory).
pub const STRICT: &str = "bench";
/// The relaxed-persistence type.
pub const RELAXED: &str = "benchRelaxed";
/// The type used for the memory figure.
pub const AWAKE: &str = "benchAwake";

/// Reports the host process's live heap bytes (for the memory figure; our host only).
pub const STATS: &str = "benchStats";

/// The relaxed type's save interval (npm rivetkit's default `stateSaveInterval`).
pub const RELAXED_INTERVAL: Duration = Duration::from_millis(1000);

macro_rules! bench_actor {
    ($(#[$doc:meta])* $ty:ident, $options:expr) => {
        $(#[$doc])*
        #[derive(Default, Serialize, Deserialize)]
        pub struct $ty {
            count: u64,
        }

        #[actor(rename_all = "camelCase")]
        impl $ty {
            fn options() -> ActorOptions {
                $options
            }

            async fn ping(&self) {}

            async fn increment(&mut self) -> u64 {
                self.count += 1;
                self.count
            }

            async fn broadcast(&self, ctx: &mut Ctx<Self>, seq: u64) -> u64 {
                ctx.broadcast("tick", &seq);
                seq
            }

            async fn go_to_sleep(&self, ctx: &mut Ctx<Self>) {
                ctx.sleep();
            }
        }
    };
}

bench_actor!(
    /// Strict persistence (default options).
    Bench,
    ActorOptions::default()
);

bench_actor!(
    /// Relaxed persistence, saved at most every second.
    BenchRelaxed,
    ActorOptions {
        persistence: Persistence::Relaxed {
            interval: RELAXED_INTERVAL,
        },
        ..ActorOptions::default()
    }
);

bench_actor!(
    /// Strict, and idle for 10 minutes before it sleeps.
    BenchAwake,
    ActorOptions {
        sleep_timeout: Duration::from_secs(600),
        ..ActorOptions::default()
    }
);

/// Reads the host process's allocation count.
#[derive(Default, Serialize, Deserialize)]
pub struct BenchStats {}

#[actor(rename_all = "camelCase")]
impl BenchStats {
    /// Bytes the process has allocated and not freed (see [`CountingAlloc`]); 0 unless
    /// counting.
    async fn heap(&self) -> u64 {
        CountingAlloc::live_bytes()
    }
}

/// The system allocator, counting live bytes (what `benchStats.heap` reports) when the host
/// was started with `RIVET_BENCH_COUNT_HEAP=1` (`--count-heap`): the binary installs it as its
/// global allocator. Off, it costs one relaxed load per call (counting costs ~4 % of the
/// host's CPU, so the latency and throughput figures are measured without it). One padded
/// counter per shard, picked per thread.
pub struct CountingAlloc;

static COUNTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

const SHARDS: usize = 16;

#[repr(align(128))]
struct Shard(std::sync::atomic::AtomicIsize);

static LIVE: [Shard; SHARDS] = [const { Shard(std::sync::atomic::AtomicIsize::new(0)) }; SHARDS];
static NEXT_SHARD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: usize =
        NEXT_SHARD.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS;
}

impl CountingAlloc {
    /// Starts counting (before the runtime starts, so that nearly everything is counted).
    pub fn enable() {
        COUNTING.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn add(delta: isize) {
        if !COUNTING.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        // During thread teardown the thread-local may be gone: shard 0 then.
        let shard = MY_SHARD.try_with(|s| *s).unwrap_or(0);
        LIVE[shard]
            .0
            .fetch_add(delta, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes allocated and not yet freed, over all threads.
    pub fn live_bytes() -> u64 {
        let total: isize = LIVE
            .iter()
            .map(|s| s.0.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        total.max(0) as u64
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; only sizes are counted.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            Self::add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        Self::add(-(layout.size() as isize));
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            Self::add(layout.size() as isize);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            Self::add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// The host process: serves the three types on the engine at `endpoint` (namespace and pool
/// `default`) until SIGTERM or Ctrl-C. Prints `ready` on stdout once the engine accepted it.
pub fn host_main(endpoint: String) -> anyhow::Result<()> {
    if std::env::var_os("RIVET_BENCH_COUNT_HEAP").is_some_and(|v| v == "1") {
        CountingAlloc::enable();
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let running = Registry::new()
            .register::<Bench>(STRICT)
            .register::<BenchRelaxed>(RELAXED)
            .register::<BenchAwake>(AWAKE)
            .register::<BenchStats>(STATS)
            .config(RegistryConfig {
                endpoint,
                token: None,
                namespace: "default".into(),
                pool: "default".into(),
                version: 1,
                region: "default".into(),
                drain_timeout: Duration::from_secs(5),
            })
            .start()
            .await?;
        println!("ready");
        running.wait().await?;
        Ok(())
    })
}
