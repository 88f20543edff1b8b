//! What each operation costs, against the physical limit of the server: the
//! raw `mongodb` driver doing the minimal equivalent (one
//! `find_one_and_update` per write round trip the operation needs, one
//! `find` per read) on a collection with the same write and read concerns.
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench ops
//! ```
//!
//! The run has three parts, in this order (the server slows down as its
//! oplog grows, so the numbers that are quoted come first):
//!
//! 1. a std-timed ratio pass: for each operation, blocks of the operation
//!    and of its raw equivalent, interleaved, compared by their medians;
//! 2. a std-timed contended pass: 1, 2, 4, 8 threads taking turns on one
//!    key (critical sections per second, and the mean wait from a release to
//!    the next holder's acquire), then 8 threads on a semaphore of 3 permits
//!    and 8 threads on a read-write lock (6 readers, 2 writers);
//! 3. criterion's own benchmarks of the same operations (`locker/*`,
//!    `semaphore/*`, `rwlock/*`, `elector/*`, `raw/*`, `contended/*`).
//!
//! The tables of parts 1 and 2 are printed again at the end, in markdown.
//!
//! Knobs (environment): `RATIO_ROUNDS` (default 8 rounds of 25 + 25
//! iterations per operation), `CONTENDED_SECS` (default 3 s per thread
//! count), `CONTENDED_STEP_MS` (the blocking acquire's retry step, default
//! 5 ms), `SKIP_CRITERION=1` (parts 1 and 2 only). Criterion's own flags
//! work as usual after `--` (e.g. `--sample-size 10 --measurement-time 1`).

mod common;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mongodb::bson::{doc, Document};
use mongodb::sync::{Collection, Database};
use mongoelector::{LockGuard, MongoElector, MongoLocker, MongoRwLock, MongoSemaphore};

const STEP: Duration = Duration::from_millis(250);
const HOLD_TTL: Duration = Duration::from_secs(600);
const ELECTOR_TTL: Duration = Duration::from_secs(120);
const THREADS: [usize; 4] = [1, 2, 4, 8];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What an operation is compared with.
#[derive(Clone, Copy)]
enum Raw {
    /// This many raw `find_one_and_update` round trips.
    Writes(u32),
    /// One raw `find_one`.
    Read,
    /// One raw `update_one` (majority, journaled), matching one document.
    UpdateOne,
}

impl Raw {
    fn label(self) -> String {
        match self {
            Raw::Writes(1) => "1 find_one_and_update".to_owned(),
            Raw::Writes(n) => format!("{n} find_one_and_update"),
            Raw::Read => "1 find_one".to_owned(),
            Raw::UpdateOne => "1 update_one".to_owned(),
        }
    }
}

struct Op<'a> {
    name: &'static str,
    group: &'static str,
    raw: Raw,
    run: Box<dyn Fn() + 'a>,
}

struct Fixture {
    raw: Collection<Document>,
    counter: AtomicI64,
    free: MongoLocker,
    holder: MongoLocker,
    contender: MongoLocker,
    master: MongoElector,
    follower: MongoElector,
    master_st: MongoElector,
    follower_st: MongoElector,
    /// A lock held for the fenced writes.
    fencing: LockGuard,
    semaphore: MongoSemaphore,
    rwlock: MongoRwLock,
}

fn locker(db: &Database, key: &str) -> MongoLocker {
    MongoLocker::builder(key, db)
        .ttl(HOLD_TTL)
        .timeparanoid(false)
        .build()
        .unwrap()
}

fn elector(db: &Database, key: &str, report: bool) -> MongoElector {
    MongoElector::builder(key, db)
        .ttl(ELECTOR_TTL)
        .status_reports(report)
        .build()
        .unwrap()
}

