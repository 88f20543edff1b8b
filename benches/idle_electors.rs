//! Idle cost of electors: `ELECTORS` (default 100) running electors in this
//! one process, with the default ttl (15 s), retry interval (3 s) and status
//! reports, spread over `KEYS` keys (default 10: 10 masters renewing every
//! 5 s, 90 followers trying every 3 s). After a 5 s settling time it
//! measures `IDLE_SECS` (default 60) of idling and prints CPU per elector
//! per minute (user + sys of the whole process, driver threads included),
//! memory per elector (RSS growth from before the electors were built,
//! divided by their number), and where the CPU and the wake-ups went, per
//! thread kind (from /proc/self/task).
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench idle_electors
//! IDLE_SECS=10 scripts/with-server.sh cargo bench --bench idle_electors   # a quick check
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mongoelector::{Event, MongoElector};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Per thread kind: (threads, CPU ticks, voluntary context switches).
type Threads = BTreeMap<String, (u64, u64, u64)>;

fn thread_kind(comm: &str) -> String {
    if comm.starts_with("mongoelector-de") {
        "mongoelector-deadlines (1 per process)".to_owned()
    } else if comm.starts_with("mongoelector-") {
        "mongoelector-KEY (1 per elector)".to_owned()
    } else if comm.starts_with("tokio") {
        "driver runtime (tokio)".to_owned()
    } else {
        format!("other ({comm})")
    }
}

fn threads() -> Threads {
    let mut out = Threads::new();
    for entry in std::fs::read_dir("/proc/self/task").expect("/proc/self/task") {
        let dir = entry.unwrap().path();
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(dir.join("stat")),
            std::fs::read_to_string(dir.join("status")),
        ) else {
            continue;
        };
        // comm is in parentheses and may hold spaces; fields follow it.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let comm = &stat[open + 1..close];
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after comm.
        let ticks: u64 =
            fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
        let switches = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let e = out.entry(thread_kind(comm)).or_default();
        e.0 += 1;
        e.1 += ticks;
        e.2 += switches;
    }
    out
}

fn main() {
    let n = env_or("ELECTORS", 100) as usize;
    let keys = env_or("KEYS", 10).max(1) as usize;
    let secs = env_or("IDLE_SECS", 60);
    let (client, commands) = common::monitored_client();
    let db = common::fresh_db(&client, "idle");
    // The driver's connection is warm before the baseline.
    common::raw_write(&common::raw_collection(&db, "raw"), "w", 0);
    let rss_before = common::rss_now_kib();

    let electors: Vec<MongoElector> = (0..n)
        .map(|i| MongoElector::new(&format!("idle-{}", i % keys), &db).unwrap())
        .collect();
    let events: Vec<_> = electors.iter().map(|e| e.events()).collect();
    for e in &electors {
        e.start(false).unwrap();
    }
    std::thread::sleep(Duration::from_secs(5));
    let masters = electors.iter().filter(|e| e.is_master()).count();
    for rx in &events {
        rx.try_iter().for_each(drop);
    }

    let commands0 = commands.lock().unwrap().clone();
    let threads0 = threads();
    let (cpu0, _) = common::rusage();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let (cpu1, _) = common::rusage();
    let peak_kib = common::peak_rss_kib();
    let wall = t0.elapsed();
    let threads1 = threads();
    let commands1 = commands.lock().unwrap().clone();
    let rss_after = common::rss_now_kib();

    let mut polls = 0u64;
    let mut transitions = 0u64;
    for rx in &events {
        for ev in rx.try_iter() {
            match ev {
                Event::Polled { missed, .. } => polls += 1 + missed,
                Event::BecameMaster { .. } | Event::LostMaster { .. } => transitions += 1,
                _ => {}
            }
        }
    }
    let masters_end = electors.iter().filter(|e| e.is_master()).count();
    let stop_t = Instant::now();
    for e in &electors {
        e.stop().unwrap();
    }
    let stop_all = stop_t.elapsed();
    let _ = db.drop().run();

    let minutes = wall.as_secs_f64() / 60.0;
    let cpu = (cpu1 - cpu0).as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    println!(
        "## {n} idle electors in one process, {keys} keys, {:.0} s\n",
        wall.as_secs_f64()
    );
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| masters / followers | {masters} / {} (at the end: {masters_end} masters) |",
        n - masters
    );
    println!(
        "| polls made (all electors) | {polls} ({:.1} per elector per minute) |",
        polls as f64 / n as f64 / minutes
    );
    println!("| role changes while idle | {transitions} |");
    let sent: Vec<(String, u64)> = commands1
        .iter()
        .map(|(name, c1)| (name.clone(), c1 - commands0.get(name).copied().unwrap_or(0)))
        .filter(|(_, c)| *c > 0)
        .collect();
    let total: u64 = sent.iter().map(|(_, c)| c).sum();
    println!(
        "| server commands (command monitoring) | {:.1} per elector per minute ({}) |",
        total as f64 / n as f64 / minutes,
        sent.iter()
            .map(|(name, c)| format!("{name} {:.1}", *c as f64 / n as f64 / minutes))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "| client CPU (user+sys, whole process) | {:.1} ms per elector per minute ({:.3} % of one core for all {n}) |",
        cpu * 1e3 / n as f64 / minutes,
        cpu / wall.as_secs_f64() * 100.0
    );
    if polls > 0 {
        println!(
            "| client CPU per poll | {:.0} µs |",
            cpu * 1e6 / polls as f64
        );
    }
    println!(
        "| memory per elector (RSS growth / {n}) | {:.1} KiB (RSS {:.1} → {:.1} MiB; peak, VmHWM, {:.1} MiB) |",
        (rss_after.saturating_sub(rss_before)) as f64 / n as f64,
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        peak_kib as f64 / 1024.0
    );
    println!(
        "| stop() of all {n}, one after another | {:.0} ms |",
        stop_all.as_secs_f64() * 1e3
    );
    println!("\nPer thread kind, during the idle window:\n");
    println!("| threads | count | CPU, ms | voluntary wake-ups | wake-ups per thread per minute |");
    println!("|---|---|---|---|---|");
    for (kind, (count, ticks1, sw1)) in &threads1 {
        let (_, ticks0, sw0) = threads0.get(kind).copied().unwrap_or_default();
        let wakes = sw1.saturating_sub(sw0);
        println!(
            "| {kind} | {count} | {:.0} | {wakes} | {:.1} |",
            ticks1.saturating_sub(ticks0) as f64 / hz * 1e3,
            wakes as f64 / *count as f64 / minutes
        );
    }
}
