//! [`Kind`]: which primitive a coordination document belongs to (its
//! `kind` field), so that a lock, a semaphore and a read-write lock given
//! the same key and collection refuse each other's documents instead of
//! reading them as free. Pure: the checks on a parsed document, and the
//! server-side condition the grant pipelines test.

use mongodb::bson::{doc, Bson, Document};

use crate::error::{Error, Result};
use crate::foundation::document::{Reader, UUID};
use crate::foundation::shares::document::{HOLDERS, INTENT, MODE, PERMITS};
use crate::foundation::single::document::LOCKED;

/// The field that names a document's kind ([`Kind::name`]).
pub(crate) const KIND: &str = "kind";

/// What a document written before `kind` existed, with fields of both
/// many-holder kinds' shape, is called in messages.
const ANY_SHARES: &str = "semaphore or rwlock";

/// Which primitive a coordination document belongs to. An elector's
/// document is a lock's (an election is a lock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Lock,
    Semaphore,
    RwLock,
}

impl Kind {
    /// The `kind` field's value.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Lock => "lock",
            Kind::Semaphore => "semaphore",
            Kind::RwLock => "rwlock",
        }
    }

    /// Refuses a document of another kind with [`Error::WrongKind`]. A
    /// document without `kind` (written by the Python package, or by an
    /// older version of this crate) is judged by its fields, as
    /// [`Kind::fits`] judges it in the server.
    pub fn check(self, doc: &Document, collection: &str) -> Result<()> {
        let r = Reader::new(doc, collection);
        let found = match doc.get(KIND) {
            Some(Bson::String(k)) => k.as_str(),
            Some(other) => return Err(r.wrong_type(KIND, "a string", other)),
            None => match legacy_kind(doc) {
                Some(k) => k,
                None => return Ok(()),
            },
        };
        let fits = found == self.name() || (found == ANY_SHARES && self != Kind::Lock);
        if fits {
            return Ok(());
        }
        Err(Error::WrongKind {
            key: r.id_text(),
            collection: collection.to_owned(),
            expected: self.name(),
            found: found.to_owned(),
        })
    }

    /// The same judgement as [`check`](Self::check), as a condition on
    /// `$$ROOT` inside an update pipeline: true when the document is this
    /// kind's or anyone's (a missing document reads as `{_id}`: anyone's).
    pub fn fits(self) -> Document {
        let missing = |f: &str| doc! { "$eq": [{ "$type": format!("${f}") }, "missing"] };
        let tagged =
            doc! { "$eq": [{ "$ifNull": [format!("${KIND}"), self.name()] }, self.name()] };
        let mut all = vec![Bson::Document(tagged)];
        let no = |fields: &[&str]| {
            fields
                .iter()
                .map(|f| Bson::Document(missing(f)))
                .collect::<Vec<_>>()
        };
        match self {
            Kind::Lock => all.extend(no(&[HOLDERS, PERMITS, INTENT])),
            Kind::Semaphore => {
                all.extend(no(&[LOCKED, UUID, INTENT]));
                // No read-write entry (one with a mode). A missing field
                // reached through a variable is "null" to `$type` on some
                // servers, "missing" on others: either is no mode.
                let moded = doc! { "$not": [{ "$in": [
                    { "$type": format!("$$h.{MODE}") }, ["missing", "null"],
                ]}]};
                all.push(Bson::Document(doc! { "$not": [{ "$anyElementTrue": [{ "$map": {
                    "input": { "$cond": [{ "$isArray": format!("${HOLDERS}") }, format!("${HOLDERS}"), []] },
                    "as": "h",
                    "in": moded,
                }}]}] }));
            }
            Kind::RwLock => all.extend(no(&[LOCKED, UUID, PERMITS])),
        }
        doc! { "$and": all }
    }
}

