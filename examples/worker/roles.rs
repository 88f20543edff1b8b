//! The worker's loops: a semaphore's, a reader's or a writer's, a lock
//! holder's, an elector's.

use std::time::Duration;

use mongoelector::{Error, Event, Fenced, MongoElector, MongoLocker};

use crate::clock::{instant_ns, mono_ns};
use crate::log::Worker;
use crate::{Share, Shared};

impl Worker {
    /// Takes a permit, a read guard or a write guard (up to 500 ms).
    fn take(&self) -> Result<Option<Box<dyn Share>>, Error> {
        let wait = Duration::from_millis(500);
        Ok(match (&self.shared, self.cfg.mode.as_str()) {
            (Shared::Semaphore(s), _) => s.try_acquire_for(wait)?.map(|p| Box::new(p) as _),
            (Shared::RwLock(l), "read") => l.try_read_for(wait)?.map(|g| Box::new(g) as _),
            (Shared::RwLock(l), _) => l.try_write_for(wait)?.map(|g| Box::new(g) as _),
            (Shared::None, _) => None,
        })
    }

    /// The semaphore, reader and writer loop: take, hold for `--acts`
    /// steps (a writer's are fenced writes), release.
    pub fn sharer(&self) {
        let (kind, collection) = match (&self.shared, self.cfg.mode.as_str()) {
            (Shared::Semaphore(s), _) => ("permit", s.collection().to_owned()),
            (Shared::RwLock(l), "read") => ("read", l.collection().to_owned()),
            (Shared::RwLock(l), _) => ("write", l.collection().to_owned()),
            (Shared::None, _) => return,
        };
        while !self.stopping() {
            let asked = mono_ns();
            let held = match self.take() {
                Ok(Some(h)) => h,
                Ok(None) => continue,
                Err(e) => {
                    self.error(&e);
                    std::thread::sleep(self.cfg.retry);
                    continue;
                }
            };
            let (start, fence) = (mono_ns(), held.fence());
            let lost = held.lost();
            self.share_grant(kind, &collection, fence, start);
            // The writer's lease as granted (no keep-alive in the soak).
            let fenced = Fenced::new(&self.resource, fence).until(held.expires_at());
            let check = || {
                self.check(
                    kind,
                    fence,
                    Some(&lost),
                    || held.deadline(),
                    || held.is_valid(),
                )
            };
            for i in 0..self.cfg.acts {
                let (checked, valid, deadline) = check();
                if !valid || self.stopping() {
                    break;
                }
                if kind == "write" {
                    self.fenced_write(&fenced, checked, true, deadline, false);
                }
                if i + 1 < self.cfg.acts {
                    std::thread::sleep(self.cfg.hold);
                }
            }
            let (_, valid, deadline) = check();
            let expires = held.expires_at().timestamp_millis();
            // The holder stops acting here, before the release is sent:
            // another may be granted the share before the answer is back.
            let end = mono_ns();
            self.line(format!(
                "section kind={kind} w={} key={} fence={fence} start={start} end={end} deadline={deadline} valid={} permits={} expires={expires} asked={asked}",
                self.name,
                self.cfg.key,
                valid as u8,
                if kind == "permit" { self.cfg.permits } else { 0 },
            ));
            self.release(fence, || held.release());
            std::thread::sleep(self.cfg.retry); // let the others in
        }
    }

    pub fn locker(&self) {
        let mut builder = MongoLocker::builder(&self.cfg.key, &self.db)
            .ttl(self.cfg.ttl)
            .step(self.cfg.retry)
            .timeparanoid(self.cfg.timeparanoid)
            .python_compatible(self.cfg.python_compatible)
            .keep_alive(self.cfg.keep_alive)
            .fair(self.cfg.fair);
        if let Some(grace) = self.cfg.grace {
            builder = builder.takeover_grace(grace);
        }
        if let Some(name) = &self.cfg.collection {
            builder = builder.collection(name);
        }
        let locker = match builder.build() {
            Ok(l) => l,
            Err(e) => return self.error(&e),
        };
        while !self.stopping() {
            let guard = match locker.try_lock_for(Duration::from_millis(500)) {
                Ok(Some(g)) => g,
                Ok(None) => continue,
                Err(e) => {
                    self.error(&e);
                    std::thread::sleep(self.cfg.retry);
                    continue;
                }
            };
            let (start, fence) = (mono_ns(), guard.fence());
            let lost = guard.lost();
            self.grant("lock", locker.collection(), locker.uuid(), fence, start);
            let fenced = guard.fenced(&self.resource);
            // The same fence and expiry, not tied to the guard: as a write
            // already on its way when the lease ended, only the server can
            // refuse it (the guard's handle refuses at once, locally).
            let detached = || Fenced::new(&self.resource, fence).until(guard.expires_at());
            let check = || {
                self.check(
                    "lock",
                    fence,
                    Some(&lost),
                    || guard.deadline(),
                    || guard.is_valid(),
                )
            };
            for i in 0..self.cfg.acts {
                if self.stopping() {
                    break;
                }
                if self.cfg.check {
                    let (checked, valid, deadline) = check();
                    if !valid {
                        break;
                    }
                    self.fenced_write(&fenced, checked, true, deadline, false);
                } else {
                    // Blind: as one paused between its check and its write.
                    let deadline = instant_ns(guard.deadline());
                    self.fenced_write(&detached(), mono_ns(), false, deadline, false);
                }
                if i + 1 < self.cfg.acts {
                    std::thread::sleep(self.cfg.hold);
                }
            }
            let (_, valid, deadline) = check();
            self.section("lock", fence, start, valid, deadline);
            if !valid {
                self.fenced_write(&detached(), mono_ns(), false, deadline, true);
            }
            self.release(fence, || guard.release());
            std::thread::sleep(self.cfg.retry); // let the others in
        }
    }

