//! The tool's exit codes (from `sysexits.h` where one fits) and its one
//! failure type: a code and one line naming what the tool was doing and why.

use std::fmt::Display;

/// Bad flags, a bad connection string, a setting out of range (EX_USAGE).
pub const USAGE: u8 = 64;
/// A lock document that this crate did not write (EX_DATAERR).
pub const DATA: u8 = 65;
/// The database is unreachable or refused the operation (EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;
/// An internal error: a thread could not be started, a panic (EX_SOFTWARE).
pub const SOFTWARE: u8 = 70;
/// The tool could not write its output (EX_IOERR).
pub const IO: u8 = 74;
/// `lock` or `semaphore` with `--no-wait` or `--timeout`: someone else
/// holds the lock, or every permit (EX_TEMPFAIL).
pub const NOT_ACQUIRED: u8 = 75;
/// The lock (or the permit) was lost while the command ran; the command was stopped. No
/// `sysexits` code fits, so it is the first one past their range.
pub const LOST: u8 = 79;
/// The command was found but could not be started (as `env` and shells).
pub const CANNOT_RUN: u8 = 126;
/// The command was not found (as `env` and shells).
pub const NOT_FOUND: u8 = 127;

/// The table that `--help` shows.
pub const TABLE: &str = "\
Exit codes:
  0    success (lock: the command's own exit status is passed through)
  64   bad usage: unknown flag, missing argument, bad duration, bad URI;
       a key another kind of primitive uses in the collection
  65   a document in the collection was not written by mongoelector
  69   database unreachable or refused the operation
  70   internal error
  74   could not write the output
  75   lock, semaphore: not acquired (--no-wait, --timeout); the holders are printed
  79   lock: the lock was lost (semaphore: the permit) while the command ran; it was stopped
  126  the command could not be started
  127  the command was not found
  128+N  the command was killed by signal N";

/// Why the tool stops early: an exit code and one line of explanation.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// `doing` is what the tool was doing ("taking the lock \"k\""), `why`
    /// the cause; newlines in the cause are folded so it stays one line.
    pub fn new(code: u8, doing: &str, why: impl Display) -> Self {
        Failure {
            code,
            message: one_line(&format!("{doing}: {why}")),
        }
    }

    /// A failure of the crate's API, with the exit code its kind calls for.
    pub fn from_error(doing: &str, error: &mongoelector::Error) -> Self {
        use mongoelector::Error;
        let code = match error {
            // Another count than the key's, or a key another kind of
            // primitive uses in the collection, is the caller's to fix.
            Error::InvalidArgument { .. }
            | Error::PermitsMismatch { .. }
            | Error::WrongKind { .. } => USAGE,
            Error::MalformedDocument { .. } => DATA,
            Error::Database(_) | Error::UnsupportedServer { .. } | Error::ClockSkew { .. } => {
                UNAVAILABLE
            }
            _ => SOFTWARE,
        };
        let text = error.to_string();
        // A database error leads with the library's operation and key,
        // which `doing` already says in the tool's terms.
        let why = match error {
            Error::Database(e) => text
                .strip_prefix(&format!("{} {:?}: ", e.operation(), e.key()))
                .unwrap_or(&text),
            _ => &text,
        };
        Failure::new(code, doing, why)
    }
}

/// Folds line breaks (a driver error may carry some) into `; `.
pub fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// The tool's exit code for a command that ended with `status`: its exit
/// code, or 128 + the signal that killed it.
pub fn of_status(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code & 0xff).unwrap_or(SOFTWARE),
        (None, Some(signal)) => u8::try_from(128 + (signal & 0x7f)).unwrap_or(SOFTWARE),
        (None, None) => SOFTWARE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    #[test]
    fn statuses_become_codes() {
        assert_eq!(of_status(ExitStatus::from_raw(0)), 0);
        assert_eq!(of_status(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(of_status(ExitStatus::from_raw(15)), 143, "SIGTERM");
        assert_eq!(of_status(ExitStatus::from_raw(9)), 137, "SIGKILL");
    }

    #[test]
    fn failures_are_one_line() {
        let f = Failure::new(USAGE, "reading the URI", "bad\nthing\r\n  here");
        assert_eq!(f.message, "reading the URI: bad; thing; here");
    }
}
