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
//! - [`MongoSemaphore`]: at most N holders of a key at once, each with a
//!   [`Permit`]; [`MongoRwLock`]: many readers ([`ReadGuard`]) or one
//!   writer ([`WriteGuard`]), writers not starved. Leases, fences,
//!   keep-alive and `lost()` as the lock's ([guide](guide::semaphore)).
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
//! # What else it does
//!
//! - **Long jobs**: [`LockerBuilder::keep_alive`] renews every acquisition
//!   every ttl/3 until it is released; [`LockGuard::lost`] says, once, when
//!   it is lost anyway.
//! - **Run-once jobs**: [`LockerBuilder::hold_at_least`] keeps a released
//!   lock unavailable until a minimum time after it was taken, in server
//!   time.
//! - **Fencing**: every acquisition and every term carries a fence token
//!   ([`LockGuard::fence`], [`Event::BecameMaster`]) greater than every
//!   earlier one on the key; a resource that refuses lower fences refuses a
//!   paused holder's late write.
//! - **Watching the election**: [`MongoElector::observe`] reports the
//!   master at each change; [`MongoElector::stats`] and
//!   [`MongoElector::healthy`] serve metrics and probes without I/O;
//!   [`MongoElector::step_down`] drains a node.
//!
//! # Timing
//!
//! - The lock's default ttl is 600 s, as in Python ([`limits::DEFAULT_TTL`]): a
//!   holder that crashes leaves its lock held that long (plus the takeover
//!   grace). Choose a shorter ttl, with keep-alive for long jobs.
//! - With the elector's defaults (ttl 15 s, takeover grace
//!   [`lease_margin`]`(ttl)` = 1 s, followers retry every 3 s), a master
//!   that dies or is cut off is replaced within **ttl + takeover grace +
//!   retry interval + one round trip** (about 19 s);
//! - a master that stops (`stop()`, drop) or steps down releases the lock:
//!   another node takes over within one retry interval (milliseconds on a
//!   replica set, where followers wake on a change stream);
//! - a master that cannot renew steps down on its own monotonic clock,
//!   before the server could grant the lock to anyone else.
//!
//! # Guide
//!
//! The [`guide`] pages hold the reference: [locking](guide::locking),
//! [election](guide::election), [semaphores and read-write
//! locks](guide::semaphore), [timing](guide::timing),
//! [guarantees](guide::guarantees) and how they are tested,
//! [security](guide::security), [performance](guide::performance), the
//! [lock document](guide::document), [threads](guide::threads), the
//! [code layout](guide::layout), [running the tests](guide::testing), the
//! [command line](guide::cli), and [coming from Python](guide::migration).
//!
//! # Command line
//!
//! With the cargo feature `cli` the package also builds a `mongoelector`
//! binary (`cargo install --path . --features cli`) for jobs that are not
//! Rust programs: `mongoelector lock KEY -- CMD` runs a command under the
//! lock, `mongoelector elect KEY -- CMD` only while elected, and `status`,
//! `list` and `release --force` look and intervene. It is built on this
//! crate's public API (listing uses [`live_locks`]); library users compile
//! none of its dependencies. `mongoelector --help` lists its exit codes; the [command line](guide::cli) page has
//! the everyday uses.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod elector;
mod error;
mod fenced;
mod foundation;
mod guard;
pub mod guide;
pub mod limits;
mod listing;
mod lock;
mod renamed;
mod rwlock;
mod semaphore;
#[cfg(feature = "testing")]
pub mod testing;

pub use elector::{
    default_retry_interval, ClusterDetail, ElectorBuilder, ElectorStats, Event, MasterReceiver,
    MongoElector, NodeStatus,
};
pub use error::{DatabaseError, Error, Result};
pub use fenced::{Fenced, FencedWrite};
pub use foundation::document::LockInfo;
pub use foundation::lease::lease_margin;
pub use foundation::loss::LossReason;
pub use listing::live_locks;
pub use lock::{LockGuard, LockStatus, LockerBuilder, MongoLocker};
#[allow(deprecated)]
pub use renamed::*;
pub use rwlock::{MongoRwLock, ReadGuard, RwLockBuilder, WriteGuard};
pub use semaphore::{MongoSemaphore, Permit, SemaphoreBuilder};

/// The README's examples, compiled as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
