use super::*;

#[test]
fn permits_up_to_the_count_pass_and_one_more_fails() {
    // Two permits: a and b overlap, c starts as a ends (touching).
    let ok = [
        share("permit", "a", 1, 0, 100),
        share("permit", "b", 2, 50, 150),
        share("permit", "c", 3, 100, 200),
    ];
    let r = check(&ok);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.permit_sections, r.most_permits_at_once), (3, 2));
    // c starts while a and b are still valid: three at once.
    let r = check(&[
        share("permit", "a", 1, 0, 100),
        share("permit", "b", 2, 50, 150),
        share("permit", "c", 3, 99, 200),
    ]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(r.violations[0].starts_with("3 valid permits at once"));
    assert_eq!(r.most_permits_at_once, 3);
    // The same, but a's deadline passed before c began: a stopped
    // holder is not counted past its deadline.
    let r = check(&[
        share_until("permit", "a", 1, 0, 300, 90),
        share("permit", "b", 2, 50, 150),
        share("permit", "c", 3, 99, 200),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn a_writer_overlapping_a_reader_or_a_writer_fails() {
    // Readers overlap each other; the writer comes after them all.
    let r = check(&[
        share("read", "r1", 1, 0, 100),
        share("read", "r2", 2, 10, 90),
        share("read", "r3", 3, 20, 80),
        share("write", "w1", 4, 100, 150),
        share("read", "r1", 5, 150, 200),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.read_sections, r.write_sections), (4, 1));
    assert_eq!(r.most_readers_at_once, 3);
    // A writer that began while a reader was valid.
    let r = check(&[
        share("read", "r1", 1, 0, 100),
        share("write", "w1", 2, 99, 150),
    ]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(r.violations[0].starts_with("a writer overlapped"));
    // A reader that began while the writer was valid.
    let r = check(&[
        share("write", "w1", 1, 0, 100),
        share("read", "r1", 2, 50, 150),
    ]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    // Two writers.
    let r = check(&[
        share("write", "w1", 1, 0, 100),
        share("write", "w2", 2, 50, 150),
    ]);
    assert!(!r.violations.is_empty(), "{:?}", r.violations);
    // A writer paused past its deadline: the reader after it is fine.
    let r = check(&[
        share_until("write", "w1", 1, 0, 300, 40),
        share("read", "r1", 2, 50, 150),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}

#[test]
fn share_fences_must_be_unique_and_grow_in_grant_order() {
    // a and b asked at once (unordered: any fences); c asked after
    // both had theirs.
    let r = check(&[
        share("permit", "a", 20, 0, 100),
        share("permit", "b", 10, 2, 100),
        share("permit", "c", 30, 200, 300),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    // c asked after a started but got a smaller fence.
    let r = check(&[
        share("permit", "a", 20, 0, 100),
        share("permit", "b", 10, 2, 100),
        share("permit", "c", 15, 200, 300),
    ]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(r.violations[0].contains("did not grow in grant order"));
    // The same between a reader and a writer.
    let r = check(&[
        share("write", "w", 20, 0, 100),
        share("read", "r", 19, 200, 300),
    ]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    // The same fence twice.
    let r = check(&[share("read", "a", 7, 0, 100), share("read", "b", 7, 1, 100)]);
    assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
    assert!(r.violations[0].contains("granted twice"));
}

#[test]
fn share_sections_do_not_count_as_lock_sections() {
    // Overlapping permits are fine for the lock rules, and a lock's
    // sections are not counted as permits.
    let r = check(&[
        share("permit", "a", 1, 0, 100),
        share("permit", "b", 2, 50, 150),
        section("x", 1, 0, 100, true),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!((r.lock_sections, r.permit_sections), (1, 2));
}

#[test]
fn valid_checks_count_as_acting() {
    // a's deadline (90) ended its permit before c began, but a check at
    // 150 still told it it held one: three valid permits at once.
    let late = check_line("permit", "a", 1, 150, 90, true).replace("key=k", "key=s");
    let r = check(&[
        share_until("permit", "a", 1, 0, 300, 90),
        share("permit", "b", 2, 50, 200),
        share("permit", "c", 3, 99, 200),
        late,
    ]);
    assert!(fails(&r, "3 valid permits at once"), "{:?}", r.violations);
    assert!(fails(&r, "valid after its deadline"), "{:?}", r.violations);
    // A reader whose check said valid while the writer held.
    let r = check(&[
        share_until("read", "r", 1, 0, 300, 40),
        share("write", "w", 2, 50, 150),
        check_line("read", "r", 1, 60, 40, true).replace("key=k", "key=s"),
    ]);
    assert!(fails(&r, "a writer overlapped"), "{:?}", r.violations);
    // The same checks answering invalid: nobody acted.
    let r = check(&[
        share_until("read", "r", 1, 0, 300, 40),
        share("write", "w", 2, 50, 150),
        check_line("read", "r", 1, 60, 40, false).replace("key=k", "key=s"),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}
