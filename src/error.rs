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
    /// The MongoDB driver reported an error (network, server, write concern,
    /// ...): the [`DatabaseError`] names the operation and key, and keeps the
    /// driver's error as its [`source`](std::error::Error::source).
    Database(DatabaseError),
}

/// A failed MongoDB call: which operation of this crate on which key, and
/// the driver's error.
///
/// Its message leads with the operation and the key, then says what a
/// person needs: for a command or write the server refused, the server's
/// message, code name and code; for an unreachable server, each server's
/// error in a few words. The driver's full error (for a server selection
/// timeout, a description of the whole topology) is the
/// [`source`](std::error::Error::source), both of this and of the
/// [`Error::Database`] that carries it:
///
/// ```text
/// acquire "nightly-report": database unreachable (server selection timed out; 127.0.0.1:27017: Connection refused (os error 111))
/// lock "probe": not authorized on app to execute command { findAndModify: ... } (action: update) (Unauthorized, code 13)
/// ```
///
/// # Examples
///
/// ```no_run
/// use std::error::Error as _;
///
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let locker = mongoelector::MongoLocker::new("nightly-report", &db)?;
/// if let Err(mongoelector::Error::Database(e)) = locker.try_lock() {
///     eprintln!("{e}"); // acquire "nightly-report": database unreachable (...)
///     assert_eq!((e.operation(), e.key()), ("acquire", "nightly-report"));
///     eprintln!("driver: {}", e.source().unwrap());
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DatabaseError {
    operation: &'static str,
    key: String,
    source: mongodb::error::Error,
}

impl DatabaseError {
    /// The public method that failed, as the crate names it (`acquire`,
    /// `release`, `touch`, `get_current`, `poll`, `cluster_detail`, ...).
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The key of the lock or election the operation was on.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether no server could be reached: server selection timed out, or a
    /// connection could not be made or was lost (the operation's outcome is
    /// then unknown). Worth retrying later, unlike, say, a refused command.
    pub fn is_unreachable(&self) -> bool {
        use mongodb::error::ErrorKind;
        matches!(
            &*self.source.kind,
            ErrorKind::ServerSelection { .. }
                | ErrorKind::Io(_)
                | ErrorKind::ConnectionPoolCleared { .. }
                | ErrorKind::DnsResolve { .. }
        )
    }

    /// Whether retrying later can succeed: the server is unreachable (see
    /// [`is_unreachable`](Self::is_unreachable)), stepping down, restarting
    /// or not the primary (`NotWritablePrimary`, `ShutdownInProgress`,
    /// `InterruptedAtShutdown` and their kin), or the driver labelled the
    /// error retryable: what a failover looks like. A blocking acquire
    /// retries these until its timeout. Authentication and authorization
    /// failures and other refusals are not transient.
    ///
    /// ```no_run
    /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
    /// let locker = mongoelector::MongoLocker::new("nightly-report", &db)?;
    /// match locker.try_lock() {
    ///     Err(mongoelector::Error::Database(e)) if e.is_transient() => eprintln!("later: {e}"),
    ///     Err(e) => return Err(e.into()),
    ///     Ok(guard) => println!("held: {}", guard.is_some()),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_transient(&self) -> bool {
        crate::foundation::transient::is_transient(&self.source)
    }

    /// The driver's error.
    pub fn driver_error(&self) -> &mongodb::error::Error {
        &self.source
    }

    /// What went wrong, in the words a person needs: the server's own
    /// message and code name for a refused command or write, a few words
    /// (without the driver's topology dump) for an unreachable server, and
    /// the driver's message otherwise.
    fn reason(&self) -> Reason {
        use mongodb::error::{ErrorKind, WriteFailure};
        let refused = |message: &str, name: Option<&str>, code: i32| {
            Reason::Refused(match name.filter(|n| !n.is_empty()) {
                Some(name) => format!("{message} ({name}, code {code})"),
                None => format!("{message} (code {code})"),
            })
        };
        match &*self.source.kind {
            ErrorKind::Command(e) => refused(&e.message, Some(&e.code_name), e.code),
            ErrorKind::Write(WriteFailure::WriteError(e)) => {
                refused(&e.message, e.code_name.as_deref(), e.code)
            }
            ErrorKind::Write(WriteFailure::WriteConcernError(e)) => refused(
                &format!("write concern not satisfied: {}", e.message),
                Some(&e.code_name),
                e.code,
            ),
            ErrorKind::ServerSelection { message, .. } => {
                Reason::Unreachable(match server_errors(message) {
                    Some(errors) => format!("server selection timed out; {errors}"),
                    None => "server selection timed out".to_owned(),
                })
            }
            ErrorKind::Io(e) => Reason::Unreachable(e.to_string()),
            ErrorKind::DnsResolve { message, .. } => Reason::Unreachable(format!("DNS: {message}")),
            ErrorKind::ConnectionPoolCleared { .. } => {
                Reason::Unreachable("connection pool cleared".to_owned())
            }
            _ => Reason::Other(self.source.kind.to_string()),
        }
    }
}

