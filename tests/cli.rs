//! The `mongoelector` binary, run as a user runs it, against the real
//! server at `MONGODB_URI`: each test a database of its own.

mod common;
#[path = "cli/durations.rs"]
mod durations;
#[path = "cli/kinds.rs"]
mod kinds;
#[path = "cli/metrics_addr.rs"]
mod metrics_addr;
#[path = "cli/process_tree.rs"]
mod process_tree;
#[path = "cli/reelection.rs"]
mod reelection;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{has_change_streams, uri, wait_until};
use mongoelector::{default_retry_interval, lease_margin};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_mongoelector");

/// A database and a scratch directory of one test's own.
struct Scene {
    db: String,
    dir: PathBuf,
    change_streams: bool,
}

impl Scene {
    fn new() -> Self {
        let db = common::db();
        let dir = std::env::temp_dir().join(format!("mongoelector-cli-{}", db.name()));
        fs::create_dir_all(&dir).unwrap();
        Scene {
            db: db.name().to_owned(),
            change_streams: has_change_streams(&db),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The tool, connected through `MONGODB_URI` and `--db`.
    fn tool(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .env("MONGODB_URI", uri())
            .arg("--db")
            .arg(&self.db)
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Runs the tool to its end.
    fn run(&self, args: &[&str]) -> Output {
        self.tool(args).output().unwrap()
    }

    /// Runs the tool to its end, which must be a success.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        out
    }

    /// Starts the tool in the background, its output in files named after
    /// `name` (files, not pipes: a command's orphaned children may keep a
    /// pipe open long after the tool ended).
    fn start(&self, name: &str, args: &[&str]) -> Child {
        self.tool(args)
            .stdout(fs::File::create(self.path(&format!("{name}.out"))).unwrap())
            .stderr(fs::File::create(self.path(&format!("{name}.err"))).unwrap())
            .spawn()
            .unwrap()
    }

    /// Starts `lock ARGS -- bash -c BODY` in the background.
    fn lock(&self, name: &str, args: &[&str], body: &str) -> Child {
        let mut all = vec!["lock"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--", "bash", "-c", body]);
        self.start(name, &all)
    }

    /// A `lock KEY` (named `a`) whose command has started and sleeps 30 s.
    fn holding(&self, key: &str) -> Child {
        let body = self.recorder("a", "sleep 30");
        let a = self.lock("a", &[key, "--ttl", "5s"], &body);
        self.started("a");
        a
    }

    /// Waits until the command of `name` has logged its start.
    fn started(&self, name: &str) {
        let seen = wait_until(Duration::from_secs(15), || {
            self.when(name, "start").is_some()
        });
        assert!(
            seen,
            "{name} did not start: {}",
            self.read(&format!("{name}.err"))
        );
    }

    fn read(&self, name: &str) -> String {
        fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// A bash command (bash: its clock needs no extra process) that appends `NAME start T`, runs `body`, appends
    /// `NAME end T` (T in nanoseconds since the epoch) to the file `log`.
    fn recorder(&self, name: &str, body: &str) -> String {
        let log = self.path("log");
        let log = log.display();
        format!(
            "echo \"{name} start ${{EPOCHREALTIME/./}}000\" >> {log}; {body}; echo \"{name} end ${{EPOCHREALTIME/./}}000\" >> {log}"
        )
    }

    /// `NAME EVENT` lines of the log with their times.
    fn events(&self) -> Vec<(String, String, u128)> {
        self.read("log")
            .lines()
            .map(|line| {
                let mut parts = line.split_whitespace();
                let name = parts.next().unwrap().to_owned();
                let event = parts.next().unwrap().to_owned();
                let at = parts.next().unwrap().parse().unwrap();
                (name, event, at)
            })
            .collect()
    }

    fn when(&self, name: &str, event: &str) -> Option<u128> {
        self.events()
            .into_iter()
            .find(|(n, e, _)| n == name && e == event)
            .map(|(_, _, at)| at)
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn signal(child: &Child, signal: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    assert_eq!(unsafe_free_kill(pid, signal), 0, "kill {pid}");
}

/// `kill(1)`, so the tests need no unsafe code.
fn unsafe_free_kill(pid: i32, signal: i32) -> i32 {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .code()
        .unwrap_or(-1)
}

/// Waits up to `limit` for the tool to end.
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("the tool did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The one line of stderr, checked to be one line.
fn one_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr).into_owned();
    assert_eq!(text.lines().count(), 1, "one line: {text:?}");
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "{text}"
    );
    text
}

const TERM: i32 = 15;
const KILL: i32 = 9;

#[test]
fn locks_on_one_key_take_turns() {
    let s = Scene::new();
    let names = ["a", "b", "c", "d"];
    let mut tools = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let body = s.recorder(name, "sleep 1");
        tools.push(s.start(
            name,
            &["lock", "nightly", "--ttl", "5s", "--", "bash", "-c", &body],
        ));
        if i == 0 {
            // The others start waiting while the first holds the lock.
            s.started("a");
        }
    }
    for (name, tool) in names.iter().zip(&mut tools) {
        let status = wait_for(tool, Duration::from_secs(30));
        assert!(
            status.success(),
            "{name}: {}",
            s.read(&format!("{name}.err"))
        );
    }
    let mut runs: Vec<(u128, u128)> = names
        .iter()
        .map(|n| (s.when(n, "start").unwrap(), s.when(n, "end").unwrap()))
        .collect();
    runs.sort();
    let mut gaps = Vec::new();
    for pair in runs.windows(2) {
        let ((_, end), (next, _)) = (pair[0], pair[1]);
        assert!(end <= next, "overlap: {:?}", s.events());
        gaps.push(Duration::from_nanos(u64::try_from(next - end).unwrap()));
    }
    eprintln!("each next command started after the previous one ended by: {gaps:?}");
    let (best, worst) = (*gaps.iter().min().unwrap(), *gaps.iter().max().unwrap());
    if s.change_streams {
        // Woken by the change stream: within 100 ms. Three handovers, the
        // best of them held to it, so that one descheduled process on a
        // loaded machine does not fail the run; none may be slow.
        assert!(best < Duration::from_millis(100), "{gaps:?}");
        assert!(worst < Duration::from_secs(1), "{gaps:?}");
    } else {
        // Waiters poll every 250 ms on a standalone server.
        let bound = mongoelector::limits::DEFAULT_STEP + Duration::from_millis(750);
        assert!(worst < bound, "{gaps:?} over {bound:?}");
    }
}

#[test]
fn not_acquired_names_the_holder_and_exits_75() {
    let s = Scene::new();
    let mut a = s.holding("k");
    for wait in [&["--no-wait"][..], &["--timeout", "300ms"][..]] {
        let mut args = vec!["lock", "k"];
        args.extend_from_slice(wait);
        args.extend_from_slice(&["--", "true"]);
        let out = s.run(&args);
        assert_eq!(out.status.code(), Some(75), "{wait:?}");
        let line = one_line(&out.stderr);
        assert!(line.contains("not acquired"), "{line}");
        assert!(line.contains(&format!("pid {} ", a.id())), "{line}");
        assert!(
            line.contains(" since ") && line.contains(" fence "),
            "{line}"
        );
        assert!(line.contains(&gethostname()), "{line}");
    }
    signal(&a, TERM);
    wait_for(&mut a, Duration::from_secs(15));
}

fn gethostname() -> String {
    String::from_utf8(Command::new("hostname").output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn a_forced_release_stops_the_command_and_exits_79() {
    let s = Scene::new();
    let ttl = Duration::from_secs(3);
    // The command reports SIGTERM and exits.
    let body = format!(
        "trap 'echo \"a term ${{EPOCHREALTIME/./}}000\" >> {}; exit 0' TERM; echo \"a start ${{EPOCHREALTIME/./}}000\" >> {}; sleep 20 & wait",
        s.path("log").display(),
        s.path("log").display()
    );
    let mut a = s.lock("a", &["k", "--ttl", "3s"], &body);
    s.started("a");
    let released_at = now_ns();
    let out = s.ok(&["release", "k", "--force"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("released \"k\": was held by"), "{printed}");
    assert!(printed.contains(&format!("pid {} ", a.id())), "{printed}");
    let status = wait_for(&mut a, Duration::from_secs(15));
    assert_eq!(status.code(), Some(79), "{}", s.read("a.err"));
    let err = s.read("a.err");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("lost"), "{err}");
    let term = s.when("a", "term").expect("the command got SIGTERM");
    let after = Duration::from_nanos(u64::try_from(term - released_at).unwrap());
    eprintln!("SIGTERM {after:?} after the forced release");
    // Within one renewal period (ttl/3), with a margin for a loaded machine.
    assert!(after < ttl / 3 + Duration::from_millis(1500), "{after:?}");
    // Nobody holds it now.
    assert!(s
        .run(&["lock", "k", "--no-wait", "--", "true"])
        .status
        .success());
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_kill_after() {
    let s = Scene::new();
    let body = format!(
        "trap '' TERM; echo \"a start ${{EPOCHREALTIME/./}}000\" >> {}; sleep 10",
        s.path("log").display()
    );
    let mut a = s.start(
        "a",
        &[
            "lock",
            "k",
            "--ttl",
            "3s",
            "--kill-after",
            "1500ms",
            "--",
            "bash",
            "-c",
            &body,
        ],
    );
    s.started("a");
    let released = Instant::now();
    s.ok(&["release", "k", "--force"]);
    let status = wait_for(&mut a, Duration::from_secs(15));
    let took = released.elapsed();
    assert_eq!(status.code(), Some(79), "{}", s.read("a.err"));
    let err = s.read("a.err");
    assert!(err.contains("SIGKILL"), "{err}");
    eprintln!("killed {took:?} after the forced release");
    // SIGTERM within a renewal period (1 s), SIGKILL 1.5 s later.
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_millis(1000 + 1500 + 2000), "{took:?}");
}

#[test]
fn sigterm_to_lock_reaches_the_command_then_frees_the_lock() {
    let s = Scene::new();
    let log = s.path("log");
    let body = format!(
        "trap 'echo \"a term ${{EPOCHREALTIME/./}}000\" >> {l}; exit 5' TERM; echo \"a start ${{EPOCHREALTIME/./}}000\" >> {l}; sleep 20 & wait",
        l = log.display()
    );
    let mut a = s.lock("a", &["k", "--ttl", "5s"], &body);
    s.started("a");
    signal(&a, TERM);
    let status = wait_for(&mut a, Duration::from_secs(15));
    assert!(s.when("a", "term").is_some(), "the command got SIGTERM");
    assert_eq!(
        status.code(),
        Some(5),
        "its exit status: {}",
        s.read("a.err")
    );
    // Free at once: not after the ttl.
    s.ok(&["lock", "k", "--no-wait", "--", "true"]);
}

#[test]
fn the_command_gets_key_and_fence_and_its_exit_status_is_passed_through() {
    let s = Scene::new();
    let out = s.run(&[
        "lock",
        "job",
        "--",
        "bash",
        "-c",
        "echo \"$MONGOELECTOR_KEY $MONGOELECTOR_FENCE\"; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    let printed = String::from_utf8_lossy(&out.stdout);
    let mut parts = printed.split_whitespace();
    assert_eq!(parts.next(), Some("job"));
    let fence: i64 = parts.next().unwrap().parse().unwrap();
    assert!(fence > 0);
    // A command that cannot be found: 127, and the lock is released.
    let out = s.run(&["lock", "job", "--", "/nonexistent/command"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(one_line(&out.stderr).contains("/nonexistent/command"));
    s.ok(&["lock", "job", "--no-wait", "--", "true"]);
}

#[test]
fn sigterm_while_waiting_gives_up_without_running_the_command() {
    let s = Scene::new();
    let mut a = s.holding("k");
    let waiter = s.recorder("b", "true");
    let mut b = s.lock("b", &["k", "--ttl", "5s"], &waiter);
    std::thread::sleep(Duration::from_secs(1));
    let sent = Instant::now();
    signal(&b, TERM);
    assert_eq!(
        wait_for(&mut b, Duration::from_secs(10)).code(),
        Some(128 + TERM)
    );
    eprintln!("a waiting tool ended {:?} after SIGTERM", sent.elapsed());
    assert!(sent.elapsed() < Duration::from_secs(3));
    assert_eq!(s.when("b", "start"), None, "its command never ran");
    // The holder still holds the lock.
    let status: Value = serde_json::from_slice(&s.ok(&["status", "k", "--json"]).stdout).unwrap();
    assert_eq!(status["holder"]["pid"], a.id());
    signal(&a, TERM);
    wait_for(&mut a, Duration::from_secs(15));
}

#[test]
fn hold_at_least_keeps_a_finished_job_from_running_again() {
    let s = Scene::new();
    s.ok(&["lock", "once", "--hold-at-least", "3s", "--", "true"]);
    let again = s.run(&["lock", "once", "--no-wait", "--", "true"]);
    assert_eq!(again.status.code(), Some(75));
}

/// An `elect` whose command logs `NAME start` and `NAME term` (on SIGTERM).
fn elect(s: &Scene, name: &str, ttl: &str) -> Child {
    let body = format!(
        "trap 'echo \"{name} term ${{EPOCHREALTIME/./}}000\" >> {l}; exit 0' TERM; echo \"{name} start ${{EPOCHREALTIME/./}}000\" >> {l}; sleep 60 & wait",
        l = s.path("log").display()
    );
    s.start(
        name,
        &[
            "elect",
            "svc",
            "--ttl",
            ttl,
            "--kill-after",
            "2s",
            "--",
            "bash",
            "-c",
            &body,
        ],
    )
}

fn starts(s: &Scene) -> Vec<String> {
    s.events()
        .into_iter()
        .filter(|(_, e, _)| e == "start")
        .map(|(n, _, _)| n)
        .collect()
}

#[test]
fn two_elects_one_runs_and_sigterm_hands_over() {
    let s = Scene::new();
    let mut a = elect(&s, "a", "3s");
    let mut b = elect(&s, "b", "3s");
    assert!(wait_until(Duration::from_secs(15), || !starts(&s).is_empty()));
    std::thread::sleep(Duration::from_secs(2));
    let started = starts(&s);
    assert_eq!(started.len(), 1, "exactly one runs: {started:?}");
    let (master, other, other_name) = if started[0] == "a" {
        (&mut a, &mut b, "b")
    } else {
        (&mut b, &mut a, "a")
    };

    // The status names the master and both members.
    let out = s.ok(&["status", "svc", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["holder"]["pid"], master.id());
    assert!(status["holder"]["fence"].as_i64().unwrap() > 0);
    assert!(status["holder"]["expires"].as_str().unwrap().ends_with('Z'));
    let members = status["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "{status}");
    assert_eq!(
        members.iter().filter(|m| m["master"] == true).count(),
        1,
        "{status}"
    );

    let sent = now_ns();
    signal(master, TERM);
    assert_eq!(wait_for(master, Duration::from_secs(15)).code(), Some(0));
    let master_name = &started[0];
    assert!(
        s.when(master_name, "term").is_some(),
        "its command was stopped"
    );
    assert!(wait_until(Duration::from_secs(10), || s
        .when(other_name, "start")
        .is_some()));
    let took =
        Duration::from_nanos(u64::try_from(s.when(other_name, "start").unwrap() - sent).unwrap());
    eprintln!("the other command started {took:?} after SIGTERM to the master");
    let bound = if s.change_streams {
        Duration::from_secs(1)
    } else {
        default_retry_interval(Duration::from_secs(3)) + Duration::from_secs(1)
    };
    assert!(took < bound, "{took:?} over {bound:?}");
    signal(other, TERM);
    assert_eq!(wait_for(other, Duration::from_secs(15)).code(), Some(0));
}

#[test]
fn sigkill_of_the_master_tool_hands_over_after_the_lease() {
    let s = Scene::new();
    let ttl = Duration::from_secs(3);
    let mut a = elect(&s, "a", "3s");
    s.started("a");
    let mut b = elect(&s, "b", "3s");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(starts(&s), ["a"]);
    let killed = now_ns();
    signal(&a, KILL);
    wait_for(&mut a, Duration::from_secs(5));
    // The command does not run on without its tool.
    assert!(wait_until(Duration::from_secs(5), || s
        .when("a", "term")
        .is_some()));
    let bound = ttl + default_retry_interval(ttl) + lease_margin(ttl) + Duration::from_secs(1);
    assert!(wait_until(bound + Duration::from_secs(5), || s
        .when("b", "start")
        .is_some()));
    let took = Duration::from_nanos(u64::try_from(s.when("b", "start").unwrap() - killed).unwrap());
    eprintln!("the other command started {took:?} after SIGKILL of the master");
    assert!(took < bound, "{took:?} over {bound:?}");
    signal(&b, TERM);
    assert_eq!(wait_for(&mut b, Duration::from_secs(15)).code(), Some(0));
}

#[test]
fn an_elected_command_that_ends_ends_the_tool_with_its_status() {
    let s = Scene::new();
    let out = s.run(&["elect", "svc", "--ttl", "3s", "--", "bash", "-c", "exit 4"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It stepped down: the election's lock is free.
    let list: Value = serde_json::from_slice(&s.ok(&["list", "--json"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn status_and_list_print_json_naming_holder_fence_and_expiry() {
    let s = Scene::new();
    let free: Value = serde_json::from_slice(&s.run(&["status", "k", "--json"]).stdout).unwrap();
    assert_eq!(free["holder"], Value::Null);
    let body = s.recorder("a", "sleep 20");
    let mut a = s.lock("a", &["k", "--ttl", "30s"], &body);
    s.started("a");
    let out = s.ok(&["status", "k", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let holder = &status["holder"];
    assert_eq!(holder["key"], "k");
    assert_eq!(holder["pid"], a.id());
    assert_eq!(holder["host"], gethostname());
    let fence = holder["fence"].as_i64().unwrap();
    assert!(fence > 0);
    let expires =
        chrono::DateTime::parse_from_rfc3339(holder["expires"].as_str().unwrap()).unwrap();
    let since = chrono::DateTime::parse_from_rfc3339(holder["since"].as_str().unwrap()).unwrap();
    assert!(
        expires > since && expires - since <= chrono::TimeDelta::seconds(31),
        "{holder}"
    );
    assert_eq!(status["members"], serde_json::json!([]));

    let out = s.ok(&["list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["key"], "k");
    assert_eq!(list[0]["fence"], fence);
    assert_eq!(list[0]["pid"], a.id());
    assert!(list[0]["expires"].is_string());

    // The text forms say the same on one line each.
    let text = String::from_utf8(s.run(&["list"]).stdout).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(
        text.contains(&format!(
            "\"k\": held by host {} pid {} ",
            gethostname(),
            a.id()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("fence {fence}")), "{text}");

    signal(&a, TERM);
    wait_for(&mut a, Duration::from_secs(15));
    let list: Value = serde_json::from_slice(&s.run(&["list", "--json"]).stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));
}

#[test]
fn status_watch_prints_each_change_of_master() {
    let s = Scene::new();
    let mut watch = s.start("watch", &["status", "svc", "--watch"]);
    assert!(wait_until(Duration::from_secs(15), || s
        .read("watch.out")
        .contains("free")));
    let mut a = elect(&s, "a", "3s");
    s.started("a");
    let mut b = elect(&s, "b", "3s");
    std::thread::sleep(Duration::from_secs(1));
    let a_line = format!("pid {} ", a.id());
    assert!(wait_until(Duration::from_secs(5), || s
        .read("watch.out")
        .contains(&a_line)));
    signal(&a, TERM);
    wait_for(&mut a, Duration::from_secs(15));
    let b_line = format!("pid {} ", b.id());
    assert!(
        wait_until(Duration::from_secs(10), || s
            .read("watch.out")
            .contains(&b_line)),
        "{}",
        s.read("watch.out")
    );
    signal(&b, TERM);
    wait_for(&mut b, Duration::from_secs(15));
    signal(&watch, TERM);
    assert_eq!(
        wait_for(&mut watch, Duration::from_secs(10)).code(),
        Some(0)
    );
    let printed = s.read("watch.out");
    let lines: Vec<&str> = printed.lines().collect();
    let at = |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap();
    assert!(
        at("free") < at(&a_line) && at(&a_line) < at(&b_line),
        "{printed}"
    );
    for line in &lines {
        // Each line starts with its timestamp.
        let stamp = line.split_whitespace().next().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
            "{line}"
        );
    }
}

#[test]
fn bad_usage_and_unreachable_servers_get_their_codes_and_one_line() {
    let s = Scene::new();
    let usage: [&[&str]; 9] = [
        &["lock", "k", "--bogus", "--", "true"],
        &["semaphore", "k", "--", "true"],
        &["semaphore", "k", "--permits", "0", "--", "true"],
        &["lock", "k", "--ttl", "soon", "--", "true"],
        &["lock", "k", "--ttl", "1ms", "--", "true"],
        &["lock", "k"],
        &["lock", "k", "--no-wait", "--timeout", "1s", "--", "true"],
        &["release", "k"],
        &["frobnicate"],
    ];
    for args in usage {
        let out = s.run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let line = one_line(&out.stderr);
        assert!(line.starts_with("mongoelector: "), "{line}");
    }
    let bad_uri = Command::new(BIN)
        .args(["--uri", "not-a-uri", "list"])
        .output()
        .unwrap();
    assert_eq!(bad_uri.status.code(), Some(64));
    assert!(one_line(&bad_uri.stderr).contains("connection string"));
    let no_db = Command::new(BIN)
        .env("MONGODB_URI", "mongodb://127.0.0.1:1/")
        .arg("list")
        .output()
        .unwrap();
    assert_eq!(no_db.status.code(), Some(64));
    assert!(one_line(&no_db.stderr).contains("--db"));

    // Nothing listens on port 1: refused, reported within seconds.
    let started = Instant::now();
    let unreachable = Command::new(BIN)
        .args([
            "--uri",
            "mongodb://127.0.0.1:1/app",
            "lock",
            "k",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(unreachable.status.code(), Some(69));
    let line = one_line(&unreachable.stderr);
    assert!(
        line.contains("unreachable") && line.contains("\"k\""),
        "{line}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    eprintln!("unreachable server reported after {took:?}: {line}");

    let help = s.run(&["--help"]);
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for code in ["64", "69", "75", "79", "127"] {
        assert!(help.contains(&format!("  {code} ")), "{code}: {help}");
    }
    assert!(help.contains("semaphore"), "{help}");
}

#[test]
fn semaphore_runs_up_to_permits_commands_at_once() {
    let s = Scene::new();
    let semaphore = |name: &str, key: &str, permits: &str, extra: &[&str], body: &str| {
        let mut all = vec!["semaphore", key, "--permits", permits, "--ttl", "5s"];
        all.extend_from_slice(extra);
        all.extend_from_slice(&["--", "bash", "-c", body]);
        s.start(name, &all)
    };
    // One permit: a --no-wait run exits 75 naming the holder; a waiting
    // run starts once the first command has ended.
    let mut a = semaphore("a", "one", "1", &[], &s.recorder("a", "sleep 1.5"));
    s.started("a");
    let out = s.run(&[
        "semaphore",
        "one",
        "--permits",
        "1",
        "--no-wait",
        "--",
        "true",
    ]);
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = one_line(&out.stderr);
    assert!(line.contains("not acquired"), "{line}");
    assert!(line.contains(&format!("pid {} ", a.id())), "{line}");
    let mut b = semaphore("b", "one", "1", &[], &s.recorder("b", "true"));
    for (name, tool) in [("a", &mut a), ("b", &mut b)] {
        let status = wait_for(tool, Duration::from_secs(30));
        assert!(
            status.success(),
            "{name}: {}",
            s.read(&format!("{name}.err"))
        );
    }
    assert!(
        s.when("b", "start").unwrap() >= s.when("a", "end").unwrap(),
        "b waited for a: {:?}",
        s.events()
    );
    // Two permits: two commands at once, the second with --no-wait, each
    // with the key and its own fence in its environment.
    let show = "echo \"$MONGOELECTOR_KEY $MONGOELECTOR_FENCE\"";
    let mut c = semaphore(
        "c",
        "two",
        "2",
        &[],
        &s.recorder("c", &format!("{show}; sleep 1.5")),
    );
    s.started("c");
    let d = s.run(&[
        "semaphore",
        "two",
        "--permits",
        "2",
        "--no-wait",
        "--",
        "bash",
        "-c",
        &s.recorder("d", show),
    ]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(wait_for(&mut c, Duration::from_secs(30)).success());
    assert!(
        s.when("d", "start").unwrap() < s.when("c", "end").unwrap(),
        "c and d ran at once: {:?}",
        s.events()
    );
    let printed = |out: &str| -> (String, i64) {
        let mut parts = out.split_whitespace();
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().parse().unwrap(),
        )
    };
    let (key_c, fence_c) = printed(&s.read("c.out"));
    let (key_d, fence_d) = printed(&String::from_utf8_lossy(&d.stdout));
    assert_eq!((key_c.as_str(), key_d.as_str()), ("two", "two"));
    assert!(fence_d > fence_c, "{fence_c} then {fence_d}");
    // Another count on the same key: refused as bad usage, one line
    // naming both counts, the command not run.
    let e = s.run(&[
        "semaphore",
        "two",
        "--permits",
        "3",
        "--",
        "bash",
        "-c",
        &s.recorder("e", "true"),
    ]);
    assert_eq!(
        e.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&e.stderr)
    );
    let line = one_line(&e.stderr);
    assert!(line.contains('2') && line.contains('3'), "{line}");
    assert_eq!(s.when("e", "start"), None);
}
