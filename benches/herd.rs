//! Contention on one key, as threads of one process and as processes, side
//! by side in one run: the same contenders, each with its own handle,
//! looping `try_lock_for` (or `try_acquire_for` on a semaphore of 3
//! permits) → release with an empty section, at the default step (250 ms).
//! If the threads of one process are much slower than the same number of
//! processes, something inside the process serializes them.
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench herd
//! FRESH_SERVER=1 cargo bench --bench herd    # each case on a fresh server
//! ```
//!
//! Each case runs on a database of its own; with `FRESH_SERVER=1` each case
//! starts a fresh SecantusDB of its own (`scripts/server.sh`; add
//! `FRESH_SERVER_ARGS=--standalone` for a standalone one) instead of using
//! `MONGODB_URI`, since the server slows down as its oplog grows. The cases
//! run in `HERD_ROUNDS` rounds (default 2), each round every case once in
//! turn, so drift hits them alike.
//!
//! Knobs (environment): `HERD_SECS` (default 3 s per case), `HERD_N`
//! (default 8 contenders), `HERD_ROUNDS`, `HERD_CASES` (a comma-separated
//! subset of `lock-1`, `lock-threads`, `lock-processes`, `sem-1`,
//! `sem-threads`, `sem-processes`), `HERD_COMMANDS=1` (count the commands
//! every client starts, with the driver's command monitoring, and print
//! them per grant), `HERD_STREAMS=0` (change streams off: every waiter
//! polls at its step), `HERD_FAIR=0` (lockers that race, as before the
//! fair queue; the semaphore has no queue yet either way).
//!
//! Per case: grants a second, the longest wait of one call (from the call
//! to its grant), and each contender's grants.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mongodb::sync::Database;
use mongoelector::{MongoLocker, MongoSemaphore};

/// How long one call may wait before it gives up (counted as a timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
const PERMITS: u32 = 3;
const CHILD: &str = "HERD_CHILD";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Primitive {
    Lock,
    Semaphore,
}

impl Primitive {
    fn name(self) -> &'static str {
        match self {
            Primitive::Lock => "lock",
            Primitive::Semaphore => "sem",
        }
    }

    fn parse(s: &str) -> Primitive {
        match s {
            "lock" => Primitive::Lock,
            "sem" => Primitive::Semaphore,
            _ => panic!("unknown primitive {s}"),
        }
    }
}

/// One contender's handle.
enum Handle {
    Lock(MongoLocker),
    Semaphore(MongoSemaphore),
}

impl Handle {
    fn new(primitive: Primitive, db: &Database, key: &str) -> Handle {
        let streams = std::env::var("HERD_STREAMS").map_or(true, |v| v != "0");
        let fair = std::env::var("HERD_FAIR").map_or(true, |v| v != "0");
        match primitive {
            Primitive::Lock => Handle::Lock(
                MongoLocker::builder(key, db)
                    .change_streams(streams)
                    .fair(fair)
                    .build()
                    .unwrap(),
            ),
            Primitive::Semaphore => Handle::Semaphore(
                MongoSemaphore::builder(key, db, PERMITS)
                    .change_streams(streams)
                    .build()
                    .unwrap(),
            ),
        }
    }

    /// One call and its release: how long the call waited for its grant
    /// (`None`: it timed out).
    fn cycle(&self) -> Option<Duration> {
        let asked = Instant::now();
        match self {
            Handle::Lock(l) => {
                let guard = l.try_lock_for(CALL_TIMEOUT).unwrap()?;
                let waited = asked.elapsed();
                guard.release().unwrap();
                Some(waited)
            }
            Handle::Semaphore(s) => {
                let permit = s.try_acquire_for(CALL_TIMEOUT).unwrap()?;
                let waited = asked.elapsed();
                permit.release().unwrap();
                Some(waited)
            }
        }
    }
}

/// What one contender did.
#[derive(Clone, Copy, Default)]
struct Tally {
    grants: u64,
    timeouts: u64,
    longest: Duration,
}

impl Tally {
    fn line(&self) -> String {
        format!(
            "{} {} {}",
            self.grants,
            self.timeouts,
            self.longest.as_micros()
        )
    }

    fn parse(line: &str) -> Tally {
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|s| s.parse().unwrap())
            .collect();
        Tally {
            grants: v[0],
            timeouts: v[1],
            longest: Duration::from_micros(v[2]),
        }
    }
}

/// The loop every contender runs, until `until`.
fn contend(handle: &Handle, until: Instant) -> Tally {
    let mut t = Tally::default();
    while Instant::now() < until {
        match handle.cycle() {
            Some(waited) => {
                t.grants += 1;
                t.longest = t.longest.max(waited);
            }
            None => {
                t.timeouts += 1;
                t.longest = t.longest.max(CALL_TIMEOUT);
            }
        }
    }
    t
}

