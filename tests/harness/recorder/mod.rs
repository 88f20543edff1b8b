//! What the server saw, for the history checker: a recorder and an
//! auditor, threads of the test (or soak) process that connect to the
//! server directly (never through a fault proxy), started before the
//! workers and stopped after them.
//!
//! - The recorder (a replica set only: it needs a change stream) watches
//!   the run's database and logs every event in commit order, resuming
//!   after a server restart from its resume token (`op=gap` when it could
//!   not), into `recorder.log`:
//!
//!   ```text
//!   commit seq=N coll=C key=K op=insert|replace|update|delete held=F:CREATED:UUID,..|- released=MS wall=MS
//!   commit seq=N coll=resource key=K op=.. wid=W wall=MS
//!   commit seq=N op=gap
//!   ```
//!
//!   `held` lists the live holdings of a lock document (its fence when
//!   `locked`; 0 for the Python package's, which has none) or of a share
//!   document (its `holders`), after the event; `released` its
//!   `ts_released`, `wall` the commit's wall time on the server. An
//!   update arrives as a `replace` event with the whole document or, as
//!   the test server often sends pipeline updates, as an `update` event
//!   with a delta, applied here to the last document seen (`op=gap` when
//!   it cannot be).
//! - The auditor polls, every 100 ms, the resource documents' own write
//!   log (the last 64 writes each keeps) and merges it by write id into
//!   one log per key in the order the server appended it; every 300 ms it
//!   notes the holdings of the lock and share documents (grants whose
//!   worker could not read their time, or was killed before logging
//!   them). Into `audit.log`:
//!
//!   ```text
//!   logged key=K n=N wid=W fence=F at=MS w=WORKER
//!   seen key=K fence=F created=MS uuid=U
//!   audit gap=K
//!   audit polls=N
//!   ```
//!
//!   `audit gap` means a poll found none of the entries the previous one
//!   had seen: writes may have come and gone between them.
#![allow(dead_code)]

mod audit;
mod stream;

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Client;

/// Collections that hold no lock or share.
pub(crate) const NOT_HOLDINGS: [&str; 3] = ["resource", "elector.status", "elector.leader_status"];

pub struct Recorder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn open(dir: &Path, name: &str) -> File {
    File::create(dir.join(name)).expect("create a recorder log")
}

pub(crate) fn ms(d: Option<&Bson>) -> i64 {
    match d {
        Some(Bson::DateTime(t)) => t.timestamp_millis(),
        _ => -1,
    }
}

pub(crate) fn int(d: Option<&Bson>) -> Option<i64> {
    match d {
        Some(Bson::Int64(n)) => Some(*n),
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        _ => None,
    }
}

pub(crate) fn text(d: Option<&Bson>) -> String {
    match d {
        Some(Bson::String(s)) => s.clone(),
        _ => "-".to_owned(),
    }
}

/// A lock document's fair queue, as the recorder logs it: `CALL:EXPIRES`
/// (ms) per entry in order, `-` for none. Calls are uuids (no `:` or `,`).
pub(crate) fn queue(d: &Document) -> String {
    let entries: Vec<String> = d
        .get_array("queue")
        .map(|q| {
            q.iter()
                .filter_map(Bson::as_document)
                .map(|e| format!("{}:{}", text(e.get("call")), ms(e.get("expires"))))
                .collect()
        })
        .unwrap_or_default();
    if entries.is_empty() {
        "-".to_owned()
    } else {
        entries.join(",")
    }
}

/// The live holdings of a lock or share document: (fence, created, uuid).
pub(crate) fn holdings(d: &Document) -> Vec<(i64, i64, String)> {
    if let Ok(holders) = d.get_array("holders") {
        return holders
            .iter()
            .filter_map(Bson::as_document)
            .filter_map(|h| {
                Some((
                    int(h.get("fence"))?,
                    ms(h.get("ts_created")),
                    text(h.get("uuid")),
                ))
            })
            .collect();
    }
    if d.get_bool("locked") == Ok(true) {
        let fence = int(d.get("fence")).unwrap_or(0);
        return vec![(fence, ms(d.get("ts_created")), text(d.get("uuid")))];
    }
    Vec::new()
}

impl Recorder {
    /// Starts recording database `db` of the server at `uri` (a URI that
    /// reaches it directly) into `dir`.
    pub fn start(uri: &str, db: &str, dir: &Path) -> Recorder {
        let stop = Arc::new(AtomicBool::new(false));
        let client = Client::with_uri_str(uri).expect("a client for the recorder");
        let db = client.database(db);
        let replica_set = db
            .run_command(doc! { "hello": 1 })
            .run()
            .is_ok_and(|r| r.contains_key("setName"));
        let mut threads = Vec::new();
        if replica_set {
            let (db, stop) = (db.clone(), stop.clone());
            let mut out = open(dir, "recorder.log");
            // Opened before the workers start: nothing is missed.
            let first = db
                .watch()
                .max_await_time(Duration::from_millis(200))
                .run()
                .ok();
            threads.push(std::thread::spawn(move || {
                stream::record(&db, first, &stop, &mut out)
            }));
        }
        let (out, stop2) = (open(dir, "audit.log"), stop.clone());
        threads.push(std::thread::spawn(move || audit::audit(&db, &stop2, out)));
        Recorder { stop, threads }
    }

    /// Stops both after a last poll.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.halt();
    }
}
