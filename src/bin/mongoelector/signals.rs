//! The signals the tool handles, delivered on a channel so that one
//! `select!` can wait for a signal, the command's exit and a lost lock.

use crossbeam_channel::Receiver;
use nix::sys::signal::Signal;
use signal_hook::consts::{
    SIGCONT, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2,
    SIGWINCH,
};
use signal_hook::iterator::Signals;

use crate::exit::{Failure, SOFTWARE};

/// Signals that end the tool (after its command, which gets them first).
const ENDING: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];
/// Signals passed on to the command and otherwise ignored. SIGWINCH: the
/// command is not in the terminal's foreground group, so a change of the
/// terminal's size reaches it only through the tool.
const RELAYED: [i32; 3] = [SIGUSR1, SIGUSR2, SIGWINCH];
/// Every signal the tool passes on to the command's group.
pub const PASSED_ON: [i32; 7] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH];
/// Signals that stop the tool (Ctrl-Z): they stop the command's group too,
/// which the terminal no longer reaches, and SIGCONT continues both.
const STOPPING: [i32; 3] = [SIGTSTP, SIGTTIN, SIGTTOU];

/// Whether `signal` asks the tool to end.
pub fn ends_the_tool(signal: i32) -> bool {
    ENDING.contains(&signal)
}

/// From now on the handled signals no longer end the process: each is
/// sent on the returned channel instead. Stopping and continuing are
/// handled here, for the tool and its command's group together.
pub fn listen() -> Result<Receiver<i32>, Failure> {
    let handled = ENDING
        .iter()
        .chain(&RELAYED)
        .chain(&STOPPING)
        .chain(&[SIGCONT]);
    let mut signals = Signals::new(handled)
        .map_err(|e| Failure::new(SOFTWARE, "installing signal handlers", e))?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("mongoelector-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if STOPPING.contains(&signal) {
                    crate::group::signal_group(Signal::SIGSTOP);
                    let _ = nix::sys::signal::raise(Signal::SIGSTOP);
                    continue;
                }
                if signal == SIGCONT {
                    crate::group::signal_group(Signal::SIGCONT);
                    continue;
                }
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Failure::new(SOFTWARE, "starting the signal thread", e))?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signals_passed_on_are_the_ending_and_the_relayed_ones() {
        let both: Vec<i32> = ENDING.iter().chain(&RELAYED).copied().collect();
        assert_eq!(both, PASSED_ON);
    }
}
