//! Shared set-up for the integration tests: they run against a real server
//! at `MONGODB_URI` (SecantusDB, started by `scripts/test.sh`), never a mock.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::Document;
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Database};
use mongoelector::testing::TestServer;
use mongoelector::{Event, MongoElector, MongoLocker};

pub fn uri() -> String {
    match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => panic!(
            "MONGODB_URI is not set. Run the tests with `scripts/test.sh`, which installs and \
             starts a SecantusDB test server, or start one with `scripts/server.sh start` and \
             set MONGODB_URI=mongodb://127.0.0.1:PORT/"
        ),
    }
}

pub fn client() -> Client {
    Client::with_uri_str(uri()).expect("valid MONGODB_URI")
}

/// A database of its own for one test, so tests never see each other's locks.
pub fn fresh_db(client: &Client) -> Database {
    client.database(&format!("t_{}", uuid::Uuid::new_v4().simple()))
}

pub fn db() -> Database {
    fresh_db(&client())
}

/// Every command the client starts, as sent (with its name and the instant
/// it was started).
#[derive(Clone, Default)]
pub struct Commands(Arc<Mutex<Vec<(String, Document, Instant)>>>);

impl Commands {
    /// Records one command, as a command monitor's `Started` event gives it.
    pub fn push(&self, name: &str, command: Document) {
        self.0
            .lock()
            .unwrap()
            .push((name.to_owned(), command, Instant::now()));
    }

    pub fn take(&self) -> Vec<(String, Document)> {
        self.take_timed()
            .into_iter()
            .map(|(n, d, _)| (n, d))
            .collect()
    }

    pub fn take_timed(&self) -> Vec<(String, Document, Instant)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn names(&self) -> Vec<String> {
        self.take().into_iter().map(|(n, _)| n).collect()
    }
}

pub fn monitored_client() -> (Client, Commands) {
    monitored_client_at(&uri())
}

/// [`monitored_client`] for another URI (a private server, a proxy).
pub fn monitored_client_at(uri: &str) -> (Client, Commands) {
    let commands = Commands::default();
    let sink = commands.clone();
    let mut options = ClientOptions::parse(uri).run().expect("valid URI");
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        if let CommandEvent::Started(started) = ev {
            sink.0.lock().unwrap().push((
                started.command_name.clone(),
                started.command.clone(),
                Instant::now(),
            ));
        }
    }));
    (Client::with_options(options).expect("client"), commands)
}

/// Whether the server offers change streams (a replica set does; a
/// standalone server does not).
pub fn has_change_streams(db: &Database) -> bool {
    db.run_command(mongodb::bson::doc! {"hello": 1})
        .run()
        .unwrap()
        .contains_key("setName")
}

/// An elector on `key` with this ttl and retry interval, defaults else.
pub fn elector(db: &Database, key: &str, ttl: Duration, retry: Duration) -> MongoElector {
    MongoElector::builder(key, db)
        .ttl(ttl)
        .retry_interval(retry)
        .build()
        .unwrap()
}

/// How long a waiter blocked in `acquire` (up to 20 s, with this `step`)
/// takes to get the lock once `holder` releases it: the holder takes it,
/// the waiter makes its first attempt and starts waiting (its change stream
/// opening, where there is one), then the holder releases. The waiter is
/// given back, holding the lock.
pub fn release_to_acquire(
    holder: &MongoLocker,
    waiter: MongoLocker,
    step: Duration,
) -> (Duration, MongoLocker) {
    assert!(
        holder.acquire(false, None, step, false).unwrap(),
        "the holder acquired"
    );
    let blocked = std::thread::spawn(move || {
        let got = waiter
            .acquire(true, Some(Duration::from_secs(20)), step, false)
            .unwrap();
        (got, Instant::now(), waiter)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let released = Instant::now();
    assert!(holder.release(false).unwrap());
    let (got, at, waiter) = blocked.join().unwrap();
    assert!(got, "the waiter acquired");
    (at - released, waiter)
}

/// Waits up to `limit` for a `BecameMaster` on `events` (other events
/// skipped): the instant it came.
pub fn became_master(events: &crossbeam_channel::Receiver<Event>, limit: Duration) -> Instant {
    loop {
        match events.recv_timeout(limit).expect("became master") {
            Event::BecameMaster { .. } => return Instant::now(),
            _ => continue,
        }
    }
}

/// Whether a command opens a change stream (an `aggregate` whose pipeline
/// starts with `$changeStream`).
pub fn opens_stream(name: &str, cmd: &Document) -> bool {
    name == "aggregate"
        && cmd.get_array("pipeline").is_ok_and(|p| {
            p.iter().any(|s| {
                s.as_document()
                    .is_some_and(|d| d.contains_key("$changeStream"))
            })
        })
}

/// Names of this process's threads, from /proc (Linux), as `comm` shows
/// them (cut to 15 bytes).
pub fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_owned())
        .collect()
}

/// Polls `f` every 10 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A server of one test's own, for tests that stop, freeze or restart the
/// database: the crate's test kit ([`mongoelector::testing::TestServer`]),
/// with the port and PID as fields and a URI that fails faster (1 s).
/// The same server program as the shared one (`scripts/test.sh` points the
/// kit at its SecantusDB).
pub struct PrivateServer {
    pub port: u16,
    pub pid: u32,
    pub kit: TestServer,
}

