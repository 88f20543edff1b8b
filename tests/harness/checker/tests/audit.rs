use super::*;

fn logged(n: u64, wid: &str, fence: i64, at: i64) -> String {
    format!("logged key=k n={n} wid={wid} fence={fence} at={at} w=a")
}

fn write_wid(wid: &str, fence: i64, result: &str) -> String {
    let accepted = (result == "applied") as u8;
    format!("write w=a key=k fence={fence} wid={wid} checked=10 sent=11 done=15 deadline=100 valid=1 accepted={accepted} probe=0 result={result} server=-1")
}

#[test]
fn the_log_must_not_go_back() {
    let r = check(&[logged(1, "x", 5, 100), logged(2, "y", 4, 110)]);
    assert!(fails(&r, "the log of `k` went back"), "{:?}", r.violations);
    let r = check(&[
        logged(1, "x", 4, 100),
        logged(2, "y", 4, 110),
        logged(3, "z", 5, 90),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn the_workers_answers_must_match_the_log() {
    // Answered applied, not in the log.
    let r = check(&[write_wid("x", 1, "applied")]);
    assert!(fails(&r, "applied write missing"), "{:?}", r.violations);
    // Answered refused, in the log.
    let r = check(&[write_wid("x", 1, "stale"), logged(1, "x", 1, 100)]);
    assert!(
        fails(&r, "a write answered `stale` was applied"),
        "{:?}",
        r.violations
    );
    // Applied and logged (its time taken from the log); an error found in
    // the log is an unanswered applied write, not a contradiction.
    let r = check(&[
        write_wid("x", 1, "applied"),
        logged(1, "x", 1, 100),
        write_wid("y", 1, "error"),
        logged(2, "y", 1, 120),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.unknown_write_times, r.unanswered_applied), (0, 1));
}

#[test]
fn a_write_applied_twice_fails_unless_the_driver_sent_it_twice() {
    let twice = [
        write_wid("x", 1, "applied"),
        logged(1, "x", 1, 100),
        logged(2, "x", 1, 130),
    ];
    let r = check(&twice);
    assert!(
        fails(&r, "a write was applied 2 times"),
        "{:?}",
        r.violations
    );
    let refused = [write_wid("y", 1, "expired"), logged(1, "y", 1, 100)];
    for lines in [&twice[..], &refused[..]] {
        // The driver retried it (a network error): the test server ran the
        // retry again, while or after the first attempt ran.
        let retried: Vec<String> = lines
            .iter()
            .map(|l| l.replace("server=-1", "server=-1 attempts=2"))
            .collect();
        let r = check(&retried);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!(r.retries_run_again, 1);
        // Sent once, a restart meanwhile or not: no excuse.
        let mut lines = lines.to_vec();
        lines.push("restart down=12 up=14".to_owned());
        assert!(!check(&lines).violations.is_empty());
    }
}

#[test]
fn a_hole_in_the_audit_or_no_audit_fails() {
    let r = check(&["audit gap=k".to_owned()]);
    assert!(
        fails(&r, "the audit of `k` has a hole"),
        "{:?}",
        r.violations
    );
    let r = check_raw(&[write("a", 1, 10, true)]);
    assert!(
        fails(&r, "writes were made but the resource was never audited"),
        "{:?}",
        r.violations
    );
}

#[test]
fn fences_granted_out_of_commit_order_fail() {
    let ev = |seq: u64, held: &str| {
        format!("commit seq={seq} coll=mongolocker key=k op=replace held={held} released=-1")
    };
    let r = check(&[ev(1, "5:100:a"), ev(2, "7:200:b"), ev(3, "6:300:c")]);
    assert!(
        fails(&r, "fence on `k` granted out of commit order"),
        "{:?}",
        r.violations
    );
    // Growing, with a release and a Python holder (fence 0) between.
    let r = check(&[
        ev(1, "5:100:a"),
        ev(2, "-"),
        ev(3, "0:250:py"),
        ev(4, "7:300:b"),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}
