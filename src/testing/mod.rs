//! A test kit (feature `testing`): a throwaway server for your own
//! `cargo test`, and the faults to test what your code does when the
//! database freezes, restarts, or is cut off from one process.
//!
//! ```toml
//! [dev-dependencies]
//! mongoelector = { version = "0.1", features = ["testing"] }
//! ```
//!
//! - [`TestServer`]: a server of one test's own on a free loopback port,
//!   a single-node replica set or standalone, stopped by PID when dropped;
//!   [`freeze`](TestServer::freeze) / [`thaw`](TestServer::thaw) (SIGSTOP,
//!   SIGCONT), [`restart`](TestServer::restart) (same port and data),
//!   [`stop`](TestServer::stop).
//! - [`FaultProxy`]: a TCP proxy in front of it for one client, which
//!   [delays](FaultProxy::delay), [drops](FaultProxy::partition) or
//!   [cuts](FaultProxy::cut) that client's traffic alone.
//!
//! The crate's own test suite runs on this kit. The
//! [guide page](crate::guide::test_kit) has a complete daemon test.
//!
//! # Which server
//!
//! `mongod`, when one is on `PATH` (or `MONGOELECTOR_MONGOD` names one);
//! else **SecantusDB**, a MongoDB-compatible server in Python
//! ([PyPI](https://pypi.org/project/secantusdb/), GPL-2.0, run as a
//! separate program, never linked), version [`SECANTUSDB_VERSION`]. On
//! first use the kit installs it with `python3 -m venv` and `pip` into
//! `~/.cache/mongoelector/` (or `$XDG_CACHE_HOME/mongoelector/`, or
//! `MONGOELECTOR_TEST_CACHE`): about 150 MB, 10 to 60 s depending on the
//! network, said on stderr; later starts take under a second. With
//! neither `mongod` nor Python 3, starting fails with
//! [`Error::TestServer`](crate::Error::TestServer) saying what to install.
//!
//! | Variable | Effect |
//! |---|---|
//! | `MONGOELECTOR_TEST_SERVER` | `mongod` or `secantusdb`: that one, or an error |
//! | `MONGOELECTOR_MONGOD` | the `mongod` to run |
//! | `MONGOELECTOR_SECANTUS_PYTHON` | a Python that has `secantusdb` installed (no install) |
//! | `MONGOELECTOR_TEST_CACHE` | where SecantusDB is installed |
//! | `PYTHON` | the Python that makes the environment (default `python3`) |
//!
//! The kit runs the server with its test commands on (loopback only), so
//! a test can use MongoDB's `failCommand` fail point. It needs a Unix
//! (signals); it is tested on Linux.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use mongoelector::testing::TestServer;
//! use mongoelector::MongoLocker;
//!
//! let server = TestServer::start()?;
//! let db = server.database("app")?;
//! let lock = MongoLocker::builder("nightly-report", &db)
//!     .ttl(Duration::from_secs(3))
//!     .build()?;
//! let guard = lock.lock()?;
//! server.freeze()?;
//! // The holder cannot renew: its guard reports the loss within the ttl.
//! let reason = guard.lost().recv_timeout(Duration::from_secs(4))?;
//! println!("lost the lock: {reason:?}");
//! server.thaw()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod install;
mod launch;
mod process;
mod proxy;
mod server;

pub use install::{Prefer, ServerKind, SECANTUSDB_VERSION};
pub use proxy::{FaultProxy, ProxyMode};
pub use server::{TestServer, TestServerBuilder};

/// The kit's error: what it was doing, what went wrong (and what to do),
/// and the I/O error underneath.
fn kit_error(
    action: &'static str,
    reason: impl Into<String>,
    source: Option<std::io::Error>,
) -> crate::Error {
    crate::Error::TestServer {
        action,
        reason: reason.into(),
        source: source.map(std::sync::Arc::new),
    }
}
