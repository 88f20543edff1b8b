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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{
    ChangeStreamEvent, OperationType, ResumeToken, UpdateDescription,
};
use mongodb::sync::{Client, Database};

/// Collections that hold no lock or share.
const NOT_HOLDINGS: [&str; 3] = ["resource", "elector.status", "elector.leader_status"];

pub struct Recorder {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn open(dir: &Path, name: &str) -> File {
    File::create(dir.join(name)).expect("create a recorder log")
}

fn ms(d: Option<&Bson>) -> i64 {
    match d {
        Some(Bson::DateTime(t)) => t.timestamp_millis(),
        _ => -1,
    }
}

fn int(d: Option<&Bson>) -> Option<i64> {
    match d {
        Some(Bson::Int64(n)) => Some(*n),
        Some(Bson::Int32(n)) => Some(i64::from(*n)),
        _ => None,
    }
}

fn text(d: Option<&Bson>) -> String {
    match d {
        Some(Bson::String(s)) => s.clone(),
        _ => "-".to_owned(),
    }
}

/// The live holdings of a lock or share document: (fence, created, uuid).
fn holdings(d: &Document) -> Vec<(i64, i64, String)> {
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
                record(&db, first, &stop, &mut out)
            }));
        }
        let (out, stop2) = (open(dir, "audit.log"), stop.clone());
        threads.push(std::thread::spawn(move || audit(&db, &stop2, out)));
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

type Stream = mongodb::sync::ChangeStream<ChangeStreamEvent<Document>>;

/// The recorder's view of the documents, rebuilt event by event.
struct View<'a> {
    db: &'a Database,
    docs: BTreeMap<(String, String), Document>,
    /// Documents read afresh after a hole, with the server's clock just
    /// before and after the read: an event committed before the first is
    /// in the read, one after the second is not, one between may be.
    synced: BTreeMap<(String, String), (i64, i64)>,
    /// The same for every document, after a hole in the stream itself.
    all: Option<(i64, i64)>,
}

/// The server's clock (ms), from `hello`.
fn server_ms(db: &Database) -> Option<i64> {
    let hello = db.run_command(doc! { "hello": 1 }).run().ok()?;
    Some(hello.get_datetime("localTime").ok()?.timestamp_millis())
}

impl View<'_> {
    /// Reads every document of the run afresh (after the stream lost
    /// events): the window of the read, or None when it failed.
    fn resync_all(&mut self) -> Option<()> {
        let before = server_ms(self.db)?;
        let mut docs = BTreeMap::new();
        for name in self.db.list_collection_names().run().ok()? {
            if name != "resource" && NOT_HOLDINGS.contains(&name.as_str()) {
                continue;
            }
            for d in self
                .db
                .collection::<Document>(&name)
                .find(doc! {})
                .run()
                .ok()?
            {
                let d = d.ok()?;
                docs.insert((name.clone(), text(d.get("_id"))), d);
            }
        }
        let after = server_ms(self.db)?;
        self.docs = docs;
        self.synced.clear();
        self.all = Some((before, after));
        Some(())
    }

    /// Reads one document afresh (its delta could not be applied).
    fn resync(&mut self, slot: &(String, String)) {
        let read = (|| {
            let before = server_ms(self.db)?;
            let d = self
                .db
                .collection::<Document>(&slot.0)
                .find_one(doc! { "_id": &slot.1 })
                .run()
                .ok()?;
            Some((before, d, server_ms(self.db)?))
        })();
        self.docs.remove(slot);
        if let Some((before, d, after)) = read {
            if let Some(d) = d {
                self.docs.insert(slot.clone(), d);
            }
            self.synced.insert(slot.clone(), (before, after));
        }
    }
}

