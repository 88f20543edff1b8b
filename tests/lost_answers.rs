//! Attempts the server applied but whose answer the caller never had: a
//! refusal that returns an earlier attempt's (dead) entry hands out no
//! lease, and a call that ends without a grant takes back what its
//! attempts left, so another holder need not wait ttl + grace. Against the
//! real server, with its `failCommand` fail point: the command runs, then
//! the reply carries a write concern error (as a lost acknowledgement).
//!
//! The fail point is one per server, so these tests take turns.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{fresh_db, uri};
use mongodb::bson::{doc, Bson, DateTime as BsonDate, Document};
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Database};
use mongoelector::{MongoLocker, MongoRwLock, MongoSemaphore};

static FAIL_POINT: Mutex<()> = Mutex::new(());

/// A client whose commands name application `app` (what the fail point
/// is scoped to).
fn client_named(app: &str) -> Client {
    let mut options = ClientOptions::parse(uri()).run().unwrap();
    options.app_name = Some(app.to_owned());
    Client::with_options(options).unwrap()
}

/// The fail point, for as long as the guard lives: the `findAndModify`s of
/// application `app` (`times` of them, or every one) run, then answer with
/// a write concern error of `code` and no retry label (so the driver does
/// not retry it on its own; the crate sees code 89, a network timeout, as transient; a
/// not-primary or shutting-down code would also make the driver forget the
/// server until its next heartbeat).
struct FailPoint(Client);

impl FailPoint {
    fn on(app: &str, times: Option<i32>, code: i32) -> FailPoint {
        let admin = common::client();
        let mode = match times {
            Some(n) => Bson::Document(doc! { "times": n }),
            None => Bson::String("alwaysOn".into()),
        };
        admin
            .database("admin")
            .run_command(doc! {
                "configureFailPoint": "failCommand",
                "mode": mode,
                "data": {
                    "failCommands": ["findAndModify"],
                    "appName": app,
                    "writeConcernError": { "code": code, "errmsg": "acknowledgement lost (test)" },
                    "errorLabels": [],
                },
            })
            .run()
            .expect("the server has the failCommand fail point");
        FailPoint(admin)
    }
}

impl Drop for FailPoint {
    fn drop(&mut self) {
        let _ = self
            .0
            .database("admin")
            .run_command(doc! { "configureFailPoint": "failCommand", "mode": "off" })
            .run();
    }
}

fn doc_of(db: &Database, collection: &str, key: &str) -> Option<Document> {
    db.collection::<Document>(collection)
        .find_one(doc! { "_id": key })
        .run()
        .unwrap()
}

fn holders(d: &Option<Document>) -> Vec<Document> {
    d.as_ref()
        .and_then(|d| d.get_array("holders").ok())
        .map(|a| a.iter().filter_map(|h| h.as_document().cloned()).collect())
        .unwrap_or_default()
}

#[test]
fn a_refusal_that_returns_a_dead_entry_of_its_own_grant_hands_out_nothing() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let client = client_named(&app);
    let db = fresh_db(&client);
    // A short lease, a long pause between attempts, and no change stream:
    // the reader's second attempt comes well after its first entry died.
    let reader = MongoRwLock::builder("k", &db)
        .ttl(Duration::from_millis(200))
        .takeover_grace(Duration::from_millis(20))
        .step(Duration::from_millis(1500))
        .change_streams(false)
        .timeparanoid(false)
        .build()
        .unwrap();
    let _fail = FailPoint::on(&app, Some(1), 89);
    let waiting = std::thread::spawn(move || {
        let got = reader.try_read_for(Duration::from_millis(2500)).unwrap();
        got.map(|g| (g.fence(), g.is_valid()))
    });
    // The first attempt was applied (its entry is there), its answer lost.
    let check = common::db_of(&db);
    let seen = Instant::now();
    while holders(&doc_of(&check, "mongorwlock", "k")).is_empty() {
        assert!(seen.elapsed() < Duration::from_secs(5), "no entry appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Past its expiry and grace, a writer's intent makes every later
    // attempt of the reader a refusal, which returns the dead entry.
    std::thread::sleep(Duration::from_millis(400));
    let until = BsonDate::from_millis(BsonDate::now().timestamp_millis() + 60_000);
    check
        .collection::<Document>("mongorwlock")
        .update_one(
            doc! { "_id": "k" },
            doc! { "$set": { "intent": { "uuid": "a-writer", "ts_expire": until } } },
        )
        .run()
        .unwrap();
    let got = waiting.join().unwrap();
    assert_eq!(
        got, None,
        "a reader was handed its own dead entry as a lease (fence, valid)"
    );
    // And the call took its entry back.
    assert!(
        holders(&doc_of(&check, "mongorwlock", "k")).is_empty(),
        "{:?}",
        doc_of(&check, "mongorwlock", "k")
    );
}

#[test]
fn a_permit_whose_answer_was_lost_is_taken_back_at_once() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let db = fresh_db(&client_named(&app));
    let sem = MongoSemaphore::builder("k", &db, 1)
        .ttl(Duration::from_secs(600))
        .timeparanoid(false)
        .build()
        .unwrap();
    {
        // Not transient (64: a write concern timeout): the call ends at once.
        let _fail = FailPoint::on(&app, Some(1), 64);
        assert!(sem.try_acquire().is_err(), "the lost answer is an error");
    }
    let other = MongoSemaphore::builder("k", &common::db_of(&db), 1)
        .timeparanoid(false)
        .build()
        .unwrap();
    let permit = other.try_acquire().unwrap();
    assert!(
        permit.is_some(),
        "the permit stays taken by an attempt nobody holds: {:?}",
        doc_of(&db, "mongosemaphore", "k")
    );
}

