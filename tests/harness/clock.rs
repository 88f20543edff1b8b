//! The clock of the fault histories: CLOCK_MONOTONIC in nanoseconds, one
//! clock for every process on the machine (workers and tests).
#![allow(dead_code)]

use std::time::Instant;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process here.
pub fn mono_ns() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// An `Instant` (CLOCK_MONOTONIC on Linux) as `mono_ns` nanoseconds.
pub fn instant_ns(at: Instant) -> i64 {
    let (now, now_ns) = (Instant::now(), mono_ns());
    match at.checked_duration_since(now) {
        Some(ahead) => now_ns + ahead.as_nanos() as i64,
        None => now_ns - now.duration_since(at).as_nanos() as i64,
    }
}