impl Fixture {
    fn new(db: &Database) -> Fixture {
        let fx = Fixture {
            raw: common::raw_collection(db, "raw"),
            counter: AtomicI64::new(0),
            free: locker(db, "free"),
            holder: locker(db, "held"),
            contender: locker(db, "held"),
            master: elector(db, "poll", false),
            follower: elector(db, "poll", false),
            master_st: elector(db, "poll-status", true),
            follower_st: elector(db, "poll-status", true),
            fencing: locker(db, "fenced").lock().unwrap(),
            semaphore: MongoSemaphore::builder("permits", db, 3)
                .ttl(HOLD_TTL)
                .timeparanoid(false)
                .build()
                .unwrap(),
            rwlock: MongoRwLock::builder("rw", db)
                .ttl(HOLD_TTL)
                .timeparanoid(false)
                .build()
                .unwrap(),
        };
        assert!(fx.holder.acquire(false, None, STEP, false).unwrap());
        for (m, f) in [(&fx.master, &fx.follower), (&fx.master_st, &fx.follower_st)] {
            m.poll().unwrap();
            assert!(m.is_master(), "the first elector takes the free lock");
            f.poll().unwrap();
            assert!(!f.is_master());
        }
        common::raw_write(&fx.raw, "w", 0);
        common::raw_write(&fx.raw, "u", 0);
        common::raw_write(&fx.raw, "f", 0);
        fx.fenced_update(0);
        fx
    }

    /// The plain `update_one` of the fenced one, on another document.
    fn raw_update(&self, i: i64) {
        let done = self
            .raw
            .update_one(doc! { "_id": "u" }, doc! { "$set": { "v": i } })
            .run()
            .unwrap();
        assert_eq!(done.matched_count, 1);
    }

    /// A fenced `update_one` through the held guard (its lease checked by
    /// the server too): applied.
    fn fenced_update(&self, i: i64) {
        let done = self
            .fencing
            .fenced(&self.raw)
            .update_one(doc! { "_id": "f" }, doc! { "$set": { "v": i } })
            .unwrap();
        assert!(done.applied(), "{done:?}");
    }

    fn raw_equivalent(&self, raw: Raw) {
        match raw {
            Raw::Writes(n) => {
                for _ in 0..n {
                    let i = self.counter.fetch_add(1, Ordering::Relaxed);
                    common::raw_write(&self.raw, "w", i);
                }
            }
            Raw::Read => common::raw_read(&self.raw, "w"),
            Raw::UpdateOne => self.raw_update(self.counter.fetch_add(1, Ordering::Relaxed)),
        }
    }

