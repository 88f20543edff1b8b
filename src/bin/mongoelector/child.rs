//! The command the tool runs: started with the lock's key and fence in its
//! environment, waited for on a thread of its own, and stopped with SIGTERM
//! then SIGKILL when the lock is lost or the tool is told to end.

use std::ffi::OsString;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crossbeam_channel::{after, never, select, Receiver};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::exit::{Failure, CANNOT_RUN, NOT_FOUND, SOFTWARE};
use crate::signals::ends_the_tool;

/// A running command.
pub struct Child {
    pid: Pid,
    exited: Receiver<ExitStatus>,
    /// The exit status, once the waiting thread reported it: from then on
    /// the pid may be another process's, so no signal is sent.
    status: Option<ExitStatus>,
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

/// Starts `argv` with `env` added to the tool's environment. On Linux the
/// command gets SIGTERM if the tool dies (SIGKILL, a crash), so it does not
/// run on without the lock.
pub fn spawn(argv: &[OsString], env: &[(&str, String)]) -> Result<Child, Failure> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Failure::new(crate::exit::USAGE, "starting the command", "none given"))?;
    let doing = format!("starting the command {}", program.to_string_lossy());
    let mut command = Command::new(program);
    command.args(args).envs(env.iter().map(|(k, v)| (k, v)));
    die_with_the_tool(&mut command);
    let mut child = command.spawn().map_err(|e| {
        let code = if e.kind() == io::ErrorKind::NotFound {
            NOT_FOUND
        } else {
            CANNOT_RUN
        };
        Failure::new(code, &doing, e)
    })?;
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let (tx, exited) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("mongoelector-child".into())
        .spawn(move || {
            // `wait` fails only if the child was already reaped: not here.
            if let Ok(status) = child.wait() {
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
        pid,
        exited,
        status: None,
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn die_with_the_tool(command: &mut Command) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only
    // makes two system calls (prctl, getppid), both async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(io::Error::from)?;
            // The tool died between fork and prctl: do not start at all.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::other(
                    "the tool ended before the command started",
                ));
            }
            Ok(())
        });
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn die_with_the_tool(_command: &mut Command) {}

impl Child {
    /// Sends `signal` unless the command has ended.
    pub fn signal(&mut self, signal: Signal) {
        if self.status.is_none() {
            if let Ok(status) = self.exited.try_recv() {
                self.status = Some(status);
                return;
            }
            // ESRCH: it ended just now; the waiting thread will say so.
            let _ = kill(self.pid, signal);
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
    /// passed on.
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
                    Ok(message) if lost.is_none() && is_loss(&message) => {
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
