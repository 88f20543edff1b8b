//! The many-holder document (one per key) and how it is read back:
//!
//! `{_id: key, permits: N (semaphores), fence: <last fence granted>,
//! holders: [{uuid, fence, host, pid, ts_created, ts_expire, metadata,
//! mode (read-write locks)}], intent: {uuid, ts_expire} | null (read-write
//! locks), ts_released}`.
//!
//! Each holder entry is one grant: its `uuid` is a token of that grant
//! (not of the process), and its `fence` comes from the document's counter.

use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document};

use crate::error::{Error, Result};
use crate::foundation::document::LockInfo;
use crate::foundation::document::{
    Reader, FENCE, HOST, ID, METADATA, PID, TS_CREATED, TS_EXPIRE, UUID,
};

/// The grants, one entry each.
pub(crate) const HOLDERS: &str = "holders";
/// A semaphore's count of permits, set by the first grant on the key.
pub(crate) const PERMITS: &str = "permits";
/// A read-write lock entry's mode: [`READ`] or [`WRITE`].
pub(crate) const MODE: &str = "mode";
pub(crate) const READ: &str = "read";
pub(crate) const WRITE: &str = "write";
/// A read-write lock's waiting writer: `{uuid, ts_expire}` or null.
pub(crate) const INTENT: &str = "intent";
/// The token of the grant attempt that last added or renewed an entry.
pub(crate) const ATTEMPT: &str = "attempt";

/// One holder entry as stored.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub uuid: String,
    pub fence: i64,
    pub host: String,
    pub pid: u32,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub metadata: Option<Document>,
    /// `Some(true)` for a writer, `Some(false)` for a reader, `None` for a
    /// semaphore permit.
    pub write: Option<bool>,
    /// The attempt that last added or renewed it (`None`: written by an
    /// older version of this crate).
    pub attempt: Option<String>,
}

impl Entry {
    /// As the public [`LockInfo`] of `key`.
    pub fn info(&self, key: &str) -> LockInfo {
        LockInfo {
            key: key.to_owned(),
            uuid: self.uuid.clone(),
            host: self.host.clone(),
            pid: self.pid,
            created: self.created,
            expires: self.expires,
            fence: self.fence,
            metadata: self.metadata.clone(),
        }
    }

    /// Still counted as a holder at server time `now`: the takeover grace
    /// has not passed since its expiry (what a grant sees).
    pub fn counts_at(&self, now: DateTime<Utc>, grace: chrono::TimeDelta) -> bool {
        // An expiry so far ahead that adding the grace leaves chrono's
        // range (a damaged or hostile document) counts, as the server's
        // millisecond arithmetic counts it.
        self.expires
            .checked_add_signed(grace)
            .is_none_or(|until| until > now)
    }
}

/// A waiting writer's registration.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Intent {
    pub uuid: String,
    pub expires: DateTime<Utc>,
}

/// A many-holder document, parsed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shares {
    pub key: String,
    pub permits: Option<u32>,
    pub fence: i64,
    pub holders: Vec<Entry>,
    pub intent: Option<Intent>,
}

impl Shares {
    /// The entry of grant `token`, if any, whatever its state.
    pub fn entry(&self, token: &str) -> Option<&Entry> {
        self.holders.iter().find(|e| e.uuid == token)
    }

    /// The entry of grant `token` if `attempt` added or renewed it: only
    /// then is it a lease that starts with that attempt. (A refused attempt
    /// returns the stored entries unchanged, an earlier attempt's entry of
    /// the same grant included, dead or not.)
    pub fn granted(&self, token: &str, attempt: &str) -> Option<&Entry> {
        self.entry(token)
            .filter(|e| e.attempt.as_deref() == Some(attempt))
    }

    /// The holders whose lease has not expired at server time `now`.
    pub fn live_at(&self, now: DateTime<Utc>) -> impl Iterator<Item = &Entry> {
        self.holders.iter().filter(move |e| e.expires > now)
    }

