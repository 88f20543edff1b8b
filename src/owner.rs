//! [`Owner`]: one locker's or elector's identity in the lock document
//! (a random uuid, the host name and the process id).

/// Who is asking: one [`MongoLocker`](crate::MongoLocker)'s or
/// [`MongoElector`](crate::MongoElector)'s identity.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    pub uuid: String,
    pub host: String,
    pub pid: u32,
}

impl Owner {
    /// A new identity for this process: a random UUID, the host name, the pid.
    pub fn new() -> Self {
        Owner {
            uuid: uuid::Uuid::new_v4().to_string(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
        }
    }
}
