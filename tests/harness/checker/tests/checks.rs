use super::*;

#[test]
fn valid_after_the_deadline_fails() {
    let late = "write w=a key=k fence=1 checked=400 sent=401 done=505 deadline=400 valid=1 accepted=0 probe=0 result=expired server=-1";
    let r = check(&[late.to_owned()]);
    assert!(
        r.violations[0].starts_with("valid after"),
        "{:?}",
        r.violations
    );
    // A probe (checked invalid) after the deadline is expected.
    let probe = late
        .replace("probe=0", "probe=1")
        .replace("valid=1", "valid=0");
    assert!(check(&[probe]).violations.is_empty());
}

#[test]
fn a_late_send_is_counted_not_a_violation() {
    // Checked in time, sent after the deadline (paused in between):
    // refused or accepted, the server decided; the grant rule judges it.
    for accepted in [0, 1] {
        let r = check(&[format!(
            "write w=a key=k fence=1 checked=300 sent=450 done=455 deadline=400 valid=1 accepted={accepted} probe=0 result=x server=1000"
        )]);
        assert!(r.violations.is_empty(), "{:?}", r.violations);
        assert_eq!((r.late_sends, r.late_sends_rejected), (1, 1 - accepted));
    }
}

#[test]
fn a_valid_check_at_or_after_the_deadline_fails_for_every_primitive() {
    for kind in ["lock", "master", "permit", "read", "write"] {
        let r = check(&[check_line(kind, "a", 1, 400, 400, true)]);
        assert!(
            fails(&r, "valid after its deadline"),
            "{kind}: {:?}",
            r.violations
        );
        let r = check(&[check_line(kind, "a", 1, 399, 400, true)]);
        assert!(r.violations.is_empty(), "{kind}: {:?}", r.violations);
        let r = check(&[check_line(kind, "a", 1, 500, 400, false)]);
        assert!(r.violations.is_empty(), "{kind}: {:?}", r.violations);
    }
}

#[test]
fn valid_after_a_loss_or_an_invalid_check_fails() {
    let loss = "lost w=a key=k fence=1 at=200 reason=TakenOver".to_owned();
    let r = check(&[loss.clone(), check_line("permit", "a", 1, 250, 900, true)]);
    assert!(fails(&r, "valid after its loss"), "{:?}", r.violations);
    let r = check(&[loss, check_line("permit", "a", 1, 150, 900, true)]);
    assert!(
        r.violations.is_empty(),
        "before the loss: {:?}",
        r.violations
    );
    let r = check(&[
        check_line("lock", "a", 1, 100, 900, true),
        check_line("lock", "a", 1, 200, 900, false),
        check_line("lock", "a", 1, 300, 900, true),
    ]);
    assert!(fails(&r, "valid again"), "{:?}", r.violations);
    // Another holding of the same worker (another fence) is another tenure.
    let r = check(&[
        check_line("lock", "a", 1, 200, 900, false),
        check_line("lock", "a", 2, 300, 900, true),
    ]);
    assert!(r.violations.is_empty(), "{:?}", r.violations);
}