type Counts = std::collections::BTreeMap<String, u64>;

/// A client, monitored (its commands counted by name) with `HERD_COMMANDS=1`.
fn client() -> (mongodb::sync::Client, common::CommandCounts) {
    if std::env::var("HERD_COMMANDS").is_ok_and(|v| v == "1") {
        common::monitored_client()
    } else {
        (common::client(), Default::default())
    }
}

fn diff(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn format_counts(c: &Counts) -> String {
    c.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_counts(line: &str) -> Counts {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap()))
        .collect()
}

/// A child process: one contender. Builds its handle, says `ready`, waits
/// for a line on stdin, runs, prints its tally.
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split(',').collect();
    let (primitive, dbname, key, secs) = (
        Primitive::parse(parts[0]),
        parts[1],
        parts[2],
        parts[3].parse::<f64>().unwrap(),
    );
    let (client, counts) = client();
    let db = client.database(dbname);
    let handle = Handle::new(primitive, &db, key);
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let before = counts.lock().unwrap().clone();
    let tally = contend(&handle, Instant::now() + Duration::from_secs_f64(secs));
    println!("{}", tally.line());
    println!("{}", format_counts(&diff(&counts.lock().unwrap(), &before)));
    std::io::stdout().flush().unwrap();
}

#[derive(Clone, Copy)]
enum Mode {
    One,
    Threads,
    Processes,
}

struct Case {
    primitive: Primitive,
    mode: Mode,
}

impl Case {
    fn name(&self) -> String {
        let mode = match self.mode {
            Mode::One => "1",
            Mode::Threads => "threads",
            Mode::Processes => "processes",
        };
        format!("{}-{mode}", self.primitive.name())
    }
}

/// Runs one case against `uri`: each contender's tally and the time taken.
fn run_case(case: &Case, uri: &str, n: usize, secs: f64) -> (Vec<Tally>, Duration, Counts) {
    std::env::set_var("MONGODB_URI", uri);
    let (client, counts) = client();
    let db = common::fresh_db(&client, "herd");
    let key = "herd";
    // The collection and its first-use checks, outside the measurement.
    Handle::new(case.primitive, &db, key).cycle();
    let out = match case.mode {
        Mode::One | Mode::Threads => {
            let n = if matches!(case.mode, Mode::One) { 1 } else { n };
            let handles: Vec<Handle> = (0..n)
                .map(|_| Handle::new(case.primitive, &db, key))
                .collect();
            let barrier = Barrier::new(n + 1);
            let before = counts.lock().unwrap().clone();
            let (tallies, took) = std::thread::scope(|s| {
                let runs: Vec<_> = handles
                    .iter()
                    .map(|h| {
                        let barrier = &barrier;
                        s.spawn(move || {
                            barrier.wait();
                            contend(h, Instant::now() + Duration::from_secs_f64(secs))
                        })
                    })
                    .collect();
                let started = Instant::now();
                barrier.wait();
                let tallies: Vec<Tally> = runs.into_iter().map(|r| r.join().unwrap()).collect();
                (tallies, started.elapsed())
            });
            let commands = diff(&counts.lock().unwrap(), &before);
            (tallies, took, commands)
        }
        Mode::Processes => {
            let exe = std::env::current_exe().unwrap();
            let spec = format!("{},{},{key},{secs}", case.primitive.name(), db.name());
            let mut children: Vec<(Child, BufReader<std::process::ChildStdout>)> = (0..n)
                .map(|_| {
                    let mut c = Command::new(&exe)
                        .env(CHILD, &spec)
                        .env("MONGODB_URI", uri)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .unwrap();
                    let out = BufReader::new(c.stdout.take().unwrap());
                    (c, out)
                })
                .collect();
            for (_, out) in &mut children {
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                assert_eq!(line.trim(), "ready");
            }
            let started = Instant::now();
            for (c, _) in &mut children {
                writeln!(c.stdin.as_mut().unwrap(), "go").unwrap();
            }
            let mut commands = Counts::new();
            let mut tallies = Vec::new();
            for (_, out) in &mut children {
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                tallies.push(Tally::parse(line.trim()));
                line.clear();
                out.read_line(&mut line).unwrap();
                for (k, v) in parse_counts(&line) {
                    *commands.entry(k).or_default() += v;
                }
            }
            let took = started.elapsed();
            for (mut c, _) in children {
                assert!(c.wait().unwrap().success());
            }
            (tallies, took, commands)
        }
    };
    let _ = db.drop().run();
    out
}

/// A fresh server for one case, stopped when dropped.
struct Server {
    pid: String,
    uri: String,
}

