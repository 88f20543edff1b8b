//! The soak: 11 worker processes (2 threads each), each behind its own
//! fault-injecting proxy, with a random fault every few seconds; then the
//! history checker. Two locks and an election (2 processes each), a
//! semaphore of 3 permits (2 processes) and a read-write lock (2 reading
//! processes, 1 writing). Prints what ran, what was injected, and every
//! violation; exits non-zero on any.
//!
//! Run it with `scripts/soak.sh [SECONDS] [SEED]` (it starts a fresh test
//! server), or with MONGODB_URI=mongodb://127.0.0.1:PORT/ set:
//! `cargo run --example soak -- [SECONDS] [SEED]`. A failed run keeps its
//! logs; `soak --check DIR` runs the checker on them again.

#[path = "../tests/faults/checker.rs"]
mod checker;
#[path = "../tests/faults/proxy.rs"]
mod proxy;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxy::Proxy;

const TTL_MS: u64 = 1000;

/// xorshift64*: enough randomness for choosing faults, reproducible by seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Proc {
    name: String,
    args: Vec<String>,
    proxy: Proxy,
    child: Child,
}

fn spawn(
    worker: &PathBuf,
    name: &str,
    args: &[String],
    proxy: &Proxy,
    db: &str,
    dir: &std::path::Path,
) -> Child {
    Command::new(worker)
        .args(["--name", name, "--db", db, "--log"])
        .arg(dir.join(format!("{name}.log")))
        .args(args)
        .env(
            "MONGODB_URI",
            format!(
                "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=1500&connectTimeoutMS=1000&heartbeatFrequencyMS=500",
                proxy.port()
            ),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn worker")
}

fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    if let Some(dir) = std::env::args()
        .nth(2)
        .filter(|_| std::env::args().nth(1).as_deref() == Some("--check"))
    {
        // Check the logs a failed run kept, again.
        let report = checker::History::read_dir(std::path::Path::new(&dir))?.check();
        println!("{report:#?}");
        return if report.violations.is_empty() {
            Ok(())
        } else {
            Err("violations".into())
        };
    }
    let secs: u64 = args.next().map_or(Ok(60), |s| s.parse())?;
    let seed: u64 = match args.next() {
        Some(s) => s.parse()?,
        None => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64
                | 1
        }
    };
    let uri =
        std::env::var("MONGODB_URI").map_err(|_| "MONGODB_URI is not set: run scripts/soak.sh")?;
    let port: u16 = uri
        .trim_start_matches("mongodb://")
        .split(['/', '?'])
        .next()
        .and_then(|hp| hp.rsplit(':').next())
        .ok_or("MONGODB_URI must be mongodb://HOST:PORT/...")?
        .parse()?;
    let upstream = format!("127.0.0.1:{port}").parse()?;
    let worker = std::env::current_exe()?.with_file_name("worker");
    let dir = std::env::temp_dir().join(format!("mongoelector-soak-{seed}"));
    std::fs::create_dir_all(&dir)?;
    let db = format!("soak_{seed}");
    let mut rng = Rng(seed);
    println!("soak: {secs} s, seed {seed}, logs in {}", dir.display());

    let ttl = TTL_MS.to_string();
    let plan: [(&str, Vec<&str>); 11] = [
        (
            "lockA0",
            vec!["--mode", "lock", "--key", "lockA", "--acts", "3"],
        ),
        (
            "lockA1",
            vec!["--mode", "lock", "--key", "lockA", "--acts", "3"],
        ),
        (
            "lockB0",
            vec!["--mode", "lock", "--key", "lockB", "--acts", "2"],
        ),
        (
            "lockB1",
            vec!["--mode", "lock", "--key", "lockB", "--acts", "2"],
        ),
        (
            "master0",
            vec!["--mode", "elector", "--key", "master", "--acts", "10"],
        ),
        (
            "master1",
            vec!["--mode", "elector", "--key", "master", "--acts", "10"],
        ),
        (
            "sem0",
            vec![
                "--mode",
                "semaphore",
                "--permits",
                "3",
                "--key",
                "sem",
                "--acts",
                "3",
            ],
        ),
        (
            "sem1",
            vec![
                "--mode",
                "semaphore",
                "--permits",
                "3",
                "--key",
                "sem",
                "--acts",
                "3",
            ],
        ),
        (
            "read0",
            vec!["--mode", "read", "--key", "rw", "--acts", "3"],
        ),
        (
            "read1",
            vec!["--mode", "read", "--key", "rw", "--acts", "3"],
        ),
        (
            "write0",
            vec!["--mode", "write", "--key", "rw", "--acts", "2"],
        ),
    ];
    let mut procs = Vec::new();
    for (name, a) in plan {
        let mut args: Vec<String> = a.into_iter().map(String::from).collect();
        args.extend(
            [
                "--threads",
                "2",
                "--ttl-ms",
                &ttl,
                "--retry-ms",
                "100",
                "--hold-ms",
                "50",
            ]
            .map(String::from),
        );
        let proxy = Proxy::start(upstream)?;
        let child = spawn(&worker, name, &args, &proxy, &db, &dir);
        procs.push(Proc {
            name: name.into(),
            args,
            proxy,
            child,
        });
    }

    let mut faults: BTreeMap<&str, u32> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(secs);
    let ttl = Duration::from_millis(TTL_MS);
    std::thread::sleep(Duration::from_secs(2));
    while Instant::now() + Duration::from_secs(3) < end {
        let i = rng.below(procs.len() as u64) as usize;
        let kind = ["kill", "pause", "partition", "latency", "reset"][rng.below(5) as usize];
        *faults.entry(kind).or_default() += 1;
        let p = &mut procs[i];
        println!(
            "{:>5.1} s  {kind:<9} {}",
            secs as f64 - (end - Instant::now()).as_secs_f64(),
            p.name
        );
        match kind {
            "kill" => {
                kill(p.child.id(), "-KILL");
                let _ = p.child.wait();
                std::thread::sleep(ttl);
                p.child = spawn(&worker, &p.name, &p.args, &p.proxy, &db, &dir);
            }
            "pause" => {
                kill(p.child.id(), "-STOP");
                std::thread::sleep(ttl * 2);
                kill(p.child.id(), "-CONT");
            }
            "partition" => {
                p.proxy.partition();
                std::thread::sleep(ttl * 2);
                p.proxy.pass();
            }
            "latency" => {
                p.proxy.latency(Duration::from_millis(100 + rng.below(200)));
                std::thread::sleep(ttl * 2);
                p.proxy.pass();
            }
            _ => p.proxy.reset(),
        }
        std::thread::sleep(Duration::from_millis(1000 + rng.below(2000)));
    }
    for p in &procs {
        kill(p.child.id(), "-CONT");
        kill(p.child.id(), "-TERM");
    }
    for p in &mut procs {
        let deadline = Instant::now() + Duration::from_secs(20);
        while p.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = p.child.kill();
                return Err(format!("worker {} did not stop on SIGTERM", p.name).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let history = checker::History::read_dir(&dir)?;
    let report = history.check();
    let injected: u32 = faults.values().sum();
    println!();
    println!("| soak ({secs} s, seed {seed}) | count |");
    println!("|---|---|");
    println!("| critical sections (lock) | {} |", report.lock_sections);
    println!("| master terms | {} |", report.master_terms);
    println!(
        "| semaphore permits held (most valid at once, of 3) | {} ({}) |",
        report.permit_sections, report.most_permits_at_once
    );
    println!(
        "| read-write lock: read sections (most valid at once) / write sections | {} ({}) / {} |",
        report.read_sections, report.most_readers_at_once, report.write_sections
    );
    println!(
        "| fenced writes (accepted / rejected) | {} / {} |",
        report.writes - report.rejected_writes,
        report.rejected_writes
    );
    println!(
        "| late writes after a lost lease (rejected / all) | {} / {} |",
        report.probes_rejected, report.probes
    );
    println!(
        "| writes sent after the local deadline (rejected / all) | {} / {} |",
        report.late_sends_rejected, report.late_sends
    );
    println!(
        "| server times not known (accepted writes / grants) | {} / {} |",
        report.unknown_write_times, report.unknown_grants
    );
    let kinds: Vec<String> = faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!("| faults injected | {injected} ({}) |", kinds.join(", "));
    println!("| violations | {} |", report.violations.len());
    for v in &report.violations {
        println!("VIOLATION {v}");
    }
    if !report.violations.is_empty() {
        return Err(format!(
            "{} violations; logs kept in {}",
            report.violations.len(),
            dir.display()
        )
        .into());
    }
    if report.lock_sections == 0
        || report.master_terms == 0
        || report.permit_sections == 0
        || report.read_sections == 0
        || report.write_sections == 0
    {
        return Err("the soak did no work".into());
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