/// A [`DatabaseError`]'s message, by kind.
enum Reason {
    /// The server answered and refused: its message, code name and code.
    Refused(String),
    /// No server answered.
    Unreachable(String),
    /// Anything else: the driver's message.
    Other(String),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Refused(text) => f.write_str(text),
            Reason::Unreachable(text) => write!(f, "database unreachable ({text})"),
            Reason::Other(text) => write!(f, "database error ({text})"),
        }
    }
}

/// From the driver's server selection message ("Server selection timeout: No
/// available servers. Topology: { ..., Servers: [ { Address: H:P, Type:
/// Unknown, Error: Kind: I/O error: Connection refused (os error 111),
/// labels: {} } ] }"), each server's address and error: "H:P: Connection
/// refused (os error 111)". `None` when the message has another shape.
fn server_errors(message: &str) -> Option<String> {
    let mut found = Vec::new();
    for server in message.split("{ Address: ").skip(1) {
        let address = server.split(',').next()?.trim();
        let Some((_, error)) = server.split_once("Error: Kind: ") else {
            found.push(format!("{address}: no answer"));
            continue;
        };
        let error = error.split(", labels:").next()?.trim();
        let error = error.strip_prefix("I/O error: ").unwrap_or(error);
        found.push(format!("{address}: {error}"));
    }
    (!found.is_empty()).then(|| found.join("; "))
}

impl fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operation.is_empty() {
            write!(f, "{}", self.reason())
        } else {
            write!(f, "{} {:?}: {}", self.operation, self.key, self.reason())
        }
    }
}

impl std::error::Error for DatabaseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
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
            Error::Database(e) => Error::Database(DatabaseError {
                operation,
                key: key.to_owned(),
                source: e.source,
            }),
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
            Error::Database(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Spawn(e) => Some(&**e),
            Error::Database(e) => Some(&e.source),
            _ => None,
        }
    }
}

impl From<mongodb::error::Error> for Error {
    fn from(e: mongodb::error::Error) -> Self {
        // The public method that returns it names the operation and key.
        Error::Database(DatabaseError {
            operation: "",
            key: String::new(),
            source: e,
        })
    }
}

/// True for E11000 (duplicate key), which findAndModify can report as a write
/// error or as a command error.
pub(crate) fn is_duplicate_key(err: &mongodb::error::Error) -> bool {
    has_code(err, 11000)
}

