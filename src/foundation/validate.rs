//! Argument checks shared by the builders and the lock methods. Each failure
//! names the parameter it is about.

use std::time::Duration;

use mongodb::bson::{Bson, Document};

use crate::error::{Error, Result};
use crate::foundation::lease::lease_margin;
use crate::limits::{MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_STEP, MAX_TTL, MIN_STEP, MIN_TTL};

/// Lock metadata that MongoDB stores and returns unchanged: at most
/// [`MAX_METADATA_BYTES`] encoded, nested at most [`MAX_METADATA_DEPTH`]
/// deep, with no key that is empty, starts with `$`, or contains `.` or NUL
/// (at any depth).
pub(crate) fn metadata(parameter: &'static str, doc: &Document) -> Result<()> {
    keys(parameter, doc, 1)?;
    let size = mongodb::bson::to_vec(doc)
        .map_err(|e| Error::invalid(parameter, format!("cannot be encoded as BSON: {e}")))?
        .len();
    if size > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            parameter,
            format!("must be at most {MAX_METADATA_BYTES} bytes as BSON, got {size}"),
        ));
    }
    Ok(())
}

fn keys(parameter: &'static str, doc: &Document, depth: usize) -> Result<()> {
    for (k, v) in doc {
        if let Some(reason) = unstorable(k) {
            return Err(Error::invalid(
                parameter,
                format!("must not have a key {reason}, got {k:?}"),
            ));
        }
        values(parameter, v, depth)?;
    }
    Ok(())
}

/// Why MongoDB would not store or match `name` as one top-level field name.
fn unstorable(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("that is empty")
    } else if name.starts_with('$') {
        Some("starting with `$`")
    } else if name.contains('.') {
        Some("containing `.`")
    } else if name.contains('\0') {
        Some("containing a NUL character")
    } else {
        None
    }
}

/// One top-level field name (not a dotted path): the rules of metadata keys.
pub(crate) fn field_name(parameter: &'static str, name: &str) -> Result<()> {
    match unstorable(name) {
        Some(reason) => Err(Error::invalid(
            parameter,
            format!("must be a field name, not one {reason}, got {name:?}"),
        )),
        None => Ok(()),
    }
}

fn values(parameter: &'static str, value: &Bson, depth: usize) -> Result<()> {
    let nested = |depth: usize| {
        if depth > MAX_METADATA_DEPTH {
            Err(Error::invalid(
                parameter,
                format!("must be nested at most {MAX_METADATA_DEPTH} levels deep"),
            ))
        } else {
            Ok(depth)
        }
    };
    match value {
        Bson::Document(d) => keys(parameter, d, nested(depth + 1)?),
        Bson::Array(items) => {
            let depth = nested(depth + 1)?;
            items.iter().try_for_each(|v| values(parameter, v, depth))
        }
        _ => Ok(()),
    }
}

/// The settings every builder of a lease (lock, semaphore, read-write
/// lock) shares, checked in this order: `key`, `collection`, `ttl`,
/// `step`, `takeover_grace`, `metadata`. The takeover grace to use.
pub(crate) fn lease_settings(
    key_: &str,
    collection_: &str,
    ttl_: Duration,
    step_: Duration,
    grace: Option<Duration>,
    metadata_: Option<&Document>,
) -> Result<Duration> {
    key(key_)?;
    collection("collection", collection_)?;
    ttl("ttl", ttl_)?;
    step("step", step_)?;
    let grace = takeover_grace(grace, ttl_)?;
    if let Some(m) = metadata_ {
        metadata("metadata", m)?;
    }
    Ok(grace)
}

pub(crate) fn key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid("key", "must not be empty"));
    }
    // Thread names and C strings cannot carry it.
    if key.contains('\0') {
        return Err(Error::invalid("key", "must not contain a NUL byte"));
    }
    Ok(())
}

pub(crate) fn ttl(parameter: &'static str, ttl: Duration) -> Result<()> {
    in_range(parameter, ttl, MIN_TTL, MAX_TTL)
}

/// A builder's takeover grace: the one given (zero to [`MAX_STEP`], one
/// hour), or by default the lease margin of `ttl`.
pub(crate) fn takeover_grace(grace: Option<Duration>, ttl: Duration) -> Result<Duration> {
    let grace = grace.unwrap_or_else(|| lease_margin(ttl));
    in_range("takeover_grace", grace, Duration::ZERO, MAX_STEP)?;
    Ok(grace)
}