#[test]
fn a_write_lock_tried_until_the_timeout_through_lost_answers_is_taken_back() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let db = fresh_db(&client_named(&app));
    let lock = MongoRwLock::builder("k", &db)
        .ttl(Duration::from_secs(600))
        .step(Duration::from_millis(50))
        .timeparanoid(false)
        .build()
        .unwrap();
    {
        // Transient (89): every attempt is applied and retried until the
        // timeout, which returns the last error.
        let _fail = FailPoint::on(&app, None, 89);
        let got = lock.try_write_for(Duration::from_millis(400));
        assert!(got.is_err(), "{got:?}");
    }
    assert!(
        holders(&doc_of(&db, "mongorwlock", "k")).is_empty(),
        "{:?}",
        doc_of(&db, "mongorwlock", "k")
    );
    let other = MongoRwLock::builder("k", &common::db_of(&db))
        .timeparanoid(false)
        .build()
        .unwrap();
    assert!(other.try_write().unwrap().is_some());
}

#[test]
fn a_lock_whose_answer_was_lost_is_taken_back_at_once() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let db = fresh_db(&client_named(&app));
    let locker = MongoLocker::builder("k", &db)
        .ttl(Duration::from_secs(600))
        .timeparanoid(false)
        .build()
        .unwrap();
    {
        let _fail = FailPoint::on(&app, Some(1), 64);
        assert!(locker.try_lock().is_err());
    }
    let other = MongoLocker::builder("k", &common::db_of(&db))
        .timeparanoid(false)
        .build()
        .unwrap();
    let guard = other.try_lock().unwrap();
    assert!(
        guard.is_some(),
        "the lock stays taken by an attempt nobody holds: {:?}",
        doc_of(&db, "mongolocker", "k")
    );
    assert!(locker.try_lock().unwrap().is_none(), "held by the other");
}

/// A locker `L` with `hold` on a client named `app` whose commands are
/// recorded, and another locker on the same key and database.
fn pair(
    app: &str,
    hold: Duration,
    ttl: Duration,
) -> (MongoLocker, MongoLocker, common::Commands, Database) {
    let commands = common::Commands::default();
    let sink = commands.clone();
    let mut options = ClientOptions::parse(uri()).run().unwrap();
    options.app_name = Some(app.to_owned());
    options.command_event_handler = Some(mongodb::event::EventHandler::callback(
        move |ev: mongodb::event::command::CommandEvent| {
            if let mongodb::event::command::CommandEvent::Started(s) = ev {
                sink.push(&s.command_name, s.command.clone());
            }
        },
    ));
    let db = fresh_db(&Client::with_options(options).unwrap());
    let l = MongoLocker::builder("k", &db)
        .ttl(ttl)
        .hold_at_least(hold)
        .timeparanoid(false)
        .build()
        .unwrap();
    let other_db = common::db_of(&db);
    let other = MongoLocker::builder("k", &other_db)
        .timeparanoid(false)
        .build()
        .unwrap();
    (l, other, commands, other_db)
}

#[test]
fn a_late_take_back_never_frees_a_later_acquisition() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let (l, other, commands, other_db) = pair(&app, Duration::ZERO, Duration::from_secs(600));
    {
        let _fail = FailPoint::on(&app, Some(1), 64);
        assert!(l.try_lock().is_err());
    }
    // The take-back that call sent, as the server got it.
    let sent = commands.take();
    let (_, take_back) = sent
        .iter()
        .rev()
        .find(|(name, _)| name == "findAndModify")
        .cloned()
        .expect("a take-back after the lost answer");
    let guard = l.lock().unwrap();
    // The same take-back again, arriving late (a stalled or repeated
    // delivery): it must not free the acquisition made since.
    let mut again = take_back.clone();
    for field in ["lsid", "txnNumber", "$clusterTime", "$db"] {
        again.remove(field);
    }
    other_db.run_command(again).run().unwrap();
    assert!(guard.is_valid());
    assert!(
        other.try_lock().unwrap().is_none(),
        "a late take-back freed a later acquisition: {take_back}"
    );
}

#[test]
fn a_take_back_keeps_the_hold_of_an_earlier_acquisition() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let (l, other, _, _) = pair(&app, Duration::from_secs(20), Duration::from_secs(30));
    l.lock().unwrap().release().unwrap(); // held until 20 s after it was taken
    {
        let _fail = FailPoint::on(&app, Some(1), 64);
        assert!(l.try_lock().is_err(), "the retake's answer is lost");
    }
    assert!(
        other.try_lock().unwrap().is_none(),
        "the take-back cut the hold short"
    );
}

#[test]
fn a_take_back_keeps_an_unreleased_earlier_lease_until_its_expiry() {
    let _turn = FAIL_POINT.lock().unwrap_or_else(|e| e.into_inner());
    let app = format!("lost-{}", uuid::Uuid::new_v4().simple());
    let ttl = Duration::from_secs(5);
    let (l, other, _, _) = pair(&app, Duration::ZERO, ttl);
    // Taken, never released, past its local deadline (ttl minus 0.5 s)
    // but not yet its server expiry: a write of it may be on its way.
    let guard = l.lock().unwrap();
    let expires = guard.expires_at();
    while guard.is_valid() {
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        // Another call of the same locker: retakes the lock, answer lost.
        let _fail = FailPoint::on(&app, Some(1), 64);
        assert!(l.try_lock().is_err());
    }
    if chrono::Utc::now() < expires {
        assert!(
            other.try_lock().unwrap().is_none(),
            "taken back before the unreleased lease's expiry"
        );
    }
    // After the expiry and the grace, the key is free.
    let free_at = expires + chrono::TimeDelta::milliseconds(1500);
    while chrono::Utc::now() < free_at {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(other.try_lock().unwrap().is_some());
    drop(guard);
}
