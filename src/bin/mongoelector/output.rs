//! Writing results to stdout: a closed pipe or a full disk is a one-line
//! error with its own exit code, never a panic.

use std::fmt::Display;
use std::io::Write;

use crate::exit::{Failure, IO};

/// Writes one line to stdout (flushed: `status --watch` is read live).
pub fn line(text: impl Display) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(IO, "writing the output", e))
}
