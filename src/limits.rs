//! The crate's defaults and limits in one place: lease lengths and retry
//! steps, what a document may hold, the clock check, and the default
//! collection and field names.
//!
//! ```
//! use mongoelector::limits;
//!
//! assert_eq!(limits::DEFAULT_TTL, std::time::Duration::from_secs(600)); // as in Python
//! assert_eq!(limits::DEFAULT_LOCK_COLLECTION, "mongolocker");
//! ```

use std::time::Duration;

// Leases and waits.

/// Default lease length of the lock, the semaphore and the read-write lock,
/// as in the Python package.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// Shortest lease accepted: below this the margin and a round trip eat it.
pub const MIN_TTL: Duration = Duration::from_millis(100);

/// Longest lease accepted (one year): anything longer is a mistake.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long a fair waiter's place in a lock's queue lasts without a
/// refresh (it refreshes every third of it while it waits). A waiter that
/// crashed or froze is skipped once it passes; a lock handed over to a
/// head that is gone is taken by the next waiter after it plus the
/// takeover grace: a dead head delays the queue by at most that. See
/// [`LockerBuilder::fair`](crate::LockerBuilder::fair).
pub const DEFAULT_WAITER_LEASE: Duration = Duration::from_millis(1500);

/// Most waiters in one lock's queue: each entry (up to 16 KiB with its
/// metadata) lives in the lock's document, which the server caps at
/// 16 MiB. A waiter that finds the queue full waits without a place: it
/// is granted once the queue is empty.
pub const MAX_WAITERS: usize = 512;

/// Default interval between attempts of a blocking acquire, as in the
/// Python package.
pub const DEFAULT_STEP: Duration = Duration::from_millis(250);

/// Shortest retry interval accepted: a shorter one is a busy loop.
pub const MIN_STEP: Duration = Duration::from_millis(1);

/// Longest retry interval accepted (one hour).
pub const MAX_STEP: Duration = Duration::from_secs(3600);

/// Default lease length of the election lock, as in the Python package.
pub const DEFAULT_ELECTOR_TTL: Duration = Duration::from_secs(15);

/// How long `stop()` waits for the elector thread's last calls (the
/// release and the final status report) before it returns anyway.
pub const STOP_WAIT: Duration = Duration::from_secs(1);

/// How many poll reports ([`Event::Polled`](crate::Event::Polled), [`Event::PollFailed`](crate::Event::PollFailed)) may wait
/// unread in one receiver; more are dropped and counted in the next
/// `Polled`'s `missed`. Transitions are never dropped.
pub const POLL_EVENT_BACKLOG: usize = 64;

// What a document may hold.

/// Largest lock metadata accepted, as encoded BSON (16 KiB): the lock
/// document is read by every contender on every attempt, so it stays small
/// (MongoDB's own limit is 16 MiB for the whole document).
///
/// ```no_run
/// use mongodb::bson::doc;
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let too_big = doc! { "blob": "x".repeat(mongoelector::limits::MAX_METADATA_BYTES) };
/// let built = mongoelector::MongoLocker::builder("jobs", &db).metadata(too_big).build();
/// assert!(matches!(
///     built,
///     Err(mongoelector::Error::InvalidArgument { parameter: "metadata", .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_METADATA_BYTES: usize = 16 * 1024;

/// Deepest nesting of documents and arrays accepted in lock metadata
/// (the metadata document itself is level 1).
///
/// ```
/// assert_eq!(mongoelector::limits::MAX_METADATA_DEPTH, 20);
/// ```
pub const MAX_METADATA_DEPTH: usize = 20;

/// Most holders one semaphore or read-write lock document keeps at once:
/// a semaphore's largest count of permits, and the most readers of a
/// read-write lock (one more waits, or `try_read` answers `None`, as for a
/// full semaphore). Each entry takes at most [`MAX_METADATA_BYTES`] plus
/// about 300 bytes, so a full document stays under 9 MiB, well inside
/// MongoDB's 16 MiB limit (about 1,000 entries with the largest metadata
/// would pass it, and the server would refuse every grant on the key).
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let too_many = mongoelector::MongoSemaphore::builder("jobs", &db, mongoelector::limits::MAX_HOLDERS + 1).build();
/// assert!(matches!(
///     too_many,
///     Err(mongoelector::Error::InvalidArgument { parameter: "permits", .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MAX_HOLDERS: u32 = 512;

// The clock check.

/// Largest accepted offset between the local and the server clock, beyond
/// half the round trip of the check.
pub const CLOCK_TOLERANCE: Duration = Duration::from_millis(500);

/// How long a successful check is trusted before the next acquire repeats it.
pub const CLOCK_CHECK_INTERVAL: Duration = Duration::from_secs(600);

// Collections and fields.

/// Default collection of lock (and election) documents, as in the Python
/// package.
pub const DEFAULT_LOCK_COLLECTION: &str = "mongolocker";

/// Default collection of semaphore documents.
pub const DEFAULT_SEMAPHORE_COLLECTION: &str = "mongosemaphore";

/// Default collection of read-write lock documents.
pub const DEFAULT_RWLOCK_COLLECTION: &str = "mongorwlock";

/// The lock collection of the Python package's elector
/// (`MongoLeaderElector` 1.x): the default lock collection of an elector
/// built with [`ElectorBuilder::python_compatible`](crate::ElectorBuilder::python_compatible).
pub const PYTHON_ELECTOR_COLLECTION: &str = "elector.locks";

/// Default status collection, as in the Python package.
pub const DEFAULT_STATUS_COLLECTION: &str = "elector.status";

/// The field a fenced write records its fence in, unless
/// [`field`](crate::Fenced::field) names another.
pub const DEFAULT_FENCE_FIELD: &str = "fence";
