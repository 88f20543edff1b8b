//! The process between the tool and its command: `mongoelector` itself,
//! started again with [`INVOKED_AS`] as its first argument, in a session
//! (and process group) of its own, which the command and everything it
//! starts inherit. The tool signals that whole group; this process ignores
//! those signals and keeps the tree from outliving the tool:
//!
//! - it holds the read end of a pipe whose write end only the tool holds:
//!   when the tool ends in any way (SIGKILL, a crash), the read sees EOF and
//!   the group gets SIGTERM at once, SIGKILL `--kill-after` later;
//! - it is a child subreaper (Linux), so what the command leaves behind is
//!   handed to it, and it knows when the group is empty: when the command
//!   ends, what is left of the group gets SIGTERM, SIGKILL `--kill-after`
//!   later;
//! - it exits as the command did (its code, or killed by its signal), so
//!   the tool reports the command's status as before.

use std::ffi::OsString;
use std::io;
use std::os::fd::RawFd;
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, Pid};

use crate::exit::{Failure, CANNOT_RUN, NOT_FOUND, SOFTWARE};

/// The first argument that makes `mongoelector` this supervisor. Not a
/// subcommand: nobody is meant to type it.
pub const INVOKED_AS: &str = "__mongoelector_supervise";

/// How often the end of a group's stragglers is looked for.
const STRAGGLER_POLL: Duration = Duration::from_millis(20);

/// What the tool passes: `WATCH_FD KILL_AFTER_MS PROGRAM ARGS...`.
struct Plan {
    watch: RawFd,
    kill_after: Duration,
    program: OsString,
    args: Vec<OsString>,
}

/// Runs the supervisor when the arguments ask for it.
pub fn requested() -> Option<ExitCode> {
    let mut argv = std::env::args_os().skip(1);
    if argv.next()? != INVOKED_AS {
        return None;
    }
    let plan = parse(argv.collect());
    Some(match plan {
        Some(plan) => run(plan),
        None => {
            eprintln!("mongoelector: {INVOKED_AS} is internal to mongoelector");
            ExitCode::from(SOFTWARE)
        }
    })
}

fn parse(argv: Vec<OsString>) -> Option<Plan> {
    let mut argv = argv.into_iter();
    let watch = argv.next()?.to_str()?.parse().ok()?;
    let kill_after = Duration::from_millis(argv.next()?.to_str()?.parse().ok()?);
    let program = argv.next()?;
    Some(Plan {
        watch,
        kill_after,
        program,
        args: argv.collect(),
    })
}

fn run(plan: Plan) -> ExitCode {
    let group = getpgrp();
    // The command must not inherit the pipe: only this process watches it.
    let _ = fcntl(plan.watch, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    // The tool passes these signals to the whole group: they are for the
    // command. A handler, not SIG_IGN, so that the command starts with the
    // default action (exec resets handlers, not ignored signals).
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in crate::signals::PASSED_ON {
        if let Err(e) = signal_hook::flag::register(signal, ignored.clone()) {
            return fail(SOFTWARE, "installing signal handlers", e);
        }
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
        return fail(SOFTWARE, "becoming the command's subreaper", e);
    }
    // Whether the tool has ended; held while the command starts, so that
    // it either never starts or is in the group when the group is stopped.
    let tool_gone = Arc::new(Mutex::new(false));
    let watcher = {
        let (tool_gone, kill_after, watch) = (tool_gone.clone(), plan.kill_after, plan.watch);
        std::thread::Builder::new()
            .name("mongoelector-watch".into())
            .spawn(move || watch_the_tool(watch, &tool_gone, kill_after))
    };
    if let Err(e) = watcher {
        return fail(SOFTWARE, "starting the thread that watches the tool", e);
    }
    let command = {
        let gone = tool_gone.lock().unwrap_or_else(PoisonError::into_inner);
        if *gone {
            return ExitCode::from(SOFTWARE);
        }
        Command::new(&plan.program).args(&plan.args).spawn()
    };
    let command = match command {
        Ok(command) => Pid::from_raw(i32::try_from(command.id()).unwrap_or(i32::MAX)),
        Err(e) => {
            let code = if e.kind() == io::ErrorKind::NotFound {
                NOT_FOUND
            } else {
                CANNOT_RUN
            };
            let doing = format!("starting the command {}", plan.program.to_string_lossy());
            return fail(code, &doing, e);
        }
    };
    let status = wait_for(command);
    stop_stragglers(group, plan.kill_after);
    exit_as(status)
}

/// Blocks until the tool's end of the pipe closes (the tool ended, however),
/// then stops the group: SIGTERM, and SIGKILL `kill_after` later unless the
/// tree ended sooner (the supervisor then exits first).
fn watch_the_tool(watch: RawFd, tool_gone: &Mutex<bool>, kill_after: Duration) {
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(watch, &mut byte) {
            Ok(0) => break,
            Err(Errno::EINTR) | Ok(_) => {}
            Err(_) => break,
        }
    }
    {
        let mut gone = tool_gone.lock().unwrap_or_else(PoisonError::into_inner);
        *gone = true;
        let _ = kill(Pid::from_raw(0), Signal::SIGTERM);
    }
    std::thread::sleep(kill_after);
    let _ = kill(Pid::from_raw(0), Signal::SIGKILL);
}

/// Reaps children (the command, and orphans handed to a subreaper) until
/// the command has ended; its status.
fn wait_for(command: Pid) -> WaitStatus {
    loop {
        match waitpid(None, None) {
            Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _)))
                if pid == command =>
            {
                return status
            }
            Ok(_) | Err(Errno::EINTR) => {}
            // No child left: cannot be while the command has not been reaped.
            Err(_) => return WaitStatus::Exited(command, i32::from(SOFTWARE)),
        }
    }
}

/// Whatever the command left in the group gets SIGTERM; if some of it is
/// still there `kill_after` later, the whole group, this process included,
/// gets SIGKILL. Children in the group are this process's to reap: the
/// command's orphans are handed to a subreaper.
fn stop_stragglers(group: Pid, kill_after: Duration) {
    let in_group = Pid::from_raw(-group.as_raw());
    let mut deadline = None;
    loop {
        match waitpid(in_group, Some(WaitPidFlag::WNOHANG)) {
            // None left in the group.
            Err(Errno::ECHILD) => return,
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) | Err(_) => continue,
        }
        let at = *deadline.get_or_insert_with(|| {
            let _ = kill(Pid::from_raw(0), Signal::SIGTERM);
            Instant::now().checked_add(kill_after)
        });
        if at.is_some_and(|at| Instant::now() >= at) {
            let _ = kill(Pid::from_raw(0), Signal::SIGKILL);
        }
        std::thread::sleep(STRAGGLER_POLL);
    }
}

/// Ends this process as the command ended: with its code, or killed by its
/// signal (with the default action restored, and no core dump of our own).
fn exit_as(status: WaitStatus) -> ExitCode {
    match status {
        WaitStatus::Exited(_, code) => {
            ExitCode::from(u8::try_from(code & 0xff).unwrap_or(SOFTWARE))
        }
        WaitStatus::Signaled(_, signal, _) => {
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            let _ = signal_hook::low_level::emulate_default_handler(signal as i32);
            // Still here: a signal whose default is not to end a process.
            ExitCode::from(128u8.saturating_add(u8::try_from(signal as i32).unwrap_or(0)))
        }
        _ => ExitCode::from(SOFTWARE),
    }
}

fn fail(code: u8, doing: &str, why: impl std::fmt::Display) -> ExitCode {
    eprintln!("mongoelector: {}", Failure::new(code, doing, why).message);
    ExitCode::from(code)
}
