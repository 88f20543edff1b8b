//! The recorder's change stream: every event in commit order, each
//! document rebuilt event by event (a delta applied to the document before
//! it), resumed after a server restart or, when that fails, the documents
//! read again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{
    ChangeStreamEvent, OperationType, ResumeToken, UpdateDescription,
};
use mongodb::sync::Database;

use super::{holdings, ms, queue, text, NOT_HOLDINGS};

pub(crate) type Stream = mongodb::sync::ChangeStream<ChangeStreamEvent<Document>>;

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

pub(crate) fn record(db: &Database, first: Option<Stream>, stop: &AtomicBool, out: &mut File) {
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
        // A lock's holder's call and its queue, for the fair-order rule.
        let (run, queue) = match &after {
            Some(d) if d.get_bool("locked").is_ok() => (text(d.get("run")), queue(d)),
            _ => ("-".to_owned(), "-".to_owned()),
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
            "commit seq={seq} coll={coll} key={key} op={op} held={held} released={released} wall={wall} run={run} queue={queue}"
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
