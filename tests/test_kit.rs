//! The test kit (`mongoelector::testing`) on its own: a server started in
//! each mode, frozen and thawed, restarted with its data, stopped, dropped;
//! the fault proxy in front of it, through the driver; and SecantusDB
//! installed into an empty cache directory as on a fresh machine.
//!
//! Each test starts servers of its own (the shared server of
//! `scripts/test.sh` is not used), so the file runs the same in both passes.

use std::path::Path;
use std::time::{Duration, Instant};

use mongodb::bson::{doc, Document};
use mongodb::sync::{Client, Database};
use mongoelector::testing::{Prefer, ServerKind, TestServer};
use mongoelector::{Error, MongoLocker};

/// A client of `uri` that selects a server within `ms`.
fn impatient(uri: &str, ms: u64) -> Client {
    let mut options = mongodb::options::ClientOptions::parse(uri).run().unwrap();
    options.server_selection_timeout = Some(Duration::from_millis(ms));
    Client::with_options(options).expect("client")
}

/// A ping answered within 1.5 s (the driver has no socket timeout: a
/// frozen server's ping would wait; it runs on a thread of its own, left
/// to finish whenever).
fn ping(db: &Database) -> Result<Document, String> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let db = db.clone();
    std::thread::spawn(move || {
        let _ = tx.send(db.run_command(doc! {"ping": 1}).run());
    });
    match rx.recv_timeout(Duration::from_millis(1500)) {
        Ok(answer) => answer.map_err(|e| e.to_string()),
        Err(_) => Err("no answer within 1.5 s".into()),
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !alive(pid)
}

fn hello_of(server: &TestServer) -> Document {
    let admin = server.client().unwrap().database("admin");
    admin.run_command(doc! {"hello": 1}).run().unwrap()
}

