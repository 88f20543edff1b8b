//! The lock: [`MongoLocker`] (the Python-style handle), its builder, and
//! the RAII [`LockGuard`], over one `LockCore` per locker (in the
//! foundation's one-holder family) that holds its identity, settings and
//! current acquisition.

pub(crate) mod builder;
pub(crate) mod guard;
pub(crate) mod locker;

pub use builder::LockerBuilder;
pub use guard::LockGuard;
pub use locker::{LockStatus, MongoLocker};
