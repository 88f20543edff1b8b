//! [`Permit`]: one of a semaphore's permits, released when dropped.

use std::fmt;
use std::sync::Arc;

use crate::foundation::holding::Holding;
use crate::foundation::shares::core::ShareCore;
use crate::foundation::tenure::Tenure;
use crate::guard::guard_methods;

/// One permit of a [`MongoSemaphore`](crate::MongoSemaphore), released
/// when dropped. It owns what it needs: it can outlive the borrow of its
/// semaphore and move to another thread.
///
/// As a [`LockGuard`](crate::LockGuard), it is a lease: check
/// [`is_valid`](Self::is_valid) before acting (or wait on
/// [`lost`](Self::lost)), renew long work with [`touch`](Self::touch) or
/// [`keep_alive`](crate::SemaphoreBuilder::keep_alive), and pass
/// [`fence`](Self::fence) to what you write. Fences come from one counter
/// per key: each permit's is greater than every permit's granted before it.
///
/// ```no_run
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let sem = mongoelector::MongoSemaphore::new("api-calls", &db, 5)?;
/// let permit = sem.acquire()?;
/// if permit.is_valid() {
///     // call the rate-limited API
/// }
/// permit.release()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "dropping the permit releases it at once"]
pub struct Permit {
    inner: Holding,
}

impl Permit {
    pub(crate) fn new(core: Arc<ShareCore>, tenure: Arc<Tenure>) -> Self {
        Permit {
            inner: Holding::new(core, tenure),
        }
    }

    guard_methods!(
        "permit",
        " let sem = mongoelector::MongoSemaphore::new(\"jobs\", &db, 3)?;\n let guard = sem.acquire()?;"
    );
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("key", &self.inner.key())
            .field("fence", &self.fence())
            .field("expires_at", &self.expires_at())
            .field("is_valid", &self.is_valid())
            .finish()
    }
}
