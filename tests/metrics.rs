//! The metrics (feature `metrics`), read by a recorder of the test's own
//! while a lock, a semaphore and an elector go through acquire,
//! contention, loss, failure and stop against the real server: each
//! metric's value, by name and labels.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use mongodb::bson::{doc, Bson};
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Database};
use mongoelector::{Event, MongoElector, MongoLocker, MongoSemaphore};

/// A metric's name and its labels, sorted.
type Id = (String, Vec<(String, String)>);

#[derive(Default)]
struct Values {
    counters: Mutex<BTreeMap<Id, Arc<AtomicU64>>>,
    gauges: Mutex<BTreeMap<Id, Arc<Mutex<f64>>>>,
    histograms: Mutex<BTreeMap<Id, Arc<Mutex<Vec<f64>>>>>,
}

fn id(key: &Key) -> Id {
    let mut labels: Vec<(String, String)> = key
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    labels.sort();
    (key.name().to_owned(), labels)
}

struct Count(Arc<AtomicU64>);
impl CounterFn for Count {
    fn increment(&self, n: u64) {
        self.0.fetch_add(n, Ordering::SeqCst);
    }
    fn absolute(&self, n: u64) {
        self.0.store(n, Ordering::SeqCst);
    }
}

struct Level(Arc<Mutex<f64>>);
impl GaugeFn for Level {
    fn increment(&self, d: f64) {
        *self.0.lock().unwrap() += d;
    }
    fn decrement(&self, d: f64) {
        *self.0.lock().unwrap() -= d;
    }
    fn set(&self, v: f64) {
        *self.0.lock().unwrap() = v;
    }
}

struct Samples(Arc<Mutex<Vec<f64>>>);
impl HistogramFn for Samples {
    fn record(&self, v: f64) {
        self.0.lock().unwrap().push(v);
    }
}

struct TestRecorder(Arc<Values>);

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut all = self.0.counters.lock().unwrap();
        Counter::from_arc(Arc::new(Count(all.entry(id(key)).or_default().clone())))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        let mut all = self.0.gauges.lock().unwrap();
        Gauge::from_arc(Arc::new(Level(all.entry(id(key)).or_default().clone())))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut all = self.0.histograms.lock().unwrap();
        Histogram::from_arc(Arc::new(Samples(all.entry(id(key)).or_default().clone())))
    }
}

/// The process's recorder (one per process: the facade takes one).
fn values() -> &'static Arc<Values> {
    static VALUES: OnceLock<Arc<Values>> = OnceLock::new();
    VALUES.get_or_init(|| {
        let values = Arc::new(Values::default());
        metrics::set_global_recorder(TestRecorder(values.clone())).expect("one recorder");
        values
    })
}

fn labels(primitive: &str, key: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = [("primitive", primitive), ("key", key)]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.sort();
    l
}

fn counter(name: &str, primitive: &str, key: &str, extra: &[(&str, &str)]) -> u64 {
    let id = (name.to_owned(), labels(primitive, key, extra));
    values()
        .counters
        .lock()
        .unwrap()
        .get(&id)
        .map_or(0, |c| c.load(Ordering::SeqCst))
}

fn gauge(name: &str, primitive: &str, key: &str) -> f64 {
    let id = (name.to_owned(), labels(primitive, key, &[]));
    values()
        .gauges
        .lock()
        .unwrap()
        .get(&id)
        .map_or(0.0, |g| *g.lock().unwrap())
}

fn samples(name: &str, primitive: &str, key: &str, extra: &[(&str, &str)]) -> usize {
    let id = (name.to_owned(), labels(primitive, key, extra));
    values()
        .histograms
        .lock()
        .unwrap()
        .get(&id)
        .map_or(0, |h| h.lock().unwrap().len())
}

