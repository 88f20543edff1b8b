//! Which driver errors a retry can outlast (the server stepping down,
//! restarting or unreachable for a while: a failover), and the codes the
//! crate's round trips tell apart. Pure: no I/O.

use mongodb::error::{ErrorKind, WriteFailure};

/// Server error codes of a node that is not (or no longer) a writable
/// primary, is shutting down or stepping down, or of a network failure
/// seen by the server: the codes the driver retries reads on, plus
/// `LegacyNotPrimary`.
const TRANSIENT_CODES: [i32; 14] = [
    6,     // HostUnreachable
    7,     // HostNotFound
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    134,   // ReadConcernMajorityNotAvailableYet
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10058, // LegacyNotPrimary
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// The labels the driver puts on errors that a retry may fix.
const TRANSIENT_LABELS: [&str; 3] = [
    mongodb::error::RETRYABLE_WRITE_ERROR,
    mongodb::error::RETRYABLE_ERROR,
    mongodb::error::TRANSIENT_TRANSACTION_ERROR,
];

/// Whether `err` is one a retry can outlast: a network error, a server
/// selection timeout, a retryable label, or a not-primary, shutting-down
/// or stepping-down code. Authentication and authorization failures, bad
/// input, an unsupported server and every other refusal are not.
pub(crate) fn is_transient(err: &mongodb::error::Error) -> bool {
    if matches!(*err.kind, ErrorKind::Authentication { .. }) {
        return false;
    }
    let network = matches!(
        *err.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    );
    let code = match &*err.kind {
        ErrorKind::Command(e) => Some(e.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(e)) => Some(e.code),
        _ => None,
    };
    network
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
        || TRANSIENT_LABELS.iter().any(|l| err.contains_label(l))
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
    use mongodb::bson::doc;

    /// A server's refusal with `code`, as the driver reads it from a reply.
    fn refusal(code: i32) -> mongodb::error::Error {
        let reply = doc! { "code": code, "codeName": "X", "errmsg": "refused" };
        let e: mongodb::error::CommandError = mongodb::bson::from_document(reply).unwrap();
        ErrorKind::Command(e).into()
    }

    #[test]
    fn failover_errors_are_transient_and_refusals_are_not() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(is_transient(&io.into()));
        for code in [10107, 11600, 91, 189, 13436] {
            assert!(is_transient(&refusal(code)), "{code}");
        }
        // Unauthorized, AuthenticationFailed, a bad value, a duplicate key.
        for code in [13, 18, 2, 11000] {
            assert!(!is_transient(&refusal(code)), "{code}");
        }
    }
}
