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
use mongoelector::{MongoElector, MongoLocker};

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
        mongoelector::DEFAULT_COLLECTION,
        mongoelector::DEFAULT_STATUS_COLLECTION,
    ] {
        db.create_collection(name)
            .run()
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
}