fn record(db: &Database, first: Option<Stream>, stop: &AtomicBool, out: &mut File) {
    let mut seq = 0u64;
    let mut token: Option<ResumeToken> = None;
    let mut view = View {
        db,
        docs: BTreeMap::new(),
        synced: BTreeMap::new(),
        all: None,
    };
    let mut stream = first;
    let mut gap = stream.is_none();
    // Events committed before `stop` are drained for a while after it.
    let mut quiet_since: Option<Instant> = None;
    loop {
        let Some(cs) = stream.as_mut() else {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
            let resumed = token.clone().and_then(|t| {
                db.watch()
                    .resume_after(t)
                    .max_await_time(Duration::from_millis(200))
                    .run()
                    .ok()
            });
            stream = match resumed {
                Some(s) => Some(s),
                None if db.run_command(doc! { "ping": 1 }).run().is_ok() => {
                    // The server answers but cannot resume (after a restart
                    // the test server may not): start afresh, after a hole.
                    let fresh = db
                        .watch()
                        .max_await_time(Duration::from_millis(200))
                        .run()
                        .ok();
                    gap = fresh.is_some();
                    fresh
                }
                None => None,
            };
            continue;
        };
        if gap {
            if view.resync_all().is_none() {
                stream = None;
                continue;
            }
            seq += 1;
            let _ = writeln!(out, "commit seq={seq} op=gap");
            gap = false;
        }
        match cs.next_if_any() {
            Ok(Some(ev)) => {
                quiet_since = None;
                seq += 1;
                match describe(seq, &ev, &mut view) {
                    Line::Text(line) => {
                        let _ = writeln!(out, "{line}");
                    }
                    Line::Gap(what) => {
                        let _ = writeln!(out, "commit seq={seq} op=gap {what}");
                    }
                    Line::Skip => {}
                }
                token = cs.resume_token().or(Some(ev.id));
            }
            Ok(None) => {
                token = cs.resume_token().or(token);
                if stop.load(Ordering::SeqCst) {
                    let since = *quiet_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > Duration::from_millis(500) {
                        return;
                    }
                }
            }
            Err(_) => stream = None,
        }
    }
}

/// What one event gives the log.
enum Line {
    Skip,
    Text(String),
    /// The key's state is not known at this event (its delta could not be
    /// applied, or it falls in a fresh read's window).
    Gap(String),
}

