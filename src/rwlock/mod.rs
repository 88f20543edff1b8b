//! The read-write lock: [`MongoRwLock`] (the handle), its builder, and the
//! RAII [`ReadGuard`] and [`WriteGuard`], over the shared many-holder
//! foundation ([`crate::foundation::shares`]).

pub(crate) mod builder;
pub(crate) mod guards;
pub(crate) mod handle;

pub use builder::RwLockBuilder;
pub use guards::{ReadGuard, WriteGuard};
pub use handle::MongoRwLock;
