//! `elect` re-elected while its command was still stopping runs the command
//! again, with the new term's fence.

use super::*;

/// Ends the tool if the test fails before it does (an `elect` runs for ever).
struct Ends(Child);

impl Drop for Ends {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The holder's pid and fence, if the key is held.
fn holder(s: &Scene, key: &str) -> Option<(u64, i64)> {
    let status: Value = serde_json::from_slice(&s.ok(&["status", key, "--json"]).stdout).ok()?;
    let holder = &status["holder"];
    Some((holder["pid"].as_u64()?, holder["fence"].as_i64()?))
}

#[test]
fn elect_runs_the_command_again_when_reelected_while_it_stopped() {
    let s = Scene::new();
    let log = s.path("log");
    let go = s.path("go");
    // On SIGTERM the command logs it, then ends only once the test says so:
    // the node is master again by then.
    let body = format!(
        "trap 'echo \"term $MONGOELECTOR_FENCE\" >> {l}; while [ ! -e {g} ]; do sleep 0.1; done; exit 0' TERM; \
         echo \"start $MONGOELECTOR_FENCE\" >> {l}; sleep 60 & wait",
        l = log.display(),
        g = go.display()
    );
    let mut a = Ends(s.start(
        "a",
        &[
            "elect",
            "svc",
            "--ttl",
            "3s",
            "--kill-after",
            "60s",
            "--",
            "bash",
            "-c",
            &body,
        ],
    ));
    let lines = |word: &str| -> Vec<i64> {
        s.read("log")
            .lines()
            .filter_map(|l| l.strip_prefix(word)?.trim().parse().ok())
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(15), || lines("start ").len() == 1),
        "{}",
        s.read("a.err")
    );
    let first = lines("start ")[0];
    let pid = u64::from(a.0.id());
    assert_eq!(holder(&s, "svc"), Some((pid, first)));

    // Freed behind its back: the tool learns it at its next renewal, stops
    // the command, and its elector wins again while the command stops.
    s.ok(&["release", "svc", "--force"]);
    assert!(
        wait_until(Duration::from_secs(15), || !lines("term ").is_empty()),
        "the command was not stopped: {}",
        s.read("a.err")
    );
    let mut again = None;
    assert!(
        wait_until(Duration::from_secs(20), || {
            again = holder(&s, "svc").filter(|&(p, f)| p == pid && f > first);
            again.is_some()
        }),
        "not re-elected: {}",
        s.read("a.err")
    );
    assert_eq!(
        lines("start ").len(),
        1,
        "still stopping: {}",
        s.read("log")
    );
    fs::write(&go, "").unwrap();

    // The stopped command runs again at once, with the fence of the new term.
    assert!(
        wait_until(Duration::from_secs(10), || lines("start ").len() == 2),
        "the command did not run again although the node is master: {}; {}",
        s.read("log"),
        s.read("a.err")
    );
    let second = lines("start ")[1];
    assert!(second > first, "{first} then {second}");
    assert_eq!(holder(&s, "svc").map(|(p, _)| p), Some(pid));
    signal(&a.0, TERM);
    assert_eq!(wait_for(&mut a.0, Duration::from_secs(15)).code(), Some(0));
}
