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
//! - [`MongoElector`]: master election on a dedicated thread, reporting
//!   [`Event::BecameMaster`], [`Event::LostMaster`] and each poll over a
//!   crossbeam channel.
//!
//! The crate uses the `mongodb` driver's blocking `sync` API, which drives an
//! internal async runtime: do not call it from inside an async runtime's
//! worker thread.
//!
//! # Example
//!
//! ```no_run
//! use mongoelector::MongoLocker;
//!
//! let client = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?;
//! let locker = MongoLocker::new("nightly-report", &client.database("app"))?;
//! if let Some(guard) = locker.try_lock()? {
//!     // Only one process in the cluster gets here at a time. Give the fence
//!     // to whatever you write, so it can refuse a holder that was too late.
//!     println!("writing the report with fence {}", guard.fence());
//! } // the guard is dropped: released
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod deadlines;
mod document;
mod elector;
mod error;
mod expr;
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

pub use clock::{CLOCK_CHECK_INTERVAL, CLOCK_TOLERANCE};
pub use document::LockInfo;
pub use elector::{
    default_retry_interval, ClusterDetail, ElectorBuilder, Event, MongoElector, NodeStatus,
    DEFAULT_ELECTOR_TTL, DEFAULT_STATUS_COLLECTION, POLL_EVENT_BACKLOG, STOP_WAIT,
};
pub use error::{Error, Result};
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
