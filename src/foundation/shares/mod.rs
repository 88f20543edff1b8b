//! The foundation of the primitives with many holders per key (the
//! [`MongoSemaphore`](crate::MongoSemaphore) and the
//! [`MongoRwLock`](crate::MongoRwLock)): one document per key whose
//! `holders` array has one leased entry per grant, every grant one atomic
//! update, a crashed holder's entry ignored (and dropped by the next grant)
//! once its expiry plus the takeover grace has passed, in server time. No
//! TTL index, no sweeper.

pub(crate) mod core;
pub(crate) mod document;
pub(crate) mod grant;
pub(crate) mod pipeline;
pub(crate) mod store;
