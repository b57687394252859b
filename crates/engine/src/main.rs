//! The `rivet-engine` binary: parses the command line and hands it to the library.

use clap::Parser;

/// mimalloc instead of glibc's malloc: under load the allocator was a fifth of the engine's
/// CPU; with mimalloc an action through the gateway costs ~30 % less engine CPU
/// (docs/benchmarks.md, "Rust SDK").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc.h.
#[cfg(target_os = "linux")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Commits arena memory as it is used rather than up front, which otherwise keeps freed pages
/// resident (idle RSS 28.7 → 13.7 MiB; with 100,000 sleeping actors 149 → 114–118 MiB). It must run
/// before the first allocation reserves the first arena, which Rust's runtime makes before
/// `main`, so it is a constructor.
#[cfg(target_os = "linux")]
extern "C" fn configure_allocator() {
    // SAFETY: mi_option_set only stores an option value; it allocates nothing.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

fn main() -> std::process::ExitCode {
    rivet_engine::cli::run(rivet_engine::cli::Cli::parse())
}
