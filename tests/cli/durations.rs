//! Durations past what the tool can count are bad usage, refused before
//! anything is taken or run.

use super::*;

#[test]
fn absurd_durations_are_bad_usage_not_a_panic() {
    let s = Scene::new();
    // Past what an `Instant` can hold (about 2.9e11 years), not past a u64
    // of seconds: humantime reads it.
    let absurd = "500000000000y";
    let ran = s.path("ran");
    let touch = format!("touch {}", ran.display());
    let cases: [&[&str]; 8] = [
        &["lock", "k", "--kill-after", absurd],
        &["lock", "k", "--timeout", absurd],
        &["lock", "k", "--ttl", absurd],
        &["lock", "k", "--hold-at-least", absurd],
        &["semaphore", "k", "--permits", "1", "--kill-after", absurd],
        &["semaphore", "k", "--permits", "1", "--timeout", absurd],
        &["elect", "e", "--kill-after", absurd],
        &["elect", "e", "--ttl", absurd],
    ];
    for case in cases {
        let mut args = case.to_vec();
        args.extend_from_slice(&["--", "sh", "-c", &touch]);
        let out = s.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{case:?}: {err}");
        let line = one_line(&out.stderr);
        let flag = case
            .iter()
            .find(|a| a.starts_with("--") && a != &&"--permits")
            .unwrap();
        assert!(
            line.contains(flag) && line.contains("at most"),
            "{case:?}: {line}"
        );
        assert!(!ran.exists(), "{case:?}: the command ran");
    }
    // The longest accepted --kill-after, on a lost lock: the command is
    // stopped and the tool exits 79, no internal error.
    let body = s.recorder("a", "sleep 30 & wait");
    let mut a = s.lock("a", &["k", "--ttl", "3s", "--kill-after", "365days"], &body);
    s.started("a");
    s.ok(&["release", "k", "--force"]);
    let status = wait_for(&mut a, Duration::from_secs(15));
    assert_eq!(status.code(), Some(79), "{}", s.read("a.err"));
}