    fn ops(&self) -> Vec<Op<'_>> {
        let poll_master = |m: &MongoElector| {
            m.poll().unwrap();
            assert!(m.is_master());
        };
        let poll_follower = |f: &MongoElector| {
            f.poll().unwrap();
            assert!(!f.is_master());
        };
        vec![
            Op {
                name: "acquire+release",
                group: "locker",
                raw: Raw::Writes(2),
                run: Box::new(|| {
                    assert!(self.free.acquire(false, None, STEP, false).unwrap());
                    assert!(self.free.release(false).unwrap());
                }),
            },
            Op {
                name: "permit acquire+release",
                group: "semaphore",
                raw: Raw::Writes(2),
                run: Box::new(|| {
                    let permit = self
                        .semaphore
                        .try_acquire()
                        .unwrap()
                        .expect("a free permit");
                    permit.release().unwrap();
                }),
            },
            Op {
                name: "read acquire+release",
                group: "rwlock",
                raw: Raw::Writes(2),
                run: Box::new(|| {
                    let guard = self.rwlock.try_read().unwrap().expect("free for readers");
                    guard.release().unwrap();
                }),
            },
            Op {
                name: "write acquire+release",
                group: "rwlock",
                raw: Raw::Writes(2),
                run: Box::new(|| {
                    let guard = self.rwlock.try_write().unwrap().expect("free");
                    guard.release().unwrap();
                }),
            },
            Op {
                name: "touch",
                group: "locker",
                raw: Raw::Writes(1),
                run: Box::new(|| assert!(self.holder.touch().unwrap().is_some())),
            },
            Op {
                name: "locked",
                group: "locker",
                raw: Raw::Read,
                run: Box::new(|| assert!(self.holder.locked().unwrap())),
            },
            Op {
                name: "owned",
                group: "locker",
                raw: Raw::Read,
                run: Box::new(|| assert!(self.holder.owned().unwrap())),
            },
            Op {
                name: "get_current",
                group: "locker",
                raw: Raw::Read,
                run: Box::new(|| assert!(self.holder.get_current().unwrap().is_some())),
            },
            Op {
                name: "try_lock (held)",
                group: "locker",
                raw: Raw::Writes(1),
                run: Box::new(|| assert!(self.contender.try_lock().unwrap().is_none())),
            },
            Op {
                name: "fenced update_one",
                group: "fenced",
                raw: Raw::UpdateOne,
                run: Box::new(|| self.fenced_update(self.counter.fetch_add(1, Ordering::Relaxed))),
            },
            Op {
                name: "poll as master",
                group: "elector",
                raw: Raw::Writes(1),
                run: Box::new(move || poll_master(&self.master)),
            },
            Op {
                name: "poll as follower",
                group: "elector",
                raw: Raw::Writes(1),
                run: Box::new(move || poll_follower(&self.follower)),
            },
            Op {
                name: "poll as master, status on",
                group: "elector",
                raw: Raw::Writes(2),
                run: Box::new(move || poll_master(&self.master_st)),
            },
            Op {
                name: "poll as follower, status on",
                group: "elector",
                raw: Raw::Writes(2),
                run: Box::new(move || poll_follower(&self.follower_st)),
            },
        ]
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Part 1: each operation against its raw equivalent, interleaved.
fn ratio_pass(fx: &Fixture) -> String {
    let rounds: usize = env_or("RATIO_ROUNDS", 8);
    const BLOCK: usize = 25;
    let single_write = {
        let mut t = Vec::new();
        for _ in 0..rounds.max(1) * BLOCK {
            let s = Instant::now();
            fx.raw_equivalent(Raw::Writes(1));
            t.push(s.elapsed());
        }
        median(&mut t)
    };
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| operation | round trips | raw equivalent | operation, median µs | raw, median µs | ratio to raw |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|---|");
    for op in fx.ops() {
        for _ in 0..10 {
            (op.run)();
            fx.raw_equivalent(op.raw);
        }
        let (mut mine, mut raw) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            for _ in 0..BLOCK {
                let s = Instant::now();
                (op.run)();
                mine.push(s.elapsed());
            }
            for _ in 0..BLOCK {
                let s = Instant::now();
                fx.raw_equivalent(op.raw);
                raw.push(s.elapsed());
            }
        }
        let (m, r) = (median(&mut mine), median(&mut raw));
        let trips = match op.raw {
            Raw::Writes(n) => n,
            Raw::Read | Raw::UpdateOne => 1,
        };
        let line = format!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} |",
            op.name,
            trips,
            op.raw.label(),
            us(m),
            us(r),
            m.as_secs_f64() / r.as_secs_f64()
        );
        eprintln!("{line}");
        let _ = writeln!(table, "{line}");
    }
    let _ = writeln!(
        table,
        "\nOne raw find_one_and_update round trip (majority, journaled): median {:.0} µs; \
         {rounds} rounds of {BLOCK} + {BLOCK} interleaved iterations per operation.",
        us(single_write)
    );
    table
}

/// One contended run: `n` lockers (one per thread) on one key, for `secs`.
struct Contended {
    sections: usize,
    elapsed: Duration,
    /// From the release returning to the next holder's acquire returning.
    waits: Vec<Duration>,
    /// Of those, the ones where another thread took over.
    waits_other: Vec<Duration>,
    /// Handoffs where the next acquire returned before the release did.
    overlapped: usize,
}

#[derive(Clone, Copy)]
struct Section {
    fence: i64,
    thread: usize,
    acquired: Instant,
    released: Instant,
}

