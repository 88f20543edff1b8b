//! The worker's history lines (see the crate docs of `main.rs`) and the
//! reads and writes they report on.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Receiver;
use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Collection, Database};
use mongoelector::{Error, Fenced, FencedWrite, LossReason};
use parking_lot::Mutex;

use crate::clock::{instant_ns, mono_ns};
use crate::{Config, Shared, KEPT_WRITES};

/// How many times the driver sent each write (by its id), from command
/// monitoring: the driver retries a write once after a network error, and
/// the answer is then the retry's.
static ATTEMPTS: std::sync::OnceLock<Mutex<HashMap<String, u32>>> = std::sync::OnceLock::new();

fn attempts() -> &'static Mutex<HashMap<String, u32>> {
    ATTEMPTS.get_or_init(Default::default)
}

/// The write id in a fenced `update` command, wherever the library put
/// our pipeline in it.
fn wid_in(command: &Document) -> Option<String> {
    fn find(b: &Bson) -> Option<String> {
        match b {
            Bson::Document(d) => match d.get("wid") {
                Some(Bson::String(w)) => Some(w.clone()),
                _ => d.values().find_map(find),
            },
            Bson::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    find(command.get("updates")?)
}

/// A client that counts the attempts of each fenced write.
pub fn counting_client(uri: &str) -> mongodb::error::Result<mongodb::sync::Client> {
    let mut options = mongodb::options::ClientOptions::parse(uri).run()?;
    options.command_event_handler = Some(mongodb::event::EventHandler::callback(
        |ev: mongodb::event::command::CommandEvent| {
            if let mongodb::event::command::CommandEvent::Started(started) = ev {
                if started.command_name == "update" {
                    if let Some(wid) = wid_in(&started.command) {
                        *attempts().lock().entry(wid).or_default() += 1;
                    }
                }
            }
        },
    ));
    mongodb::sync::Client::with_options(options)
}

pub struct Worker {
    pub name: String,
    pub cfg: Config,
    pub db: Database,
    pub resource: Collection<Document>,
    pub log: Arc<Mutex<File>>,
    pub stop: Arc<AtomicBool>,
    pub shared: Shared,
}

impl Worker {
    pub fn line(&self, text: String) {
        let mut f = self.log.lock();
        let _ = writeln!(f, "{text}");
        let _ = f.flush();
    }

    pub fn error(&self, e: &Error) {
        // The variant's name, as `Debug` prints it first.
        let debug = format!("{e:?}");
        let kind = debug
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .filter(|k| !k.is_empty())
            .unwrap_or("Other");
        let msg = e.to_string().replace('\n', " ");
        self.line(format!(
            "error w={} key={} kind={kind} msg={msg}",
            self.name, self.cfg.key
        ));
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// One validity check of holding `fence`, logged; a loss its `lost()`
    /// receiver reported meanwhile is logged first. The deadline is read
    /// after `at` and before the call: a renewal that moves it later came
    /// in time (one after the deadline ends the holding), so a valid
    /// answer at or past it is the holder's error.
    pub fn check(
        &self,
        kind: &str,
        fence: i64,
        lost: Option<&Receiver<LossReason>>,
        deadline: impl FnOnce() -> Instant,
        is_valid: impl FnOnce() -> bool,
    ) -> (i64, bool, i64) {
        self.note_loss(fence, lost);
        let at = mono_ns();
        let deadline = instant_ns(deadline());
        let valid = is_valid();
        self.check_line(kind, fence, at, deadline, valid);
        (at, valid, deadline)
    }

    pub fn note_loss(&self, fence: i64, lost: Option<&Receiver<LossReason>>) {
        if let Some(reason) = lost.and_then(|rx| rx.try_recv().ok()) {
            self.line(format!(
                "lost w={} key={} fence={fence} at={} reason={reason:?}",
                self.name,
                self.cfg.key,
                mono_ns()
            ));
        }
    }

    pub fn check_line(&self, kind: &str, fence: i64, at: i64, deadline: i64, valid: bool) {
        self.line(format!(
            "check w={} key={} kind={kind} fence={fence} at={at} deadline={deadline} valid={}",
            self.name, self.cfg.key, valid as u8
        ));
    }

    /// Releases holding `fence` through `release`, logged before sending
    /// and after the answer.
    pub fn release(&self, fence: i64, release: impl FnOnce() -> Result<(), Error>) {
        let sent = mono_ns();
        let line = |done: i64, result: &str| {
            format!(
                "release w={} key={} fence={fence} sent={sent} done={done} result={result}",
                self.name, self.cfg.key
            )
        };
        self.line(line(-1, "pending"));
        let result = release();
        let done = mono_ns();
        self.line(line(done, if result.is_ok() { "ok" } else { "error" }));
        if let Err(e) = result {
            self.error(&e);
        }
    }

    /// One fenced write to the resource, recording `$$NOW` with a unique
    /// id in the document's last writes. Its server time is not read back
    /// (`server=-1`): the checker takes it from the auditor's copy of the
    /// document's log, by id, for every applied write.
    pub fn fenced_write(
        &self,
        fenced: &Fenced<'_, Document>,
        checked: i64,
        valid: bool,
        deadline: i64,
        probe: bool,
    ) {
        let wid = uuid::Uuid::new_v4().simple().to_string();
        let entry = doc! { "wid": &wid, "fence": fenced.fence(), "at": "$$NOW", "w": &self.name };
        let update = vec![doc! { "$set": {
            "by": &self.name,
            "writes": { "$add": [{ "$ifNull": ["$writes", 0] }, 1] },
            "log": { "$slice": [
                { "$concatArrays": [{ "$ifNull": ["$log", []] }, [entry]] },
                -KEPT_WRITES,
            ]},
        }}];
        let sent = mono_ns();
        let written = fenced.upsert_one(doc! { "_id": &self.cfg.key }, update);
        let done = mono_ns();
        let (name, applied) = match &written {
            Ok(FencedWrite::Applied { .. }) => ("applied", true),
            Ok(FencedWrite::Stale { .. }) => ("stale", false),
            Ok(FencedWrite::Expired) => ("expired", false),
            Ok(FencedWrite::NoMatch) => ("nomatch", false),
            Ok(_) => ("other", false),
            // No answer: the outcome is unknown (the audit finds out).
            Err(_) => ("error", false),
        };
        let sends = attempts().lock().remove(&wid).unwrap_or(0);
        self.line(format!(
            "write w={} key={} fence={} wid={wid} checked={checked} sent={sent} done={done} deadline={deadline} valid={} accepted={} probe={} result={name} server=-1 attempts={sends}",
            self.name,
            self.cfg.key,
            fenced.fence(),
            valid as u8,
            applied as u8,
            probe as u8
        ));
        if let Err(e) = written {
            self.error(&e);
        }
    }

    fn grant_line(&self, kind: &str, fence: i64, uuid: &str, granted: i64, start: i64) {
        self.line(format!(
            "grant w={} key={} kind={kind} fence={fence} uuid={} granted={granted} start={start}",
            self.name,
            self.cfg.key,
            if uuid.is_empty() { "-" } else { uuid }
        ));
    }

    /// Logs the server time at which `fence` was granted on this key: the
    /// lock document's `ts_created` in `collection` (the one this worker's
    /// locker or elector uses), while it still names that fence.
    pub fn grant(&self, kind: &str, collection: &str, uuid: &str, fence: i64, start: i64) {
        let locks = self.db.collection::<Document>(collection);
        let granted = match locks.find_one(doc! { "_id": &self.cfg.key }).run() {
            Ok(Some(lock)) if lock.get_i64("fence") == Ok(fence) => lock
                .get_datetime("ts_created")
                .map_or(-1, |at| at.timestamp_millis()),
            _ => -1,
        };
        self.grant_line(kind, fence, uuid, granted, start);
    }

    /// Logs the server time at which `fence` was granted on this key in a
    /// many-holder document (its entry's `ts_created` and token, while it
    /// is there).
    pub fn share_grant(&self, kind: &str, collection: &str, fence: i64, start: i64) {
        let coll = self.db.collection::<Document>(collection);
        let entry = match coll.find_one(doc! { "_id": &self.cfg.key }).run() {
            Ok(Some(d)) => d
                .get_array("holders")
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(Bson::as_document)
                .find(|h| h.get_i64("fence") == Ok(fence))
                .cloned(),
            _ => None,
        };
        let granted = entry
            .as_ref()
            .and_then(|h| h.get_datetime("ts_created").ok())
            .map_or(-1, |at| at.timestamp_millis());
        let uuid = entry
            .as_ref()
            .and_then(|h| h.get_str("uuid").ok())
            .unwrap_or_default();
        self.grant_line(kind, fence, uuid, granted, start);
    }

    pub fn section(&self, kind: &str, fence: i64, start: i64, valid: bool, deadline: i64) {
        self.line(format!(
            "section kind={kind} w={} key={} fence={fence} start={start} end={} deadline={deadline} valid={}",
            self.name,
            self.cfg.key,
            mono_ns(),
            valid as u8
        ));
    }
}
