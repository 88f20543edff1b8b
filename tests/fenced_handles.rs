//! A fenced handle ends with the tenure or term it was made under: once
//! the guard is released or dropped, its lease lost, or the elector
//! stopped, stepped down or released, every write through the handle is
//! refused at once (`FencedWrite::Expired`) without a round trip. And an
//! upsert's filter must pin `_id` to one plain value: a pattern or an
//! operator is refused before anything is sent. Against the real server.

mod common;

use std::time::{Duration, Instant};

use common::{monitored_client, Commands};
use mongodb::bson::{doc, Bson, Document, Regex};
use mongodb::sync::{Collection, Database};
use mongoelector::{
    Error, Event, Fenced, FencedWrite, MongoElector, MongoLocker, MongoRwLock, MongoSemaphore,
};

/// What one write through `fenced` answers, and how many commands it sent.
fn write_counted(
    commands: &Commands,
    fenced: &Fenced<'_, Document>,
) -> (mongoelector::Result<FencedWrite>, usize) {
    commands.take();
    let written = fenced.upsert_one(doc! { "_id": "r" }, doc! { "$inc": { "n": 1 } });
    (written, commands.take().len())
}

fn refused_locally(commands: &Commands, fenced: &Fenced<'_, Document>, what: &str) {
    let (written, sent) = write_counted(commands, fenced);
    assert_eq!(written.unwrap(), FencedWrite::Expired, "{what}");
    assert_eq!(sent, 0, "{what}: refused without a round trip");
}

fn setup() -> (Database, Collection<Document>, Commands) {
    let (client, commands) = monitored_client();
    let db = common::fresh_db(&client);
    let coll = db.collection::<Document>("res");
    (db, coll, commands)
}

#[test]
fn a_lock_guards_handle_ends_with_its_release_its_drop_and_its_loss() {
    let (db, coll, commands) = setup();
    let locker = MongoLocker::builder("k", &db)
        .ttl(Duration::from_millis(600))
        .timeparanoid(false)
        .build()
        .unwrap();
    let guard = locker.lock().unwrap();
    let fenced = guard.fenced(&coll);
    let (written, _) = write_counted(&commands, &fenced);
    assert!(written.unwrap().applied(), "while held");
    guard.release().unwrap();
    refused_locally(&commands, &fenced, "after release");

    let guard = locker.lock().unwrap();
    let fenced = guard.fenced(&coll);
    drop(guard);
    refused_locally(&commands, &fenced, "after drop");

    // Not renewed: past its local deadline the lease is lost, though the
    // server's expiry is a little later still.
    let guard = locker.lock().unwrap();
    let fenced = guard.fenced(&coll);
    let deadline = guard.deadline();
    while Instant::now() <= deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    refused_locally(&commands, &fenced, "past the local deadline");
    drop(guard);
}

#[test]
fn a_permits_and_a_write_guards_handles_end_with_them() {
    let (db, coll, commands) = setup();
    let sem = MongoSemaphore::builder("s", &db, 2)
        .timeparanoid(false)
        .build()
        .unwrap();
    let permit = sem.try_acquire().unwrap().unwrap();
    let fenced = permit.fenced(&coll);
    assert!(write_counted(&commands, &fenced).0.unwrap().applied());
    permit.release().unwrap();
    refused_locally(&commands, &fenced, "a released permit");

    let rw = MongoRwLock::builder("w", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    let writer = rw.try_write().unwrap().unwrap();
    let fenced = writer.fenced(&coll);
    assert!(write_counted(&commands, &fenced).0.unwrap().applied());
    drop(writer);
    refused_locally(&commands, &fenced, "a dropped write guard");
}

fn master(db: &Database) -> (MongoElector, i64) {
    let elector = MongoElector::builder("m", db)
        .ttl(Duration::from_secs(3))
        .timeparanoid(false)
        .build()
        .unwrap();
    let events = elector.events();
    elector.start(false).unwrap();
    loop {
        if let Event::BecameMaster { fence, .. } =
            events.recv_timeout(Duration::from_secs(20)).unwrap()
        {
            return (elector, fence);
        }
    }
}

#[test]
fn an_electors_handle_ends_with_its_term() {
    let (db, coll, commands) = setup();
    type End = fn(&MongoElector);
    let ends: [(&str, End); 3] = [
        ("stop", |e| e.stop().unwrap()),
        ("release", |e| e.release().unwrap()),
        ("step_down", |e| {
            e.step_down(Duration::from_secs(60)).unwrap()
        }),
    ];
    for (what, end) in ends {
        let (elector, fence) = master(&db);
        let fenced = elector.fenced(&coll).unwrap();
        assert_eq!(fenced.fence(), fence);
        assert!(
            write_counted(&commands, &fenced).0.unwrap().applied(),
            "{what}: master"
        );
        end(&elector);
        refused_locally(&commands, &fenced, what);
        elector.stop().unwrap();
        // The next term's writes carry a greater fence: let it be anyone's.
        db.collection::<Document>("res")
            .delete_many(doc! {})
            .run()
            .unwrap();
    }
    let _ = coll;
}

#[test]
fn an_upsert_whose_id_is_a_pattern_or_an_operator_is_refused_and_creates_nothing() {
    let (db, coll, commands) = setup();
    let locker = MongoLocker::builder("k", &db)
        .timeparanoid(false)
        .build()
        .unwrap();
    let guard = locker.lock().unwrap();
    let regex = || {
        Bson::RegularExpression(Regex {
            pattern: "^daily$".into(),
            options: String::new(),
        })
    };
    let filters = [
        doc! { "_id": regex() },
        doc! { "_id": { "$eq": regex() } },
        doc! { "_id": { "$regex": "^daily$" } },
        doc! { "_id": { "$in": ["daily"] } },
        doc! { "_id": { "day": { "$gt": 1 } } },
        doc! { "_id": ["daily"] },
    ];
    for filter in filters {
        commands.take();
        let got = guard
            .fenced(&coll)
            .upsert_one(filter.clone(), doc! { "$set": { "done": true } });
        assert!(
            matches!(
                got,
                Err(Error::InvalidArgument {
                    parameter: "filter",
                    ..
                })
            ),
            "{filter}: {got:?}"
        );
        assert!(commands.take().is_empty(), "{filter}: nothing sent");
    }
    assert_eq!(coll.count_documents(doc! {}).run().unwrap(), 0);
    // A plain id is fine.
    let written = guard
        .fenced(&coll)
        .upsert_one(doc! { "_id": "daily" }, doc! { "$set": { "done": true } })
        .unwrap();
    assert!(written.applied());
}