impl Server {
    fn script() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/server.sh")
    }

    fn start() -> Server {
        let args = std::env::var("FRESH_SERVER_ARGS").unwrap_or_default();
        let standalone = args.contains("--standalone");
        let out = Command::new(Self::script())
            .arg("start")
            .args(args.split_whitespace())
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "the test server did not start");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut it = text.split_whitespace();
        let (port, pid) = (it.next().unwrap().to_owned(), it.next().unwrap().to_owned());
        let query = if standalone {
            "?directConnection=true"
        } else {
            ""
        };
        Server {
            pid,
            uri: format!("mongodb://127.0.0.1:{port}/{query}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(Self::script())
            .arg("stop")
            .arg(&self.pid)
            .status();
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD) {
        child(&spec);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: f64 = env_or("HERD_SECS", 3.0);
    let n: usize = env_or("HERD_N", 8);
    let rounds: usize = env_or("HERD_ROUNDS", 2);
    let fresh = std::env::var("FRESH_SERVER").is_ok_and(|v| v == "1");
    let wanted: Option<Vec<String>> = std::env::var("HERD_CASES")
        .ok()
        .map(|s| s.split(',').map(str::to_owned).collect());
    let mut cases = Vec::new();
    for primitive in [Primitive::Lock, Primitive::Semaphore] {
        for mode in [Mode::One, Mode::Threads, Mode::Processes] {
            let case = Case { primitive, mode };
            if wanted.as_ref().is_none_or(|w| w.contains(&case.name())) {
                cases.push(case);
            }
        }
    }
    let shared_uri = (!fresh).then(common::uri);
    // Per case: grants/s of each round, and the tallies of each round.
    let mut results: Vec<Vec<(f64, Vec<Tally>)>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 1..=rounds {
        for (i, case) in cases.iter().enumerate() {
            let server = fresh.then(Server::start);
            let uri = server
                .as_ref()
                .map_or_else(|| shared_uri.clone().unwrap(), |s| s.uri.clone());
            let (tallies, took, commands) = run_case(case, &uri, n, secs);
            drop(server);
            let grants: u64 = tallies.iter().map(|t| t.grants).sum();
            let rate = grants as f64 / took.as_secs_f64();
            let longest = tallies.iter().map(|t| t.longest).max().unwrap_or_default();
            let counts: Vec<String> = tallies.iter().map(|t| t.grants.to_string()).collect();
            let timeouts: u64 = tallies.iter().map(|t| t.timeouts).sum();
            eprintln!(
                "round {round} {:<15} {rate:>6.0} grants/s, longest wait {:>6.0} ms, timeouts {timeouts}, per contender [{}]",
                case.name(),
                longest.as_secs_f64() * 1e3,
                counts.join(" ")
            );
            let grants_f = grants.max(1) as f64;
            if !commands.is_empty() {
                let per: Vec<String> = commands
                    .iter()
                    .map(|(k, v)| format!("{k} {:.2}", *v as f64 / grants_f))
                    .collect();
                eprintln!("        commands per grant: {}", per.join(", "));
            }
            results[i].push((rate, tallies));
        }
    }
    println!("\n## Contention on one key: threads of one process and processes\n");
    println!("| case | grants/s, each round | ratio to 1 contender | longest wait, ms | per contender, fewest / most |");
    println!("|---|---|---|---|---|");
    let one_rate = |p: Primitive| -> Option<f64> {
        let i = cases
            .iter()
            .position(|c| c.primitive == p && matches!(c.mode, Mode::One))?;
        let r = &results[i];
        Some(r.iter().map(|(rate, _)| rate).sum::<f64>() / r.len() as f64)
    };
    for (case, runs) in cases.iter().zip(&results) {
        let rates: Vec<String> = runs.iter().map(|(r, _)| format!("{r:.0}")).collect();
        let mean = runs.iter().map(|(r, _)| r).sum::<f64>() / runs.len() as f64;
        let ratio =
            one_rate(case.primitive).map_or("n/a".to_owned(), |o| format!("{:.2}", mean / o));
        let longest = runs
            .iter()
            .flat_map(|(_, t)| t.iter().map(|t| t.longest))
            .max()
            .unwrap_or_default();
        let fewest = runs
            .iter()
            .flat_map(|(_, t)| t.iter().map(|t| t.grants))
            .min()
            .unwrap_or(0);
        let most = runs
            .iter()
            .flat_map(|(_, t)| t.iter().map(|t| t.grants))
            .max()
            .unwrap_or(0);
        println!(
            "| {} | {} | {ratio} | {:.0} | {fewest} / {most} |",
            case.name(),
            rates.join(", "),
            longest.as_secs_f64() * 1e3
        );
    }
    println!(
        "\n{n} contenders (1 for the `-1` cases), each with its own handle (threads: one client; \
         processes: one client each), looping try_lock_for / try_acquire_for ({PERMITS} permits) \
         then release, default step; {secs} s per case, {rounds} rounds{}.",
        if fresh {
            ", each case on a fresh server"
        } else {
            ", one server"
        }
    );
}
