//! The stream's thread, and what of a change event it reads: which
//! events can matter to a waiter, the server-side filter, the key.

use mongodb::bson::{doc, Bson, Document};
use mongodb::change_stream::event::{ChangeStreamEvent, OperationType};

use super::{Change, Hub, StreamState, AWAIT};
use crate::foundation::document::{FENCE, TS_RELEASED, UUID};
use crate::foundation::single::document::{LOCKED, RUN};

/// Whether an event can make a waiter's next attempt succeed: the lock was
/// created, replaced, deleted, released or taken by someone new; a share of
/// a many-holder document was released or an intent withdrawn (both set
/// `ts_released`), or granted (`fence`). A renewal (only `ts_expire`
/// changes, at the top or inside `holders`) cannot.
pub(super) fn relevant(event: &ChangeStreamEvent<Document>) -> bool {
    match event.operation_type {
        OperationType::Update => event.update_description.as_ref().is_none_or(|d| {
            [LOCKED, UUID, FENCE, TS_RELEASED].iter().any(|f| {
                d.updated_fields.contains_key(*f) || d.removed_fields.iter().any(|r| r == f)
            })
        }),
        _ => true,
    }
}

/// The stream's `$match`: what [`relevant`] keeps, decided by the server,
/// so that a master's renewals (every ttl/3) do not make the getMore
/// return early and cost a command each.
pub(super) fn stream_filter() -> Document {
    let fields = [LOCKED, UUID, FENCE, TS_RELEASED];
    let mut changed: Vec<Bson> = fields
        .iter()
        .map(|f| {
            Bson::Document(
                doc! { format!("updateDescription.updatedFields.{f}"): { "$exists": true } },
            )
        })
        .collect();
    changed.push(Bson::Document(
        doc! { "updateDescription.removedFields": { "$in": fields.to_vec() } },
    ));
    // Keys are strings: a document with another `_id` (the fence floor
    // of the Python-compatible mode) wakes nobody.
    doc! { "$match": {
        "documentKey._id": { "$type": "string" },
        "$or": [
            { "operationType": { "$in": ["insert", "replace", "delete"] } },
            { "operationType": "update", "$or": changed },
        ],
    }}
}

/// What the event did to who holds the lock: an update that frees it
/// (`locked: false`) is [`Change::Unknown`] (any waiter may take it), one
/// that sets `run` (a grant, a handover) is [`Change::To`] that call, and
/// any other update keeps the holder; a replaced or inserted document is
/// read the same way from its full document; a delete is unknown.
pub(super) fn change_of(event: &ChangeStreamEvent<Document>) -> Change<'_> {
    let after = match event.operation_type {
        OperationType::Update => event
            .update_description
            .as_ref()
            .map(|d| (&d.updated_fields, false)),
        OperationType::Replace | OperationType::Insert => {
            event.full_document.as_ref().map(|d| (d, true))
        }
        _ => None,
    };
    let Some((after, whole)) = after else {
        return Change::Unknown;
    };
    match (after.get_bool(LOCKED), after.get_str(RUN)) {
        (Ok(false), _) => Change::Unknown,
        (_, Ok(run)) => Change::To(run),
        // A whole document that is not locked is free.
        (Err(_), _) if whole => Change::Unknown,
        _ => Change::Kept,
    }
}

pub(super) fn key_of(event: &ChangeStreamEvent<Document>) -> Option<String> {
    match event.document_key.as_ref()?.get("_id")? {
        Bson::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Errors that reopening will not cure: no change streams on this server
/// (40573: standalone; 40324: unknown stage; 115: command not supported;
/// 20: illegal operation) or not allowed to open one (13: unauthorized).
pub(super) fn unsupported(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, mongodb::error::ErrorKind::Command(c) if [40573, 40324, 115, 20, 13].contains(&c.code))
}

/// The stream's thread: open, deliver, reopen after errors (a pause
/// first); end once no waiter is left at the end of a `getMore`, or when
/// the server cannot stream.
pub(super) fn run(hub: &Hub) {
    let coll = &hub.coll;
    loop {
        // Asked before and after the wait: a thread with no waiter left
        // ends at once, and one whose waiters left while it waited opens
        // nothing.
        if hub.end_if_unwanted() {
            return;
        }
        hub.wait_turn();
        if hub.end_if_unwanted() {
            return;
        }
        hub.deployment.record_stream_open(coll.name());
        let pipeline = [stream_filter()];
        let mut stream = match coll.watch().pipeline(pipeline).max_await_time(AWAIT).run() {
            Ok(stream) => stream,
            Err(e) if unsupported(&e) => {
                log::info!(
                    "`{}`: no change streams here; waiters poll: {e}",
                    coll.name()
                );
                let mut st = hub.state.lock();
                st.stream = StreamState::Unsupported;
                st.running = false;
                hub.changed.notify_all();
                return;
            }
            Err(e) => {
                log::debug!(
                    "`{}`: change stream failed to open; polling: {e}",
                    coll.name()
                );
                hub.set(StreamState::Down);
                continue;
            }
        };
        {
            // Changes made while the stream was down or opening were not
            // seen: wake every waiter for one more look.
            let mut st = hub.state.lock();
            st.stream = StreamState::Live;
            for k in st.keys.values_mut() {
                k.change(Change::Unknown);
            }
            hub.changed.notify_all();
        }
        let mut failed = false;
        while hub.wanted() {
            match stream.next_if_any() {
                Ok(Some(event)) if event.operation_type == OperationType::Invalidate => {
                    log::debug!("`{}`: change stream invalidated; reopening", coll.name());
                    failed = true;
                    break;
                }
                // A cursor the server closed (its collection dropped, say)
                // answers at once with nothing: reopen instead of spinning.
                Ok(None) if !stream.is_alive() => {
                    log::debug!("`{}`: change stream closed; reopening", coll.name());
                    failed = true;
                    break;
                }
                Ok(Some(event)) => {
                    if let Some(key) = key_of(&event).filter(|_| relevant(&event)) {
                        hub.changed_key(&key, change_of(&event));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    log::debug!(
                        "`{}`: change stream lost; polling until reopened: {e}",
                        coll.name()
                    );
                    failed = true;
                    break;
                }
            }
        }
        // Closed (killCursors) before the thread can end and another open
        // one: one cursor at a time.
        drop(stream);
        if failed {
            hub.set(StreamState::Down);
        }
    }
}
