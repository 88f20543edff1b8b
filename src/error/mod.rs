//! The crate's one error type: [`Error`], with the database's errors as
//! [`DatabaseError`] (`database`), and which driver errors a retry can
//! outlast (`transient`: the driver keeps its retry predicates in its
//! error module too).

mod database;
pub(crate) mod transient;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use database::DatabaseError;
pub(crate) use transient::{has_code, is_duplicate_key};

/// `Result<T, mongoelector::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// "The lock is held by someone else" is not an error: [`MongoLocker::acquire`]
/// answers `Ok(false)` and [`MongoLocker::try_lock`] answers `Ok(None)`.
///
/// [`MongoLocker::acquire`]: crate::MongoLocker::acquire
/// [`MongoLocker::try_lock`]: crate::MongoLocker::try_lock
///
/// # Examples
///
/// ```
/// use mongoelector::Error;
///
/// fn explain(err: &Error) -> &'static str {
///     match err {
///         Error::InvalidArgument { .. } => "fix the call",
///         Error::ClockSkew { .. } => "fix the machine's clock (or turn timeparanoid off)",
///         Error::Database(e) if e.is_unreachable() => "the database is down; try again later",
///         Error::Database(_) => "the database refused the operation",
///         _ => "see the message",
///     }
/// }
/// # let _ = explain;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A parameter was empty, out of range, or inconsistent with another one.
    InvalidArgument {
        /// The parameter's name, as in the method signature.
        parameter: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// This instance already holds the lock it tried to acquire; waiting
    /// for itself would deadlock.
    AlreadyHeld {
        /// The lock's key.
        key: String,
        /// The fence token of the acquisition that holds it.
        fence: i64,
    },
    /// The local clock differs from the server's by more than the tolerance
    /// (only checked with `timeparanoid` on).
    ClockSkew {
        /// Local clock minus server clock, after allowing for half the round trip.
        offset: chrono::TimeDelta,
        /// The largest offset that is accepted.
        tolerance: Duration,
    },
    /// A document in a lock or status collection does not have the shape this
    /// crate writes (someone else wrote it). Nothing was granted.
    MalformedDocument {
        /// The collection the document is in.
        collection: String,
        /// The document's `_id`, as text.
        id: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong with the field.
        reason: String,
    },
    /// The elector was started while it was already running.
    AlreadyRunning {
        /// The elector's key.
        key: String,
    },
    /// The elector's thread could not be spawned.
    Spawn(Arc<std::io::Error>),
    /// The elector's thread panicked; its panic was caught when it was joined.
    ThreadPanicked {
        /// The elector's key.
        key: String,
    },
    /// The server is older than the crate needs (pipeline updates and
    /// `$$NOW`: MongoDB 4.2). Checked the first time a lock collection is
    /// used.
    UnsupportedServer {
        /// The server's version, as `buildInfo` reports it.
        version: String,
        /// The oldest version the crate works with.
        minimum: &'static str,
    },
    /// A fenced write under the current term was asked of an elector that
    /// is not master ([`MongoElector::fenced`](crate::MongoElector::fenced)).
    NotMaster {
        /// The elector's key.
        key: String,
    },
    /// A [`MongoSemaphore`](crate::MongoSemaphore) was built with another
    /// count of permits than the one its key's document keeps (set by the
    /// first semaphore that used the key). Nothing was granted; the
    /// document is never resized.
    ///
    /// ```
    /// let e = mongoelector::Error::PermitsMismatch { key: "jobs".into(), ours: 5, theirs: 3 };
    /// assert!(e.to_string().contains("3 permits"));
    /// ```
    PermitsMismatch {
        /// The semaphore's key.
        key: String,
        /// The count this semaphore was built with.
        ours: u32,
        /// The count the document keeps.
        theirs: u32,
    },
    /// The key's document in this collection belongs to another kind of
    /// primitive: a lock (or an election), a semaphore and a read-write
    /// lock were given the same key and collection. Nothing was granted or
    /// changed; give each its own key or collection.
    ///
    /// ```
    /// let e = mongoelector::Error::WrongKind {
    ///     key: "jobs".into(),
    ///     collection: "coordination".into(),
    ///     expected: "lock",
    ///     found: "semaphore".into(),
    /// };
    /// assert!(e.to_string().contains("semaphore"));
    /// ```
    WrongKind {
        /// The key (the document's `_id`).
        key: String,
        /// The collection the document is in.
        collection: String,
        /// The kind this handle is: `"lock"` (a lock or an elector),
        /// `"semaphore"` or `"rwlock"`.
        expected: &'static str,
        /// The kind the document is (its `kind` field, or what its fields
        /// show for a document written before the field existed).
        found: String,
    },
    /// The test kit ([`testing`](crate::testing), feature `testing`) could
    /// not find, install, start, signal or stop its server, or start its
    /// proxy.
    TestServer {
        /// What it was doing: `"install SecantusDB"`, `"start the server"`,
        /// `"freeze the server"`, ...
        action: &'static str,
        /// What went wrong, and what to install or change when that helps.
        reason: String,
        /// The I/O error underneath, when there is one.
        source: Option<Arc<std::io::Error>>,
    },
    /// The MongoDB driver reported an error (network, server, write concern,
    /// ...): the [`DatabaseError`] names the operation and key, and keeps the
    /// driver's error as its [`source`](std::error::Error::source).
    Database(DatabaseError),
}