/// A hold after release: zero to [`MAX_TTL`] (one year).
pub(crate) fn hold(parameter: &'static str, hold: Duration) -> Result<()> {
    in_range(parameter, hold, Duration::ZERO, MAX_TTL)
}

/// A hold-off: zero to [`MAX_STEP`] (one hour).
pub(crate) fn hold_off(parameter: &'static str, d: Duration) -> Result<()> {
    in_range(parameter, d, Duration::ZERO, MAX_STEP)
}

pub(crate) fn step(parameter: &'static str, step: Duration) -> Result<()> {
    in_range(parameter, step, MIN_STEP, MAX_STEP)
}

fn in_range(parameter: &'static str, value: Duration, min: Duration, max: Duration) -> Result<()> {
    if value < min || value > max {
        return Err(Error::invalid(
            parameter,
            format!("must be between {min:?} and {max:?}, got {value:?}"),
        ));
    }
    Ok(())
}

/// MongoDB's rules for collection names, checked before the server sees them.
pub(crate) fn collection(parameter: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.contains('$') {
        "must not contain `$`"
    } else if name.contains('\0') {
        "must not contain a NUL character"
    } else if name.starts_with("system.") {
        "must not start with `system.` (reserved by MongoDB)"
    } else if name.starts_with('.') || name.ends_with('.') {
        "must not start or end with `.`"
    } else if name.len() > 200 {
        "must be at most 200 bytes long"
    } else {
        return Ok(());
    };
    Err(Error::invalid(parameter, format!("{reason}, got {name:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parameter(r: Result<()>) -> &'static str {
        match r {
            Err(Error::InvalidArgument { parameter, .. }) => parameter,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn keys() {
        assert!(key("jobs").is_ok());
        assert_eq!(parameter(key("")), "key");
    }

    #[test]
    fn ttls_and_steps() {
        assert!(ttl("ttl", Duration::from_secs(1)).is_ok());
        assert!(ttl("ttl", MIN_TTL).is_ok());
        assert!(ttl("ttl", MAX_TTL).is_ok());
        assert_eq!(parameter(ttl("ttl", Duration::ZERO)), "ttl");
        assert_eq!(parameter(ttl("ttl", Duration::MAX)), "ttl");
        assert_eq!(parameter(step("step", Duration::ZERO)), "step");
        assert_eq!(parameter(step("step", Duration::from_secs(7200))), "step");
    }

    #[test]
    fn collection_names() {
        assert!(collection("collection", "mongolocker").is_ok());
        assert!(collection("collection", "a.b").is_ok());
        for bad in [
            "",
            "a$b",
            "a\0b",
            "system.locks",
            ".a",
            "a.",
            &"x".repeat(201),
        ] {
            assert_eq!(
                parameter(collection("collection", bad)),
                "collection",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn metadata_must_be_storable_and_small() {
        use mongodb::bson::doc;
        let ok = doc! { "job": "nightly", "n": { "host": "$not-a-path", "list": [1, { "a": 2 }] } };
        assert!(metadata("metadata", &ok).is_ok());
        assert!(metadata("metadata", &doc! {}).is_ok());
        let mut deep = doc! { "leaf": 1 };
        for _ in 0..MAX_METADATA_DEPTH - 1 {
            deep = doc! { "d": deep };
        }
        assert!(metadata("metadata", &deep).is_ok());
        let too_deep = doc! { "d": deep };
        let big = doc! { "blob": "x".repeat(MAX_METADATA_BYTES) };
        for bad in [
            doc! { "$set": 1 },
            doc! { "a.b": 1 },
            doc! { "": 1 },
            doc! { "a\0b": 1 },
            doc! { "ok": { "$inner": 1 } },
            doc! { "ok": [{ "x.y": 1 }] },
            too_deep,
            big,
        ] {
            assert_eq!(parameter(metadata("metadata", &bad)), "metadata", "{bad:?}");
        }
    }

    #[test]
    fn field_names() {
        assert!(field_name("field", "fence").is_ok());
        for bad in ["", "$f", "a.b", "a\0b"] {
            assert_eq!(parameter(field_name("field", bad)), "field", "{bad:?}");
        }
    }
}
