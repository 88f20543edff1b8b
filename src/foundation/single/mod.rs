//! The one-holder family: one document per key naming its one holder (a
//! lock, an election's master), in the Python package's shape.
//!
//! - `document`: its fields and parsing;
//! - `pipeline`: the acquire, release and touch updates, pure and
//!   unit-tested;
//! - `queue`: the fair queue of waiters and the release's handover,
//!   pure;
//! - `store`: one round trip each (`store_cache`: the updates it keeps
//!   built; `store_fair`: the fair queue's);
//! - `core`: a locker's identity, settings and acquisition, and every
//!   operation on them (`attempt`: one acquire attempt).

pub(crate) mod attempt;
pub(crate) mod core;
pub(crate) mod document;
pub(crate) mod pipeline;
pub(crate) mod queue;
pub(crate) mod store;
pub(crate) mod store_cache;
pub(crate) mod store_fair;
