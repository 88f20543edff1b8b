//! What idle electors cost the server, counted by the driver's command
//! monitoring: one idle master and one idle follower (default ttl 15 s,
//! status reports on), each on a client of its own, over one minute.
//!
//! An idle master sends at most 24 commands a minute. An idle follower with
//! a change stream sends no lock attempt while the master renews, at most 8
//! writes, and at most 12 commands besides the stream's getMores; those are
//! 2 a minute on MongoDB, and one per write on the server on a server that
//! answers a getMore at every write (the test server). A follower without a
//! change stream (standalone server, or `.change_streams(false)`) still
//! polls at its retry interval.

mod common;

use std::time::Duration;

use common::{has_change_streams, monitored_client, wait_until, Commands};
use mongoelector::MongoElector;

const WINDOW: Duration = Duration::from_secs(60);

const WRITES: &[&str] = &["findAndModify", "update", "insert", "delete"];

struct Counted {
    total: usize,
    writes: usize,
    attempts: usize,
    names: Vec<String>,
}

fn count(commands: &Commands) -> Counted {
    let names = commands.names();
    Counted {
        total: names.len(),
        writes: names
            .iter()
            .filter(|n| WRITES.contains(&n.as_str()))
            .count(),
        attempts: names.iter().filter(|n| *n == "findAndModify").count(),
        names,
    }
}

fn histogram(names: &[String]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for n in names {
        *counts.entry(n.as_str()).or_insert(0) += 1;
    }
    format!("{counts:?}")
}

#[test]
fn an_idle_follower_sends_no_lock_attempts_and_a_master_at_most_24_commands_a_minute() {
    let (master_client, master_cmds) = monitored_client();
    let (follower_client, follower_cmds) = monitored_client();
    let name = format!("idle_{}", uuid::Uuid::new_v4().simple());
    let on = |client: &mongodb::sync::Client| client.database(&name);
    let master = MongoElector::new("idle", &on(&master_client)).unwrap();
    master.start(false).unwrap();
    assert!(wait_until(Duration::from_secs(10), || master.is_master()));
    let follower = MongoElector::new("idle", &on(&follower_client)).unwrap();
    follower.start(false).unwrap();
    // Settled: the stream is open, the first status reports are written.
    std::thread::sleep(Duration::from_secs(5));
    master_cmds.take();
    follower_cmds.take();
    std::thread::sleep(WINDOW);
    let m = count(&master_cmds);
    let f = count(&follower_cmds);
    eprintln!(
        "per minute: master {} {}, follower {} {}",
        m.total,
        histogram(&m.names),
        f.total,
        histogram(&f.names),
    );
    assert!(master.is_master() && !follower.is_master());
    assert!(m.total <= 24, "idle master: {} commands", m.total);
    if has_change_streams(&on(&follower_client)) {
        // No lock attempt while the master renews: a look (a read) when
        // its lease would run out, the stream for everything else.
        assert_eq!(f.attempts, 0, "idle follower: lock attempts");
        assert!(f.writes <= 8, "idle follower: {} writes", f.writes);
        let getmores = f.names.iter().filter(|n| *n == "getMore").count();
        // Everything but the stream's getMores, one reopen allowed.
        assert!(
            f.total - getmores <= 12 + 1,
            "idle follower: {} commands besides getMores",
            f.total - getmores
        );
        // The stream waits 30 s a getMore; a server that answers a getMore
        // at every write anywhere (as the test server does, unlike MongoDB)
        // costs one more per write: at most that, never more of our own.
        let server_writes = m.writes + f.writes;
        assert!(
            getmores <= server_writes + 2 + 1,
            "idle follower: {getmores} getMores for {server_writes} writes on the server"
        );
    } else {
        // No change streams: it polls at its retry interval (3 s).
        assert!(
            (16..=22).contains(&f.attempts),
            "follower without a stream: {} attempts",
            f.attempts
        );
    }
    // A follower told not to use a stream polls at its retry interval
    // whatever the server offers.
    let (polling_client, polling_cmds) = monitored_client();
    let polling = MongoElector::builder("idle", &on(&polling_client))
        .change_streams(false)
        .build()
        .unwrap();
    polling.start(false).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    polling_cmds.take();
    std::thread::sleep(Duration::from_secs(21));
    let p = count(&polling_cmds);
    assert!(
        (5..=8).contains(&p.attempts),
        "polling follower: {} attempts in 21 s",
        p.attempts
    );
    for e in [&polling, &follower, &master] {
        e.stop().unwrap();
    }
}
