//! The command's whole process tree, not only its first process: a lost
//! lock stops it, a killed tool takes it down, and a terminal's Ctrl-C
//! reaches it once.

use std::os::unix::process::CommandExt;

use super::*;

/// Whether `pid` is a live process (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the command name, which is in parentheses.
    let state = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    state != Some("Z")
}

/// The pid the command of the tool `tool` wrote to `name`, once it has.
fn pid_in(s: &Scene, tool: &str, name: &str) -> u32 {
    let mut pid = None;
    let seen = wait_until(Duration::from_secs(15), || {
        pid = s.read(name).trim().parse().ok();
        pid.is_some()
    });
    assert!(seen, "no pid in {name}: {}", s.read(&format!("{tool}.err")));
    pid.unwrap()
}

/// Kills a process the test left behind, so a failed run leaves nothing.
struct Reap(u32);

impl Drop for Reap {
    fn drop(&mut self) {
        if alive(self.0) {
            unsafe_free_kill(i32::try_from(self.0).unwrap(), KILL);
        }
    }
}

/// `lock k -- sh -c BODY` where BODY starts a grandchild (`sleep 1000`,
/// its pid in the file `grandchild`) and waits for it.
fn with_grandchild(s: &Scene, extra: &[&str], prelude: &str) -> (Child, Reap) {
    let body = format!(
        "{prelude} sleep 1000 & echo $! > {}; wait",
        s.path("grandchild").display()
    );
    let mut args = vec!["lock", "k", "--ttl", "3s"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "sh", "-c", &body]);
    let a = s.start("a", &args);
    let grandchild = pid_in(s, "a", "grandchild");
    assert!(alive(grandchild));
    (a, Reap(grandchild))
}

#[test]
fn a_lost_lock_stops_the_commands_children_too() {
    let s = Scene::new();
    let (mut a, grandchild) = with_grandchild(&s, &[], "");
    s.ok(&["release", "k", "--force"]);
    let status = wait_for(&mut a, Duration::from_secs(15));
    assert_eq!(status.code(), Some(79), "{}", s.read("a.err"));
    // The group got SIGTERM with the shell: the grandchild is gone by the
    // time the tool has ended, give or take a loaded machine.
    let gone = wait_until(Duration::from_secs(3), || !alive(grandchild.0));
    assert!(
        gone,
        "the grandchild {} outlived the lost lock",
        grandchild.0
    );
}

#[test]
fn a_killed_tool_takes_the_whole_tree_down_within_kill_after() {
    let s = Scene::new();
    // Shell and grandchild ignore SIGTERM: only SIGKILL, --kill-after after
    // the tool died, ends them.
    let (mut a, grandchild) = with_grandchild(&s, &["--kill-after", "2s"], "trap '' TERM;");
    let killed = Instant::now();
    signal(&a, KILL);
    wait_for(&mut a, Duration::from_secs(5));
    let gone = wait_until(Duration::from_secs(2 + 8), || !alive(grandchild.0));
    let took = killed.elapsed();
    eprintln!("the grandchild was gone {took:?} after SIGKILL of the tool");
    assert!(gone, "the grandchild {} outlived the tool", grandchild.0);
    assert!(
        took >= Duration::from_millis(1900),
        "SIGKILL before --kill-after: {took:?}"
    );
}

#[test]
fn a_terminals_ctrl_c_reaches_the_command_once() {
    let s = Scene::new();
    let ints = s.path("ints");
    // The trap counts each SIGINT; the background sleep ignores SIGINT (a
    // non-interactive shell's background jobs do), so the loop waits on.
    let body = format!(
        "trap 'echo int >> {i}' INT; sleep 1000 & echo $! > {g}; while kill -0 $! 2>/dev/null; do wait $!; done",
        i = ints.display(),
        g = s.path("grandchild").display()
    );
    let run = |name: &str, to_group: bool| {
        let _ = fs::remove_file(&ints);
        let _ = fs::remove_file(s.path("grandchild"));
        // A process group of its own, as a shell's job: the terminal's
        // SIGINT goes to every process of that group.
        let mut tool = s
            .tool(&["lock", "k", "--kill-after", "2s", "--", "bash", "-c", &body])
            .process_group(0)
            .stdout(fs::File::create(s.path(&format!("{name}.out"))).unwrap())
            .stderr(fs::File::create(s.path(&format!("{name}.err"))).unwrap())
            .spawn()
            .unwrap();
        let _grandchild = Reap(pid_in(&s, name, "grandchild"));
        let pid = i32::try_from(tool.id()).unwrap();
        let target = if to_group { -pid } else { pid };
        assert_eq!(
            Command::new("kill")
                .args(["-s", "INT", "--", &target.to_string()])
                .status()
                .unwrap()
                .code(),
            Some(0)
        );
        // The command traps SIGINT and waits on: SIGKILL after --kill-after.
        let status = wait_for(&mut tool, Duration::from_secs(15));
        assert_eq!(
            status.code(),
            Some(128 + KILL),
            "{}",
            s.read(&format!("{name}.err"))
        );
        let got = s.read("ints").lines().count();
        assert_eq!(got, 1, "{name}: the command got {got} SIGINTs");
        // The lock was released.
        s.ok(&["lock", "k", "--no-wait", "--", "true"]);
    };
    run("terminal", true);
    run("kill", false);
}