    /// Fails with [`Error::PermitsMismatch`] when the document keeps
    /// another count than `ours`.
    pub fn check_permits(&self, ours: u32) -> Result<()> {
        match self.permits {
            Some(theirs) if theirs != ours => Err(Error::PermitsMismatch {
                key: self.key.clone(),
                ours,
                theirs,
            }),
            _ => Ok(()),
        }
    }

    /// The earliest server expiry among the holders: after it (plus the
    /// grace) a waiter's next attempt may get through.
    pub fn first_expiry(&self) -> Option<DateTime<Utc>> {
        self.holders.iter().map(|e| e.expires).min()
    }
}

/// Parses a many-holder document; every field present must have its type.
pub(crate) fn parse_shares(doc: &Document, collection: &str) -> Result<Shares> {
    let r = Reader::new(doc, collection);
    let key = r.string(ID)?;
    let fence = r.opt_int(FENCE)?.unwrap_or(0);
    if fence < 0 {
        return Err(r.malformed(FENCE, format!("is negative: {fence}")));
    }
    let permits = match r.opt_int(PERMITS)? {
        None => None,
        Some(n) => Some(
            u32::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| r.malformed(PERMITS, format!("is out of range: {n}")))?,
        ),
    };
    let holders = match doc.get(HOLDERS) {
        None | Some(Bson::Null) => Vec::new(),
        Some(Bson::Array(items)) => items
            .iter()
            .map(|item| match item {
                Bson::Document(d) => parse_entry(d, &r),
                _ => Err(r.malformed(HOLDERS, "should hold documents only")),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(r.malformed(
                HOLDERS,
                format!("should be an array, found {:?}", other.element_type()),
            ))
        }
    };
    let intent = match r.opt_document(INTENT)? {
        None => None,
        Some(d) => {
            let i = Reader::new(&d, collection);
            let bad = |e: Error| match e {
                Error::MalformedDocument { reason, field, .. } => {
                    r.malformed(INTENT, format!("`{field}` {reason}"))
                }
                other => other,
            };
            Some(Intent {
                uuid: i.string(UUID).map_err(bad)?,
                expires: i.date(TS_EXPIRE).map_err(bad)?,
            })
        }
    };
    Ok(Shares {
        key,
        permits,
        fence,
        holders,
        intent,
    })
}

