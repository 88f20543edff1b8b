//! Guide pages: the reference behind the README, one page a topic. Each
//! page is a Markdown file in `docs/`, shown here by rustdoc; its Rust
//! examples are compiled as doc tests.

/// Locking in depth: the Python-style API, errors, long jobs with
/// keep-alive and `lost()`, run-once jobs with `hold_at_least`.
#[doc = include_str!("../docs/locking.md")]
pub mod locking {}

/// The elector in depth: events, waking on change, status reports,
/// observing the master, health and step-down.
#[doc = include_str!("../docs/election.md")]
pub mod election {}

/// The counting semaphore and the read-write lock: "at most N at once",
/// "readers and a writer", the document, writer starvation, fences, expiry.
#[doc = include_str!("../docs/semaphore.md")]
pub mod semaphore {}

/// Timing: the defaults and the bounds they give (replacement of a dead
/// master, handover on stop, stepping down).
#[doc = include_str!("../docs/timing.md")]
pub mod timing {}

/// What the lock and the election guarantee, the assumptions, and the
/// fault suite and soak that test it.
#[doc = include_str!("../docs/guarantees.md")]
pub mod guarantees {}

/// The lock document's fields.
#[doc = include_str!("../docs/document.md")]
pub mod document {}

/// Locked-down deployments: privileges, credentials and TLS, refusals,
/// what the documents reveal.
#[doc = include_str!("../docs/security.md")]
pub mod security {}

/// Performance: round trips per operation, ratios to the raw driver,
/// client cost, idle electors, failover, and the commands that measure
/// them.
#[doc = include_str!("../docs/performance.md")]
pub mod performance {}

/// Metrics (cargo feature `metrics`): every counter, histogram and gauge,
/// and a program that exports them to Prometheus.
#[doc = include_str!("../docs/metrics.md")]
pub mod metrics {}

/// The threads the crate starts, and what is `Send + Sync`.
#[doc = include_str!("../docs/threads.md")]
pub mod threads {}

/// How the source is laid out: one job a file.
#[doc = include_str!("../docs/layout.md")]
pub mod layout {}

/// Running the demo, the tests and CI; running your own code against a
/// throwaway server.
#[doc = include_str!("../docs/testing.md")]
pub mod testing {}

/// The test kit (cargo feature `testing`): a throwaway server, freezes,
/// restarts and a fault proxy for your own tests, and a daemon's test.
#[cfg(feature = "testing")]
#[doc = include_str!("../docs/test-kit.md")]
pub mod test_kit {}

/// The `mongoelector` command-line tool (cargo feature `cli`): a command
/// under the lock, or only while elected; status, list, forced release;
/// exit codes.
#[doc = include_str!("../docs/cli.md")]
pub mod cli {}

/// Coming from Python `mongoelector`: the API mapped item by item, what
/// behaves differently, a mixed fleet of Python and Rust nodes, and a
/// rolling upgrade.
#[doc = include_str!("../docs/migration.md")]
pub mod migration {}
