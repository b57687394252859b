//! A program under test as a child process: its output captured (and echoed to the test's
//! output with a prefix, so a failing test shows what the program said), signals on demand,
//! killed when dropped so that a failed assertion never leaves it running.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running child process. Dropping it kills it (SIGKILL) and reaps it.
pub struct ChildProcess {
    name: String,
    child: Child,
    output: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    reaped: Option<ExitStatus>,
}

impl ChildProcess {
    /// Starts `command` with stdout and stderr captured and stdin closed. `name` prefixes
    /// the echoed lines.
    pub fn spawn(name: &str, command: &mut Command) -> ChildProcess {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(name, out, output.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(name, err, output.clone()));
        }
        ChildProcess {
            name: name.to_string(),
            child,
            output,
            readers,
            reaped: None,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process printed so far (stdout and stderr, line by line).
    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until `check` finds what it looks for in the output so far. Panics, with the
    /// output, after `limit` or when the process exits without printing it.
    pub async fn wait_output<T>(
        &mut self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = check(&self.output()) {
                return found;
            }
            if let Some(status) = self.exited() {
                // The readers may still hold the last lines.
                self.join_readers();
                if let Some(found) = check(&self.output()) {
                    return found;
                }
                panic!(
                    "{} exited ({status}) before printing {what}; output:\n{}",
                    self.name,
                    self.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not print {what} within {limit:?}; output:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for the first output line containing `needle` and returns it.
    pub async fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        self.wait_output(&format!("a line with {needle:?}"), limit, |out| {
            out.lines().find(|l| l.contains(needle)).map(str::to_string)
        })
        .await
    }

    /// Sends SIGTERM (a graceful stop request).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) -> ExitStatus {
        self.signal(libc::SIGKILL);
        self.reap()
    }

    /// Waits for the process to exit, at most `limit` (then panics with its output).
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                self.join_readers();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {limit:?}; output:\n{}",
                self.name,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, signal: libc::c_int) {
        if self.reaped.is_some() {
            return;
        }
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on our own, not yet reaped child: the pid cannot have been reused.
        unsafe {
            libc::kill(pid, signal);
        }
    }

    /// The exit status if the process has exited, without waiting.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.exited()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        if self.reaped.is_none() {
            self.reaped = self.child.try_wait().ok().flatten();
        }
        self.reaped
    }

    fn reap(&mut self) -> ExitStatus {
        if let Some(status) = self.reaped {
            return status;
        }
        let status = self
            .child
            .wait()
            .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.name));
        self.reaped = Some(status);
        self.join_readers();
        status
    }

    /// Lets the readers take the last lines of an exited process. Bounded: a grandchild that
    /// inherited the pipes may keep them open.
    fn join_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.readers.retain(|r| !r.is_finished());
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if self.exited().is_none() {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Appends the lines of `stream` to `output` and echoes them to the test's output.
fn collect(
    name: &str,
    stream: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    let name = name.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{name}] {line}");
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str(&line);
            out.push('\n');
        }
    })
}
