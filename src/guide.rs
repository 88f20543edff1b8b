//! Guide pages: the reference behind the README.

/// Coming from Python `mongoelector`: the API mapped item by item, what
/// behaves differently, a mixed fleet of Python and Rust nodes, and a
/// rolling upgrade.
#[doc = include_str!("../docs/migration.md")]
pub mod migration {}
