//! One poll of the engine: renew as master; as follower, try to take the
//! lock (or first look whether it can be taken); apply the answer to the
//! role; report status; announce it all as events.

use std::time::Instant;

use chrono::Utc;

use super::{Ask, Engine, NOT_ACQUIRED};
use crate::elector::cadence::HolderDue;
use crate::elector::events::Event;
use crate::elector::role::{self, Holder, Outcome, Role};
use crate::error::Result;
use crate::foundation::lease::as_delta;
use crate::foundation::meter;
use crate::foundation::moment::Moment;
use crate::foundation::single::document::LockRecord;

impl Engine {
    /// One poll as `MongoElector::poll` documents it: an acquire attempt
    /// (or renewal), then a status report when reports are on.
    pub fn poll(&self) -> Result<()> {
        self.poll_with(Ask::Attempt, self.report)
    }

    /// One poll: renew as master; as follower, `ask` says whether to try
    /// to take the lock or first look whether it can be taken. Then report
    /// status when `report`.
    pub fn poll_with(&self, ask: Ask, report: bool) -> Result<()> {
        let _serial = self.poll_lock.lock();
        let (polled_as, surrenders) = {
            let mut st = self.state.lock();
            self.expire(&mut st);
            (st.role, st.surrenders)
        };
        let sent = Moment::now();
        let sent_at = Instant::now();
        let answer = meter::timed(&self.meter, "poll", || self.poll_round_trip(polled_as, ask));
        let master = answer
            .as_ref()
            .ok()
            .and_then(Outcome::holder)
            .map(|h| h.uuid.clone());
        {
            let mut st = self.state.lock();
            let mut outcome = answer.as_ref().unwrap_or(&Outcome::Failed);
            // A stop, release or step-down came while this poll was in
            // flight: what it won is not announced (so no `BecameMaster`
            // follows the caller's return); that surrender's release frees it.
            if let Outcome::Acquired { fence, .. } = outcome {
                if self.stop_requested() || st.surrenders != surrenders {
                    st.unannounced.push(*fence);
                    outcome = &NOT_ACQUIRED;
                }
            }
            st.last_sent = Some(sent_at);
            let grace = self.locks.grace();
            // A stored expiry beyond what an `Instant` can hold (a damaged
            // document) is no due time at all: the retry interval applies.
            st.holder_due = outcome.holder().and_then(|h| match h.takeable_in {
                Some(left) => sent_at.checked_add(left).map(HolderDue::Known),
                None => (h.expires - Utc::now())
                    .checked_add(&as_delta(grace))
                    .map(HolderDue::Estimated),
            });
            let change =
                role::after_poll(st.role, polled_as, outcome, sent, self.ttl, Moment::now());
            self.apply(&mut st, change);
            st.last_poll = Some(Utc::now());
            st.stats.polls += 1;
            if answer.is_ok() {
                st.stats.last_success = Some(sent_at);
            }
        }
        let result = answer.and_then(|_| if report { self.report_status() } else { Ok(()) });
        let mut st = self.state.lock();
        if let Err(error) = &result {
            st.stats.poll_failures += 1;
            self.meter.poll_failed();
            log::warn!("`{}`: poll failed: {error}", self.key);
            st.subscribers.send(Event::PollFailed {
                error: error.clone().during("poll", &self.key),
            });
        }
        // Judged now, under the lock that orders events, so a `Polled`
        // never contradicts a `LostMaster` sent before it.
        self.expire(&mut st);
        let is_master = st.role.live_lease(Moment::now()).is_some();
        let master = if is_master {
            Some(self.owner.uuid.clone())
        } else {
            master
        };
        st.subscribers.send(Event::Polled {
            is_master,
            master,
            missed: 0,
        });
        result
    }

    /// The poll's one round trip: renew as master, try to take as follower.
    fn poll_round_trip(&self, polled_as: Role, ask: Ask) -> Result<Outcome> {
        match polled_as {
            Role::Master(lease) => Ok(
                match self
                    .locks
                    .touch(&self.key, &self.owner.uuid, lease.fence, self.ttl)?
                {
                    Some(expires) => Outcome::Renewed { expires },
                    None => Outcome::NotRenewed,
                },
            ),
            Role::Follower => {
                // Held off by `step_down`: only look, never take.
                if self.held_off_until().is_some() {
                    return Ok(Outcome::NotAcquired {
                        holder: self.live_holder()?,
                    });
                }
                if ask == Ask::Look {
                    if let Some(holder) = self.live_holder()? {
                        return Ok(Outcome::NotAcquired {
                            holder: Some(holder),
                        });
                    }
                    // Free, or expired past the grace: try at once.
                }
                self.clock.check_if_due(&*self.locks)?;
                let run = self.run.lock().clone();
                let tried =
                    self.locks
                        .try_acquire(&self.key, &self.owner, Some(&run), self.ttl, false)?;
                Ok(match tried {
                    Some(LockRecord::Taken(info)) if info.uuid == self.owner.uuid => {
                        Outcome::Acquired {
                            fence: info.fence,
                            expires: info.expires,
                        }
                    }
                    Some(LockRecord::Taken(info)) => Outcome::NotAcquired {
                        holder: Some(Holder {
                            uuid: info.uuid,
                            expires: info.expires,
                            takeable_in: None,
                        }),
                    },
                    _ => Outcome::NotAcquired { holder: None },
                })
            }
        }
    }

    /// A read of the lock with the server's clock: the other holder, while
    /// it cannot be taken (taken, and not expired past the grace).
    fn live_holder(&self) -> Result<Option<Holder>> {
        let Some((LockRecord::Taken(info), now)) = self.locks.read(&self.key)? else {
            return Ok(None);
        };
        let takeable_in = (info.expires - now + as_delta(self.locks.grace())).to_std();
        Ok(match takeable_in {
            Ok(left) if !left.is_zero() && info.uuid != self.owner.uuid => Some(Holder {
                uuid: info.uuid,
                expires: info.expires,
                takeable_in: Some(left),
            }),
            _ => None,
        })
    }
}
