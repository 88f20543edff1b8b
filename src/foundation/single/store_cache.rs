//! What a lock store (`store.rs`) keeps built: its owner
//! sends the same updates at every attempt, touch and release, and
//! building them cost more than cloning them.

use std::time::Duration;

use mongodb::bson::Document;
use parking_lot::Mutex;

use crate::foundation::owner::Owner;

/// A value built from a key, kept until it is asked for with another key.
#[derive(Debug, Default)]
pub(crate) struct Memo<K, V>(Mutex<Option<(K, V)>>);

impl<K: PartialEq + Copy, V: Clone> Memo<K, V> {
    pub fn get(&self, key: K, build: impl FnOnce(K) -> V) -> V {
        let mut memo = self.0.lock();
        match memo.as_ref() {
            Some((k, v)) if *k == key => v.clone(),
            _ => {
                let v = build(key);
                *memo = Some((key, v.clone()));
                v
            }
        }
    }
}

/// An acquire pipeline (without a run) and the arguments it was built from.
#[derive(Debug)]
pub(crate) struct CachedAcquire {
    pub owner: Owner,
    pub ttl: Duration,
    pub force: bool,
    pub pipeline: Vec<Document>,
}

impl CachedAcquire {
    pub fn built_from(&self, owner: &Owner, ttl: Duration, force: bool) -> bool {
        self.ttl == ttl
            && self.force == force
            && self.owner.uuid == owner.uuid
            && self.owner.pid == owner.pid
            && self.owner.host == owner.host
            && self.owner.metadata == owner.metadata
    }
}
