//! [`DatabaseError`]: a failed MongoDB call, named by the crate's operation
//! and key, with a message a person can act on and the driver's error as
//! its source.

use std::fmt;

/// A failed MongoDB call: which operation of this crate on which key, and
/// the driver's error.
///
/// Its message leads with the operation and the key, then says what a
/// person needs: for a command or write the server refused, the server's
/// message, code name and code; for an unreachable server, each server's
/// error in a few words. The driver's full error (for a server selection
/// timeout, a description of the whole topology) is the
/// [`source`](std::error::Error::source), both of this and of the
/// [`Error::Database`](crate::Error::Database) that carries it:
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
        super::transient::is_transient(&self.source)
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

impl DatabaseError {
    /// A driver error not yet named by a public operation.
    pub(crate) fn unnamed(source: mongodb::error::Error) -> Self {
        DatabaseError {
            operation: "",
            key: String::new(),
            source,
        }
    }

    /// The same error, named by `operation` on `key`.
    pub(crate) fn renamed(self, operation: &'static str, key: &str) -> Self {
        DatabaseError {
            operation,
            key: key.to_owned(),
            source: self.source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

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
}
