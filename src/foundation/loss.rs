//! [`LossReason`]: why a lease ended other than by its holder's own
//! release, shared by the elector (`LostMaster`) and the lock
//! ([`LockGuard::lost`](crate::LockGuard::lost)).

/// Why a master stopped being master, or why a lock acquisition was lost.
///
/// A [`LockGuard::lost`](crate::LockGuard::lost) receiver only ever gets
/// [`RenewalFailed`](Self::RenewalFailed) or [`TakenOver`](Self::TakenOver):
/// a lock's own release disconnects it without a message.
///
/// ```
/// use mongoelector::LossReason;
///
/// fn explain(reason: LossReason) -> &'static str {
///     match reason {
///         LossReason::RenewalFailed => "could not renew in time",
///         LossReason::TakenOver => "someone else holds it now",
///         LossReason::Stopped | LossReason::Released => "let go on purpose",
///     }
/// }
/// assert_eq!(explain(LossReason::TakenOver), "someone else holds it now");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// [`MongoElector::stop`](crate::MongoElector::stop) was called (or the
    /// elector was dropped); the lock was released.
    Stopped,
    /// [`MongoElector::release`](crate::MongoElector::release) was called;
    /// the lock was released.
    Released,
    /// No renewal succeeded before the local lease deadline (database
    /// unreachable, errors, or a pause): stepped down (or, for a lock, the
    /// acquisition ended) before the server could grant the lock to another
    /// node.
    RenewalFailed,
    /// A renewal found that the lock no longer names this acquisition:
    /// another node or locker took it (by force, or after it expired), or
    /// it was released by force.
    TakenOver,
}
