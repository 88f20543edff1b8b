//! Client cost of the lock: CPU time (user + sys of this whole process,
//! driver threads included) per acquire/release cycle, and peak RSS.
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench client_cost
//! ```
//!
//! `CYCLES` (default 10,000) uncontended `acquire` + `release` cycles and
//! `RAW_CYCLES` (default 2,000) cycles of the raw driver's minimal
//! equivalent (two `find_one_and_update`), interleaved in blocks (so both
//! see the same server, which slows down as its oplog grows), each block
//! measured with `getrusage(RUSAGE_SELF)` before and after. Peak RSS is
//! `VmHWM` (`ru_maxrss` is printed too: on Linux it keeps the high-water
//! mark from before `execve`, i.e. cargo's).

mod common;

use std::time::{Duration, Instant};

use mongoelector::MongoLocker;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Cost {
    cycles: u64,
    cpu: Duration,
    wall: Duration,
}

impl Cost {
    fn measure(&mut self, cycles: u64, mut cycle: impl FnMut(u64)) {
        let (cpu0, _) = common::rusage();
        let t0 = Instant::now();
        for _ in 0..cycles {
            cycle(self.cycles);
            self.cycles += 1;
        }
        self.wall += t0.elapsed();
        let (cpu1, _) = common::rusage();
        self.cpu += cpu1 - cpu0;
    }

    fn cpu_per_cycle(&self) -> Duration {
        self.cpu / self.cycles.max(1) as u32
    }

    fn wall_per_cycle(&self) -> Duration {
        self.wall / self.cycles.max(1) as u32
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

    let (mut raw_cost, mut lock_cost) = (Cost::default(), Cost::default());
    const BLOCKS: u64 = 20;
    for _ in 0..BLOCKS {
        raw_cost.measure(raw_cycles / BLOCKS, |i| {
            common::raw_write(&raw, "w", 2 * i as i64);
            common::raw_write(&raw, "w", 2 * i as i64 + 1);
        });
        lock_cost.measure(cycles / BLOCKS, |_| {
            assert!(locker
                .acquire(false, None, Duration::from_millis(250), false)
                .unwrap());
            assert!(locker.release(false).unwrap());
        });
    }
    let (_, maxrss_kib) = common::rusage();
    let peak_kib = common::peak_rss_kib();
    let rss_end = common::rss_now_kib();
    let _ = db.drop().run();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!("## Client cost per acquire/release cycle\n");
    println!(
        "| | cycles | client CPU (user+sys) per cycle, µs | wall per cycle, µs | CPU / wall |"
    );
    println!("|---|---|---|---|---|");
    for (name, c) in [
        ("raw driver: 2 find_one_and_update", &raw_cost),
        ("MongoLocker acquire + release", &lock_cost),
    ] {
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.2} |",
            c.cycles,
            us(c.cpu_per_cycle()),
            us(c.wall_per_cycle()),
            c.cpu_per_cycle().as_secs_f64() / c.wall_per_cycle().as_secs_f64()
        );
    }
    println!(
        "\nClient CPU ratio, MongoLocker to raw: {:.2}",
        lock_cost.cpu_per_cycle().as_secs_f64() / raw_cost.cpu_per_cycle().as_secs_f64()
    );
    println!(
        "Peak RSS (VmHWM): {:.1} MiB (ru_maxrss, inherited from before exec: {:.1} MiB); \
         RSS after warm-up {:.1} MiB, at the end {:.1} MiB",
        peak_kib as f64 / 1024.0,
        maxrss_kib as f64 / 1024.0,
        rss_start as f64 / 1024.0,
        rss_end as f64 / 1024.0
    );
}
