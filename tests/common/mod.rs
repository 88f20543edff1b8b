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

/// A SecantusDB server of one test's own, for tests that stop, pause or
/// restart the database. Started and stopped by `scripts/server.sh`.
pub struct PrivateServer {
    pub port: u16,
    pub pid: u32,
    args: Vec<String>,
}

fn server_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/server.sh")
}

impl PrivateServer {
    pub fn start(args: &[&str]) -> Self {
        Self::start_on(None, args.iter().map(|s| s.to_string()).collect())
    }

    fn start_on(port: Option<u16>, args: Vec<String>) -> Self {
        Self::start_with(port, args, &[])
    }

    fn start_with(port: Option<u16>, args: Vec<String>, env: &[(&str, &str)]) -> Self {
        let mut cmd = std::process::Command::new(server_script());
        cmd.envs(env.iter().copied());
        cmd.arg("start").args(&args);
        if let Some(port) = port {
            cmd.env("SECANTUS_PORT", port.to_string());
        }
        let out = cmd.output().expect("run scripts/server.sh");
        assert!(
            out.status.success(),
            "scripts/server.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut words = text.split_whitespace();
        let port = words.next().unwrap().parse().unwrap();
        let pid = words.next().unwrap().parse().unwrap();
        PrivateServer { port, pid, args }
    }

    /// A server whose TTL monitor runs every `seconds` (60 s by default, as
    /// MongoDB's). SecantusDB 0.7.0b3's command line has no option for it
    /// and drops `[storage] ttl_sweep_seconds` from its config file, so this
    /// starts it through its Python API, which takes it. Replica-set mode
    /// unless `standalone`; `:memory:` storage.
    pub fn start_with_ttl_monitor(seconds: f64, standalone: bool) -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let installed = std::process::Command::new(server_script())
            .arg("install")
            .status()
            .expect("run scripts/server.sh");
        assert!(installed.success(), "scripts/server.sh install failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let set = if standalone { "None" } else { "'secantus'" };
        let code = format!(
            "import signal, sys\n\
             from secantus.server import SecantusDBServer\n\
             s = SecantusDBServer(host='127.0.0.1', port={port}, storage_path=':memory:', \
             replica_set_name={set}, enable_test_commands=False, ttl_sweep_seconds={seconds})\n\
             def stop(*_):\n    s.stop()\n    sys.exit(0)\n\
             signal.signal(signal.SIGTERM, stop)\n\
             s.start()\n\
             s.wait()\n"
        );
        let python = root.join(".secantus/venv/bin/python");
        let log = root.join(format!(".secantus/server-{port}.log"));
        // Started in the background by a shell, as scripts/server.sh does,
        // so that it is not this process's child once stopped.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#""$0" -c "$1" >"$2" 2>&1 </dev/null & echo $!"#)
            .arg(&python)
            .arg(&code)
            .arg(&log)
            .output()
            .expect("start the server");
        let pid = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let up = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up,
            "the server did not listen: {:?}",
            std::fs::read_to_string(&log)
        );
        PrivateServer {
            port,
            pid,
            args: Vec::new(),
        }
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

    fn signal(&self, sig: &str) {
        signal(self.pid, sig);
    }

    /// SIGSTOP: the server stops answering; connections hang.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// SIGTERM and wait for the process to exit.
    pub fn stop(&self) {
        self.resume();
        let status = std::process::Command::new(server_script())
            .args(["stop", &self.pid.to_string()])
            .status()
            .expect("scripts/server.sh stop");
        assert!(status.success());
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        *self = Self::start_on(Some(self.port), self.args.clone());
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
        *self = Self::start_with(Some(self.port), self.args.clone(), &env);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::process::Command::new(server_script())
            .args(["stop", &self.pid.to_string()])
            .status();
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

/// The directory of an on-disk store, removed when dropped (on a panic too).
pub struct Store(pub std::path::PathBuf);

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A private server on an on-disk store of its own (to survive restarts),
/// and the store, with the crate's two collections in `db` created first
/// ([`create_collections`] says why). Extra `args` go to the server.
pub fn on_disk_server_with(db: &str, args: &[&str]) -> (PrivateServer, Store) {
    let store = Store(std::env::temp_dir().join(format!(
        "mongoelector-store-{}",
        uuid::Uuid::new_v4().simple()
    )));
    let store_arg = store.0.to_string_lossy().into_owned();
    let mut all = vec!["--storage-path", store_arg.as_str()];
    all.extend_from_slice(args);
    let server = PrivateServer::start(&all);
    create_collections(&server.client().database(db));
    (server, store)
}

/// [`on_disk_server_with`] with no extra arguments.
pub fn on_disk_server(db: &str) -> (PrivateServer, Store) {
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