/// Waits up to 10 s for `f` to hold.
fn eventually(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < end, "never: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

#[test]
fn a_lock_counts_acquisitions_refusals_releases_losses_and_round_trips() {
    values();
    let db = common::db();
    let key = unique("lock");
    let locker = |ttl: Duration| {
        MongoLocker::builder(&key, &db)
            .ttl(ttl)
            .timeparanoid(false)
            .build()
            .unwrap()
    };
    let (a, b) = (
        locker(Duration::from_secs(30)),
        locker(Duration::from_secs(30)),
    );
    let guard = a.lock().unwrap();
    assert_eq!(
        counter("mongoelector_acquisitions_total", "lock", &key, &[]),
        1
    );
    assert_eq!(gauge("mongoelector_held", "lock", &key), 1.0);
    assert_eq!(
        samples("mongoelector_acquire_wait_seconds", "lock", &key, &[]),
        1
    );
    assert!(b.try_lock().unwrap().is_none());
    assert_eq!(counter("mongoelector_refusals_total", "lock", &key, &[]), 1);
    guard.release().unwrap();
    assert_eq!(counter("mongoelector_releases_total", "lock", &key, &[]), 1);
    assert_eq!(gauge("mongoelector_held", "lock", &key), 0.0);
    for op in ["acquire", "release"] {
        assert!(
            samples(
                "mongoelector_round_trip_seconds",
                "lock",
                &key,
                &[("operation", op)]
            ) >= 1,
            "{op}"
        );
    }
    // Not renewed: lost at its local deadline.
    let short = locker(Duration::from_millis(300));
    let guard = short.lock().unwrap();
    eventually("the loss counted", || {
        counter(
            "mongoelector_losses_total",
            "lock",
            &key,
            &[("reason", "renewal_failed")],
        ) == 1
    });
    assert!(!guard.is_valid());
    assert_eq!(gauge("mongoelector_held", "lock", &key), 0.0);
    assert_eq!(
        counter("mongoelector_acquisitions_total", "lock", &key, &[]),
        2
    );
}

#[test]
fn a_semaphore_counts_its_permits() {
    values();
    let db = common::db();
    let key = unique("sem");
    let sem = || {
        MongoSemaphore::builder(&key, &db, 2)
            .timeparanoid(false)
            .build()
            .unwrap()
    };
    let (a, b) = (sem(), sem());
    let p1 = a.try_acquire().unwrap().unwrap();
    let p2 = b.try_acquire().unwrap().unwrap();
    assert_eq!(gauge("mongoelector_held", "semaphore", &key), 2.0);
    assert!(a.try_acquire().unwrap().is_none(), "full");
    assert_eq!(
        counter("mongoelector_refusals_total", "semaphore", &key, &[]),
        1
    );
    assert_eq!(
        counter("mongoelector_acquisitions_total", "semaphore", &key, &[]),
        2
    );
    drop(p1);
    p2.release().unwrap();
    assert_eq!(
        counter("mongoelector_releases_total", "semaphore", &key, &[]),
        2
    );
    assert_eq!(gauge("mongoelector_held", "semaphore", &key), 0.0);
}

fn client_named(app: &str) -> Client {
    let mut options = ClientOptions::parse(common::uri()).run().unwrap();
    options.app_name = Some(app.to_owned());
    Client::with_options(options).unwrap()
}

/// The server's `failCommand` fail point, for the `findAndModify`s of
/// application `app`, off when dropped.
struct FailPoint(Database);

impl FailPoint {
    fn on(app: &str) -> FailPoint {
        let admin = common::client().database("admin");
        admin
            .run_command(doc! {
                "configureFailPoint": "failCommand",
                "mode": "alwaysOn",
                "data": { "failCommands": ["findAndModify"], "appName": app, "errorCode": 2, "errorLabels": [] },
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
            .run_command(
                doc! { "configureFailPoint": "failCommand", "mode": Bson::String("off".into()) },
            )
            .run();
    }
}

#[test]
fn an_elector_counts_terms_master_status_failures_and_stops_and_renewals_fail() {
    values();
    let app = unique("metrics");
    let db = common::fresh_db(&client_named(&app));
    let key = unique("elect");
    let elector = MongoElector::builder(&key, &db)
        .ttl(Duration::from_secs(2))
        .status_reports(false)
        .build()
        .unwrap();
    let events = elector.events();
    elector.start(false).unwrap();
    loop {
        if let Event::BecameMaster { .. } = events.recv_timeout(Duration::from_secs(20)).unwrap() {
            break;
        }
    }
    assert_eq!(gauge("mongoelector_master", "elector", &key), 1.0);
    assert_eq!(
        counter("mongoelector_acquisitions_total", "elector", &key, &[]),
        1
    );
    assert!(
        samples(
            "mongoelector_round_trip_seconds",
            "elector",
            &key,
            &[("operation", "poll")]
        ) >= 1
    );
    {
        // Every renewal refused: polls fail, and the master steps down at
        // its deadline.
        let _fail = FailPoint::on(&app);
        eventually("a poll failure counted", || {
            counter("mongoelector_poll_failures_total", "elector", &key, &[]) >= 1
        });
        eventually("stepped down", || {
            counter(
                "mongoelector_losses_total",
                "elector",
                &key,
                &[("reason", "renewal_failed")],
            ) == 1
        });
        assert_eq!(gauge("mongoelector_master", "elector", &key), 0.0);
    }
    eventually("master again", || {
        gauge("mongoelector_master", "elector", &key) == 1.0
    });
    elector.stop().unwrap();
    assert_eq!(gauge("mongoelector_master", "elector", &key), 0.0);
    assert_eq!(
        counter("mongoelector_releases_total", "elector", &key, &[]),
        1
    );

    // A kept-alive lock whose renewals fail.
    let lock_key = unique("kept");
    let locker = MongoLocker::builder(&lock_key, &db)
        .ttl(Duration::from_millis(600))
        .keep_alive(true)
        .timeparanoid(false)
        .build()
        .unwrap();
    let guard = locker.lock().unwrap();
    let _fail = FailPoint::on(&app);
    eventually("a renewal failure counted", || {
        counter("mongoelector_renewals_failed_total", "lock", &lock_key, &[]) >= 1
    });
    eventually("the loss counted", || {
        counter(
            "mongoelector_losses_total",
            "lock",
            &lock_key,
            &[("reason", "renewal_failed")],
        ) == 1
    });
    drop(guard);
}