/// True when the server refused with `code`, as a write error or as a
/// command error.
pub(crate) fn has_code(err: &mongodb::error::Error, code: i32) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(we)) => we.code == code,
        ErrorKind::Command(ce) => ce.code == code,
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
    fn server_selection_message_is_cut_to_each_servers_error() {
        let message = "Server selection timeout: No available servers. Topology: { Type: \
            Unknown, Set Name: secantus, Servers: [ { Address: 127.0.0.1:1, Type: Unknown, \
            Error: Kind: I/O error: Connection refused (os error 111), labels: {} }, \
            { Address: db2:27017, Type: Unknown } ] }";
        assert_eq!(
            server_errors(message).as_deref(),
            Some("127.0.0.1:1: Connection refused (os error 111); db2:27017: no answer")
        );
        assert_eq!(
            server_errors("Server selection timeout: something else"),
            None
        );
    }

    #[test]
    fn database_error_leads_with_operation_and_key_and_keeps_the_driver_error() {
        use std::error::Error as _;
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        let raw = Error::from(mongodb::error::Error::from(io));
        // Without context (only ever logged inside the crate): no prefix.
        assert_eq!(raw.to_string(), "database unreachable (reset by peer)");
        let e = raw.during("touch", "k").during("release", "jobs");
        assert_eq!(
            e.to_string(),
            r#"release "jobs": database unreachable (reset by peer)"#
        );
        let Error::Database(inner) = &e else {
            panic!("{e:?}")
        };
        assert!(inner.is_unreachable());
        assert_eq!((inner.operation(), inner.key()), ("release", "jobs"));
        let source = e.source().expect("a source");
        assert!(source.downcast_ref::<mongodb::error::Error>().is_some());
        // Other errors pass unchanged.
        let bad = Error::invalid("ttl", "must be positive").during("acquire", "k");
        assert!(matches!(
            bad,
            Error::InvalidArgument {
                parameter: "ttl",
                ..
            }
        ));
    }

    /// A driver error as the server's reply `reply` would produce it.
    fn driver(kind: mongodb::error::ErrorKind) -> Error {
        Error::from(mongodb::error::Error::from(kind)).during("lock", "probe")
    }

    fn refusal(reply: mongodb::bson::Document) -> mongodb::error::CommandError {
        mongodb::bson::from_document(reply).unwrap()
    }

    #[test]
    fn a_refused_command_leads_with_the_servers_message_and_code_name() {
        use mongodb::bson::doc;
        use mongodb::error::ErrorKind;
        use std::error::Error as _;
        let e = driver(ErrorKind::Command(refusal(doc! {
            "code": 13, "codeName": "Unauthorized",
            "errmsg": "not authorized on app to execute command (action: update)",
        })));
        assert_eq!(
            e.to_string(),
            r#"lock "probe": not authorized on app to execute command (action: update) (Unauthorized, code 13)"#
        );
        // The driver's error, with its own Display, stays the source.
        let source = e.source().unwrap();
        assert!(source.to_string().contains("Error code 13"), "{source}");
        let Error::Database(inner) = &e else {
            panic!("{e:?}")
        };
        assert!(!inner.is_unreachable());
        // No code name: the code alone.
        let e = driver(ErrorKind::Command(refusal(
            doc! { "code": 2, "errmsg": "bad" },
        )));
        assert_eq!(e.to_string(), r#"lock "probe": bad (code 2)"#);
    }

    #[test]
    fn a_refused_write_leads_with_the_servers_message() {
        use mongodb::bson::{doc, from_document};
        use mongodb::error::{ErrorKind, WriteFailure};
        let reply = |code: i32, name: &str, msg: &str| {
            doc! { "code": code, "codeName": name, "errmsg": msg }
        };
        let write = from_document(reply(11000, "DuplicateKey", "E11000 duplicate key")).unwrap();
        let concern = from_document(reply(64, "WriteConcernFailed", "replication timed out"));
        let cases = [
            (
                WriteFailure::WriteError(write),
                "E11000 duplicate key (DuplicateKey, code 11000)",
            ),
            (
                WriteFailure::WriteConcernError(concern.unwrap()),
                "write concern not satisfied: replication timed out (WriteConcernFailed, code 64)",
            ),
        ];
        for (failure, expected) in cases {
            let e = driver(ErrorKind::Write(failure));
            assert_eq!(e.to_string(), format!(r#"lock "probe": {expected}"#));
        }
    }

    #[test]
    fn other_driver_errors_keep_the_drivers_message() {
        use mongodb::error::ErrorKind;
        let e = driver(ErrorKind::SessionsNotSupported);
        assert_eq!(
            e.to_string(),
            r#"lock "probe": database error (Attempted to start a session on a deployment that does not support sessions)"#
        );
    }

    #[test]
    fn an_unreachable_server_is_named_with_its_error() {
        use std::error::Error as _;
        // Nothing listens on port 1: a real server selection error, fast.
        let client = mongodb::sync::Client::with_uri_str(
            "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=100&connectTimeoutMS=100",
        )
        .unwrap();
        let err = client
            .database("app")
            .run_command(mongodb::bson::doc! { "ping": 1 })
            .run()
            .unwrap_err();
        let e = Error::from(err).during("lock", "probe");
        let text = e.to_string();
        assert!(
            text.starts_with(
                r#"lock "probe": database unreachable (server selection timed out; 127.0.0.1:1: "#
            ),
            "{text}"
        );
        assert!(!text.contains("Topology"), "{text}");
        assert!(e.source().unwrap().to_string().contains("Topology"));
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
