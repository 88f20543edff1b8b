//! What an elector reports, and how it reaches every receiver without ever
//! blocking the elector or growing without bound.

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender};

use crate::elector::role::LossReason;
use crate::error::Error;
use crate::limits::POLL_EVENT_BACKLOG;

/// Something an elector reports on its [`events`](crate::MongoElector::events) channel.
///
/// `BecameMaster` and `LostMaster` strictly alternate and are never dropped.
/// `Polled` (one per poll, the Python package's `onloop`) and `PollFailed`
/// may be dropped while a receiver has [`POLL_EVENT_BACKLOG`] of them unread.
///
/// ```no_run
/// use mongoelector::{Event, MongoElector};
/// # let db = mongodb::sync::Client::with_uri_str("mongodb://127.0.0.1:27017/")?.database("app");
/// let elector = MongoElector::new("scheduler", &db)?;
/// let events = elector.events();
/// elector.start(false)?;
/// for event in events.iter() {
///     match event {
///         Event::BecameMaster { fence, .. } => println!("master now, fence {fence}"),
///         Event::LostMaster { reason, .. } => println!("not master any more: {reason:?}"),
///         Event::PollFailed { error } => eprintln!("poll failed: {error}"),
///         _ => {}
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// This node became master.
    BecameMaster {
        /// The fence token of its acquisition: greater than every earlier one.
        fence: i64,
        /// Server time at which the lease expires unless renewed.
        expires: DateTime<Utc>,
    },
    /// This node stopped being master.
    LostMaster {
        /// The fence token of the acquisition that ended.
        fence: i64,
        /// Why.
        reason: LossReason,
    },
    /// A poll finished (successfully or not).
    Polled {
        /// Whether this node is master after the poll.
        is_master: bool,
        /// The master's uuid as this poll saw it, when it saw one.
        master: Option<String>,
        /// Poll reports dropped for this receiver since its last `Polled`,
        /// because it had not read them.
        missed: u64,
    },
    /// A poll failed; it is retried at the next interval.
    PollFailed {
        /// What went wrong.
        error: Error,
    },
}

impl Event {
    fn is_transition(&self) -> bool {
        matches!(self, Event::BecameMaster { .. } | Event::LostMaster { .. })
    }
}

struct Subscriber {
    tx: Sender<Event>,
    missed: u64,
}

/// Every receiver handed out, each fed by its own unbounded channel.
#[derive(Default)]
pub(crate) struct Subscribers {
    subs: Vec<Subscriber>,
}

impl Subscribers {
    pub fn subscribe(&mut self) -> Receiver<Event> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.subs.push(Subscriber { tx, missed: 0 });
        rx
    }

    /// Sends to every receiver without blocking; forgets dropped receivers.
    pub fn send(&mut self, event: Event) {
        let transition = event.is_transition();
        self.subs.retain_mut(|sub| {
            let event = match &event {
                _ if transition => event.clone(),
                _ if sub.tx.len() >= POLL_EVENT_BACKLOG => {
                    sub.missed += 1;
                    return true;
                }
                Event::Polled {
                    is_master, master, ..
                } => Event::Polled {
                    is_master: *is_master,
                    master: master.clone(),
                    missed: std::mem::take(&mut sub.missed),
                },
                other => other.clone(),
            };
            sub.tx.send(event).is_ok()
        });
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.subs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elector::role::LossReason;

    fn polled() -> Event {
        Event::Polled {
            is_master: false,
            master: None,
            missed: 0,
        }
    }

    #[test]
    fn unread_polls_are_capped_and_counted_transitions_kept() {
        let mut subs = Subscribers::default();
        let rx = subs.subscribe();
        for _ in 0..1000 {
            subs.send(polled());
        }
        subs.send(Event::LostMaster {
            fence: 1,
            reason: LossReason::Stopped,
        });
        assert_eq!(rx.len(), POLL_EVENT_BACKLOG + 1);
        let drained: Vec<Event> = rx.try_iter().collect();
        assert!(matches!(drained.last(), Some(Event::LostMaster { .. })));
        subs.send(polled());
        match rx.try_recv().unwrap() {
            Event::Polled { missed, .. } => {
                assert_eq!(missed, 1000 - POLL_EVENT_BACKLOG as u64)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_receiver_gets_everything_from_then_on_and_dropped_ones_are_forgotten() {
        let mut subs = Subscribers::default();
        let first = subs.subscribe();
        subs.send(polled());
        let second = subs.subscribe();
        subs.send(polled());
        assert_eq!((first.len(), second.len()), (2, 1));
        drop(first);
        subs.send(polled());
        assert_eq!(subs.len(), 1);
        assert_eq!(second.len(), 2);
    }
}
