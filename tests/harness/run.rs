//! Worker processes (`examples/worker/`) for the fault tests: a set of
//! them sharing a database and a log directory, with the recorder and the
//! auditor of `recorder/` watching the server, stopped cleanly and their
//! history checked at the end.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The worker binary, built by `cargo test` next to this test binary.
pub fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().unwrap().parent().unwrap();
    let bin = debug.join("examples").join("worker");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test`, which builds examples",
        bin.display()
    );
    bin
}

/// Debian's libfaketime (package `faketime`, installed by scripts/test.sh).
pub fn libfaketime() -> &'static str {
    const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(
        std::path::Path::new(LIB).exists(),
        "{LIB} is missing: scripts/test.sh installs it (apt-get install faketime)"
    );
    LIB
}

pub struct Worker {
    pub name: String,
    pub child: Child,
}

/// A set of worker processes sharing a database and a log directory.
pub struct Run {
    pub db: String,
    pub dir: PathBuf,
    pub workers: Vec<Worker>,
    recorder: Option<crate::harness::recorder::Recorder>,
}

impl Run {
    pub fn new() -> Run {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = std::env::temp_dir().join(format!("mongoelector-faults-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        Run {
            db: format!("f_{id}"),
            dir,
            workers: Vec::new(),
            recorder: None,
        }
    }

    /// Starts the recorder and the auditor on the server at `uri` (one
    /// that reaches it directly), before any worker: the checker needs
    /// the audit of every run whose workers write.
    pub fn record(&mut self, uri: &str) {
        self.recorder = Some(crate::harness::recorder::Recorder::start(
            uri, &self.db, &self.dir,
        ));
    }

    /// Starts a worker; `faketime` runs it under libfaketime with that offset.
    pub fn spawn(&mut self, name: &str, uri: &str, args: &[&str], faketime: Option<&str>) -> u32 {
        let log = self.dir.join(format!("{name}.log"));
        let mut cmd = Command::new(worker_bin());
        if let Some(offset) = faketime {
            // libfaketime preloaded into the worker itself (the `faketime`
            // wrapper would stand between us and the worker's pid).
            cmd.env("LD_PRELOAD", libfaketime())
                .env("FAKETIME", offset)
                // Workers' history times come from CLOCK_MONOTONIC: keep it real.
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
        }
        cmd.args(["--name", name, "--db", &self.db, "--log"])
            .arg(&log)
            .args(args)
            .env("MONGODB_URI", uri)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().expect("spawn worker");
        let pid = child.id();
        self.workers.push(Worker {
            name: name.to_owned(),
            child,
        });
        pid
    }

    /// Restarts the server through `restart`, noting in the history when it
    /// went down and when it came back.
    pub fn restart_server(&self, restart: impl FnOnce()) {
        let down = crate::harness::clock::mono_ns();
        restart();
        let up = crate::harness::clock::mono_ns();
        let line = format!("restart down={down} up={up}\n");
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("restarts.log"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    }

    /// Whether worker `name` has logged a line that `f` accepts.
    pub fn logged(&self, name: &str, f: impl Fn(&str) -> bool) -> bool {
        std::fs::read_to_string(self.dir.join(format!("{name}.log")))
            .is_ok_and(|text| text.lines().any(f))
    }

    pub fn signal(&self, pid: u32, sig: &str) {
        crate::common::signal(pid, sig);
    }

    pub fn name_of(&self, pid: u32) -> Option<&str> {
        self.workers
            .iter()
            .find(|w| w.child.id() == pid)
            .map(|w| w.name.as_str())
    }

    /// SIGTERM to every live worker, then waits (SIGKILL after 15 s).
    pub fn stop_all(&mut self) {
        for w in &self.workers {
            let _ = Command::new("kill")
                .args(["-CONT", &w.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let _ = Command::new("kill")
                .args(["-TERM", &w.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let end = Instant::now() + Duration::from_secs(15);
        for w in &mut self.workers {
            loop {
                match w.child.try_wait() {
                    Ok(Some(_)) => break,
                    _ if Instant::now() > end => {
                        let _ = w.child.kill();
                        let _ = w.child.wait();
                        panic!("worker {} did not stop on SIGTERM", w.name);
                    }
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    /// Stops everything and fails on any violation; the report otherwise.
    pub fn finish(
        mut self,
    ) -> (
        crate::harness::checker::History,
        crate::harness::checker::Report,
    ) {
        self.stop_all();
        if let Some(r) = self.recorder.take() {
            r.stop();
        }
        let (history, report) = crate::harness::checker::History::read_checked(&self.dir);
        // KEEP_HISTORY=1 keeps a passing run's logs too, for a look.
        if std::env::var_os("KEEP_HISTORY").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("history kept in {}", self.dir.display());
        }
        (history, report)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
    }
}
