//! One run of a server program: spawned with its output in a log file,
//! signalled and stopped by its PID, and killed by a watchdog if the test
//! process dies without stopping it.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::kit_error;
use crate::Result;

/// How long a server may take to stop after SIGTERM before it is killed
/// (SecantusDB takes about 4 s).
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// The same for the watchdog, which acts for a test process that is gone:
/// shorter, since nobody waits for a clean stop (SecantusDB can hang in
/// its shutdown after a SIGTERM that came while it was frozen).
const WATCHDOG_KILL_AFTER: Duration = Duration::from_secs(10);

/// What to run.
#[derive(Clone, Debug)]
pub(super) struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// A running server program.
pub(super) struct Process {
    child: Child,
    /// `sh` reading a pipe only this process writes: when the pipe closes
    /// (this process ended, however), it sends the server SIGTERM. Killed
    /// first on a normal stop, so it never signals a reused PID.
    watchdog: Option<(Child, ChildStdin)>,
    log: PathBuf,
    stopped: bool,
}

impl Process {
    /// Starts `launch` with stdout and stderr appended to `log`.
    pub fn spawn(launch: &Launch, log: &Path) -> Result<Process> {
        let io = |action: &'static str| {
            move |e: std::io::Error| kit_error(action, format!("{e}"), Some(e))
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(io("open the server's log"))?;
        let err = out.try_clone().map_err(io("open the server's log"))?;
        let child = Command::new(&launch.program)
            .args(&launch.args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| {
                kit_error(
                    "start the server",
                    format!("could not run {}: {e}", launch.program.display()),
                    Some(e),
                )
            })?;
        // The watchdog ignores the signals a terminal or a test runner
        // sends the whole process group (Ctrl-C, a timeout's SIGTERM), so
        // that it outlives the test process and thaws and stops a frozen
        // server; SIGKILL if it has not stopped within WATCHDOG_KILL_AFTER; then it
        // removes the server's directory (where the log is).
        let dir = log.parent().unwrap_or(log);
        let script = r#"trap '' INT TERM HUP; read _
            kill -CONT "$0" 2>/dev/null; kill -TERM "$0" 2>/dev/null
            n=0; while kill -0 "$0" 2>/dev/null && [ "$n" -lt "$2" ]; do sleep 1; n=$((n+1)); done
            kill -KILL "$0" 2>/dev/null; rm -rf "$1""#;
        let watchdog = match Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(child.id().to_string())
            .arg(dir)
            .arg(WATCHDOG_KILL_AFTER.as_secs().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(mut w) => w.stdin.take().map(|pipe| (w, pipe)),
            Err(e) => {
                log::warn!(
                    "mongoelector::testing: no watchdog for the server (PID {}): {e}; it \
                     outlives this process if the process dies without stopping it",
                    child.id()
                );
                None
            }
        };
        Ok(Process {
            child,
            watchdog,
            log: log.to_owned(),
            stopped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the server accepts connections on `port`; fails with
    /// the end of its log if it exits first or `limit` passes.
    pub fn wait_listening(&mut self, port: u16, limit: Duration) -> Result<()> {
        let end = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.stopped = true;
                return Err(kit_error(
                    "start the server",
                    format!("it exited ({status}) before listening; {}", self.log_tail()),
                    None,
                ));
            }
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(kit_error(
                    "start the server",
                    format!(
                        "it did not listen on 127.0.0.1:{port} within {limit:?}; {}",
                        self.log_tail()
                    ),
                    None,
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fails if the server has exited (after a start that something else
    /// answered for).
    pub fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.stopped = true;
                Err(kit_error(
                    "start the server",
                    format!(
                        "it exited ({status}) while another program answered on its port; {}",
                        self.log_tail()
                    ),
                    None,
                ))
            }
            Err(e) => Err(kit_error("start the server", e.to_string(), Some(e))),
        }
    }

    /// Sends `signal`.
    pub fn signal(&self, signal: Signal, action: &'static str) -> Result<()> {
        if self.stopped {
            return Err(kit_error(action, "the server is stopped", None));
        }
        kill(Pid::from_raw(self.pid() as i32), signal).map_err(|e| {
            let io = std::io::Error::from(e);
            kit_error(action, io.to_string(), Some(io))
        })
    }

    /// SIGCONT (a frozen server cannot act on SIGTERM), SIGTERM, and waits
    /// for the exit; SIGKILL after [`STOP_LIMIT`]. Idempotent.
    pub fn stop(&mut self) -> Result<()> {
        if let Some((mut watchdog, pipe)) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
            drop(pipe);
        }
        if self.stopped {
            return Ok(());
        }
        let pid = Pid::from_raw(self.pid() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = kill(pid, Signal::SIGTERM);
        let end = Instant::now() + STOP_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    log::warn!(
                        "mongoelector::testing: the server (PID {pid}) did not stop within \
                         {STOP_LIMIT:?} of SIGTERM; killing it"
                    );
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Err(e) => {
                    return Err(kit_error("stop the server", e.to_string(), Some(e)));
                }
            }
        }
        self.stopped = true;
        Ok(())
    }

    /// The last lines of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }
}

/// The last 2000 bytes of a log, for an error message.
pub(super) fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(2000)));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    if text.trim().is_empty() {
        format!("its log ({}) is empty", log.display())
    } else {
        format!(
            "the end of its log ({}):\n{}",
            log.display(),
            text.trim_end()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
