//! Client CPU per acquire+release cycle of a `MongoLocker` with default
//! settings, the crate's side of `scripts/python-cpu.sh` (which runs the
//! Python package's same cycle, `scripts/cycle_cpu.py`, side by side).
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench cycle_cpu
//! ```
//!
//! `CYCLES` (default 3,000) measured cycles after 50 of warm-up. Prints one
//! line: `rust <cycles> <client CPU per cycle, µs> <wall per cycle, µs>`,
//! the CPU being user + sys of the whole process (the driver's threads
//! included), from `getrusage`.

mod common;

use std::time::{Duration, Instant};

use mongoelector::MongoLocker;

fn main() {
    let cycles: u32 = std::env::var("CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000);
    let client = common::client();
    let db = common::fresh_db(&client, "cycle_cpu");
    let locker = MongoLocker::new("cpu", &db).unwrap();
    let step = Duration::from_millis(250);
    let cycle = || {
        assert!(locker.acquire(false, None, step, false).unwrap());
        assert!(locker.release(false).unwrap());
    };
    // Warm-up: connection pool, clock check, first-use checks.
    for _ in 0..50 {
        cycle();
    }
    let (cpu0, _) = common::rusage();
    let t0 = Instant::now();
    for _ in 0..cycles {
        cycle();
    }
    let wall = t0.elapsed();
    let (cpu1, _) = common::rusage();
    let _ = db.drop().run();
    let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(cycles.max(1));
    println!("rust {cycles} {:.1} {:.1}", us(cpu1 - cpu0), us(wall));
}
