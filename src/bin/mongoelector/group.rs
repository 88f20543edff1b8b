//! The running command's process group, as the tool knows it: recorded
//! from the supervisor's start until it has been reaped, so that signals
//! reach the group only while its id cannot belong to another. Shared by
//! the supervision (`child`) and the signal thread (`signals`), which stops
//! and continues the group with the tool (Ctrl-Z, `fg`).

use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// The process group of the running command (the supervisor's pid), until
/// the supervisor has been reaped: signals go to the group only while its
/// id cannot belong to another. Global so that the signal thread can stop
/// and continue the group with the tool (Ctrl-Z, `fg`).
pub static GROUP: Mutex<Option<Pid>> = Mutex::new(None);

/// Sends `signal` to the running command's whole process group, if one runs.
pub fn signal_group(signal: Signal) {
    let group = GROUP.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(group) = *group {
        // ESRCH: nothing of the group is left.
        let _ = killpg(group, signal);
    }
}
