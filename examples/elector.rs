//! A daemon that runs an elector and prints its events with a timestamp;
//! Ctrl-C (or SIGTERM) stops it cleanly, handing mastership over at once.
//!
//! ```sh
//! MONGODB_URI=mongodb://127.0.0.1:27017/ cargo run --example elector -- [KEY] [TTL_SECS] [RETRY_MS]
//! ```
//!
//! It runs in the URI's database when the URI names one
//! (`mongodb://127.0.0.1:27017/app`), else in `mongoelector_demo`.
//!
//! `scripts/demo.sh` starts three of these, kills the master with SIGKILL and
//! shows another taking over.
//!
//! Each transition is printed with the time it happened, not the time this
//! thread got round to printing it (the last `LostMaster` is printed after
//! `stop()` has released the lock and another node may have taken it): the
//! crate logs each transition at the moment it makes it, before sending the
//! event and before releasing, and the small logger below keeps that time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::{Receiver, Sender};
use mongoelector::{Event, MongoElector};

/// Keeps the moment of each transition the crate logs (`became master`,
/// `lost master`), in order. (Failed polls arrive as events too.)
struct TransitionTimes(Sender<DateTime<Utc>>);

impl log::Log for TransitionTimes {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() == log::Level::Info && metadata.target().starts_with("mongoelector")
    }

    fn log(&self, record: &log::Record) {
        let at = Utc::now();
        if !self.enabled(record.metadata()) {
            return;
        }
        let message = record.args().to_string();
        if message.contains(": became master (") || message.contains(": lost master (") {
            let _ = self.0.send(at);
        }
    }

    fn flush(&self) {}
}

/// The time the transition just received happened: transitions are logged
/// and sent in the same order, so the oldest time kept is its own.
fn happened(times: &Receiver<DateTime<Utc>>) -> String {
    hms(times.try_recv().unwrap_or_else(|_| Utc::now()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::var("MONGODB_URI")
        .map_err(|_| "MONGODB_URI is not set: run `scripts/demo.sh`, which starts a test server")?;
    let mut args = std::env::args().skip(1);
    let key = args.next().unwrap_or_else(|| "demo".to_owned());
    let ttl = Duration::from_secs_f64(args.next().map_or(Ok(15.0), |s| s.parse())?);
    let retry = args
        .next()
        .map(|s| s.parse().map(Duration::from_millis))
        .transpose()?;

    let (times_tx, times) = crossbeam_channel::unbounded();
    log::set_logger(Box::leak(Box::new(TransitionTimes(times_tx))))
        .map_err(|_| "a logger was already set")?;
    log::set_max_level(log::LevelFilter::Info);

    // The URI's database when it names one (as `examples/status.rs` reads).
    let options = mongodb::options::ClientOptions::parse(&uri).run()?;
    let database = options
        .default_database
        .clone()
        .unwrap_or_else(|| "mongoelector_demo".to_owned());
    let client = mongodb::sync::Client::with_options(options)?;
    let mut builder = MongoElector::builder(&key, &client.database(&database))
        .ttl(ttl)
        .app_version(env!("CARGO_PKG_VERSION"));
    if let Some(retry) = retry {
        builder = builder.retry_interval(retry);
    }
    let elector = builder.build()?;
    let me = format!("{} pid {}", &elector.uuid()[..8], std::process::id());

    let events = elector.events();
    let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })?;
    elector.start(false)?;
    println!(
        "{} [{me}] started on key `{key}` in database `{database}` (ttl {ttl:?}, retry {:?})",
        now(),
        elector.retry_interval()
    );

    loop {
        crossbeam_channel::select! {
            recv(events) -> event => match event? {
                Event::BecameMaster { fence, expires } => {
                    println!("{} [{me}] BECAME MASTER, fence {fence}, lease until {}", happened(&times), expires.format("%H:%M:%S%.3f"));
                }
                Event::LostMaster { fence, reason } => {
                    println!("{} [{me}] lost master (fence {fence}): {reason:?}", happened(&times));
                }
                Event::PollFailed { error } => println!("{} [{me}] poll failed: {error}", now()),
                Event::Polled { .. } => {}
                other => println!("{} [{me}] {other:?}", now()),
            },
            recv(stop_rx) -> _ => break,
        }
    }
    elector.stop()?;
    for event in events.try_iter() {
        if let Event::LostMaster { fence, reason } = event {
            println!(
                "{} [{me}] lost master (fence {fence}): {reason:?}",
                happened(&times)
            );
        }
    }
    println!("{} [{me}] stopped cleanly", now());
    Ok(())
}

fn now() -> String {
    hms(Utc::now())
}

/// UTC, to the microsecond: a release and the takeover it allows can fall
/// in the same millisecond.
fn hms(t: DateTime<Utc>) -> String {
    t.format("%H:%M:%S%.6f").to_string()
}
