//! Client cost of each operation: CPU time (user + sys of this whole
//! process, driver threads included) per operation, against the raw driver
//! doing the same round trips, and peak RSS.
//!
//! ```sh
//! scripts/with-server.sh cargo bench --bench client_cost
//! ```
//!
//! Each operation of the crate is compared with two raw-driver loops:
//!
//! - "same command": the raw driver sends the very commands the crate
//!   sends (filter and pipeline captured once through command monitoring,
//!   on a separate client, then replayed), so the difference is the
//!   crate's own work;
//! - "minimal": the cheapest command of the same kind (a classic `$set`
//!   `find_one_and_update`, a `find_one`), what a hand-rolled lock would
//!   send.
//!
//! | operation | crate | raw, same command | raw, minimal |
//! |---|---|---|---|
//! | acquire + release | `acquire` + `release` | the two `findAndModify` | 2 `find_one_and_update` |
//! | touch | `touch` | its `findAndModify` | 1 `find_one_and_update` |
//! | locked | `locked()` | its `aggregate` | 1 `find_one` |
//! | elector poll, follower | `poll()` (another holds it) | its `findAndModify` | 1 `find_one_and_update` |
//! | elector poll, master | `poll()` (renews) | its `findAndModify` | 1 `find_one_and_update` |
//!
//! `CYCLES` (default 2,000) operations of each loop, in 20 interleaved
//! blocks (so every loop sees the same server, which slows down as its
//! oplog grows; the order within a block alternates), each block measured
//! with `getrusage(RUSAGE_SELF)` before and after. `RAW_CYCLES` (default:
//! `CYCLES`) sets the raw loops' count. Peak RSS is `VmHWM` (`ru_maxrss`
//! is printed too: on Linux it keeps the high-water mark from before
//! `execve`, i.e. cargo's).
//!
//! `ONLY=<operation>` (a prefix of its name: `acquire`, `touch`, `locked`,
//! `elector poll, f`, `elector poll, m`) runs that operation's loop alone,
//! for a profiler (`perf record -g`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::sync::{Client, Collection, Database};
use mongoelector::{MongoElector, MongoLocker};

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
    fn measure(&mut self, cycles: u64, mut cycle: impl FnMut()) {
        let (cpu0, _) = common::rusage();
        let t0 = Instant::now();
        for _ in 0..cycles {
            cycle();
        }
        self.wall += t0.elapsed();
        let (cpu1, _) = common::rusage();
        self.cpu += cpu1 - cpu0;
        self.cycles += cycles;
    }

    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.cycles.max(1) as f64
    }

    fn wall_us(&self) -> f64 {
        self.wall.as_secs_f64() * 1e6 / self.cycles.max(1) as f64
    }
}

/// A `findAndModify` as the crate sent it: filter, update pipeline, upsert.
#[derive(Clone, Debug)]
struct Fam {
    filter: Document,
    update: Vec<Document>,
    upsert: bool,
}

impl Fam {
    fn from_command(cmd: &Document) -> Fam {
        let update = cmd
            .get_array("update")
            .expect("a pipeline update")
            .iter()
            .map(|s| s.as_document().expect("a stage").clone())
            .collect();
        Fam {
            filter: cmd.get_document("query").expect("query").clone(),
            update,
            upsert: cmd.get_bool("upsert").unwrap_or(false),
        }
    }

    /// The same command on document `id` (and acquisition `fence`, where
    /// the filter names one), returning the document after.
    fn run(&self, coll: &Collection<Document>, id: &str, fence: Option<i64>) -> Option<Document> {
        let mut filter = self.filter.clone();
        filter.insert("_id", id);
        if let Some(f) = fence {
            filter.insert("fence", f);
        }
        coll.find_one_and_update(filter, self.update.clone())
            .upsert(self.upsert)
            .return_document(ReturnDocument::After)
            .run()
            .expect("replayed findAndModify")
    }
}

fn fence_of(doc: &Option<Document>) -> i64 {
    doc.as_ref()
        .and_then(|d| d.get_i64("fence").ok())
        .expect("a fence in the answer")
}

/// What the crate sends, captured through command monitoring on a client of
/// its own (so the measured client carries no monitoring).
struct Captured {
    lock_coll: String,
    acquire: Fam,
    release: Fam,
    touch: Fam,
    locked: Vec<Document>,
    elector_coll: String,
    follower_poll: Fam,
}

