//! The command the tool runs: started with the lock's key and fence in its
//! environment under a supervisor (see `supervisor`), in a session and
//! process group of its own, waited for on a thread of its own, and stopped
//! with SIGTERM then SIGKILL, sent to its whole group, when the lock is lost
//! or the tool is told to end.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use crossbeam_channel::{after, never, select, Receiver};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::exit::{Failure, CANNOT_RUN, NOT_FOUND, SOFTWARE};
use crate::group::{signal_group, GROUP};
use crate::signals::ends_the_tool;
use crate::supervisor::INVOKED_AS;

/// A running command.
pub struct Child {
    exited: Receiver<ExitStatus>,
    /// The exit status, once the waiting thread reported it.
    status: Option<ExitStatus>,
    /// The write end of the supervisor's pipe: only the tool holds it, so
    /// the supervisor reads EOF when the tool ends, however it ends.
    _lifeline: io::PipeWriter,
}

/// How a supervised run ended.
pub struct Outcome<T> {
    /// The command's exit status.
    pub status: ExitStatus,
    /// What said the lock (or mastership) was lost, if something did.
    pub lost: Option<T>,
    /// The first signal that asked the tool to end, if one did.
    pub ended_by: Option<i32>,
}

/// Starts `argv` with `env` added to the tool's environment, under the
/// supervisor, which stops the command's whole tree (SIGTERM, SIGKILL
/// `kill_after` later) if the tool dies, and when the command ends.
pub fn spawn(
    argv: &[OsString],
    env: &[(&str, String)],
    kill_after: Duration,
) -> Result<Child, Failure> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Failure::new(crate::exit::USAGE, "starting the command", "none given"))?;
    let doing = format!("starting the command {}", program.to_string_lossy());
    let (watch, lifeline) = io::pipe().map_err(|e| Failure::new(SOFTWARE, &doing, e))?;
    let mut command = Command::new(own_executable());
    command
        .arg0("mongoelector")
        .arg(INVOKED_AS)
        .arg(watch.as_raw_fd().to_string())
        .arg(kill_after.as_millis().to_string())
        .arg(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)));
    in_a_session_of_its_own(&mut command, watch.as_raw_fd());
    let mut child = command.spawn().map_err(|e| {
        let code = if e.kind() == io::ErrorKind::NotFound {
            NOT_FOUND
        } else {
            CANNOT_RUN
        };
        Failure::new(code, &doing, e)
    })?;
    drop(watch);
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    // The supervisor leads its session and group from before its exec.
    *GROUP.lock().unwrap_or_else(PoisonError::into_inner) = Some(pid);
    let (tx, exited) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("mongoelector-child".into())
        .spawn(move || {
            // `wait` fails only if the child was already reaped: not here.
            let peeked = await_exit(pid);
            let reaped = (!peeked).then(|| child.wait());
            let mut group = GROUP.lock().unwrap_or_else(PoisonError::into_inner);
            if peeked {
                // What the supervisor left, if it died before the tree (the
                // OOM killer): its group id is still its own, a zombie's.
                let _ = killpg(pid, Signal::SIGKILL);
            }
            let status = reaped.unwrap_or_else(|| child.wait());
            *group = None;
            drop(group);
            if let Ok(status) = status {
                let _ = tx.send(status);
            }
        })
        .map_err(|e| {
            Failure::new(
                SOFTWARE,
                "starting the thread that waits for the command",
                e,
            )
        })?;
    Ok(Child {
        exited,
        status: None,
        _lifeline: lifeline,
    })
}

/// This program, to run as the supervisor. On Linux the running binary
/// itself, even if its file was replaced or removed since (an upgrade);
/// without `/proc`, the path it was started by.
fn own_executable() -> std::path::PathBuf {
    let running = std::path::Path::new("/proc/self/exe");
    if cfg!(any(target_os = "linux", target_os = "android")) && running.exists() {
        return running.into();
    }
    std::env::current_exe()
        .ok()
        .or_else(|| std::env::args_os().next().map(Into::into))
        .unwrap_or_else(|| "mongoelector".into())
}