impl PrivateServer {
    /// `args` as `scripts/server.sh start` took them: `--standalone`, and
    /// `--enable-test-commands` (always on in the kit); others go to the
    /// server. In memory.
    pub fn start(args: &[&str]) -> Self {
        let mut builder = TestServer::builder().in_memory(true);
        for arg in args {
            builder = match *arg {
                "--standalone" => builder.standalone(),
                "--enable-test-commands" => builder,
                other => builder.arg(other),
            };
        }
        Self::from_kit(builder)
    }

    fn from_kit(builder: mongoelector::testing::TestServerBuilder) -> Self {
        let kit = builder
            .start()
            .unwrap_or_else(|e| panic!("start a test server: {e}"));
        PrivateServer {
            port: kit.port(),
            pid: kit.pid().expect("a running server"),
            kit,
        }
    }

    /// A server whose TTL monitor runs every `seconds` (60 s by default, as
    /// MongoDB's). Replica-set mode unless `standalone`; in memory.
    pub fn start_with_ttl_monitor(seconds: f64, standalone: bool) -> Self {
        let mut builder = TestServer::builder()
            .in_memory(true)
            .ttl_monitor(Duration::from_secs_f64(seconds));
        if standalone {
            builder = builder.standalone();
        }
        Self::from_kit(builder)
    }

    /// A URI that goes straight to this server, failing fast while it is down.
    pub fn uri(&self) -> String {
        format!(
            "mongodb://127.0.0.1:{}/?directConnection=true&serverSelectionTimeoutMS=1000&connectTimeoutMS=1000&heartbeatFrequencyMS=500",
            self.port
        )
    }

    pub fn client(&self) -> Client {
        Client::with_uri_str(self.uri()).expect("client")
    }

    /// SIGSTOP: the server stops answering; connections hang.
    pub fn pause(&self) {
        self.kit.freeze().expect("freeze the server");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.kit.thaw().expect("thaw the server");
    }

    /// SIGTERM and wait for the process to exit.
    pub fn stop(&self) {
        self.kit.stop().expect("stop the server");
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kit.restart().expect("restart the server");
        self.pid = self.kit.pid().expect("a running server");
    }

    /// Starts the server again on the same port with the same arguments,
    /// its clock `offset` ahead (libfaketime's `FAKETIME`, e.g. `"+3s"`;
    /// monotonic clocks left alone).
    pub fn restart_with_clock(&mut self, libfaketime: &str, offset: &str) {
        let env = [
            ("LD_PRELOAD", libfaketime),
            ("FAKETIME", offset),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ];
        self.kit
            .restart_with_env(env)
            .expect("restart the server with its clock moved");
        self.pid = self.kit.pid().expect("a running server");
    }
}

/// Sends `sig` (`-KILL`, `-STOP`, ...) to process `pid`; fails the test if
/// `kill` does.
pub fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid} failed");
}

/// Creates the crate's two default collections in `db` (the lock collection
/// and the status collection), for tests on an on-disk SecantusDB store: on
/// one, SecantusDB 0.7.0b3 can deadlock for good when a `createIndexes` that
/// creates a collection races the first write into that collection (the
/// status index against the first status report); MongoDB does not.
/// `scripts/secure-server.sh` does the same for its users' databases.
pub fn create_collections(db: &Database) {
    for name in [
        mongoelector::limits::DEFAULT_LOCK_COLLECTION,
        mongoelector::limits::DEFAULT_STATUS_COLLECTION,
    ] {
        db.create_collection(name)
            .run()
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
}

/// A private server on an on-disk store of its own (to survive restarts,
/// removed with the server), with the crate's two collections in `db`
/// created first ([`create_collections`] says why). Extra `args` go to the
/// server.
pub fn on_disk_server_with(db: &str, args: &[&str]) -> PrivateServer {
    let mut builder = TestServer::builder();
    for arg in args {
        builder = builder.arg(*arg);
    }
    let server = PrivateServer::from_kit(builder);
    create_collections(&server.client().database(db));
    server
}

/// [`on_disk_server_with`] with no extra arguments.
pub fn on_disk_server(db: &str) -> PrivateServer {
    on_disk_server_with(db, &[])
}

/// A private server in the mode of the shared test server: standalone when
/// it is (no change streams), a replica set otherwise.
pub fn private_server_like_shared() -> PrivateServer {
    if has_change_streams(&db()) {
        PrivateServer::start(&[])
    } else {
        PrivateServer::start(&["--standalone"])
    }
}

/// How many of this process's threads are named `name` (as `comm` shows it).
pub fn count_threads(name: &str) -> usize {
    thread_names().iter().filter(|n| n.as_str() == name).count()
}

/// Serialises the time-sensitive tests of one test binary (a wake-up
/// latency or a takeover bound measured while another test's processes
/// load the machine would be noise); a failed test does not poison it.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The median of some durations (the upper one of an even count).
pub fn median(mut v: Vec<Duration>) -> Duration {
    assert!(!v.is_empty(), "no samples");
    v.sort();
    v[v.len() / 2]
}

/// The indexes of a collection, by name (`_id_` included).
pub fn index_names(db: &Database, collection: &str) -> Vec<String> {
    db.collection::<Document>(collection)
        .list_index_names()
        .run()
        .unwrap_or_default()
}

/// The database `db` names, on a client of its own (as another process
/// sees it: none of `db`'s client options).
pub fn db_of(db: &Database) -> Database {
    client().database(db.name())
}
