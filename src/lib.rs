//! Distributed locks and leader election backed by MongoDB, for blocking
//! (non-async) programs on plain threads.
//!
//! A Rust port of the Python package `mongoelector`, with what it lacks: an
//! expired lock is taken over at once (never after MongoDB's 60 s TTL sweep),
//! every expiry is written and compared in the server's clock, a holder knows
//! from its own monotonic clock when it must stop, and every acquisition
//! carries a fence token.
//!
//! - [`MongoLocker`]: a lock with Python `threading.Lock` semantics
//!   ([`acquire`](MongoLocker::acquire), [`release`](MongoLocker::release))
//!   and an RAII [`LockGuard`] ([`lock`](MongoLocker::lock),
//!   [`try_lock`](MongoLocker::try_lock), [`try_lock_for`](MongoLocker::try_lock_for)).
//! - [`Fenced`]: writes to your own documents that a holder with a lower
//!   fence, or whose lease has ended in server time, cannot land
//!   ([`LockGuard::fenced`], [`MongoElector::fenced`]).
//! - [`MongoElector`]: master election on a dedicated thread, reporting
//!   [`Event::BecameMaster`], [`Event::LostMaster`] and each poll over a
//!   crossbeam channel.
//!
//! The crate uses the `mongodb` driver's blocking `sync` API, which drives an
//! internal async runtime: do not call it from inside an async runtime's
//! worker thread.
//!
//! # Examples
//!
//! A lock:
//!
//! ```no_run
//! use mongoelector::MongoLocker;
//!
//! let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
//! let locker = MongoLocker::new("nightly-report", &client.database("app"))?;
//! if let Some(guard) = locker.try_lock()? {
//!     // Only one process in the cluster gets here at a time. Write through
//!     // the guard, so that the server refuses the write of a holder that
//!     // was too late (a newer fence, or the lease ended).
//!     let reports = client.database("app").collection::<mongodb::bson::Document>("reports");
//!     let written = guard
//!         .fenced(&reports)
//!         .upsert_one(mongodb::bson::doc! { "_id": "nightly" }, mongodb::bson::doc! { "$set": { "done": true } })?;
//!     println!("fence {}: {written:?}", guard.fence());
//! } // the guard is dropped: released
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! An election: one master at a time among every elector on the key.
//!
//! ```no_run
//! use mongoelector::{Event, MongoElector};
//!
//! let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
//! let elector = MongoElector::new("scheduler", &client.database("app"))?;
//! let events = elector.events();
//! elector.start(false)?; // polls on its own thread
//! for event in events.iter() {
//!     match event {
//!         Event::BecameMaster { fence, .. } => {
//!             while elector.is_master() {
//!                 // the master's work, passing `fence` to what it writes
//!                 # let _ = fence; break;
//!             }
//!         }
//!         Event::LostMaster { reason, .. } => eprintln!("stepped down: {reason:?}"),
//!         Event::PollFailed { error } => eprintln!("retrying: {error}"),
//!         _ => {}
//!     }
//!     # break;
//! }
//! elector.stop()?; // releases at once: another node takes over
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Timing
//!
//! With the elector's defaults (ttl 15 s, followers retry every 3 s):
//!
//! - a master that dies or is cut off is replaced within ttl + retry
//!   interval + one round trip (about 18 s);
//! - a master that stops (`stop()`, drop) releases the lock: another node
//!   takes over within one retry interval;
//! - a master that cannot renew steps down on its own monotonic clock,
//!   before the server could grant the lock to anyone else.
//!
//! The README's "Timing" and "Guarantees and how they are tested" sections
//! give the argument, the assumptions and the tests.
//!
//! # Running the tests
//!
//! The tests need a MongoDB-compatible server. `scripts/test.sh` installs a
//! throwaway one (SecantusDB, a Python test server, into `.secantus/`),
//! starts it on a free loopback port, runs `cargo test` against it as a
//! replica set and again as a standalone server, and stops it. With
//! `MONGODB_URI` set it runs `cargo test` once against that server instead;
//! `scripts/with-server.sh cargo test --test locker` runs one target against
//! a fresh server.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod deadlines;
mod document;
mod elector;
mod error;
mod expr;
mod fenced;
mod guard;
mod keepalive;
mod lease;
mod lock_core;
mod locker;
mod locker_builder;
mod loss;
mod moment;
mod owner;
mod preflight;
mod store;
mod tenure;
mod validate;
mod watch;
mod workers;

pub use clock::{CLOCK_CHECK_INTERVAL, CLOCK_TOLERANCE};
pub use document::LockInfo;
pub use elector::{
    default_retry_interval, ClusterDetail, ElectorBuilder, ElectorStats, Event, MongoElector,
    NodeStatus, DEFAULT_ELECTOR_TTL, DEFAULT_STATUS_COLLECTION, POLL_EVENT_BACKLOG, STOP_WAIT,
};
pub use error::{DatabaseError, Error, Result};
pub use fenced::{Fenced, FencedWrite, DEFAULT_FENCE_FIELD};
pub use guard::LockGuard;
pub use lease::lease_margin;
pub use locker::{LockStatus, MongoLocker};
pub use locker_builder::{LockerBuilder, DEFAULT_COLLECTION, DEFAULT_STEP, DEFAULT_TTL};
pub use loss::LossReason;
pub use validate::{MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_STEP, MAX_TTL, MIN_STEP, MIN_TTL};

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
