//! The fault suite's scenarios beyond `tests/faults.rs`'s own: server
//! restarts (`restart`), and the semaphore's and read-write lock's holders
//! killed and paused (`shares`).

pub mod restart;
pub mod shares;
