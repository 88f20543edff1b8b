//! The counting semaphore: [`MongoSemaphore`] (the handle), its builder,
//! and the RAII [`Permit`], over the shared many-holder foundation
//! ([`crate::foundation::shares`]).

pub(crate) mod builder;
pub(crate) mod handle;
pub(crate) mod permit;

pub use builder::SemaphoreBuilder;
pub use handle::MongoSemaphore;
pub use permit::Permit;