#[test]
fn starts_a_replica_set_by_default_and_a_standalone_server_on_request() {
    let set = TestServer::start().unwrap();
    assert!(set.is_replica_set());
    let hello = hello_of(&set);
    assert!(hello.get_bool("isWritablePrimary").unwrap(), "{hello}");
    assert!(hello.contains_key("setName"), "a replica set: {hello}");

    let alone = TestServer::builder().standalone().start().unwrap();
    assert!(!alone.is_replica_set());
    assert_ne!(alone.port(), set.port());
    let hello = hello_of(&alone);
    assert!(!hello.contains_key("setName"), "standalone: {hello}");

    // `database` made the crate's two collections, and the lock works.
    let db = set.database("app").unwrap();
    let names = db.list_collection_names().run().unwrap();
    for name in [
        mongoelector::limits::DEFAULT_LOCK_COLLECTION,
        mongoelector::limits::DEFAULT_STATUS_COLLECTION,
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let lock = MongoLocker::builder("job", &db).build().unwrap();
    assert!(lock.try_lock().unwrap().is_some());
    // A second `database` on the same name is fine (the collections exist).
    set.database("app").unwrap();
}

#[test]
fn a_frozen_server_answers_nothing_until_thawed() {
    let server = TestServer::start().unwrap();
    let db = impatient(&server.uri(), 800).database("app");
    ping(&db).unwrap();
    server.freeze().unwrap();
    assert!(server.is_frozen());
    let started = Instant::now();
    assert!(ping(&db).is_err(), "a frozen server answered");
    assert!(started.elapsed() >= Duration::from_millis(500));
    server.thaw().unwrap();
    assert!(!server.is_frozen());
    let back = (0..50).any(|_| {
        let ok = ping(&db).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(back, "the thawed server answers again");
}

#[test]
fn restart_keeps_the_port_and_the_data_and_stop_refuses_connections() {
    let server = TestServer::start().unwrap();
    let port = server.port();
    let first = server.pid().unwrap();
    let db = server.database("app").unwrap();
    db.collection::<Document>("kept")
        .insert_one(doc! {"_id": 1, "v": "before"})
        .run()
        .unwrap();

    server.restart().unwrap();
    let second = server.pid().unwrap();
    assert_ne!(first, second, "a new process");
    assert!(
        gone_within(first, Duration::from_secs(5)),
        "the old one ended"
    );
    assert_eq!(server.port(), port);
    let db = server.client().unwrap().database("app");
    let kept = db
        .collection::<Document>("kept")
        .find_one(doc! {"_id": 1})
        .run()
        .unwrap();
    assert_eq!(kept.unwrap().get_str("v").unwrap(), "before");

    server.stop().unwrap();
    assert!(server.pid().is_none());
    assert!(gone_within(second, Duration::from_secs(5)));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    // Nothing to freeze: a typed error that says so.
    match server.freeze() {
        Err(Error::TestServer { action, reason, .. }) => {
            assert_eq!(action, "freeze the server");
            assert!(reason.contains("stopped"), "{reason}");
        }
        other => panic!("freeze of a stopped server: {other:?}"),
    }
    server.restart().unwrap();
    ping(&server.client().unwrap().database("app")).unwrap();
}

#[test]
fn an_in_memory_server_starts_empty_after_a_restart() {
    let server = TestServer::builder().in_memory(true).start().unwrap();
    let db = server.client().unwrap().database("app");
    db.collection::<Document>("lost")
        .insert_one(doc! {"_id": 1})
        .run()
        .unwrap();
    server.restart().unwrap();
    let db = server.client().unwrap().database("app");
    let n = db
        .collection::<Document>("lost")
        .count_documents(doc! {})
        .run()
        .unwrap();
    assert_eq!(n, 0);
}

#[test]
fn dropping_the_server_stops_it_and_removes_its_files() {
    let server = TestServer::start().unwrap();
    let pid = server.pid().unwrap();
    let log = server.log_path();
    assert!(log.exists());
    server.freeze().unwrap(); // a frozen server is stopped too
    drop(server);
    assert!(
        gone_within(pid, Duration::from_secs(5)),
        "PID {pid} still runs"
    );
    assert!(!log.exists(), "{} kept", log.display());
}

#[test]
fn the_proxy_partitions_delays_and_cuts_one_client_alone() {
    let server = TestServer::start().unwrap();
    let proxy = server.proxy().unwrap();
    assert!(proxy.uri().contains("directConnection=true"));
    let through = impatient(&proxy.uri(), 800).database("app");
    let direct = impatient(&server.uri(), 800).database("app");
    ping(&through).unwrap();

    proxy.partition();
    assert!(
        ping(&through).is_err(),
        "a partitioned client got an answer"
    );
    ping(&direct).unwrap(); // the others still reach the server
    proxy.pass();
    let healed = (0..50).any(|_| {
        let ok = ping(&through).is_ok();
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(healed);

    proxy.delay(Duration::from_millis(150));
    let started = Instant::now();
    ping(&through).unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    proxy.pass();

    let before = proxy.accepted();
    assert!(proxy.connections() > 0);
    proxy.cut();
    // The client sees its connections reset and opens new ones.
    let reconnected = (0..50).any(|_| {
        let ok = ping(&through).is_ok() && proxy.accepted() > before;
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(reconnected, "accepted {} (was {before})", proxy.accepted());
}

/// On a fresh machine: no SecantusDB anywhere, no `mongod` on `PATH`, an
/// empty cache. The test runs itself again in a child process with that
/// environment (a test cannot unset its own process's variables safely),
/// and the child starts a server.
#[test]
fn installs_secantusdb_into_an_empty_cache_on_first_use() {
    const CHILD: &str = "MONGOELECTOR_KIT_INSTALL_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let started = Instant::now();
        let server = TestServer::builder().start().unwrap();
        let ServerKind::SecantusDb { python } = server.kind() else {
            panic!("{:?}", server.kind());
        };
        let cache = std::env::var("MONGOELECTOR_TEST_CACHE").unwrap();
        assert!(python.starts_with(&cache), "{python:?} in {cache}");
        ping(&server.client().unwrap().database("app")).unwrap();
        eprintln!("installed and started in {:?}", started.elapsed());
        // A second start finds the install.
        let again = Instant::now();
        TestServer::builder()
            .server(Prefer::SecantusDb)
            .start()
            .unwrap();
        assert!(
            again.elapsed() < Duration::from_secs(20),
            "{:?}",
            again.elapsed()
        );
        return;
    }
    let cache = std::env::temp_dir().join(format!(
        "mongoelector-kit-cache-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let path: Vec<_> = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .filter(|dir| !dir.join("mongod").exists())
        .collect();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "installs_secantusdb_into_an_empty_cache_on_first_use",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("MONGOELECTOR_TEST_CACHE", &cache)
        .env("PATH", std::env::join_paths(path).unwrap())
        .env_remove("MONGOELECTOR_SECANTUS_PYTHON")
        .env_remove("MONGOELECTOR_TEST_SERVER")
        .env_remove("MONGOELECTOR_MONGOD")
        .output()
        .unwrap();
    let installed = cache
        .join(format!(
            "secantusdb-{}",
            mongoelector::testing::SECANTUSDB_VERSION
        ))
        .join("bin/python")
        .exists();
    let _ = std::fs::remove_dir_all(&cache);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the child failed: {}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child ran the test"
    );
    assert!(
        stderr.contains("installing the test server SecantusDB"),
        "{stderr}"
    );
    assert!(installed, "nothing in the cache");
}

/// With a server kind forced that is not there: an error that says what to
/// install, no panic.
#[test]
fn a_missing_mongod_is_a_typed_error_naming_what_to_install() {
    if std::env::var_os("MONGOELECTOR_KIT_MISSING_CHILD").is_some() {
        match TestServer::start() {
            Err(Error::TestServer { action, reason, .. }) => {
                assert_eq!(action, "find mongod");
                assert!(reason.contains("install MongoDB"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_missing_mongod_is_a_typed_error_naming_what_to_install",
        ])
        .env("MONGOELECTOR_KIT_MISSING_CHILD", "1")
        .env("MONGOELECTOR_TEST_SERVER", "mongod")
        .env("PATH", "/nonexistent")
        .env_remove("MONGOELECTOR_MONGOD")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two restarts at once end with one server running on the port, the
/// handle's own (each restart used to stop and start under separate
/// locks: the second could adopt the first's server and then stop it).
#[test]
fn restarts_at_once_leave_one_running_server() {
    let server = std::sync::Arc::new(TestServer::start().unwrap());
    let restarts: Vec<_> = (0..2)
        .map(|_| {
            let server = server.clone();
            std::thread::spawn(move || server.restart())
        })
        .collect();
    for r in restarts {
        r.join().unwrap().unwrap();
    }
    let pid = server.pid().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid), "the handle's server (PID {pid}) is running");
    ping(&server.client().unwrap().database("app")).unwrap();
}

/// A test process that dies with its server frozen, by the signal a test
/// runner's timeout or a Ctrl-C sends its whole process group: the
/// watchdog (in that group) ignores it, thaws and stops the server, and
/// removes its directory.
#[test]
fn a_frozen_server_dies_with_a_killed_test_process_group() {
    const CHILD: &str = "MONGOELECTOR_KIT_GROUP_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let server = TestServer::start().unwrap();
        server.freeze().unwrap();
        println!(
            "SERVER {} {}",
            server.pid().unwrap(),
            server.log_path().parent().unwrap().display()
        );
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_frozen_server_dies_with_a_killed_test_process_group",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let group = child.id() as i32;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let (pid, dir) = loop {
        let line = lines.next().expect("the child's server line").unwrap();
        if let Some(rest) = line.strip_prefix("SERVER ") {
            let (pid, dir) = rest.split_once(' ').unwrap();
            break (pid.parse::<u32>().unwrap(), std::path::PathBuf::from(dir));
        }
    };
    assert!(alive(pid));
    let kill = |args: &[&str]| {
        std::process::Command::new("kill")
            .args(args)
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(kill(&["-TERM", "--", &format!("-{group}")]));
    let _ = child.wait();
    // SecantusDB can hang in its shutdown after a SIGTERM that waited
    // while it was stopped: the watchdog kills it 10 s after its SIGTERM.
    let gone = gone_within(pid, Duration::from_secs(30));
    if !gone {
        // Not to leave it behind for the rest of the suite.
        kill(&["-CONT", &pid.to_string()]);
        kill(&["-KILL", &pid.to_string()]);
    }
    assert!(
        gone,
        "the frozen server (PID {pid}) outlived its test process"
    );
    let end = Instant::now() + Duration::from_secs(5);
    while dir.exists() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists(), "{} was left behind", dir.display());
}