fn capture(db_name: &str) -> Captured {
    let seen: Arc<Mutex<Vec<Document>>> = Arc::default();
    let sink = seen.clone();
    let mut options = ClientOptions::parse(common::uri())
        .run()
        .expect("valid MONGODB_URI");
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        if let CommandEvent::Started(s) = ev {
            sink.lock().unwrap().push(s.command);
        }
    }));
    let client = Client::with_options(options).expect("client");
    let db = client.database(db_name);
    let last = |name: &str| -> Document {
        let mut seen = seen.lock().unwrap();
        let found = seen
            .iter()
            .rev()
            .find(|c| c.contains_key(name))
            .unwrap_or_else(|| panic!("no {name} sent"))
            .clone();
        seen.clear();
        found
    };
    let locker = MongoLocker::builder("capture", &db)
        .ttl(Duration::from_secs(60))
        .timeparanoid(false)
        .build()
        .unwrap();
    assert!(locker
        .acquire(false, None, Duration::from_millis(250), false)
        .unwrap());
    let acquire = last("findAndModify");
    let lock_coll = acquire.get_str("findAndModify").unwrap().to_owned();
    assert!(locker.touch().unwrap().is_some());
    let touch = last("findAndModify");
    assert!(locker.locked().unwrap());
    let locked = last("aggregate");
    assert!(locker.release(false).unwrap());
    let release = last("findAndModify");
    let elector = |key: &str| {
        MongoElector::builder(key, &db)
            .ttl(Duration::from_secs(60))
            .status_reports(false)
            .timeparanoid(false)
            .change_streams(false)
            .build()
            .unwrap()
    };
    let (master, follower) = (elector("capture"), elector("capture"));
    master.poll().unwrap();
    assert!(master.is_master());
    seen.lock().unwrap().clear();
    follower.poll().unwrap();
    assert!(!follower.is_master());
    let follower_poll = last("findAndModify");
    let elector_coll = follower_poll.get_str("findAndModify").unwrap().to_owned();
    master.release().unwrap();
    Captured {
        lock_coll,
        acquire: Fam::from_command(&acquire),
        release: Fam::from_command(&release),
        touch: Fam::from_command(&touch),
        locked: locked
            .get_array("pipeline")
            .unwrap()
            .iter()
            .map(|s| s.as_document().unwrap().clone())
            .collect(),
        elector_coll,
        follower_poll: Fam::from_command(&follower_poll),
    }
}

/// One operation of the crate and its two raw equivalents.
struct Row {
    name: &'static str,
    same: &'static str,
    minimal: &'static str,
    ours: Cost,
    raw_same: Cost,
    raw_min: Cost,
}

impl Row {
    fn new(name: &'static str, same: &'static str, minimal: &'static str) -> Row {
        Row {
            name,
            same,
            minimal,
            ours: Cost::default(),
            raw_same: Cost::default(),
            raw_min: Cost::default(),
        }
    }
}

