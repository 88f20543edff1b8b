//! Server restarts under running workers (part of `tests/faults.rs`): an
//! on-disk store brought back, once as it was and once with its clock
//! ahead, each checked over the recorded history.

use std::time::{Duration, Instant};

use crate::common::on_disk_server;
use crate::harness::run::{self, Run};
use crate::{elector_args, holder, lock_args, uri_of, wait_holder};

#[test]
fn a_server_restart_is_survived_with_one_master_and_growing_fences() {
    let mut run = Run::new();
    let mut server = on_disk_server(&run.db);
    let uri = uri_of(server.port);
    run.record(&uri);
    let (ttl, retry) = (Duration::from_millis(1500), Duration::from_millis(150));
    for i in 0..3 {
        run.spawn(
            &format!("e{i}"),
            &uri,
            &elector_args(
                "R",
                "1500",
                &["--retry-ms", "150", "--hold-ms", "50", "--acts", "6"],
            ),
            None,
        );
    }
    for i in 0..2 {
        run.spawn(
            &format!("l{i}"),
            &uri,
            &lock_args("RL", "1000", &["--hold-ms", "50", "--acts", "2"]),
            None,
        );
    }
    wait_holder(&uri, &run.db, "R", Duration::from_secs(15), |_| true).expect("a master");
    std::thread::sleep(Duration::from_secs(2));
    let before = holder(&uri, &run.db, "R").map_or(0, |i| i.fence);
    run.restart_server(|| {
        server.stop();
        std::thread::sleep(Duration::from_secs(1));
        server.restart();
    });
    let back = Instant::now();
    let after = wait_holder(
        &uri,
        &run.db,
        "R",
        ttl + retry + Duration::from_secs(15),
        |i| i.fence > before,
    )
    .expect("a master again");
    let recovered = back.elapsed();
    assert!(
        after.fence > before,
        "fences kept growing across the restart"
    );
    std::thread::sleep(Duration::from_secs(2));
    let (history, report) = run.finish();
    drop(server);
    // Every lease was long expired when the server came back, so the bound
    // is the retry interval plus reconnecting; allow for the driver's
    // server selection and heartbeat (1.5 s, 0.5 s).
    assert!(
        recovered <= ttl + retry + Duration::from_secs(4),
        "recovered after {recovered:?}"
    );
    let max_fence = history
        .sections
        .iter()
        .filter(|s| s.key == "R")
        .map(|s| s.fence)
        .max()
        .unwrap();
    assert!(max_fence > before);
    assert!(
        report.lock_sections > 0 && report.master_terms >= 2,
        "{report:?}"
    );
}

#[test]
fn a_primary_back_with_its_clock_ahead_causes_no_overlap_within_the_grace() {
    let mut run = Run::new();
    let mut server = on_disk_server(&run.db);
    let uri = uri_of(server.port);
    run.record(&uri);
    // Leases of 10 s outlive the restart; masters hold until they lose
    // (1000 acts); the grace (6 s) exceeds the clock step (3 s).
    for i in 0..3 {
        run.spawn(
            &format!("e{i}"),
            &uri,
            &elector_args(
                "G",
                "10000",
                &[
                    "--retry-ms",
                    "200",
                    "--hold-ms",
                    "50",
                    "--acts",
                    "1000",
                    "--grace-ms",
                    "6000",
                ],
            ),
            None,
        );
    }
    wait_holder(&uri, &run.db, "G", Duration::from_secs(15), |_| true).expect("a master");
    std::thread::sleep(Duration::from_secs(2));
    // The master can no longer renew (SIGSTOP): its lease, as last
    // renewed in the old clock, must be taken over only once the new
    // clock reads its expiry plus the grace.
    let master = holder(&uri, &run.db, "G").expect("a master");
    run.signal(master.pid, "-STOP");
    std::thread::sleep(Duration::from_millis(300)); // a renewal in flight lands
    let before = holder(&uri, &run.db, "G").expect("still its lease");
    assert_eq!(before.pid, master.pid);
    run.restart_server(|| {
        server.stop();
        server.restart_with_clock(run::libfaketime(), "+3s");
    });
    // The server's clock is ahead now (by about 3 s).
    let client = mongodb::sync::Client::with_uri_str(&uri).unwrap();
    let reply = client
        .database("admin")
        .run_command(mongodb::bson::doc! {"hello": 1})
        .run()
        .unwrap();
    let ahead = reply.get_datetime("localTime").unwrap().timestamp_millis()
        - chrono::Utc::now().timestamp_millis();
    assert!(ahead >= 2_500, "the server's clock is {ahead} ms ahead");
    // Another node takes over, at the old expiry plus the grace in the new
    // clock (about 3 s after that expiry in real time), not before.
    let after = wait_holder(&uri, &run.db, "G", Duration::from_secs(30), |i| {
        i.pid != before.pid
    })
    .expect("a takeover after the restart");
    let late = (after.created - before.expires).num_milliseconds() - 6_000;
    eprintln!("taken over {late} ms after the old expiry plus the grace (server time)");
    assert!(after.fence > before.fence);
    assert!(
        (0..5_000).contains(&late),
        "taken over {late} ms after the old expiry plus the grace (server time)"
    );
    run.signal(master.pid, "-CONT");
    std::thread::sleep(Duration::from_secs(3));
    // The old master's term could no longer act when the new one began:
    // the checker fails on any term that could still act when a later one
    // began (with no grace the same run overlapped in 1 of 3 tries).
    let (history, report) = run.finish();
    drop(server);
    let old = history
        .sections
        .iter()
        .find(|s| s.fence == before.fence)
        .expect("the old master logged its term");
    assert!(!old.valid, "the old master woke still master: {old:?}");
    assert!(report.master_terms >= 2, "{report:?}");
}
