//! The soak: 11 worker processes (2 threads each), each behind its own
//! fault-injecting proxy, a recorder and an auditor watching the server,
//! faults (a planned schedule, then random ones), then the history checker.
//! Two locks and an election (2 processes each), a semaphore of 3 permits
//! (2 processes) and a read-write lock (2 reading processes, 1 writing).
//! Prints what ran, what was injected on which primitive, and every
//! violation; exits non-zero on any, or on a primitive that got fewer than
//! two faults of a required kind.
//!
//! Run it with `scripts/soak.sh [SECONDS] [SEED]`. Without MONGODB_URI it
//! starts a test server of its own on an on-disk store and restarts it as
//! one of the faults; with MONGODB_URI=mongodb://127.0.0.1:PORT/ set it
//! uses that server and restarts nothing (`cargo run --example soak --
//! [SECONDS] [SEED]`). The planned schedule (about 35 s) runs however short
//! SECONDS is. A failed run keeps its logs; `soak --check DIR` runs the
//! checker on them again.

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/harness/mod.rs"]
mod harness;
mod schedule;
mod table;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::{checker, clock, recorder};
use mongoelector::testing::FaultProxy as Proxy;
use schedule::{kill, Coverage, Proc, Rng, Site, Timeline};

pub const TTL_MS: u64 = 1000;

