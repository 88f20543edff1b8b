//! The methods every guard shares ([`LockGuard`](crate::LockGuard),
//! [`Permit`](crate::Permit), [`ReadGuard`](crate::ReadGuard),
//! [`WriteGuard`](crate::WriteGuard)), written once over the guard's
//! `inner: Holding` (the foundation's grant internals) and, for fenced
//! writes, [`Fenced`](crate::fenced::Fenced): a floor above both.

/// The eight methods of a guard. `$what` names the grant in the docs
/// ("lock", "permit", "read share"...); `$setup` is the example code that
/// makes `guard` (from a `db`).
macro_rules! guard_methods {
    ($what:literal, $setup:literal) => {
        #[doc = concat!("The ", $what, "'s fence token: greater than that of every grant made before it on this")]
        /// key, by any handle (one counter per key serves every grant).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// println!("fence {}", guard.fence());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn fence(&self) -> i64 {
            self.inner.fence()
        }

        #[doc = concat!("Fenced writes to `coll` under this ", $what, ": each is applied only when the document")]
        /// holds no higher fence and reaches the server before this lease's
        /// expiry in server time (as last renewed, read at each write; see
        /// [`Fenced`](crate::Fenced)). Once the guard is released or
        /// dropped, or its lease lost or past its local deadline, the
        /// handle refuses every write at once
        /// ([`FencedWrite::Expired`](crate::FencedWrite::Expired), no round
        /// trip).
        ///
        /// ```no_run
        /// use mongodb::bson::{doc, Document};
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// let jobs = db.collection::<Document>("jobs");
        /// let written = guard.fenced(&jobs).upsert_one(doc! { "_id": "nightly" }, doc! { "$set": { "state": "done" } })?;
        /// println!("applied: {}", written.applied());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn fenced<'a, T: Send + Sync>(
            &self,
            coll: &'a mongodb::sync::Collection<T>,
        ) -> crate::fenced::Fenced<'a, T> {
            crate::fenced::Fenced::live(coll, self.inner.fence(), self.inner.lease_view())
        }

        /// When the lease expires in server time, unless renewed (the last
        /// expiry known, once the lease is gone).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// println!("held until {}", guard.expires_at());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn expires_at(&self) -> chrono::DateTime<chrono::Utc> {
            self.inner.expires_at()
        }

        #[doc = concat!("Whether the holder may still act on the ", $what, ": it still holds this grant and its")]
        /// local deadline (the monotonic instant the last grant or renewal
        /// was sent, plus the ttl, minus
        /// [`lease_margin`](crate::lease_margin)) has not passed. No I/O.
        /// It turns false before the server could grant it to anyone else.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// assert!(guard.is_valid());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_valid(&self) -> bool {
            self.inner.is_valid()
        }

        /// The local deadline: the monotonic instant until which
        /// [`is_valid`](Self::is_valid) says true (unless renewed or lost
        /// meanwhile). No I/O.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// let left = guard.deadline().saturating_duration_since(std::time::Instant::now());
        /// println!("{left:?} left before renewing");
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn deadline(&self) -> std::time::Instant {
            self.inner.deadline()
        }

        #[doc = concat!("A receiver that gets exactly one [`LossReason`](crate::LossReason) when this ", $what, " ends")]
        /// other than by its own release:
        ///
        /// - [`RenewalFailed`](crate::LossReason::RenewalFailed) at the
        ///   local deadline (see [`is_valid`](Self::is_valid)), with or
        ///   without keep-alive, when no renewal succeeded before it (sent
        ///   by a process-wide thread, on time even while a renewal is stuck
        ///   on an unresponsive server);
        /// - [`TakenOver`](crate::LossReason::TakenOver) when a renewal
        ///   (automatic or [`touch`](Self::touch)) finds this grant gone
        ///   from the document (forced away, or the document deleted or
        ///   edited by someone else).
        ///
        /// After the message it is disconnected. When the guard is released
        /// or dropped first, it is disconnected without a message. Take as
        /// many receivers as you like: each gets the message; one taken
        /// after the loss gets it at once. Once lost, the grant never
        /// becomes valid again: acquire anew.
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// let lost = guard.lost();
        /// let work = crossbeam_channel::tick(std::time::Duration::from_secs(1));
        /// for _ in 0..60 {
        ///     crossbeam_channel::select! {
        ///         recv(lost) -> reason => {
        ///             if let Ok(reason) = reason {
        ///                 eprintln!("lost it: {reason:?}; stopping");
        ///             }
        ///             break;
        ///         }
        ///         recv(work) -> _ => { /* one step of the long job */ }
        ///     }
        /// }
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn lost(&self) -> crossbeam_channel::Receiver<crate::foundation::loss::LossReason> {
            self.inner.lost()
        }

        /// Renews the lease now (one round trip): the new expiry, or `None`
        /// when this grant is no longer in the document (then
        /// [`lost`](Self::lost) receivers get `TakenOver`, unless it was
        /// lost or released already).
        ///
        /// # Errors
        ///
        /// [`Error::Database`](crate::Error::Database) or
        /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// if guard.touch()?.is_none() {
        ///     println!("lost it");
        /// }
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn touch(&self) -> crate::error::Result<Option<chrono::DateTime<chrono::Utc>>> {
            self.inner.touch()
        }

        #[doc = concat!("Releases the ", $what, " now (one round trip), reporting errors that dropping it could only log.")]
        /// Releasing a grant that has expired or was taken away frees
        /// nothing and is not an error. Renewals stop and
        /// [`lost`](Self::lost) receivers are disconnected at once; waiters
        /// on the key are woken. (A lock built with
        /// [`hold_at_least`](crate::LockerBuilder::hold_at_least) stays
        /// unavailable to others until the hold ends.)
        ///
        /// # Errors
        ///
        /// [`Error::Database`](crate::Error::Database) or
        /// [`Error::MalformedDocument`](crate::Error::MalformedDocument).
        ///
        /// ```no_run
        /// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
        #[doc = $setup]
        /// guard.release()?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn release(self) -> crate::error::Result<()> {
            self.inner.release()
        }
    };
}

pub(crate) use guard_methods;
