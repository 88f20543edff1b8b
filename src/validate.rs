//! Argument checks shared by the builders and the lock methods. Each failure
//! names the parameter it is about.

use std::time::Duration;

use crate::error::{Error, Result};

/// Shortest lease accepted: below this the margin and a round trip eat it.
pub const MIN_TTL: Duration = Duration::from_millis(100);
/// Longest lease accepted (one year): anything longer is a mistake.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// Shortest retry interval accepted: a shorter one is a busy loop.
pub const MIN_STEP: Duration = Duration::from_millis(1);
/// Longest retry interval accepted (one hour).
pub const MAX_STEP: Duration = Duration::from_secs(3600);

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

/// A takeover grace: zero to [`MAX_STEP`] (one hour).
pub(crate) fn grace(parameter: &'static str, grace: Duration) -> Result<()> {
    in_range(parameter, grace, Duration::ZERO, MAX_STEP)
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

/// `acquire`'s combination rules, as `threading.Lock.acquire` has them.
pub(crate) fn acquire_args(
    blocking: bool,
    timeout: Option<Duration>,
    step_: Duration,
) -> Result<()> {
    if !blocking && timeout.is_some() {
        return Err(Error::invalid(
            "timeout",
            "can only be given with blocking = true",
        ));
    }
    step("step", step_)
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
    fn acquire_combinations() {
        let s = Duration::from_millis(250);
        assert!(acquire_args(true, None, s).is_ok());
        assert!(acquire_args(true, Some(Duration::ZERO), s).is_ok());
        assert!(acquire_args(false, None, s).is_ok());
        assert_eq!(parameter(acquire_args(false, Some(s), s)), "timeout");
        assert_eq!(parameter(acquire_args(true, None, Duration::ZERO)), "step");
    }
}
