//! The soak's faults: a planned schedule that gives every primitive at
//! least two faults of each kind that matters (a pause, a kill, a
//! partition, a server restart), on different processes at once, then
//! random faults for the rest of the time; and the coverage it reached.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::TTL_MS;
use mongoelector::testing::FaultProxy as Proxy;

/// The primitives, as the coverage table names them.
pub const PRIMITIVES: [&str; 5] = [
    "lock",
    "elector",
    "semaphore",
    "rwlock readers",
    "rwlock writer",
];
/// The kinds every primitive must get twice, and the others.
pub const REQUIRED: [&str; 4] = ["pause", "kill", "partition", "restart"];
pub const KINDS: [&str; 6] = ["pause", "kill", "partition", "restart", "latency", "reset"];

/// xorshift64*: enough randomness for choosing faults, reproducible by seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One worker process behind its own proxy.
pub struct Proc {
    pub name: String,
    pub primitive: &'static str,
    pub args: Vec<String>,
    pub proxy: Proxy,
    pub child: Child,
}

/// Where workers run: their binary, database and log directory.
pub struct Site {
    pub worker: PathBuf,
    pub db: String,
    pub dir: PathBuf,
}

impl Site {
    pub fn spawn(&self, name: &str, args: &[String], proxy: &Proxy) -> Child {
        Command::new(&self.worker)
            .args(["--name", name, "--db", &self.db, "--log"])
            .arg(self.dir.join(format!("{name}.log")))
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
}

pub fn kill(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([sig, &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// How many faults of each kind each primitive got.
#[derive(Default)]
pub struct Coverage(pub BTreeMap<(&'static str, &'static str), u32>);

impl Coverage {
    fn add(&mut self, primitive: &'static str, kind: &'static str) {
        *self.0.entry((primitive, kind)).or_default() += 1;
    }

    pub fn get(&self, primitive: &str, kind: &str) -> u32 {
        self.0.get(&(primitive, kind)).copied().unwrap_or(0)
    }

    pub fn total(&self, kind: &str) -> u32 {
        // A restart counts once per primitive it hit; report it once.
        let n: u32 = self
            .0
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| n)
            .sum();
        if kind == "restart" {
            n / PRIMITIVES.len() as u32
        } else {
            n
        }
    }

    /// The (primitive, kind) pairs below two, of the kinds required.
    pub fn missing(&self, restarts: bool) -> Vec<String> {
        let mut out = Vec::new();
        for p in PRIMITIVES {
            for k in REQUIRED.iter().filter(|k| restarts || **k != "restart") {
                if self.get(p, k) < 2 {
                    out.push(format!("{p}: {k} {}", self.get(p, k)));
                }
            }
        }
        out
    }

    pub fn print(&self) {
        println!("| faults per primitive | {} |", KINDS.join(" | "));
        println!("|---|{}", "---|".repeat(KINDS.len()));
        for p in PRIMITIVES {
            let row: Vec<String> = KINDS.iter().map(|k| self.get(p, k).to_string()).collect();
            println!("| {p} | {} |", row.join(" | "));
        }
    }
}

/// The clock of the fault log: seconds since the soak began.
pub struct Timeline {
    pub began: Instant,
}

impl Timeline {
    fn note(&self, kind: &str, who: &str) {
        println!(
            "{:>5.1} s  {kind:<9} {who}",
            self.began.elapsed().as_secs_f64()
        );
    }
}

/// One fault on one process, for its whole duration (a pause or a
/// partition for 2 × ttl, a kill then a restart after 1 ttl).
pub fn inject(site: &Site, p: &Mutex<Proc>, kind: &'static str, latency: Duration, t: &Timeline) {
    let ttl = Duration::from_millis(TTL_MS);
    let mut p = p.lock().unwrap();
    t.note(kind, &p.name);
    match kind {
        "kill" => {
            kill(p.child.id(), "-KILL");
            let _ = p.child.wait();
            std::thread::sleep(ttl);
            let (name, args) = (p.name.clone(), p.args.clone());
            p.child = site.spawn(&name, &args, &p.proxy);
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
            p.proxy.delay(latency);
            std::thread::sleep(ttl * 2);
            p.proxy.pass();
        }
        _ => p.proxy.cut(),
    }
}

/// The planned schedule: six rounds, each one fault on one process of
/// every primitive at once (kinds rotating, so that over the rounds each
/// primitive gets each of pause, kill and partition twice, on alternating
/// processes), and a server restart after the third and the sixth.
pub fn planned(
    site: &Site,
    procs: &[Mutex<Proc>],
    restart: &mut dyn FnMut(&Timeline) -> bool,
    cov: &mut Coverage,
    t: &Timeline,
) {
    const ROTATION: [&str; 3] = ["pause", "kill", "partition"];
    for round in 0..6 {
        let faults: Vec<(usize, &'static str)> = PRIMITIVES
            .iter()
            .enumerate()
            .map(|(i, prim)| {
                let mine: Vec<usize> = (0..procs.len())
                    .filter(|&j| procs[j].lock().unwrap().primitive == *prim)
                    .collect();
                (
                    mine[round % mine.len()],
                    ROTATION[(round + i) % ROTATION.len()],
                )
            })
            .collect();
        std::thread::scope(|s| {
            for &(j, kind) in &faults {
                s.spawn(move || inject(site, &procs[j], kind, Duration::ZERO, t));
            }
        });
        for &(j, kind) in &faults {
            cov.add(procs[j].lock().unwrap().primitive, kind);
        }
        std::thread::sleep(Duration::from_millis(500));
        if round % 3 == 2 && restart(t) {
            for p in PRIMITIVES {
                cov.add(p, "restart");
            }
        }
    }
}

/// Random faults, one at a time, 1 to 3 s apart, until `end`.
pub fn random(
    site: &Site,
    procs: &[Mutex<Proc>],
    rng: &mut Rng,
    end: Instant,
    cov: &mut Coverage,
    t: &Timeline,
) {
    const RANDOM: [&str; 5] = ["kill", "pause", "partition", "latency", "reset"];
    while Instant::now() + Duration::from_secs(3) < end {
        let j = rng.below(procs.len() as u64) as usize;
        let kind = RANDOM[rng.below(RANDOM.len() as u64) as usize];
        let latency = Duration::from_millis(100 + rng.below(200));
        inject(site, &procs[j], kind, latency, t);
        cov.add(procs[j].lock().unwrap().primitive, kind);
        std::thread::sleep(Duration::from_millis(1000 + rng.below(2000)));
    }
}

/// The collections the workers use beyond the two `on_disk_server`
/// creates, created before they start: on an on-disk store the test server
/// can deadlock a `createIndexes` that creates a collection against a first
/// write into it.
pub fn create_collections(db: &mongodb::sync::Database) {
    for name in [
        mongoelector::limits::DEFAULT_SEMAPHORE_COLLECTION,
        mongoelector::limits::DEFAULT_RWLOCK_COLLECTION,
        "resource",
    ] {
        db.create_collection(name)
            .run()
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
}
