//! [`Owner`]: one locker's or elector's identity in the lock document
//! (a random uuid, the host name, the process id, and the application's
//! metadata, if any).

use mongodb::bson::Document;

/// Who is asking: one [`MongoLocker`](crate::MongoLocker)'s or
/// [`MongoElector`](crate::MongoElector)'s identity.
#[derive(Clone, Debug)]
pub(crate) struct Owner {
    pub uuid: String,
    pub host: String,
    pub pid: u32,
    /// Written into the lock document's `metadata` field with each
    /// acquisition (null when `None`).
    pub metadata: Option<Document>,
}

impl Owner {
    /// A new identity for this process: a random UUID, the host name, the pid.
    pub fn new() -> Self {
        Owner {
            uuid: uuid::Uuid::new_v4().to_string(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            metadata: None,
        }
    }

    /// The same identity, carrying `metadata` (checked by the builder).
    pub fn with_metadata(mut self, metadata: Option<Document>) -> Self {
        self.metadata = metadata;
        self
    }
}