fn contended_run(lockers: &[MongoLocker], secs: f64) -> Contended {
    let stop = AtomicBool::new(false);
    let log: Mutex<Vec<Section>> = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for (thread, locker) in lockers.iter().enumerate() {
            let (stop, log) = (&stop, &log);
            s.spawn(move || {
                let mut mine = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let guard = locker.lock().unwrap();
                    let acquired = Instant::now();
                    let fence = guard.fence();
                    guard.release().unwrap();
                    mine.push(Section {
                        fence,
                        thread,
                        acquired,
                        released: Instant::now(),
                    });
                }
                log.lock().unwrap().extend(mine);
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = start.elapsed();
    let mut sections = log.into_inner().unwrap();
    sections.sort_by_key(|s| s.fence);
    let mut out = Contended {
        sections: sections.len(),
        elapsed,
        waits: Vec::new(),
        waits_other: Vec::new(),
        overlapped: 0,
    };
    for pair in sections.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        // Each fence is at least the server's clock in microseconds, so it
        // jumps when acquisitions are more than a millisecond apart.
        assert!(b.fence > a.fence, "fences of one key grow");
        let wait = match b.acquired.checked_duration_since(a.released) {
            Some(w) => w,
            None => {
                out.overlapped += 1;
                Duration::ZERO
            }
        };
        out.waits.push(wait);
        if a.thread != b.thread {
            out.waits_other.push(wait);
        }
    }
    out
}

fn mean_ms(v: &[Duration]) -> String {
    if v.is_empty() {
        return "n/a".to_owned();
    }
    let total: Duration = v.iter().sum();
    format!("{:.2}", total.as_secs_f64() * 1e3 / v.len() as f64)
}

fn contenders(db: &Database, key: &str, n: usize, step: Duration) -> Vec<MongoLocker> {
    (0..n)
        .map(|_| {
            MongoLocker::builder(key, db)
                .ttl(Duration::from_secs(30))
                .step(step)
                .timeparanoid(false)
                .build()
                .unwrap()
        })
        .collect()
}

/// Part 2: critical sections per second and handoff waits on one key.
fn contended_pass(db: &Database) -> String {
    let secs: f64 = env_or("CONTENDED_SECS", 3.0);
    let step = Duration::from_millis(env_or("CONTENDED_STEP_MS", 5));
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| threads | critical sections/s | mean wait release→next acquire, ms | handoffs to another thread | mean wait when another thread took over, ms |"
    );
    let _ = writeln!(table, "|---|---|---|---|---|");
    for n in THREADS {
        let lockers = contenders(db, &format!("contended-{n}"), n, step);
        let r = contended_run(&lockers, secs);
        let line = format!(
            "| {n} | {:.0} | {} | {} of {} | {} |",
            r.sections as f64 / r.elapsed.as_secs_f64(),
            mean_ms(&r.waits),
            r.waits_other.len(),
            r.waits.len(),
            mean_ms(&r.waits_other),
        );
        eprintln!("{line}");
        let _ = writeln!(table, "{line}");
        if r.overlapped > 0 {
            let _ = writeln!(
                table,
                "|  | ({} handoffs where the next acquire returned before the release call did, counted as 0) | | | |",
                r.overlapped
            );
        }
    }
    let _ = writeln!(
        table,
        "\nEach thread has its own MongoLocker (its own owner identity) and loops lock() → release(), \
         with an empty critical section; blocking acquire retries every {step:?}; {secs} s per row."
    );
    table
}

/// Part 2b: 8 threads on a semaphore of 3 permits, and 8 threads on a
/// read-write lock (6 readers, 2 writers), each thread with its own handle,
/// looping acquire → release with an empty section.
fn contended_shares_pass(db: &Database) -> String {
    let secs: f64 = env_or("CONTENDED_SECS", 3.0);
    let step = Duration::from_millis(env_or("CONTENDED_STEP_MS", 5));
    let run = |work: &(dyn Fn(usize) -> bool + Sync)| -> (Vec<usize>, Duration) {
        let stop = AtomicBool::new(false);
        let counts: Vec<AtomicI64> = (0..8).map(|_| AtomicI64::new(0)).collect();
        let start = Instant::now();
        std::thread::scope(|s| {
            for (i, count) in counts.iter().enumerate() {
                let stop = &stop;
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if work(i) {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_secs_f64(secs));
            stop.store(true, Ordering::Relaxed);
        });
        let elapsed = start.elapsed();
        let counts = counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed) as usize)
            .collect();
        (counts, elapsed)
    };
    let sems: Vec<MongoSemaphore> = (0..8)
        .map(|_| {
            MongoSemaphore::builder("contended-permits", db, 3)
                .ttl(Duration::from_secs(30))
                .step(step)
                .timeparanoid(false)
                .build()
                .unwrap()
        })
        .collect();
    let (permits, took) = run(&|i| {
        sems[i].acquire().unwrap().release().unwrap();
        true
    });
    let rws: Vec<MongoRwLock> = (0..8)
        .map(|_| {
            MongoRwLock::builder("contended-rw", db)
                .ttl(Duration::from_secs(30))
                .step(step)
                .timeparanoid(false)
                .build()
                .unwrap()
        })
        .collect();
    let (rw, rw_took) = run(&|i| {
        if i < 6 {
            rws[i].read().unwrap().release().unwrap();
        } else {
            rws[i].write().unwrap().release().unwrap();
        }
        true
    });
    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let reads: usize = rw[..6].iter().sum();
    let writes: usize = rw[6..].iter().sum();
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| 8 threads | acquisitions/s | per thread, fewest / most |"
    );
    let _ = writeln!(table, "|---|---|---|");
    let line = format!(
        "| semaphore, 3 permits | {:.0} | {} / {} |",
        per_s(permits.iter().sum(), took),
        permits.iter().min().unwrap(),
        permits.iter().max().unwrap()
    );
    eprintln!("{line}");
    let _ = writeln!(table, "{line}");
    let line = format!(
        "| read-write lock, 6 readers + 2 writers | {:.0} ({:.0} reads/s, {:.0} writes/s) | readers {} / {}, writers {} / {} |",
        per_s(reads + writes, rw_took),
        per_s(reads, rw_took),
        per_s(writes, rw_took),
        rw[..6].iter().min().unwrap(),
        rw[..6].iter().max().unwrap(),
        rw[6..].iter().min().unwrap(),
        rw[6..].iter().max().unwrap()
    );
    eprintln!("{line}");
    let _ = writeln!(table, "{line}");
    let _ = writeln!(
        table,
        "\nEach thread has its own handle and loops acquire() → release() (read() or write() for the \
         read-write lock), with an empty section; blocking acquire retries every {step:?}; {secs} s per row."
    );
    table
}

