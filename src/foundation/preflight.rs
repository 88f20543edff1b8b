//! The checks a lock collection gets the first time this process uses it:
//! the server is new enough for what the crate sends (pipeline updates and
//! `$$NOW`: MongoDB 4.2), and no TTL index on `ts_expire` deletes lock
//! documents behind the crate's back. Two round trips, once per process,
//! deployment and collection (see [`crate::foundation::deployment`]), until they pass.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::sync::{Collection, Database};

use crate::error::{Error, Result};
use crate::foundation::document::TS_EXPIRE;

/// The oldest server version the crate works with.
pub(crate) const MIN_SERVER_VERSION: (i32, i32) = (4, 2);

/// Fails with [`Error::UnsupportedServer`] on a server older than
/// [`MIN_SERVER_VERSION`]; warns about a TTL index on `ts_expire`, unless
/// the store shares its collection with the Python package
/// (`python_compatible`), whose nodes create that index and need it.
pub(crate) fn check(
    db: &Database,
    coll: &Collection<Document>,
    python_compatible: bool,
) -> Result<()> {
    let info = db.run_command(doc! { "buildInfo": 1 }).run()?;
    let version = info.get_str("version").unwrap_or("unknown").to_owned();
    if !supported(info.get_array("versionArray").ok()) {
        return Err(Error::UnsupportedServer {
            version,
            minimum: "4.2",
        });
    }
    let indexes: Vec<(String, Duration)> = match coll.list_indexes().run() {
        Ok(cursor) => cursor
            .filter_map(|index| index.ok())
            .filter(|index| index.keys.contains_key(TS_EXPIRE))
            .filter_map(|index| {
                let options = index.options?;
                let after = options.expire_after?;
                let name = options.name.unwrap_or_else(|| format!("{}", index.keys));
                Some((name, after))
            })
            .collect(),
        // No collection yet (NamespaceNotFound), or not allowed to look:
        // nothing to warn about that we can see.
        Err(e) => {
            log::debug!("listIndexes on `{}` failed: {e}", coll.name());
            Vec::new()
        }
    };
    for (name, after) in indexes {
        if python_compatible {
            log::debug!(
                "collection `{}.{}` has the TTL index `{name}` on `{TS_EXPIRE}` that \
                 Python nodes rely on",
                db.name(),
                coll.name()
            );
            continue;
        }
        log::warn!(
            "{}",
            ttl_index_warning(db.name(), coll.name(), &name, after)
        );
    }
    Ok(())
}

/// What a TTL index on `ts_expire` costs, and how to fix it.
fn ttl_index_warning(db: &str, coll: &str, index: &str, after: Duration) -> String {
    format!(
        "collection `{db}.{coll}` has a TTL index `{index}` on `{TS_EXPIRE}` \
         (expireAfterSeconds {}): it defeats the takeover grace. The server deletes a lock \
         document once its `{TS_EXPIRE}` has passed on the primary's clock (at the TTL \
         monitor's next pass, every 60 s by default), and the next acquire creates a fresh \
         one without waiting out the grace, so a primary whose clock runs ahead can hand \
         the lock to a second holder before the first one's deadline. Fix: drop the index \
         (`db.{coll}.dropIndex(\"{index}\")`; this crate needs none) or use another \
         collection for these locks.",
        after.as_secs()
    )
}

/// Whether `versionArray` (as `buildInfo` gives it) is at least
/// [`MIN_SERVER_VERSION`]. Missing or unreadable: assumed supported (the
/// commands themselves then fail with the server's own error).
fn supported(version: Option<&Vec<Bson>>) -> bool {
    let Some(parts) = version else {
        return true;
    };
    let num = |i: usize| -> Option<i32> {
        match parts.get(i)? {
            Bson::Int32(n) => Some(*n),
            Bson::Int64(n) => i32::try_from(*n).ok(),
            Bson::Double(n) => Some(*n as i32),
            _ => None,
        }
    };
    match (num(0), num(1)) {
        (Some(major), Some(minor)) => (major, minor) >= MIN_SERVER_VERSION,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = |a: i32, b: i32| vec![Bson::Int32(a), Bson::Int32(b), Bson::Int32(0)];
        assert!(supported(Some(&v(4, 2))));
        assert!(supported(Some(&v(8, 0))));
        assert!(supported(Some(&v(5, 0))));
        assert!(!supported(Some(&v(4, 0))));
        assert!(!supported(Some(&v(3, 6))));
        assert!(supported(None));
        assert!(supported(Some(&vec![Bson::String("x".into())])));
    }

    #[test]
    fn the_ttl_index_warning_says_what_is_lost_and_how_to_fix_it() {
        let text = ttl_index_warning("app", "mongolocker", "ts_expire_1", Duration::ZERO);
        for part in [
            "`app.mongolocker`",
            "`ts_expire_1`",
            "expireAfterSeconds 0",
            "defeats the takeover grace",
            "drop the index",
            "dropIndex(\"ts_expire_1\")",
            "use another collection",
        ] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
    }
}
