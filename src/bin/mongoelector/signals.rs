//! The signals the tool handles, delivered on a channel so that one
//! `select!` can wait for a signal, the command's exit and a lost lock.

use crossbeam_channel::Receiver;
use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook::iterator::Signals;

use crate::exit::{Failure, SOFTWARE};

/// Signals that end the tool (after its command, which gets them first).
const ENDING: [i32; 4] = [SIGINT, SIGTERM, SIGHUP, SIGQUIT];
/// Signals passed on to the command and otherwise ignored.
const RELAYED: [i32; 2] = [SIGUSR1, SIGUSR2];

/// Whether `signal` asks the tool to end.
pub fn ends_the_tool(signal: i32) -> bool {
    ENDING.contains(&signal)
}

/// From now on the handled signals no longer end the process: each is
/// sent on the returned channel instead.
pub fn listen() -> Result<Receiver<i32>, Failure> {
    let mut signals = Signals::new(ENDING.iter().chain(&RELAYED))
        .map_err(|e| Failure::new(SOFTWARE, "installing signal handlers", e))?;
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("mongoelector-signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if tx.send(signal).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| Failure::new(SOFTWARE, "starting the signal thread", e))?;
    Ok(rx)
}