/// The line of one event; the document after it kept in the view.
fn describe(seq: u64, ev: &ChangeStreamEvent<Document>, view: &mut View<'_>) -> Line {
    let (Some(coll), Some(id)) = (
        ev.ns.as_ref().and_then(|ns| ns.coll.clone()),
        ev.document_key.as_ref().and_then(|k| k.get("_id")),
    ) else {
        return Line::Skip;
    };
    let key = match id {
        Bson::String(s) => s.clone(),
        other => other.to_string(),
    };
    let op = match ev.operation_type {
        OperationType::Insert => "insert",
        OperationType::Replace => "replace",
        OperationType::Update => "update",
        OperationType::Delete => "delete",
        _ => return Line::Skip,
    };
    if coll != "resource" && NOT_HOLDINGS.contains(&coll.as_str()) {
        return Line::Skip;
    }
    // The commit's wall time on the server (the clock of `$$NOW`).
    let wall = ev.wall_time.map_or(-1, |t| t.timestamp_millis());
    let slot = (coll.clone(), key.clone());
    // After a fresh read: an event already in it is skipped; one that may
    // be is applied (its delta sets values, so applying it twice does no
    // harm) and marks a hole for the key.
    let mut unsure = false;
    if let Some(&(before, after)) = view.synced.get(&slot).or(view.all.as_ref()) {
        if wall >= 0 && wall < before {
            return Line::Skip;
        }
        if wall < 0 || wall <= after {
            unsure = true;
        } else {
            // Past the read's window: in step from here on.
            view.synced.insert(slot.clone(), (i64::MIN, i64::MIN));
        }
    }
    // The document after the event: whole in an insert or a replace, the
    // delta of an update applied to the one before.
    let after = match ev.operation_type {
        OperationType::Delete => None,
        OperationType::Update => {
            let applied = view
                .docs
                .get_mut(&slot)
                .is_some_and(|d| ev.update_description.as_ref().is_some_and(|u| apply(d, u)));
            if !applied && !unsure {
                view.resync(&slot);
                return Line::Gap(format!("coll={coll} key={key}"));
            }
            view.docs.get(&slot).cloned()
        }
        _ => ev.full_document.clone(),
    };
    match &after {
        Some(d) => view.docs.insert(slot.clone(), d.clone()),
        None => view.docs.remove(&slot),
    };
    if unsure {
        return Line::Gap(format!("coll={coll} key={key}"));
    }
    Line::Text(if coll == "resource" {
        let wid = after
            .as_ref()
            .and_then(|d| d.get_array("log").ok())
            .and_then(|log| log.last())
            .and_then(Bson::as_document)
            .map_or("-".to_owned(), |e| text(e.get("wid")));
        format!("commit seq={seq} coll=resource key={key} op={op} wid={wid} wall={wall}")
    } else {
        let (held, released) = match &after {
            Some(d) => (holdings(d), ms(d.get("ts_released"))),
            None => (Vec::new(), -1),
        };
        let held = if held.is_empty() {
            "-".to_owned()
        } else {
            held.iter()
                .map(|(f, c, u)| format!("{f}:{c}:{u}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "commit seq={seq} coll={coll} key={key} op={op} held={held} released={released} wall={wall}"
        )
    })
}

/// Applies an update event's delta to the document before it: arrays
/// truncated first, then the fields set (an index one past the end
/// appends), then those removed. False when a path cannot be followed.
fn apply(d: &mut Document, u: &UpdateDescription) -> bool {
    let mut ok = true;
    for t in u.truncated_arrays.iter().flatten() {
        match walk(d, &t.field) {
            Some(Bson::Array(a)) => a.truncate(t.new_size.max(0) as usize),
            _ => ok = false,
        }
    }
    for (path, v) in &u.updated_fields {
        let Some((parent, last)) = path.rsplit_once('.') else {
            d.insert(path, v.clone());
            continue;
        };
        match walk(d, parent) {
            Some(Bson::Document(inner)) => {
                inner.insert(last, v.clone());
            }
            Some(Bson::Array(a)) => match last.parse::<usize>() {
                Ok(i) if i < a.len() => a[i] = v.clone(),
                Ok(i) if i == a.len() => a.push(v.clone()),
                _ => ok = false,
            },
            _ => ok = false,
        }
    }
    for path in &u.removed_fields {
        match path.rsplit_once('.') {
            None => {
                d.remove(path);
            }
            Some((parent, last)) => match walk(d, parent) {
                Some(Bson::Document(inner)) => {
                    inner.remove(last);
                }
                _ => ok = false,
            },
        }
    }
    ok
}

/// The value at dotted `path` (array indexes as numbers).
fn walk<'a>(d: &'a mut Document, path: &str) -> Option<&'a mut Bson> {
    let mut parts = path.split('.');
    let mut at = d.get_mut(parts.next()?)?;
    for p in parts {
        at = match at {
            Bson::Document(inner) => inner.get_mut(p)?,
            Bson::Array(a) => a.get_mut(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// The resource documents' logs, merged; the holdings seen.
#[derive(Default)]
struct Audit {
    /// Per key: every write id logged, the last poll's array, the count.
    seen: BTreeMap<String, (BTreeSet<String>, Vec<String>, u64)>,
    holdings: BTreeSet<(String, i64)>,
    polls: u64,
}

fn audit(db: &Database, stop: &AtomicBool, mut out: File) {
    let mut a = Audit::default();
    let mut round = 0u64;
    loop {
        // The last poll comes after `stop`: the workers have stopped.
        let last = stop.load(Ordering::SeqCst);
        if poll_resource(db, &mut a, &mut out).is_ok() {
            a.polls += 1;
        }
        if last || round.is_multiple_of(3) {
            let _ = poll_holdings(db, &mut a, &mut out);
        }
        if last {
            let _ = writeln!(out, "audit polls={}", a.polls);
            return;
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Where the new entries of a write log start, given the last poll's
/// entries: the array only grows at its end and drops its oldest entries,
/// so it is the last one minus some first entries plus new ones. Entries
/// are told apart by position, so a write applied twice counts twice.
/// None: none of the last poll's entries is left.
fn first_new(previous: &[String], now: &[String]) -> Option<usize> {
    if previous.is_empty() {
        return Some(0);
    }
    (0..previous.len()).find_map(|d| {
        let rest = &previous[d..];
        (now.len() >= rest.len() && now[..rest.len()] == *rest).then_some(rest.len())
    })
}

fn poll_resource(db: &Database, a: &mut Audit, out: &mut File) -> mongodb::error::Result<()> {
    let docs: Vec<Document> = db
        .collection::<Document>("resource")
        .find(doc! {})
        .run()?
        .collect::<mongodb::error::Result<_>>()?;
    for d in docs {
        let key = text(d.get("_id"));
        let entries: Vec<&Document> = d
            .get_array("log")
            .map(|l| l.iter().filter_map(Bson::as_document).collect())
            .unwrap_or_default();
        let (seen, previous, n) = a.seen.entry(key.clone()).or_default();
        let wids: Vec<String> = entries.iter().map(|e| text(e.get("wid"))).collect();
        let kept = first_new(previous, &wids);
        let first_new = match kept {
            Some(i) => i,
            None => {
                // Not one of the last entries seen is left: some may have
                // come and gone between the polls.
                let _ = writeln!(out, "audit gap={key}");
                0
            }
        };
        for (e, wid) in entries.iter().zip(&wids).skip(first_new) {
            if kept.is_some() || seen.insert(wid.clone()) {
                seen.insert(wid.clone());
                *n += 1;
                let _ = writeln!(
                    out,
                    "logged key={key} n={n} wid={wid} fence={} at={} w={}",
                    int(e.get("fence")).unwrap_or(-1),
                    ms(e.get("at")),
                    text(e.get("w"))
                );
            }
        }
        *previous = wids;
    }
    Ok(())
}

fn poll_holdings(db: &Database, a: &mut Audit, out: &mut File) -> mongodb::error::Result<()> {
    for name in db.list_collection_names().run()? {
        if NOT_HOLDINGS.contains(&name.as_str()) {
            continue;
        }
        for d in db.collection::<Document>(&name).find(doc! {}).run()? {
            let d = d?;
            let key = text(d.get("_id"));
            for (fence, created, uuid) in holdings(&d) {
                if fence != 0 && a.holdings.insert((key.clone(), fence)) {
                    let _ = writeln!(
                        out,
                        "seen key={key} fence={fence} created={created} uuid={uuid}"
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    fn delta(updated: Document, removed: &[&str], truncated: &[(&str, i32)]) -> UpdateDescription {
        let truncated: Vec<Document> = truncated
            .iter()
            .map(|(f, n)| doc! { "field": *f, "newSize": *n })
            .collect();
        mongodb::bson::from_document(doc! {
            "updatedFields": updated,
            "removedFields": removed.to_vec(),
            "truncatedArrays": truncated,
        })
        .unwrap()
    }

    #[test]
    fn polls_of_a_write_log_merge_by_position() {
        let v = |s: &str| {
            s.split(' ')
                .filter(|w| !w.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(first_new(&v(""), &v("a b")), Some(0));
        assert_eq!(first_new(&v("a b"), &v("a b c")), Some(2));
        assert_eq!(first_new(&v("a b c"), &v("b c d e")), Some(2), "a dropped");
        assert_eq!(
            first_new(&v("a b"), &v("a b a")),
            Some(2),
            "a applied twice"
        );
        assert_eq!(first_new(&v("a b"), &v("c d")), None, "a hole");
        assert_eq!(first_new(&v("a b"), &v("a b")), Some(2), "nothing new");
    }

    /// The deltas the test server sends for pipeline updates: an entry
    /// appended by index, an array truncated, nested fields set, fields
    /// removed.
    #[test]
    fn update_deltas_rebuild_the_document() {
        let mut d = doc! { "_id": "k", "holders": [{ "f": 1 }], "x": 1 };
        assert!(apply(
            &mut d,
            &delta(doc! { "holders.1": { "f": 2 } }, &[], &[])
        ));
        assert_eq!(
            d,
            doc! { "_id": "k", "holders": [{ "f": 1 }, { "f": 2 }], "x": 1 }
        );
        assert!(apply(
            &mut d,
            &delta(doc! { "holders.0": { "f": 2 } }, &["x"], &[("holders", 1)])
        ));
        assert_eq!(d, doc! { "_id": "k", "holders": [{ "f": 2 }] });
        assert!(apply(
            &mut d,
            &delta(doc! { "holders.0.ts": 5, "t": 2 }, &[], &[])
        ));
        assert_eq!(
            d,
            doc! { "_id": "k", "holders": [{ "f": 2, "ts": 5 }], "t": 2 }
        );
        // A path that cannot be followed: the state is not known.
        assert!(!apply(
            &mut d,
            &delta(doc! { "holders.5": { "f": 3 } }, &[], &[])
        ));
    }
}
