//! Gives freed heap memory back to the operating system.
//!
//! glibc keeps memory freed in the middle of its heap; after a burst (thousands of actors put to
//! sleep at once) the engine's resident size would stay at the burst's peak although the live
//! heap is small again (measured: 162 MiB resident for 34 MiB live). `malloc_trim` releases those
//! pages; it runs every few seconds on a blocking thread and costs milliseconds. The
//! `rivet-engine` binary allocates with mimalloc, which returns memory by itself, so there this
//! only trims what glibc itself holds; it matters to programs that embed the engine with the
//! system allocator (an actor host's `start_embedded`).

use std::time::Duration;

use tokio::sync::watch;

/// How often free memory is returned.
const EVERY: Duration = Duration::from_secs(10);

/// Runs until `stopped` turns true.
pub async fn trim_periodically(mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let _ = tokio::task::spawn_blocking(trim).await;
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks glibc's own heap structures under its locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
