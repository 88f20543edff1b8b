//! The server-side expressions that the lock store and the status store
//! share: server time plus a duration, "not yet expired", dates as
//! milliseconds, and strings as literals.
//!
//! Every date is compared through `$toLong` (dates compared directly inside
//! `$expr` are unreliable on some servers; millisecond integers never are).

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

/// `{$toLong: x}`: dates as milliseconds, comparable everywhere.
pub(crate) fn millis(expr: impl Into<Bson>) -> Bson {
    Bson::Document(doc! { "$toLong": expr.into() })
}

/// A duration in whole milliseconds, saturating (durations are validated
/// far below the limit).
pub(crate) fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A string as itself: in a pipeline a string that starts with `$` would
/// otherwise be read as a field path.
pub(crate) fn literal(s: &str) -> Bson {
    Bson::Document(doc! { "$literal": s })
}

/// `$$NOW + d`, as a date.
pub(crate) fn now_plus(d: Duration) -> Bson {
    Bson::Document(doc! { "$toDate": { "$add": [millis("$$NOW"), duration_ms(d)] } })
}

/// `field > $$NOW`, in server time: the date in `field` has not passed.
pub(crate) fn unexpired(field: &str) -> Document {
    doc! { "$gt": [millis(format!("${field}")), millis("$$NOW")] }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(
            now_plus(Duration::from_millis(1500)),
            Bson::Document(doc! { "$toDate": { "$add": [{ "$toLong": "$$NOW" }, 1500_i64] } })
        );
        assert_eq!(
            unexpired("ts_expire"),
            doc! { "$gt": [{ "$toLong": "$ts_expire" }, { "$toLong": "$$NOW" }] }
        );
        assert_eq!(literal("$x"), Bson::Document(doc! { "$literal": "$x" }));
        assert_eq!(duration_ms(Duration::MAX), i64::MAX);
    }
}
