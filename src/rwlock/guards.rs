//! [`ReadGuard`] and [`WriteGuard`]: a read-write lock's shares, released
//! when dropped.

use std::fmt;
use std::sync::Arc;

use crate::foundation::holding::Holding;
use crate::foundation::shares::core::ShareCore;
use crate::foundation::tenure::Tenure;
use crate::guard::guard_methods;

/// A read share of a [`MongoRwLock`](crate::MongoRwLock), released when
/// dropped. Any number of readers hold at once, never with a writer. As a
/// [`LockGuard`](crate::LockGuard), it is a lease with a fence, a local
/// deadline, [`lost`](Self::lost) and [`touch`](Self::touch); its fence is
/// greater than every earlier writer's.
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
/// let reading = lock.read()?;
/// // read the configuration; no writer changes it meanwhile
/// drop(reading);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the guard releases the read share at once"]
pub struct ReadGuard {
    inner: Holding,
}

/// The write share of a [`MongoRwLock`](crate::MongoRwLock), released
/// when dropped: no reader and no other writer holds meanwhile. Its fence
/// is greater than every fence granted before it on the key, readers'
/// included. Otherwise as a [`LockGuard`](crate::LockGuard).
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let lock = mongoelector::MongoRwLock::new("shared-config", &db)?;
/// let writing = lock.write()?;
/// // rewrite the configuration, passing writing.fence() along
/// writing.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the guard releases the write share at once"]
pub struct WriteGuard {
    inner: Holding,
}

impl ReadGuard {
    pub(crate) fn new(core: Arc<ShareCore>, tenure: Arc<Tenure>) -> Self {
        ReadGuard {
            inner: Holding::new(core, tenure),
        }
    }

    guard_methods!(
        "read share",
        " let lock = mongoelector::MongoRwLock::new(\"config\", &db)?;\n let guard = lock.read()?;"
    );
}

impl WriteGuard {
    pub(crate) fn new(core: Arc<ShareCore>, tenure: Arc<Tenure>) -> Self {
        WriteGuard {
            inner: Holding::new(core, tenure),
        }
    }

    guard_methods!(
        "write share",
        " let lock = mongoelector::MongoRwLock::new(\"config\", &db)?;\n let guard = lock.write()?;"
    );
}

fn debug(name: &str, inner: &Holding, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("key", &inner.key())
        .field("fence", &inner.fence())
        .field("expires_at", &inner.expires_at())
        .field("is_valid", &inner.is_valid())
        .finish()
}

impl fmt::Debug for ReadGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug("ReadGuard", &self.inner, f)
    }
}

impl fmt::Debug for WriteGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug("WriteGuard", &self.inner, f)
    }
}