    pub fn elector(&self) {
        let mut builder = MongoElector::builder(&self.cfg.key, &self.db)
            .ttl(self.cfg.ttl)
            .retry_interval(self.cfg.retry)
            .timeparanoid(self.cfg.timeparanoid)
            .python_compatible(self.cfg.python_compatible);
        if let Some(grace) = self.cfg.grace {
            builder = builder.takeover_grace(grace);
        }
        if let Some(name) = &self.cfg.collection {
            builder = builder.collection(name);
        }
        // The lock collection the builder picks (`ElectorBuilder::collection`).
        let collection = match (&self.cfg.collection, self.cfg.python_compatible) {
            (Some(name), _) => name.as_str(),
            (None, true) => mongoelector::limits::PYTHON_ELECTOR_COLLECTION,
            (None, false) => mongoelector::limits::DEFAULT_LOCK_COLLECTION,
        };
        let elector = match builder.app_version(&self.name).build() {
            Ok(e) => e,
            Err(e) => return self.error(&e),
        };
        let events = elector.events();
        if let Err(e) = elector.start(false) {
            return self.error(&e);
        }
        let mut last_fence = None;
        while !self.stopping() {
            let (fence, expires) = match events.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::BecameMaster { fence, expires }) => (fence, expires),
                Ok(Event::PollFailed { error }) => {
                    self.error(&error);
                    continue;
                }
                _ => continue,
            };
            let start = mono_ns();
            last_fence = Some(fence);
            self.grant("master", collection, elector.uuid(), fence, start);
            // The term's fenced writes; a term already over (its probe
            // write) under its fence and the expiry it was granted.
            let fenced = elector
                .fenced(&self.resource)
                .ok()
                .filter(|f| f.fence() == fence)
                .unwrap_or_else(|| Fenced::new(&self.resource, fence).until(expires));
            // Whether this event's term is still the elector's: an event
            // read late (the worker paused with events queued) names a term
            // that is over, and the lease deadline then is a newer term's.
            // Checked after reading the deadline: fences only grow.
            let current = || {
                elector
                    .fenced(&self.resource)
                    .is_ok_and(|f| f.fence() == fence)
            };
            // A check of this term: its deadline only while it is current
            // (read before `current()`: fences only grow), the last one
            // known otherwise (-1: never current, it never acted).
            let mut known = -1;
            let mut check = || {
                let at = mono_ns();
                let deadline = elector.lease_deadline().map(instant_ns);
                let cur = current();
                let valid = cur && elector.is_master();
                if cur {
                    known = deadline.unwrap_or(known);
                }
                let deadline = if cur { deadline.unwrap_or(-1) } else { known };
                self.check_line("master", fence, at, deadline, valid);
                (at, valid, known)
            };
            let mut acts = 0;
            let (valid, deadline) = loop {
                let (checked, valid, deadline) = check();
                if !valid || self.stopping() {
                    break (valid, deadline);
                }
                self.fenced_write(&fenced, checked, true, deadline, false);
                acts += 1;
                if self.cfg.acts > 0 && acts >= self.cfg.acts {
                    // End the term on purpose, so terms change hands.
                    let (_, valid, deadline) = check();
                    break (valid, deadline);
                }
                std::thread::sleep(self.cfg.hold);
            };
            self.section("master", fence, start, valid, deadline);
            if valid {
                self.release(fence, || elector.release());
                std::thread::sleep(self.cfg.retry * 2); // let another win
            } else {
                self.fenced_write(&fenced, mono_ns(), false, deadline, true);
            }
        }
        // Stopping releases what this run holds: its last term, if any.
        let stop = || elector.stop();
        match last_fence {
            Some(fence) => self.release(fence, stop),
            None => {
                if let Err(e) = stop() {
                    self.error(&e);
                }
            }
        }
    }
}
