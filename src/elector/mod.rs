//! [`MongoElector`]: master election on a dedicated thread, reporting
//! transitions over crossbeam channels.
//!
//! - `handle`: the public [`MongoElector`]; `builder`: [`ElectorBuilder`].
//! - `engine`: shared state, one poll, stepping down, start/stop
//!   bookkeeping; `election_loop`: the elector thread's loop.
//! - `role` (state machine) and `cadence` (when to poll): pure, no I/O.
//! - `events`: the subscribers of [`Event`]s; `observer`: the thread behind
//!   `observe()`; `stats`: the counters.
//! - `introspect`: the read-only half of the public API (who is master,
//!   members, stats, health).
//! - `status` (report types) and `status_store` (the status collection).

mod builder;
mod cadence;
mod election_loop;
mod engine;
mod events;
mod handle;
mod introspect;
mod observer;
mod role;
mod stats;
mod status;
mod status_store;

pub use builder::{default_retry_interval, ElectorBuilder};
pub use events::Event;
pub use handle::MongoElector;
pub use observer::MasterReceiver;
pub use stats::ElectorStats;
pub use status::{ClusterDetail, NodeStatus};
