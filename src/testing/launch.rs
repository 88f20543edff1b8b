//! The command line of each server program, and how each is made ready to
//! serve (a `mongod` replica set is initiated on its first start).

use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

use mongodb::bson::doc;
use mongodb::sync::Client;

use super::install::ServerKind;
use super::kit_error;
use super::process::Launch;
use crate::Result;

/// The replica set's name under `mongod` (SecantusDB names its own
/// `secantus`).
pub(super) const MONGOD_SET: &str = "rs0";

/// How a server is to run (from its builder), the same at every restart.
#[derive(Clone, Debug)]
pub(super) struct Settings {
    pub replica_set: bool,
    pub in_memory: bool,
    pub ttl_monitor: Option<Duration>,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
}

/// The command that runs `kind` on `port` with its data in `data`.
pub(super) fn command(kind: &ServerKind, settings: &Settings, port: u16, dir: &Path) -> Launch {
    let data = dir.join("data");
    let mut args: Vec<OsString> = Vec::new();
    let mut push = |a: &str| args.push(a.into());
    match kind {
        ServerKind::Mongod { .. } => {
            push("--port");
            push(&port.to_string());
            push("--bind_ip");
            push("127.0.0.1");
            push("--dbpath");
            args.push(data.into_os_string());
            let mut push = |a: &str| args.push(a.into());
            if settings.replica_set {
                push("--replSet");
                push(MONGOD_SET);
            }
            // The `failCommand` fail point; loopback only.
            push("--setParameter");
            push("enableTestCommands=1");
            if let Some(every) = settings.ttl_monitor {
                push("--setParameter");
                push(&format!("ttlMonitorSleepSecs={}", every.as_secs().max(1)));
            }
        }
        ServerKind::SecantusDb { .. } => {
            let storage = if settings.in_memory {
                ":memory:".to_owned()
            } else {
                data.to_string_lossy().into_owned()
            };
            match settings.ttl_monitor {
                // Its command line has no option for the TTL monitor's
                // period (and its config file drops it); its Python API
                // takes it.
                Some(every) => {
                    let set = if settings.replica_set {
                        "'secantus'"
                    } else {
                        "None"
                    };
                    push("-c");
                    push(&format!(
                        "import signal, sys\n\
                         from secantus.server import SecantusDBServer\n\
                         s = SecantusDBServer(host='127.0.0.1', port={port}, \
                         storage_path=sys.argv[1], replica_set_name={set}, \
                         enable_test_commands=True, ttl_sweep_seconds={})\n\
                         def stop(*_):\n    s.stop()\n    sys.exit(0)\n\
                         signal.signal(signal.SIGTERM, stop)\n\
                         s.start()\n\
                         s.wait()\n",
                        every.as_secs_f64()
                    ));
                    push(&storage);
                }
                None => {
                    push("-c");
                    push("import sys\nfrom secantus.cli import main\nsys.exit(main())");
                    for a in ["--host", "127.0.0.1", "--port", &port.to_string()] {
                        push(a);
                    }
                    push("--storage-path");
                    push(&storage);
                    // An empty config file: none of the user's own
                    // (./secantusd.toml, ~/.secantus/) is read.
                    push("--config");
                    args.push(dir.join("secantusd.toml").into_os_string());
                    let mut push = |a: &str| args.push(a.into());
                    push("--log-level");
                    push("WARNING");
                    push("--enable-test-commands");
                    if !settings.replica_set {
                        push("--standalone");
                    }
                }
            }
        }
    }
    args.extend(settings.args.iter().cloned());
    Launch {
        program: kind.path().to_owned(),
        args,
        env: settings.env.clone(),
    }
}

/// Prepares `dir` for a first start: the data directory, and the empty
/// config file SecantusDB is pointed at.
pub(super) fn prepare(dir: &Path) -> Result<()> {
    let io = |e: std::io::Error| kit_error("prepare the data directory", e.to_string(), Some(e));
    std::fs::create_dir_all(dir.join("data")).map_err(io)?;
    std::fs::write(dir.join("secantusd.toml"), b"").map_err(io)
}

/// A URI that reaches only the server at `address` (no discovery of the
/// replica set's members: a proxy in front stays in front) and fails fast
/// while it is down or frozen.
pub(super) fn direct_uri(address: &str) -> String {
    format!(
        "mongodb://{address}/?directConnection=true&serverSelectionTimeoutMS=2000\
         &connectTimeoutMS=2000&heartbeatFrequencyMS=500"
    )
}

/// Waits until the server answers `hello` as a writable primary (a
/// standalone server: as soon as it answers). A `mongod` replica set that
/// has no configuration yet is initiated first.
pub(super) fn until_ready(
    kind: &ServerKind,
    settings: &Settings,
    port: u16,
    limit: Duration,
) -> Result<()> {
    let client = Client::with_uri_str(direct_uri(&format!("127.0.0.1:{port}")))?;
    let admin = client.database("admin");
    let end = Instant::now() + limit;
    let mut initiated = false;
    loop {
        let hello = admin.run_command(doc! {"hello": 1}).run();
        let last = match hello {
            Ok(reply) => {
                let primary = reply.get_bool("isWritablePrimary").unwrap_or(false);
                let wants_set = settings.replica_set;
                if primary && (!wants_set || reply.contains_key("setName")) {
                    return Ok(());
                }
                if wants_set && !initiated && matches!(kind, ServerKind::Mongod { .. }) {
                    initiated = true;
                    initiate(&client, port)?;
                }
                format!("hello answered {reply}")
            }
            Err(e) => e.to_string(),
        };
        if Instant::now() >= end {
            return Err(kit_error(
                "start the server",
                format!("it was not ready within {limit:?} (last: {last})"),
                None,
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `replSetInitiate` with this one member; a configuration that is there
/// already (a restart) is fine.
fn initiate(client: &Client, port: u16) -> Result<()> {
    let config = doc! {
        "_id": MONGOD_SET,
        "members": [{"_id": 0, "host": format!("127.0.0.1:{port}")}],
    };
    match client
        .database("admin")
        .run_command(doc! {"replSetInitiate": config})
        .run()
    {
        Ok(_) => Ok(()),
        // AlreadyInitialized.
        Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 23) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
