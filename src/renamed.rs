//! The crate root's names of the defaults and limits from before they
//! moved to [`crate::limits`], kept so that code written against them
//! still compiles (with a deprecation warning naming the new path).

use std::time::Duration;

use crate::limits;

/// Moved: [`limits::DEFAULT_ELECTOR_TTL`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_ELECTOR_TTL`"
)]
#[doc(hidden)]
pub const DEFAULT_ELECTOR_TTL: Duration = limits::DEFAULT_ELECTOR_TTL;

/// Moved: [`limits::DEFAULT_STATUS_COLLECTION`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_STATUS_COLLECTION`"
)]
#[doc(hidden)]
pub const DEFAULT_STATUS_COLLECTION: &str = limits::DEFAULT_STATUS_COLLECTION;

/// Moved: [`limits::POLL_EVENT_BACKLOG`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::POLL_EVENT_BACKLOG`"
)]
#[doc(hidden)]
pub const POLL_EVENT_BACKLOG: usize = limits::POLL_EVENT_BACKLOG;

/// Moved: [`limits::PYTHON_ELECTOR_COLLECTION`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::PYTHON_ELECTOR_COLLECTION`"
)]
#[doc(hidden)]
pub const PYTHON_ELECTOR_COLLECTION: &str = limits::PYTHON_ELECTOR_COLLECTION;

/// Moved: [`limits::STOP_WAIT`].
#[deprecated(since = "0.1.0", note = "moved to `mongoelector::limits::STOP_WAIT`")]
#[doc(hidden)]
pub const STOP_WAIT: Duration = limits::STOP_WAIT;

/// Moved: [`limits::DEFAULT_FENCE_FIELD`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_FENCE_FIELD`"
)]
#[doc(hidden)]
pub const DEFAULT_FENCE_FIELD: &str = limits::DEFAULT_FENCE_FIELD;

/// Moved: [`limits::CLOCK_CHECK_INTERVAL`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::CLOCK_CHECK_INTERVAL`"
)]
#[doc(hidden)]
pub const CLOCK_CHECK_INTERVAL: Duration = limits::CLOCK_CHECK_INTERVAL;

/// Moved: [`limits::CLOCK_TOLERANCE`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::CLOCK_TOLERANCE`"
)]
#[doc(hidden)]
pub const CLOCK_TOLERANCE: Duration = limits::CLOCK_TOLERANCE;

/// Moved: [`limits::MAX_METADATA_BYTES`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::MAX_METADATA_BYTES`"
)]
#[doc(hidden)]
pub const MAX_METADATA_BYTES: usize = limits::MAX_METADATA_BYTES;

/// Moved: [`limits::MAX_METADATA_DEPTH`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::MAX_METADATA_DEPTH`"
)]
#[doc(hidden)]
pub const MAX_METADATA_DEPTH: usize = limits::MAX_METADATA_DEPTH;

/// Moved: [`limits::MAX_STEP`].
#[deprecated(since = "0.1.0", note = "moved to `mongoelector::limits::MAX_STEP`")]
#[doc(hidden)]
pub const MAX_STEP: Duration = limits::MAX_STEP;

/// Moved: [`limits::MAX_TTL`].
#[deprecated(since = "0.1.0", note = "moved to `mongoelector::limits::MAX_TTL`")]
#[doc(hidden)]
pub const MAX_TTL: Duration = limits::MAX_TTL;

/// Moved: [`limits::MIN_STEP`].
#[deprecated(since = "0.1.0", note = "moved to `mongoelector::limits::MIN_STEP`")]
#[doc(hidden)]
pub const MIN_STEP: Duration = limits::MIN_STEP;

/// Moved: [`limits::MIN_TTL`].
#[deprecated(since = "0.1.0", note = "moved to `mongoelector::limits::MIN_TTL`")]
#[doc(hidden)]
pub const MIN_TTL: Duration = limits::MIN_TTL;

/// Moved: [`limits::DEFAULT_LOCK_COLLECTION`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_LOCK_COLLECTION`"
)]
#[doc(hidden)]
pub const DEFAULT_COLLECTION: &str = limits::DEFAULT_LOCK_COLLECTION;

/// Moved: [`limits::DEFAULT_STEP`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_STEP`"
)]
#[doc(hidden)]
pub const DEFAULT_STEP: Duration = limits::DEFAULT_STEP;

/// Moved: [`limits::DEFAULT_TTL`].
#[deprecated(since = "0.1.0", note = "moved to `mongoelector::limits::DEFAULT_TTL`")]
#[doc(hidden)]
pub const DEFAULT_TTL: Duration = limits::DEFAULT_TTL;

/// Moved: [`limits::DEFAULT_RWLOCK_COLLECTION`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_RWLOCK_COLLECTION`"
)]
#[doc(hidden)]
pub const DEFAULT_RWLOCK_COLLECTION: &str = limits::DEFAULT_RWLOCK_COLLECTION;

/// Moved: [`limits::DEFAULT_SEMAPHORE_COLLECTION`].
#[deprecated(
    since = "0.1.0",
    note = "moved to `mongoelector::limits::DEFAULT_SEMAPHORE_COLLECTION`"
)]
#[doc(hidden)]
pub const DEFAULT_SEMAPHORE_COLLECTION: &str = limits::DEFAULT_SEMAPHORE_COLLECTION;
