use super::*;

#[test]
fn a_stale_accepted_write_fails() {
    let r = check(&[write("b", 2, 100, true), write("a", 1, 200, true)]);
    assert!(fails(&r, "stale write"), "{:?}", r.violations);
    let r = check(&[write("b", 2, 100, true), write("a", 1, 200, false)]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn a_write_at_or_after_a_takeover_fails() {
    // a never released: b's grant took its lease over by expiry.
    let r = check(&[write_at("a", 1, 1000), grant("b", 2, 1000)]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(fails(&r, "write after a later grant"));
    assert_eq!(r.grant_judged_alone, 1);
    // Before the grant: fine; a lower or equal fence's grant is no bar.
    let r = check(&[
        write_at("a", 1, 999),
        grant("b", 2, 1000),
        write_at("b", 2, 1500),
        grant("a", 1, 500),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // The same worker re-taking its own lock (with a new fence) before
    // its old lease ran out: one owner, not a violation ...
    let r = check(&[
        grant("a", 1, 500),
        write_at("a", 1, 1000),
        grant("a", 2, 900),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // ... judged against the next owner, after its last re-grant.
    let r = check(&[
        grant("a", 1, 500),
        write_at("a", 1, 1000),
        grant("a", 2, 900),
        grant("b", 3, 950),
    ]);
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
}

/// The soak's lines (600 s, seed 1796151591509871995): write0t0's last
/// write has a `$$NOW` after write0t1's grant, which the server parsed
/// before that write and committed after write0t0's release.
fn soak(t0_release: Option<&str>, t1_start: i64) -> Vec<String> {
    let s0: i64 = 3_419_080_000_000;
    let ms = 1_000_000;
    let f0 = 1_796_151_640_997_000_i64;
    let f1 = 1_796_151_641_704_000_i64;
    let mut lines = vec![
        format!("grant w=write0t0 key=rw kind=write fence={f0} uuid=tok0 granted=1796151640997 start={s0}"),
        format!("write w=write0t0 key=rw fence={f0} wid=w1 checked={} sent={} done={} deadline={} valid=1 accepted=1 probe=0 result=applied server=1796151641370", s0 + 370 * ms, s0 + 371 * ms, s0 + 380 * ms, s0 + 900 * ms),
        format!("write w=write0t0 key=rw fence={f0} wid=w2 checked={} sent={} done={} deadline={} valid=1 accepted=1 probe=0 result=applied server=1796151641725", s0 + 720 * ms, s0 + 721 * ms, s0 + 740 * ms, s0 + 900 * ms),
        format!("section kind=write w=write0t0 key=rw fence={f0} start={s0} end={} deadline={} valid=1 permits=0 expires=1796151641997 asked=3419078805397", s0 + 760 * ms, s0 + 900 * ms),
        format!("grant w=write0t1 key=rw kind=write fence={f1} uuid=tok1 granted=1796151641704 start={}", s0 + t1_start * ms),
        format!("section kind=write w=write0t1 key=rw fence={f1} start={} end={} deadline={} valid=1 permits=0 expires=1796151642704 asked={}", s0 + t1_start * ms, s0 + (t1_start + 100) * ms, s0 + (t1_start + 300) * ms, s0 + 600 * ms),
        format!("logged key=rw n=1 wid=w1 fence={f0} at=1796151641370 w=write0t0"),
        format!("logged key=rw n=2 wid=w2 fence={f0} at=1796151641725 w=write0t0"),
    ];
    if let Some(result) = t0_release {
        lines.push(format!(
            "release w=write0t0 key=rw fence={f0} sent={} done={} result={result}",
            s0 + 761 * ms,
            s0 + 800 * ms
        ));
    }
    lines
}

#[test]
fn a_grant_after_the_release_is_not_judged_by_server_time() {
    // As logged: write0t1 learned of its grant after write0t0 sent its
    // release, so the grant may have followed it: ordered, not judged.
    let r = check(&soak(Some("ok"), 805));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.grant_unjudged, r.grant_judged_alone), (2, 0));
    assert_eq!(r.server_time_pairs, 1, "server time alone flags it");
    // A release that failed or was never answered may have landed too.
    let r = check(&soak(Some("error"), 805));
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // True violations: write0t0 never released (a takeover) ...
    let r = check(&soak(None, 805));
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
    // ... or write0t1 knew of its grant before write0t0 sent its release.
    let r = check(&soak(Some("ok"), 758));
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
}

/// The soak's rwlock document in commit order: write0t0's grant, its two
/// writes, then `tail`.
fn commits(tail: &[&str]) -> Vec<String> {
    let mut v = vec![
        "commit seq=1 coll=mongorwlock key=rw op=replace held=1796151640997000:1796151640997:tok0 released=-1".to_owned(),
        "commit seq=2 coll=resource key=rw op=replace wid=w1".to_owned(),
        "commit seq=3 coll=resource key=rw op=replace wid=w2".to_owned(),
    ];
    v.extend(tail.iter().map(|s| s.to_string()));
    v
}

#[test]
fn the_commit_order_decides_when_it_is_known() {
    let release = "commit seq=4 coll=mongorwlock key=rw op=replace held=- released=1796151641760";
    let t1 = "commit seq=5 coll=mongorwlock key=rw op=replace held=1796151641704000:1796151641704:tok1 released=1796151641760";
    // The release committed first: ordered by it, even with no release
    // line (a worker killed after sending it) and t1 "early".
    let mut lines = soak(None, 758);
    lines.extend(commits(&[release, t1]));
    let r = check(&lines);
    assert!(
        !fails(&r, "write after a later grant"),
        "{:?}",
        r.violations
    );
    assert_eq!(
        (r.grant_ordered_commit, r.server_time_pairs_release_first),
        (2, 1)
    );
    // The grant committed in the same event that dropped write0t0's entry
    // (a takeover by expiry) ...
    let take = "commit seq=4 coll=mongorwlock key=rw op=replace held=1796151641704000:1796151641704:tok1 released=-1";
    let mut lines = soak(Some("ok"), 805);
    lines.extend(commits(&[take]));
    let r = check(&lines);
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
    assert_eq!(r.grant_judged_commit, 2);
    // ... or while write0t0's entry was still there.
    let both = "commit seq=4 coll=mongorwlock key=rw op=replace held=1796151640997000:1796151640997:tok0,1796151641704000:1796151641704:tok1 released=-1";
    let mut lines = soak(Some("ok"), 805);
    lines.extend(commits(&[both, &release.replace("seq=4", "seq=5")]));
    let r = check(&lines);
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
}

#[test]
fn a_hole_in_the_stream_leaves_the_pair_to_the_workers_clocks() {
    let take = "commit seq=5 coll=mongorwlock key=rw op=replace held=1796151641704000:1796151641704:tok1 released=-1";
    for gap in [
        "commit seq=4 op=gap",
        "commit seq=4 op=gap coll=mongorwlock key=rw",
    ] {
        // Events may be missing before the takeover: write0t0's release
        // among them. Judged as without a stream: ordered by its release.
        let mut lines = soak(Some("ok"), 805);
        lines.extend(commits(&[gap, take]));
        let r = check(&lines);
        assert!(r.violations.is_empty(), "{gap}: {:?}", r.violations);
        assert_eq!((r.grant_judged_commit, r.grant_unjudged), (0, 2), "{gap}");
    }
    // A hole in another key's events, or in the writes', changes nothing.
    for gap in [
        "commit seq=4 op=gap coll=mongolocker key=L",
        "commit seq=4 op=gap coll=resource key=rw",
    ] {
        let mut lines = soak(Some("ok"), 805);
        lines.extend(commits(&[gap, take]));
        let r = check(&lines);
        assert!(
            fails(&r, "write after a later grant"),
            "{gap}: {:?}",
            r.violations
        );
    }
}

#[test]
fn an_unanswered_write_in_the_log_is_judged_too() {
    // a's write got no answer, but the resource's log has it: applied
    // after b took over.
    let r = check(&[
        grant("a", 1, 500),
        "write w=a key=k fence=1 wid=x checked=10 sent=11 done=900 deadline=100 valid=1 accepted=0 probe=0 result=error server=-1".to_owned(),
        "logged key=k n=1 wid=x fence=1 at=1000 w=a".to_owned(),
        grant("b", 2, 990),
    ]);
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
    assert!(
        r.violations[0].contains("(unanswered)"),
        "{:?}",
        r.violations
    );
    assert_eq!(r.unanswered_applied, 1);
}

#[test]
fn a_grant_nobody_logged_is_judged_from_the_auditors_sighting() {
    // Taken over by a holder killed before it logged its grant.
    let seen = "seen key=k fence=2 created=900 uuid=x".to_owned();
    let r = check(&[grant("a", 1, 500), write_at("a", 1, 1000), seen.clone()]);
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
    assert!(r.violations[0].contains("an unlogged holder"));
    // A grant whose time its worker could not read: filled in from it.
    let r = check(&[
        grant("a", 1, 500),
        write_at("a", 1, 1000),
        grant("b", 2, -1),
        seen,
    ]);
    assert!(fails(&r, "write after a later grant"), "{:?}", r.violations);
    assert_eq!((r.unknown_grants, r.filled_grants), (0, 1));
}

#[test]
fn unknown_times_beyond_five_percent_fail() {
    let mut lines: Vec<String> = (1..=19).map(|f| grant("a", f, f * 10)).collect();
    lines.push(grant("b", 20, -1));
    let r = check(&lines);
    assert!(r.violations.is_empty(), "1 of 20: {:?}", r.violations);
    lines.push(grant("b", 21, -1));
    let r = check(&lines);
    assert!(fails(&r, "grant times not known"), "{:?}", r.violations);
    // A run with few grants: one unknown is too many.
    let r = check(&[grant("b", 2, -1)]);
    assert!(fails(&r, "grant times not known"), "{:?}", r.violations);
    // Unless it was answered as the server went down for a restart (its
    // holder's read of the time then fails): within a second of it only.
    let restart = "restart down=5000000000 up=9000000000".to_owned();
    let at = |start: i64| format!("grant w=b key=k fence=2 granted=-1 start={start}");
    let r = check(&[at(4_500_000_000), restart.clone()]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.unknown_grants, 1, "still counted");
    let r = check(&[at(3_000_000_000), restart]);
    assert!(fails(&r, "grant times not known"), "{:?}", r.violations);
    let r = check(&[write_at("a", 1, -1)]);
    assert!(fails(&r, "server times not known"), "{:?}", r.violations);
}
