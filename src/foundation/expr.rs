//! The server-side expressions every store shares: server time plus a
//! duration, "not yet expired", dates as milliseconds, strings as
//! literals, and the next fence of a key's counter.
//!
//! Every date is compared through `$toLong` (dates compared directly inside
//! `$expr` are unreliable on some servers; millisecond integers never are).

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};

use crate::foundation::document::FENCE;

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

/// How many fence values one millisecond of the server's clock is worth:
/// the fence floor is the server's time in microseconds.
pub(crate) const FENCES_PER_MS: i64 = 1000;

/// The next fence: one more than the stored one, and at least the server's
/// clock in microseconds (`$$NOW` times [`FENCES_PER_MS`]). The floor keeps
/// fences growing when the document was deleted (a TTL index, an operator,
/// another client's delete): a new document's first fence is still greater
/// than every fence handed out before, unless the primary's clock went back
/// by more than the time since that fence was issued, or more than
/// 1,000 acquisitions a millisecond were sustained on the key.
pub(crate) fn next_fence() -> Document {
    doc! { "$max": [
        { "$add": [{ "$toLong": { "$ifNull": [format!("${FENCE}"), 0_i64] } }, 1_i64] },
        { "$multiply": [millis("$$NOW"), FENCES_PER_MS] },
    ]}
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
