//! The auditor: the resource documents' write logs, merged poll after
//! poll, and the holdings of the lock and share documents.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::Database;

use super::{holdings, int, ms, text, NOT_HOLDINGS};

/// The resource documents' logs, merged; the holdings seen.
#[derive(Default)]
struct Audit {
    /// Per key: every write id logged, the last poll's array, the count.
    seen: BTreeMap<String, (BTreeSet<String>, Vec<String>, u64)>,
    holdings: BTreeSet<(String, i64)>,
    polls: u64,
}

pub(crate) fn audit(db: &Database, stop: &AtomicBool, mut out: File) {
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
}