fn main() {
    let cycles = env_or("CYCLES", 2_000);
    let raw_cycles = env_or("RAW_CYCLES", cycles);
    // `ONLY=touch` (a prefix of an operation's name) runs that operation's
    // loop alone, with no raw loops: for a profiler.
    let only = std::env::var("ONLY").ok().filter(|s| !s.is_empty());
    let client = common::client();
    let db: Database = common::fresh_db(&client, "client_cost");
    let cap = capture(db.name());
    let locks = common::raw_collection(&db, &cap.lock_coll);
    let elections = common::raw_collection(&db, &cap.elector_coll);
    let raw = common::raw_collection(&db, "raw");
    let step = Duration::from_millis(250);
    let ttl = Duration::from_secs(60);

    let cycler = MongoLocker::builder("cycle", &db)
        .ttl(ttl)
        .timeparanoid(false)
        .build()
        .unwrap();
    let holder = MongoLocker::builder("held", &db)
        .ttl(ttl)
        .timeparanoid(false)
        .build()
        .unwrap();
    let elector = |key: &str| {
        MongoElector::builder(key, &db)
            .ttl(ttl)
            .status_reports(false)
            .timeparanoid(false)
            .change_streams(false)
            .build()
            .unwrap()
    };
    let (master, follower) = (elector("elect"), elector("elect"));

    // Warm up (connection pool, first documents), and set up the holders:
    // `holder` holds "held" (touched), `master` holds "elect" (polled),
    // and the raw loops' own documents "raw-held" and "raw-elect" are
    // taken by the replayed acquire, whose fence their touches name.
    for i in 0..50 {
        common::raw_write(&raw, "w", i);
        common::raw_read(&raw, "w");
        assert!(cycler.acquire(false, None, step, false).unwrap());
        assert!(cycler.release(false).unwrap());
        let got = cap.acquire.run(&locks, "raw-cycle", None);
        cap.release.run(&locks, "raw-cycle", Some(fence_of(&got)));
    }
    assert!(holder.acquire(false, None, step, false).unwrap());
    master.poll().unwrap();
    assert!(master.is_master());
    follower.poll().unwrap();
    assert!(!follower.is_master());
    let raw_held = fence_of(&cap.acquire.run(&locks, "raw-held", None));
    let raw_elect = fence_of(&cap.acquire.run(&elections, "raw-elect", None));
    let rss_start = common::rss_now_kib();

    let mut rows = [
        Row::new(
            "acquire + release",
            "its 2 findAndModify",
            "2 find_one_and_update",
        ),
        Row::new("touch", "its findAndModify", "1 find_one_and_update"),
        Row::new("locked()", "its aggregate", "1 find_one"),
        Row::new(
            "elector poll, follower",
            "its findAndModify",
            "1 find_one_and_update",
        ),
        Row::new(
            "elector poll, master",
            "its findAndModify",
            "1 find_one_and_update",
        ),
    ];
    const BLOCKS: u64 = 20;
    let (n, raw_n) = (cycles / BLOCKS, raw_cycles / BLOCKS);
    let mut k = 0_i64;
    let mut next = move || {
        k += 1;
        k
    };
    for block in 0..BLOCKS {
        for (i, row) in rows.iter_mut().enumerate() {
            let ours = |c: &mut Cost| match i {
                0 => c.measure(n, || {
                    assert!(cycler.acquire(false, None, step, false).unwrap());
                    assert!(cycler.release(false).unwrap());
                }),
                1 => c.measure(n, || assert!(holder.touch().unwrap().is_some())),
                2 => c.measure(n, || assert!(holder.locked().unwrap())),
                3 => c.measure(n, || follower.poll().unwrap()),
                _ => c.measure(n, || master.poll().unwrap()),
            };
            let same = |c: &mut Cost| match i {
                0 => c.measure(raw_n, || {
                    let got = cap.acquire.run(&locks, "raw-cycle", None);
                    assert!(cap
                        .release
                        .run(&locks, "raw-cycle", Some(fence_of(&got)))
                        .is_some());
                }),
                1 => c.measure(raw_n, || {
                    assert!(cap.touch.run(&locks, "raw-held", Some(raw_held)).is_some())
                }),
                2 => c.measure(raw_n, || {
                    let mut pipeline = cap.locked.clone();
                    pipeline[0] = doc! { "$match": { "_id": "held" } };
                    let cursor = locks.aggregate(pipeline).run().expect("aggregate");
                    assert_eq!(cursor.count(), 1);
                }),
                3 => c.measure(raw_n, || {
                    assert!(cap.follower_poll.run(&elections, "elect", None).is_some())
                }),
                _ => c.measure(raw_n, || {
                    assert!(cap
                        .touch
                        .run(&elections, "raw-elect", Some(raw_elect))
                        .is_some())
                }),
            };
            let mut min = |c: &mut Cost| match i {
                0 => c.measure(raw_n, || {
                    common::raw_write(&raw, "w", next());
                    common::raw_write(&raw, "w", next());
                }),
                2 => c.measure(raw_n, || common::raw_read(&raw, "w")),
                _ => c.measure(raw_n, || common::raw_write(&raw, "w", next())),
            };
            if let Some(only) = &only {
                // Profiling one operation: the crate's loop alone.
                if row.name.starts_with(only.as_str()) {
                    ours(&mut row.ours);
                }
                continue;
            }
            // Alternate the order, so no side always runs first.
            if block % 2 == 0 {
                same(&mut row.raw_same);
                ours(&mut row.ours);
                min(&mut row.raw_min);
            } else {
                min(&mut row.raw_min);
                ours(&mut row.ours);
                same(&mut row.raw_same);
            }
        }
    }
    let (_, maxrss_kib) = common::rusage();
    let peak_kib = common::peak_rss_kib();
    let rss_end = common::rss_now_kib();
    assert!(holder.release(false).unwrap());
    master.release().unwrap();
    let _ = db.drop().run();

    println!("## Client CPU per operation (user+sys, driver threads included)\n");
    println!(
        "| operation | crate, µs | raw driver, same command(s), µs | crate / same | \
         raw driver, minimal, µs | crate / minimal | crate wall, µs |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} ({}) | **{:.2}** | {:.0} ({}) | {:.2} | {:.0} |",
            r.name,
            r.ours.cpu_us(),
            r.raw_same.cpu_us(),
            r.same,
            r.ours.cpu_us() / r.raw_same.cpu_us(),
            r.raw_min.cpu_us(),
            r.minimal,
            r.ours.cpu_us() / r.raw_min.cpu_us(),
            r.ours.wall_us(),
        );
    }
    println!(
        "\n{} operations of each kind for the crate, {} for each raw loop, in {BLOCKS} \
         interleaved blocks.",
        rows[0].ours.cycles, rows[0].raw_same.cycles
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