/// One holder entry; a field error names `holders` and the inner field.
fn parse_entry(d: &Document, outer: &Reader<'_>) -> Result<Entry> {
    let r = Reader::new(d, "");
    let bad = |e: Error| match e {
        Error::MalformedDocument { reason, field, .. } => {
            outer.malformed(HOLDERS, format!("entry field `{field}` {reason}"))
        }
        other => other,
    };
    let write = match d.get(MODE) {
        None | Some(Bson::Null) => None,
        Some(Bson::String(m)) if m == READ => Some(false),
        Some(Bson::String(m)) if m == WRITE => Some(true),
        Some(other) => {
            return Err(outer.malformed(HOLDERS, format!("entry field `mode` is {other}")))
        }
    };
    Ok(Entry {
        uuid: r.string(UUID).map_err(bad)?,
        fence: r.int(FENCE).map_err(bad)?,
        host: r.string(HOST).map_err(bad)?,
        pid: r.pid(PID).map_err(bad)?,
        created: r.date(TS_CREATED).map_err(bad)?,
        expires: r.date(TS_EXPIRE).map_err(bad)?,
        metadata: r.opt_document(METADATA).map_err(bad)?,
        write,
        attempt: r.opt_string(ATTEMPT).map_err(bad)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{doc, DateTime as BsonDate};

    fn entry(uuid: &str, fence: i64, expires_ms: i64, mode: Option<&str>) -> Document {
        let mut d = doc! {
            "uuid": uuid, "fence": fence, "host": "h", "pid": 7_i32,
            "ts_created": BsonDate::from_millis(1_000),
            "ts_expire": BsonDate::from_millis(expires_ms),
            "metadata": Bson::Null,
        };
        if let Some(m) = mode {
            d.insert("mode", m);
        }
        d
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn reads_holders_permits_and_intent() {
        let d = doc! {
            "_id": "k", "permits": 3_i32, "fence": 9_i64,
            "holders": [entry("a", 8, 5_000, None), entry("b", 9, 2_000, Some("write"))],
            "intent": { "uuid": "w", "ts_expire": BsonDate::from_millis(4_000) },
        };
        let s = parse_shares(&d, "c").unwrap();
        assert_eq!((s.permits, s.fence, s.holders.len()), (Some(3), 9, 2));
        assert_eq!(s.entry("b").unwrap().write, Some(true));
        assert_eq!(s.entry("a").unwrap().write, None);
        assert_eq!(s.intent.as_ref().unwrap().uuid, "w");
        assert_eq!(s.first_expiry(), Some(at(2_000)));
        let live: Vec<_> = s.live_at(at(3_000)).map(|e| e.uuid.as_str()).collect();
        assert_eq!(live, ["a"]);
        let info = s.entry("a").unwrap().info("k");
        assert_eq!((info.key.as_str(), info.fence, info.pid), ("k", 8, 7));
        assert!(s
            .entry("b")
            .unwrap()
            .counts_at(at(2_100), chrono::TimeDelta::milliseconds(200)));
        assert!(!s
            .entry("b")
            .unwrap()
            .counts_at(at(2_200), chrono::TimeDelta::milliseconds(200)));
    }

    #[test]
    fn an_expiry_at_the_end_of_chronos_range_counts_without_overflowing() {
        let mut e = entry("a", 1, 0, None);
        e.insert(
            "ts_expire",
            BsonDate::from_millis(DateTime::<Utc>::MAX_UTC.timestamp_millis()),
        );
        let s = parse_shares(&doc! { "_id": "k", "holders": [e] }, "c").unwrap();
        let grace = chrono::TimeDelta::seconds(1);
        assert!(s.holders[0].counts_at(Utc::now(), grace));
        assert!(s.holders[0].counts_at(DateTime::<Utc>::MAX_UTC, grace));
    }

    #[test]
    fn a_new_document_is_empty() {
        let s = parse_shares(&doc! { "_id": "k" }, "c").unwrap();
        assert_eq!((s.permits, s.fence, s.holders.len()), (None, 0, 0));
        assert!(s.intent.is_none() && s.check_permits(4).is_ok());
    }

    #[test]
    fn another_count_is_a_typed_error_naming_both() {
        let s = parse_shares(&doc! { "_id": "k", "permits": 3_i64 }, "c").unwrap();
        assert!(s.check_permits(3).is_ok());
        match s.check_permits(5) {
            Err(Error::PermitsMismatch { key, ours, theirs }) => {
                assert_eq!((key.as_str(), ours, theirs), ("k", 5, 3))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damage_names_the_field() {
        let field = |d: Document| match parse_shares(&d, "c") {
            Err(Error::MalformedDocument { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(doc! { "_id": "k", "holders": 3 }), "holders");
        assert_eq!(field(doc! { "_id": "k", "holders": [1] }), "holders");
        let mut e = entry("a", 1, 1, None);
        e.insert("ts_expire", "x");
        assert_eq!(field(doc! { "_id": "k", "holders": [e] }), "holders");
        assert_eq!(
            field(doc! { "_id": "k", "holders": [entry("a", 1, 1, Some("x"))] }),
            "holders"
        );
        assert_eq!(field(doc! { "_id": "k", "permits": 0 }), "permits");
        assert_eq!(field(doc! { "_id": "k", "permits": -2_i64 }), "permits");
        assert_eq!(field(doc! { "_id": "k", "fence": -2_i64 }), "fence");
        assert_eq!(
            field(doc! { "_id": "k", "intent": { "uuid": 1 } }),
            "intent"
        );
    }
}