/// What a document without `kind` is, from its fields; `None` for one
/// with none of them (`{_id}` only), which anyone may take.
fn legacy_kind(doc: &Document) -> Option<&'static str> {
    if doc.contains_key(LOCKED) || doc.contains_key(UUID) {
        return Some(Kind::Lock.name());
    }
    if doc.contains_key(PERMITS) {
        return Some(Kind::Semaphore.name());
    }
    let moded = |h: &Bson| h.as_document().is_some_and(|d| d.contains_key(MODE));
    let rw =
        doc.contains_key(INTENT) || doc.get_array(HOLDERS).is_ok_and(|hs| hs.iter().any(moded));
    if rw {
        return Some(Kind::RwLock.name());
    }
    doc.contains_key(HOLDERS).then_some(ANY_SHARES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: Kind, d: Document) -> Option<String> {
        match kind.check(&d, "c") {
            Ok(()) => None,
            Err(Error::WrongKind {
                key,
                collection,
                expected,
                found,
            }) => {
                assert_eq!(
                    (key.as_str(), collection.as_str(), expected),
                    ("k", "c", kind.name())
                );
                Some(found)
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_tagged_document_is_its_kind_only() {
        for (tag, kind) in [
            ("lock", Kind::Lock),
            ("semaphore", Kind::Semaphore),
            ("rwlock", Kind::RwLock),
        ] {
            for other in [Kind::Lock, Kind::Semaphore, Kind::RwLock] {
                let got = found(other, doc! { "_id": "k", "kind": tag });
                if other == kind {
                    assert_eq!(got, None);
                } else {
                    assert_eq!(got.as_deref(), Some(tag));
                }
            }
        }
        assert!(matches!(
            Kind::Lock.check(&doc! { "_id": "k", "kind": 3 }, "c"),
            Err(Error::MalformedDocument { field: "kind", .. })
        ));
    }

    #[test]
    fn an_untagged_document_is_judged_by_its_fields() {
        let python = doc! { "_id": "k", "locked": true, "uuid": "u" };
        assert_eq!(found(Kind::Lock, python.clone()), None);
        assert_eq!(
            found(Kind::Semaphore, python.clone()).as_deref(),
            Some("lock")
        );
        assert_eq!(found(Kind::RwLock, python).as_deref(), Some("lock"));
        let sem = doc! { "_id": "k", "permits": 3, "holders": [] };
        assert_eq!(found(Kind::Semaphore, sem.clone()), None);
        assert_eq!(
            found(Kind::RwLock, sem.clone()).as_deref(),
            Some("semaphore")
        );
        assert_eq!(found(Kind::Lock, sem).as_deref(), Some("semaphore"));
        let rw = doc! { "_id": "k", "holders": [{ "uuid": "t", "mode": "read" }] };
        assert_eq!(found(Kind::RwLock, rw.clone()), None);
        assert_eq!(found(Kind::Semaphore, rw).as_deref(), Some("rwlock"));
        let either = doc! { "_id": "k", "holders": [] };
        assert_eq!(found(Kind::Semaphore, either.clone()), None);
        assert_eq!(found(Kind::RwLock, either.clone()), None);
        assert_eq!(found(Kind::Lock, either).as_deref(), Some(ANY_SHARES));
        for kind in [Kind::Lock, Kind::Semaphore, Kind::RwLock] {
            assert_eq!(
                found(kind, doc! { "_id": "k", "fence": 4 }),
                None,
                "anyone's"
            );
        }
    }

    #[test]
    fn the_server_side_condition_names_the_kind_and_the_other_fields() {
        let lock = Kind::Lock.fits();
        let all = lock.get_array("$and").unwrap();
        assert_eq!(
            all[0],
            Bson::Document(doc! { "$eq": [{ "$ifNull": ["$kind", "lock"] }, "lock"] })
        );
        assert_eq!(all.len(), 4, "the tag, and no holders, permits or intent");
        assert_eq!(Kind::Semaphore.fits().get_array("$and").unwrap().len(), 5);
        assert_eq!(Kind::RwLock.fits().get_array("$and").unwrap().len(), 4);
    }
}
