//! A client whose wall clock is an hour off (libfaketime, Debian `faketime`)
//! never takes a live lock, and with `timeparanoid` on gets the typed error.
//!
//! The skewed client is this same test binary, re-run under `faketime` with
//! the ignored test `skewed_child` selected and its instructions in the
//! environment.

mod common;

use std::process::Command;
use std::time::Duration;

use mongoelector::{Error, MongoLocker};

const STEP: Duration = Duration::from_millis(20);

fn run_skewed(offset: &str, db: &str, key: &str, paranoid: bool) -> String {
    let faketime = which_faketime();
    let out = Command::new(faketime)
        .arg("-f")
        .arg(offset)
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "skewed_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("SKEWED_DB", db)
        .env("SKEWED_KEY", key)
        .env("SKEWED_PARANOID", if paranoid { "1" } else { "0" })
        .output()
        .expect("run the skewed child");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "skewed child failed:\n{stdout}\n{stderr}"
    );
    stdout
}

fn which_faketime() -> &'static str {
    let found = Command::new("faketime").arg("--version").output().is_ok();
    assert!(
        found,
        "`faketime` is not installed: scripts/test.sh installs it (apt-get install faketime)"
    );
    "faketime"
}

/// Run by `run_skewed` only, under faketime.
#[test]
#[ignore = "the child half of the clock-skew tests; run by them under faketime"]
fn skewed_child() {
    let db = common::client().database(&std::env::var("SKEWED_DB").unwrap());
    let key = std::env::var("SKEWED_KEY").unwrap();
    let paranoid = std::env::var("SKEWED_PARANOID").unwrap() == "1";
    let skew = chrono::Utc::now()
        - db.run_command(mongodb::bson::doc! {"hello": 1})
            .run()
            .unwrap()
            .get_datetime("localTime")
            .unwrap()
            .timestamp_millis()
            .pipe(|ms| chrono::DateTime::from_timestamp_millis(ms).unwrap());
    assert!(
        skew.num_minutes().abs() >= 59,
        "faketime did not skew the clock: {skew}"
    );
    let locker = MongoLocker::builder(&key, &db)
        .ttl(Duration::from_secs(2))
        .timeparanoid(paranoid)
        .build()
        .unwrap();
    if paranoid {
        match locker.acquire(false, None, STEP, false) {
            Err(Error::ClockSkew { offset, .. }) => {
                assert!(
                    (offset - skew).num_seconds().abs() <= 2,
                    "{offset} vs {skew}"
                );
                println!("RESULT clock-skew {}", offset.num_seconds());
            }
            other => panic!("expected ClockSkew, got {other:?}"),
        }
        return;
    }
    // The parent holds the lock with a 30 s lease: live, whatever our clock says.
    assert!(locker.locked().unwrap());
    assert!(!locker.owned().unwrap());
    assert!(!locker.acquire(false, None, STEP, false).unwrap());
    assert!(!locker
        .acquire(true, Some(Duration::from_millis(500)), STEP, false)
        .unwrap());
    println!("RESULT refused-live");
    // Our own 2 s lease, written in server time: live for others, then expires.
    locker.release(true).unwrap();
    assert!(locker.acquire(false, None, STEP, false).unwrap());
    let info = locker.get_current().unwrap().unwrap();
    assert_eq!((info.expires - info.created).num_milliseconds(), 2000);
    println!("RESULT acquired {}", info.fence);
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

#[test]
fn client_an_hour_off_never_takes_a_live_lock() {
    let client = common::client();
    let db = common::fresh_db(&client);
    for (i, offset) in ["+1h", "-1h"].into_iter().enumerate() {
        let key = format!("skew{i}");
        let holder = MongoLocker::builder(&key, &db)
            .ttl(Duration::from_secs(30))
            .build()
            .unwrap();
        assert!(holder.acquire(false, None, STEP, false).unwrap());
        let out = run_skewed(offset, db.name(), &key, false);
        assert!(out.contains("RESULT refused-live"), "{out}");
        assert!(out.contains("RESULT acquired"), "{out}");
        // The skewed client's 2 s lease is live for a correct client too.
        let other = MongoLocker::builder(&key, &db)
            .ttl(Duration::from_secs(30))
            .build()
            .unwrap();
        assert!(other.locked().unwrap());
        assert!(!other.acquire(false, None, STEP, false).unwrap());
        assert!(other
            .acquire(true, Some(Duration::from_secs(10)), STEP, false)
            .unwrap());
    }
}

#[test]
fn timeparanoid_reports_the_offset_as_a_typed_error() {
    let client = common::client();
    let db = common::fresh_db(&client);
    for offset in ["+1h", "-1h"] {
        let out = run_skewed(offset, db.name(), "paranoid", true);
        let secs: i64 = out
            .lines()
            .find_map(|l| l.split("RESULT clock-skew ").nth(1))
            .unwrap_or_else(|| panic!("no result: {out}"))
            .trim()
            .parse()
            .unwrap();
        let expected = if offset.starts_with('+') { 3600 } else { -3600 };
        assert!((secs - expected).abs() <= 2, "{offset}: {secs}");
    }
    // Nothing was granted to the skewed client.
    let locker = MongoLocker::new("paranoid", &db).unwrap();
    assert!(!locker.locked().unwrap());
}
