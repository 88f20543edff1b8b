//! Shared set-up for the bench binaries: they run against a real server at
//! `MONGODB_URI` (run them through `scripts/with-server.sh`, which starts a
//! fresh SecantusDB and stops it afterwards), never a mock.
#![allow(dead_code)]

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::options::{
    Acknowledgment, CollectionOptions, ReadConcern, ReadPreference, ReturnDocument,
    SelectionCriteria, WriteConcern,
};
use mongodb::sync::{Client, Collection, Database};

pub fn uri() -> String {
    match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => {
            eprintln!(
                "MONGODB_URI is not set. The benches need a server: run them as \
                 `scripts/with-server.sh cargo bench`, which starts a fresh SecantusDB test \
                 server and stops it afterwards (or start one with `scripts/server.sh start` \
                 and set MONGODB_URI=mongodb://127.0.0.1:PORT/)."
            );
            std::process::exit(2);
        }
    }
}

pub fn client() -> Client {
    Client::with_uri_str(uri()).expect("valid MONGODB_URI")
}

/// Commands started by a monitored client, counted by name.
pub type CommandCounts = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>;

/// A client whose started commands are counted by name (the driver's
/// command monitoring).
pub fn monitored_client() -> (Client, CommandCounts) {
    let counts = CommandCounts::default();
    let sink = counts.clone();
    let mut options = mongodb::options::ClientOptions::parse(uri())
        .run()
        .expect("valid MONGODB_URI");
    options.command_event_handler = Some(mongodb::event::EventHandler::callback(
        move |ev: mongodb::event::command::CommandEvent| {
            if let mongodb::event::command::CommandEvent::Started(s) = ev {
                *sink.lock().unwrap().entry(s.command_name).or_default() += 1;
            }
        },
    ));
    (Client::with_options(options).expect("client"), counts)
}

/// A database of the run's own.
pub fn fresh_db(client: &Client, what: &str) -> Database {
    client.database(&format!("bench_{what}_{}", uuid::Uuid::new_v4().simple()))
}

/// A collection with the settings the lock uses (majority, journaled writes;
/// majority reads from the primary), so the raw driver pays what it pays.
pub fn raw_collection(db: &Database, name: &str) -> Collection<Document> {
    let options = CollectionOptions::builder()
        .write_concern(
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build(),
        )
        .read_concern(ReadConcern::majority())
        .selection_criteria(SelectionCriteria::ReadPreference(ReadPreference::Primary))
        .build();
    db.collection_with_options(name, options)
}

/// The raw driver's minimal write round trip: one `find_one_and_update`
/// (upsert, classic `$set`, document after).
pub fn raw_write(coll: &Collection<Document>, key: &str, i: i64) {
    coll.find_one_and_update(doc! { "_id": key }, doc! { "$set": { "v": i } })
        .upsert(true)
        .return_document(ReturnDocument::After)
        .run()
        .expect("raw find_one_and_update");
}

/// The raw driver's minimal read round trip: one `find` of one document.
pub fn raw_read(coll: &Collection<Document>, key: &str) {
    coll.find_one(doc! { "_id": key })
        .run()
        .expect("raw find_one");
}

/// This process's user + system CPU time, and peak RSS in KiB.
pub fn rusage() -> (Duration, u64) {
    // SAFETY: getrusage only writes the struct we hand it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss as u64)
}

/// Peak resident set size of this program in KiB (`VmHWM`). Unlike
/// `ru_maxrss`, which on Linux keeps the high-water mark of the process
/// before `execve` (here: cargo's, copied by its fork), this starts at the
/// program's own start.
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Current resident set size in KiB, from /proc/self/statm.
pub fn rss_now_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("statm resident");
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page / 1024
}