/// Blocks until `pid` has ended, without reaping it, and says so (Linux):
/// while it is a zombie, its process group id cannot be another's.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn await_exit(pid: Pid) -> bool {
    use nix::sys::wait::{waitid, Id, WaitPidFlag};
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Err(nix::errno::Errno::EINTR) => {}
            done => return done.is_ok(),
        }
    }
}

/// Elsewhere there is no waiting without reaping: the caller reaps.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn await_exit(_pid: Pid) -> bool {
    false
}

fn in_a_session_of_its_own(command: &mut Command, watch: RawFd) {
    // SAFETY: the closure runs in the forked child before exec and only
    // makes two system calls, setsid and fcntl, both async-signal-safe; it
    // allocates nothing.
    unsafe {
        command.pre_exec(move || {
            // A session, not only a group: the terminal's signals reach
            // the tool alone, which passes them on once, and the command
            // reads a terminal on stdin without being stopped (SIGTTIN).
            nix::unistd::setsid().map_err(io::Error::from)?;
            // The supervisor inherits the read end; the tool keeps the
            // write end (close-on-exec) to itself.
            nix::fcntl::fcntl(
                watch,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(io::Error::from)?;
            Ok(())
        });
    }
}

impl Child {
    /// Sends `signal` to the command's whole group unless it has ended.
    pub fn signal(&mut self, signal: Signal) {
        if self.status.is_none() {
            signal_group(signal);
        }
    }

    /// Waits for the command to end.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        // The waiting thread sends exactly once; it can only fail to if
        // `wait` failed, which never happens to a child we have not reaped.
        let status = self
            .exited
            .recv()
            .unwrap_or_else(|_| ExitStatusExt::from_raw(i32::from(SOFTWARE) << 8));
        self.status = Some(status);
        status
    }

    /// Runs until the command ends. When `losses` brings a message that
    /// `is_loss` accepts, or a signal that ends the tool arrives, the
    /// command gets SIGTERM (the tool's signal is passed on as it is), and
    /// SIGKILL `kill_after` later if it is still running. Other signals are
    /// passed on. `is_loss` sees every message, in order, also those that
    /// come while the command stops, which are not read again.
    pub fn supervise<T>(
        &mut self,
        signals: &Receiver<i32>,
        losses: &Receiver<T>,
        mut is_loss: impl FnMut(&T) -> bool,
        kill_after: Duration,
    ) -> Outcome<T> {
        let mut lost = None;
        let mut ended_by = None;
        // `None` inside: so far off that no `Instant` holds it, never.
        let mut kill_at: Option<Option<Instant>> = None;
        let mut killed = false;
        let mut losses = losses.clone();
        let mut signals = signals.clone();
        loop {
            let timer = match kill_at {
                Some(Some(at)) if !killed => after(at.saturating_duration_since(Instant::now())),
                _ => never(),
            };
            select! {
                recv(self.exited) -> status => {
                    let status = status.unwrap_or_else(|_| self.wait());
                    self.status = Some(status);
                    return Outcome { status, lost, ended_by };
                }
                recv(losses) -> message => match message {
                    Ok(message) if is_loss(&message) && lost.is_none() => {
                        lost = Some(message);
                        self.signal(Signal::SIGTERM);
                        kill_at.get_or_insert_with(|| deadline(kill_after));
                    }
                    Ok(_) => {}
                    // Nothing more can come: stop listening.
                    Err(_) => losses = never(),
                },
                recv(signals) -> signal => {
                    let Ok(signal) = signal else {
                        signals = never();
                        continue;
                    };
                    if let Ok(s) = Signal::try_from(signal) {
                        self.signal(s);
                    }
                    if ends_the_tool(signal) {
                        ended_by.get_or_insert(signal);
                        kill_at.get_or_insert_with(|| deadline(kill_after));
                    }
                }
                recv(timer) -> _ => {
                    self.signal(Signal::SIGKILL);
                    killed = true;
                }
            }
        }
    }
}

/// `kill_after` from now, or `None` past what an `Instant` holds (the
/// parser caps durations at a year; this keeps a bad one from panicking
/// while the command runs).
fn deadline(kill_after: Duration) -> Option<Instant> {
    Instant::now().checked_add(kill_after)
}