/// The processes: name, primitive, the worker's own arguments.
/// Fair lockers (the default) and racing ones (`--fair 0`) share each
/// lock key: exclusion and fences hold across both, and the fair-order
/// rule judges the fair ones' grants.
const PLAN: [(&str, &str, &str); 12] = [
    ("lockA0", "lock", "--mode lock --key lockA --acts 3"),
    ("lockA1", "lock", "--mode lock --key lockA --acts 3"),
    (
        "lockA2",
        "lock",
        "--mode lock --key lockA --acts 3 --fair 0",
    ),
    ("lockB0", "lock", "--mode lock --key lockB --acts 2"),
    (
        "lockB1",
        "lock",
        "--mode lock --key lockB --acts 2 --fair 0",
    ),
    (
        "master0",
        "elector",
        "--mode elector --key master --acts 10",
    ),
    (
        "master1",
        "elector",
        "--mode elector --key master --acts 10",
    ),
    (
        "sem0",
        "semaphore",
        "--mode semaphore --permits 3 --key sem --acts 3",
    ),
    (
        "sem1",
        "semaphore",
        "--mode semaphore --permits 3 --key sem --acts 3",
    ),
    ("read0", "rwlock readers", "--mode read --key rw --acts 3"),
    ("read1", "rwlock readers", "--mode read --key rw --acts 3"),
    ("write0", "rwlock writer", "--mode write --key rw --acts 2"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir] = argv.as_slice() {
        if flag == "--check" {
            // Check the logs a failed run kept, again.
            let history = checker::History::read_dir(std::path::Path::new(dir))?;
            let report = history.check();
            println!("{report:#?}");
            return if report.violations.is_empty() {
                Ok(())
            } else {
                Err("violations".into())
            };
        }
    }
    let secs: u64 = argv.first().map_or(Ok(60), |s| s.parse())?;
    let seed: u64 = match argv.get(1) {
        Some(s) => s.parse()?,
        None => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64
                | 1
        }
    };
    let dir = std::env::temp_dir().join(format!("mongoelector-soak-{seed}"));
    std::fs::create_dir_all(&dir)?;
    let db = format!("soak_{seed}");
    // A server of its own (on disk, so that a restart keeps the data), or
    // the one MONGODB_URI names (no restarts then).
    let (mut own, port) = match std::env::var("MONGODB_URI") {
        Ok(uri) => {
            let port: u16 = uri
                .trim_start_matches("mongodb://")
                .split(['/', '?'])
                .next()
                .and_then(|hp| hp.rsplit(':').next())
                .ok_or("MONGODB_URI must be mongodb://HOST:PORT/...")?
                .parse()?;
            (None, port)
        }
        Err(_) => {
            let server = common::on_disk_server_with(&db, &[]);
            let port = server.port;
            (Some(server), port)
        }
    };
    let direct = format!(
        "mongodb://127.0.0.1:{port}/?directConnection=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1000&heartbeatFrequencyMS=500"
    );
    if own.is_some() {
        schedule::create_collections(&mongodb::sync::Client::with_uri_str(&direct)?.database(&db));
    }
    println!(
        "soak: {secs} s, seed {seed}, logs in {}, {}",
        dir.display(),
        if own.is_some() {
            "a server of its own (restarted twice)"
        } else {
            "the server of MONGODB_URI (no restarts)"
        }
    );
    let site = Site {
        worker: std::env::current_exe()?.with_file_name("worker"),
        db: db.clone(),
        dir: dir.clone(),
    };
    // The server's side of the history, watched from before any worker.
    let recorder = recorder::Recorder::start(&direct, &db, &dir);
    let upstream = format!("127.0.0.1:{port}").parse()?;
    let mut procs = Vec::new();
    for (name, primitive, own_args) in PLAN {
        let mut args: Vec<String> = own_args.split(' ').map(String::from).collect();
        let ttl = TTL_MS.to_string();
        let common = [
            "--threads",
            "2",
            "--ttl-ms",
            &ttl,
            "--retry-ms",
            "100",
            "--hold-ms",
            "50",
        ];
        args.extend(common.map(String::from));
        let proxy = Proxy::start(upstream)?;
        let child = site.spawn(name, &args, &proxy);
        procs.push(Mutex::new(Proc {
            name: name.into(),
            primitive,
            args,
            proxy,
            child,
        }));
    }

    let t = Timeline {
        began: Instant::now(),
    };
    let end = t.began + Duration::from_secs(secs);
    let mut cov = Coverage::default();
    let mut rng = Rng(seed);
    std::thread::sleep(Duration::from_secs(2));
    let mut restart = |t: &Timeline| -> bool {
        let Some(server) = own.as_mut() else {
            return false;
        };
        println!(
            "{:>5.1} s  restart   the server",
            t.began.elapsed().as_secs_f64()
        );
        let down = clock::mono_ns();
        server.stop();
        std::thread::sleep(Duration::from_secs(1));
        server.restart();
        // Noted in the history, for its reader.
        let line = format!("restart down={down} up={}\n", clock::mono_ns());
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("restarts.log"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
        std::thread::sleep(Duration::from_secs(2)); // the workers reconnect
        true
    };
    schedule::planned(&site, &procs, &mut restart, &mut cov, &t);
    schedule::random(&site, &procs, &mut rng, end, &mut cov, &t);
    for p in &procs {
        let p = p.lock().unwrap();
        kill(p.child.id(), "-CONT");
        kill(p.child.id(), "-TERM");
    }
    for p in &procs {
        let mut p = p.lock().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = p.child.kill();
                return Err(format!("worker {} did not stop on SIGTERM", p.name).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    recorder.stop();
    let history = checker::History::read_dir(&dir)?;
    let report = history.check();
    println!();
    table::print(secs, seed, &report, &cov);
    for v in &report.violations {
        println!("VIOLATION {v}");
    }
    let missing = cov.missing(own.is_some());
    let failed = if !report.violations.is_empty() {
        Some(format!("{} violations", report.violations.len()))
    } else if !missing.is_empty() {
        Some(format!("faults missing: {}", missing.join(", ")))
    } else if report.lock_sections == 0
        || report.master_terms == 0
        || report.permit_sections == 0
        || report.read_sections == 0
        || report.write_sections == 0
    {
        Some("the soak did no work".to_owned())
    } else {
        None
    };
    if let Some(why) = failed {
        if let Some(server) = &own {
            // The server's log, kept with the history for a look.
            let _ = std::fs::copy(server.kit.log_path(), dir.join("server.log"));
        }
        return Err(format!("{why}; logs kept in {}", dir.display()).into());
    }
    // KEEP_HISTORY=1 keeps a passing run's logs too, for a look.
    if std::env::var_os("KEEP_HISTORY").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
