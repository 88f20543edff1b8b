//! Which deployment a `Database` handle talks to, told apart without a
//! round trip, so that what the process does once per deployment and
//! collection (the first-use checks, the change stream) is shared by every
//! locker and elector made from that handle, and never by two deployments.
//!
//! The sync driver exposes no identity of a client. What it does give is
//! [`Database::name`], a `&str` borrowed from the database's inner value,
//! which the handle's clones share (the driver keeps it behind an `Arc`).
//! So the address of that string is the handle's identity: two live
//! handles with the same address are clones of one, hence one client and
//! one deployment. Each [`Deployment`] keeps a clone of its handle, which
//! keeps that address in use for as long as the `Deployment` is registered
//! under it: no other handle can get it meanwhile. Should a driver ever
//! store the name in the handle itself, every handle would get a
//! `Deployment` of its own: nothing shared, but nothing wrongly shared
//! either.
//!
//! Handles made by separate `client.database(..)` calls are told apart,
//! even on one client: make the lockers and electors of a process from one
//! handle (or clones of it) to share.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use mongodb::sync::Database;
use parking_lot::Mutex;

/// One database handle (and its clones), standing for its deployment.
#[derive(Debug)]
pub(crate) struct Deployment {
    /// A clone of the handle: keeps [`address`] in use while registered.
    db: Database,
    /// Collections whose first-use checks passed.
    checked: Mutex<HashSet<String>>,
    /// When each collection's change stream was last opened (or an open
    /// was booked), whichever hub and thread opened it.
    stream_opens: Mutex<HashMap<String, Instant>>,
}

type Registry = Mutex<HashMap<usize, Weak<Deployment>>>;

fn registry() -> &'static Registry {
    static DEPLOYMENTS: OnceLock<Registry> = OnceLock::new();
    DEPLOYMENTS.get_or_init(Default::default)
}

/// The address of the handle's shared name, if it has one (an empty name
/// has no allocation, so no identity).
fn address(db: &Database) -> Option<usize> {
    let name = db.name();
    (!name.is_empty()).then_some(name.as_ptr() as usize)
}

impl Deployment {
    /// The deployment of `db`: the one already registered for `db` or a
    /// clone of it, else a new one.
    pub fn of(db: &Database) -> Arc<Deployment> {
        let mut known = registry().lock();
        if let Some(found) = address(db)
            .and_then(|at| known.get(&at))
            .and_then(Weak::upgrade)
        {
            return found;
        }
        known.retain(|_, d| d.strong_count() > 0);
        let new = Arc::new(Deployment {
            db: db.clone(),
            checked: Mutex::new(HashSet::new()),
            stream_opens: Mutex::new(HashMap::new()),
        });
        // Registered under its own clone's address, which it keeps in use.
        if let Some(at) = address(&new.db) {
            known.insert(at, Arc::downgrade(&new));
        }
        new
    }

    /// A number no other live `Deployment` has.
    pub fn id(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// The database handle.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Whether `collection`'s first-use checks passed.
    pub fn checked(&self, collection: &str) -> bool {
        self.checked.lock().contains(collection)
    }

    /// Records that `collection`'s first-use checks passed.
    pub fn mark_checked(&self, collection: &str) {
        self.checked.lock().insert(collection.to_owned());
    }

    /// When `collection`'s change stream may next be opened: `spacing`
    /// after its last open ([`record_stream_open`](Self::record_stream_open)),
    /// whichever hub and thread made it, or now. Kept here, not in a hub, so
    /// that the spacing holds however hubs and their threads come and go.
    pub fn next_stream_open(&self, collection: &str, spacing: Duration) -> Instant {
        let now = Instant::now();
        self.stream_opens
            .lock()
            .get(collection)
            .map_or(now, |last| now.max(*last + spacing))
    }

    /// Records that `collection`'s change stream is being opened now.
    pub fn record_stream_open(&self, collection: &str) {
        self.stream_opens
            .lock()
            .insert(collection.to_owned(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::sync::Client;

    #[test]
    fn clones_of_a_handle_share_a_deployment_other_handles_do_not() {
        // Clients connect lazily: no server needed.
        let client = Client::with_uri_str("mongodb://127.0.0.1:1/").unwrap();
        let db = client.database("app");
        let one = Deployment::of(&db);
        assert!(Arc::ptr_eq(&one, &Deployment::of(&db.clone())));
        assert!(Arc::ptr_eq(&one, &Deployment::of(one.database())));
        let elsewhere = Client::with_uri_str("mongodb://127.0.0.1:2/")
            .unwrap()
            .database("app");
        assert!(!Arc::ptr_eq(&one, &Deployment::of(&elsewhere)));
        // Another handle of the same client is told apart: nothing shared,
        // nothing wrongly shared.
        assert!(!Arc::ptr_eq(&one, &Deployment::of(&client.database("app"))));
        one.mark_checked("locks");
        assert!(Deployment::of(&db).checked("locks"));
        assert!(!one.checked("other"));
        // Stream opens are spaced, per collection.
        let spacing = Duration::from_secs(1);
        assert!(one.next_stream_open("locks", spacing) <= Instant::now());
        one.record_stream_open("locks");
        assert!(one.next_stream_open("locks", spacing) > Instant::now());
        assert!(one.next_stream_open("other", spacing) <= Instant::now());
        // Gone with its last holder: a new one starts unchecked.
        drop(one);
        assert!(!Deployment::of(&db).checked("locks"));
    }
}
