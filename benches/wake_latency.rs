//! Wake-up latency, with change streams and with polling, in one run on one
//! server: how long a released lock stays free before a blocked waiter takes
//! it, and how long after a master's `stop()` a follower becomes master.
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench wake_latency
//! ```
//!
//! Prints median and max over `WAKE_TRIALS` (default 20) trials of each.
//! The step and retry interval are 250 ms (the lock's default step), so
//! polling waits on average half of that; change streams should not wait.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mongodb::sync::Database;
use mongoelector::{Event, MongoElector, MongoLocker};

const STEP: Duration = Duration::from_millis(250);

fn trials() -> usize {
    std::env::var("WAKE_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// Release to the waiter's acquire, once.
fn release_to_acquire(db: &Database, key: &str, streams: bool, pause: Duration) -> Duration {
    let build = || {
        MongoLocker::builder(key, db)
            .ttl(Duration::from_secs(30))
            .timeparanoid(false)
            .change_streams(streams)
            .build()
            .unwrap()
    };
    let holder = build();
    assert!(holder.acquire(false, None, STEP, false).unwrap());
    let waiter = Arc::new(build());
    let w = waiter.clone();
    let blocked = std::thread::spawn(move || {
        assert!(w
            .acquire(true, Some(Duration::from_secs(20)), STEP, false)
            .unwrap());
        let at = Instant::now();
        w.release(false).unwrap();
        at
    });
    std::thread::sleep(pause);
    let released = Instant::now();
    assert!(holder.release(false).unwrap());
    blocked.join().unwrap() - released
}

/// A master's `stop()` to a follower's BecameMaster, once.
fn stop_to_master(db: &Database, key: &str, streams: bool, pause: Duration) -> Duration {
    let build = || {
        MongoElector::builder(key, db)
            .ttl(Duration::from_secs(10))
            .retry_interval(STEP)
            .status_reports(false)
            .change_streams(streams)
            .build()
            .unwrap()
    };
    let master = build();
    master.poll().unwrap();
    assert!(master.is_master());
    let follower = build();
    let events = follower.events();
    follower.start(false).unwrap();
    std::thread::sleep(pause);
    let stopped = Instant::now();
    master.stop().unwrap();
    loop {
        if let Event::BecameMaster { .. } = events.recv_timeout(Duration::from_secs(20)).unwrap() {
            let took = stopped.elapsed();
            follower.stop().unwrap();
            return took;
        }
    }
}

fn summary(label: &str, mut samples: Vec<Duration>) -> String {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "| {label} | {} | {:.1} ms | {:.1} ms |",
        samples.len(),
        ms(samples[samples.len() / 2]),
        ms(*samples.last().unwrap())
    )
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no other arguments.
    let client = common::client();
    let db = common::fresh_db(&client, "wake");
    let n = trials();
    let mut rows = Vec::new();
    for (what, f) in [
        (
            "release → next acquire",
            release_to_acquire as fn(&Database, &str, bool, Duration) -> Duration,
        ),
        ("stop() → new master", stop_to_master),
    ] {
        let (mut streamed, mut polled) = (Vec::new(), Vec::new());
        for i in 0..n {
            // Alternate the two modes, and vary where in the poll rhythm the
            // release falls, so neither mode is favoured by the phase.
            let pause = Duration::from_millis(600 + (i as u64 * 37) % 250);
            streamed.push(f(&db, &format!("s{what}{i}"), true, pause));
            polled.push(f(&db, &format!("p{what}{i}"), false, pause));
        }
        rows.push(summary(&format!("{what}, change streams"), streamed));
        rows.push(summary(&format!("{what}, polling every 250 ms"), polled));
    }
    println!("\n| latency | trials | median | max |\n|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}
