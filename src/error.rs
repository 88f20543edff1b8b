//! The crate's one error type.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
///         Error::Database(_) => "the database failed; try again later",
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
    /// The MongoDB driver reported an error (network, server, write concern, ...).
    Database(mongodb::error::Error),
}

impl Error {
    pub(crate) fn invalid(parameter: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            parameter,
            reason: reason.into(),
        }
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
            Error::Database(e) => write!(f, "MongoDB operation failed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(&**e),
            Error::Database(e) => Some(e),
            _ => None,
        }
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(e: mongodb::error::Error) -> Self {
        Error::Database(e)
    }
}

/// True for E11000 (duplicate key), which findAndModify can report as a write
/// error or as a command error.
pub(crate) fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == 11000,
        ErrorKind::Command(ce) => ce.code == 11000,
        _ => false,
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
