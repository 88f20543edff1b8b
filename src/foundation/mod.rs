//! The foundation every primitive (the lock, the elector, the semaphore,
//! the read-write lock, fenced writes) is built on, and none reaches
//! around: server-time leases and fences, the database calls, the change
//! stream, the deadline and keep-alive threads, the blocking wait, and the
//! guard's internals.
//!
//! - Leases in the holder's clock: [`lease`], [`moment`], [`tenure`],
//!   [`grants`] (an answer starts or moves a tenure), [`loss`], [`clock`]
//!   (the clock check).
//! - Documents and the server's expressions: [`document`], [`expr`],
//!   [`owner`], [`validate`].
//! - One round trip per operation: [`single`] (one holder per document:
//!   its document, pipelines, store and core), [`shares`] (many holders
//!   per document, the same rooms), [`round_trips`] (the calls and
//!   collection settings every family uses), [`preflight`] (first-use
//!   checks), [`deployment`] (what is shared per deployment).
//! - Threads and waiting: [`deadlines`], [`keepalive`], [`workers`],
//!   [`watch`] (change-stream wake-ups), [`handover`] (a lock handed over
//!   inside the process), [`waiting`] (the blocking acquire loop),
//!   [`holding`] (what every guard does).

pub(crate) mod clock;
pub(crate) mod deadlines;
pub(crate) mod deployment;
pub(crate) mod document;
pub(crate) mod expr;
pub(crate) mod grants;
pub(crate) mod handover;
pub(crate) mod holding;
pub(crate) mod keepalive;
pub(crate) mod kind;
pub(crate) mod lease;
pub(crate) mod loss;
pub(crate) mod meter;
pub(crate) mod moment;
pub(crate) mod options;
pub(crate) mod owner;
pub(crate) mod preflight;
pub(crate) mod round_trips;
pub(crate) mod shares;
pub(crate) mod single;
pub(crate) mod tenure;
pub(crate) mod validate;
pub(crate) mod waiting;
pub(crate) mod watch;
pub(crate) mod workers;
