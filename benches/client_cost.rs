//! Client cost of the lock: CPU time (user + sys of this whole process,
//! driver threads included) per acquire/release cycle, and peak RSS.
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench client_cost
//! ```
//!
//! First `RAW_CYCLES` (default 2,000) cycles of the raw driver's minimal
//! equivalent (two `find_one_and_update`), then `CYCLES` (default 10,000)
//! uncontended `acquire` + `release` cycles, each measured with
//! `getrusage(RUSAGE_SELF)` before and after.

mod common;

use std::time::{Duration, Instant};

use mongoelector::MongoLocker;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Cost {
    cpu_per_cycle: Duration,
    wall_per_cycle: Duration,
}

fn measure(cycles: u64, mut cycle: impl FnMut(u64)) -> Cost {
    let (cpu0, _) = common::rusage();
    let t0 = Instant::now();
    for i in 0..cycles {
        cycle(i);
    }
    let wall = t0.elapsed();
    let (cpu1, _) = common::rusage();
    Cost {
        cpu_per_cycle: (cpu1 - cpu0) / cycles as u32,
        wall_per_cycle: wall / cycles as u32,
    }
}

fn main() {
    let cycles = env_or("CYCLES", 10_000);
    let raw_cycles = env_or("RAW_CYCLES", 2_000);
    let client = common::client();
    let db = common::fresh_db(&client, "client_cost");
    let raw = common::raw_collection(&db, "raw");
    let locker = MongoLocker::builder("cost", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    // Warm up: connection pool, first documents.
    for i in 0..50 {
        common::raw_write(&raw, "w", i);
        assert!(locker
            .acquire(false, None, Duration::from_millis(250), false)
            .unwrap());
        assert!(locker.release(false).unwrap());
    }
    let rss_start = common::rss_now_kib();

    let raw_cost = measure(raw_cycles, |i| {
        common::raw_write(&raw, "w", 2 * i as i64);
        common::raw_write(&raw, "w", 2 * i as i64 + 1);
    });
    let lock_cost = measure(cycles, |_| {
        assert!(locker
            .acquire(false, None, Duration::from_millis(250), false)
            .unwrap());
        assert!(locker.release(false).unwrap());
    });
    let (_, peak_kib) = common::rusage();
    let rss_end = common::rss_now_kib();
    let _ = db.drop().run();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("## Client cost per acquire/release cycle\n");
    println!(
        "| | cycles | client CPU (user+sys) per cycle, µs | wall per cycle, µs | CPU / wall |"
    );
    println!("|---|---|---|---|---|");
    for (name, n, c) in [
        ("raw driver: 2 find_one_and_update", raw_cycles, &raw_cost),
        ("MongoLocker acquire + release", cycles, &lock_cost),
    ] {
        println!(
            "| {name} | {n} | {:.0} | {:.0} | {:.2} |",
            us(c.cpu_per_cycle),
            us(c.wall_per_cycle),
            c.cpu_per_cycle.as_secs_f64() / c.wall_per_cycle.as_secs_f64()
        );
    }
    println!(
        "\nClient CPU ratio, MongoLocker to raw: {:.2}",
        lock_cost.cpu_per_cycle.as_secs_f64() / raw_cost.cpu_per_cycle.as_secs_f64()
    );
    println!(
        "Peak RSS (ru_maxrss): {:.1} MiB; RSS after warm-up {:.1} MiB, at the end {:.1} MiB",
        peak_kib as f64 / 1024.0,
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
}