/// Part 3: criterion's view of the same operations.
fn criterion_benches(c: &mut Criterion, fx: &Fixture, db: &Database) {
    let ops = fx.ops();
    for group_name in ["locker", "semaphore", "rwlock", "fenced", "elector"] {
        let mut group = c.benchmark_group(group_name);
        for op in ops.iter().filter(|op| op.group == group_name) {
            group.bench_function(op.name, |b| b.iter(|| (op.run)()));
        }
        group.finish();
    }
    let mut group = c.benchmark_group("raw");
    group.bench_function("find_one_and_update", |b| {
        b.iter(|| fx.raw_equivalent(Raw::Writes(1)))
    });
    group.bench_function("find_one", |b| b.iter(|| fx.raw_equivalent(Raw::Read)));
    group.bench_function("update_one", |b| {
        b.iter(|| fx.raw_equivalent(Raw::UpdateOne))
    });
    group.finish();

    let step = Duration::from_millis(env_or("CONTENDED_STEP_MS", 5));
    let mut group = c.benchmark_group("contended");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    for n in THREADS {
        let lockers = contenders(db, &format!("criterion-contended-{n}"), n, step);
        group.bench_with_input(BenchmarkId::new("threads", n), &lockers, |b, lockers| {
            b.iter_custom(|iters| {
                let left = AtomicI64::new(iters as i64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for locker in lockers {
                        let left = &left;
                        s.spawn(move || {
                            while left.fetch_sub(1, Ordering::Relaxed) > 0 {
                                locker.lock().unwrap().release().unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    group.finish();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let client = common::client();
    let db = common::fresh_db(&client, "ops");
    let fx = Fixture::new(&db);
    let (ratios, contended) = if listing {
        (String::new(), String::new())
    } else {
        eprintln!("== ratio pass: each operation against the raw driver, interleaved");
        let ratios = ratio_pass(&fx);
        eprintln!("== contended pass");
        let mut contended = contended_pass(&db);
        eprintln!("== contended pass: semaphore and read-write lock");
        contended.push('\n');
        contended.push_str(&contended_shares_pass(&db));
        (ratios, contended)
    };

    if std::env::var("SKIP_CRITERION").map_or(true, |v| v != "1") {
        let mut c = Criterion::default()
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2))
            .without_plots()
            .configure_from_args();
        criterion_benches(&mut c, &fx, &db);
        c.final_summary();
    }

    if !listing {
        println!("\n## Operations against the raw driver (same run, same server)\n");
        println!("{ratios}");
        println!("## Contended: threads on one key\n");
        println!("{contended}");
    }
    let _ = db.drop().run();
}