impl Error {
    /// Whether this is a [`DatabaseError::is_transient`] error.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, Error::Database(e) if e.is_transient())
    }

    pub(crate) fn invalid(parameter: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            parameter,
            reason: reason.into(),
        }
    }

    /// Names the public operation and the key a database error happened in
    /// (replacing what an inner call named); other errors pass unchanged.
    pub(crate) fn during(self, operation: &'static str, key: &str) -> Self {
        match self {
            Error::Database(e) => Error::Database(e.renamed(operation, key)),
            other => other,
        }
    }
}

/// [`Error::during`] on a `Result`.
pub(crate) trait During<T> {
    /// Names the operation and key of a database error.
    fn during(self, operation: &'static str, key: &str) -> Result<T>;
}

impl<T> During<T> for Result<T> {
    fn during(self, operation: &'static str, key: &str) -> Result<T> {
        self.map_err(|e| e.during(operation, key))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument { parameter, reason } => {
                write!(f, "invalid argument `{parameter}`: {reason}")
            }
            Error::AlreadyHeld { key, fence } => write!(
                f,
                "lock `{key}` is already held by this instance (fence {fence}); \
                 acquiring it again would deadlock"
            ),
            Error::ClockSkew { offset, tolerance } => write!(
                f,
                "local clock is {} ms {} the MongoDB server's (tolerance {} ms)",
                offset.num_milliseconds().abs(),
                if *offset >= chrono::TimeDelta::zero() {
                    "ahead of"
                } else {
                    "behind"
                },
                tolerance.as_millis()
            ),
            Error::MalformedDocument {
                collection,
                id,
                field,
                reason,
            } => write!(
                f,
                "malformed document `{id}` in collection `{collection}`: field `{field}` {reason}"
            ),
            Error::AlreadyRunning { key } => write!(f, "elector `{key}` is already running"),
            Error::Spawn(e) => write!(f, "could not spawn the elector thread: {e}"),
            Error::ThreadPanicked { key } => write!(f, "the thread of elector `{key}` panicked"),
            Error::UnsupportedServer { version, minimum } => write!(
                f,
                "the MongoDB server is version {version}; this crate needs {minimum} or later"
            ),
            Error::NotMaster { key } => write!(f, "elector `{key}` is not master"),
            Error::PermitsMismatch { key, ours, theirs } => write!(
                f,
                "semaphore `{key}` has {theirs} permits in the database, but this one was \
                 built with {ours}: every process on a key must use the same count"
            ),
            Error::WrongKind {
                key,
                collection,
                expected,
                found,
            } => write!(
                f,
                "`{key}` in collection `{collection}` is a {found} document, not a {expected}: \
                 give each kind of primitive its own key or collection"
            ),
            Error::TestServer { action, reason, .. } => {
                write!(f, "test server: could not {action}: {reason}")
            }
            Error::Database(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(&**e),
            Error::TestServer {
                source: Some(e), ..
            } => Some(&**e),
            Error::Database(e) => Some(e.driver_error()),
            _ => None,
        }
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(e: mongodb::error::Error) -> Self {
        // The public method that returns it names the operation and key.
        Error::Database(DatabaseError::unnamed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn error_is_send_sync_and_names_the_parameter() {
        assert_send_sync::<Error>();
        let e = Error::invalid("ttl", "must be positive");
        assert_eq!(e.to_string(), "invalid argument `ttl`: must be positive");
    }

    #[test]
    fn clock_skew_message_gives_direction() {
        let e = Error::ClockSkew {
            offset: chrono::TimeDelta::milliseconds(-1500),
            tolerance: Duration::from_millis(500),
        };
        assert_eq!(
            e.to_string(),
            "local clock is 1500 ms behind the MongoDB server's (tolerance 500 ms)"
        );
    }
}
