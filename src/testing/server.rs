//! [`TestServer`]: a throwaway server of one test's own, and its faults.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mongodb::sync::{Client, Database};
use nix::sys::signal::Signal;
use parking_lot::Mutex;

use super::install::{self, Choice, Environment, Prefer, ServerKind};
use super::kit_error;
use super::launch::{self, Settings};
use super::process::{log_tail, Process};
use super::proxy::FaultProxy;
use crate::Result;

/// How long a start may take, the install of SecantusDB aside.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Options for a [`TestServer`], from [`TestServer::builder`].
///
/// ```no_run
/// use mongoelector::testing::TestServer;
///
/// let server = TestServer::builder().standalone().in_memory(true).start()?;
/// assert!(!server.is_replica_set());
/// # Ok::<(), mongoelector::Error>(())
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `start` is called"]
pub struct TestServerBuilder {
    settings: Settings,
    prefer: Prefer,
    cache_dir: Option<PathBuf>,
}

impl TestServerBuilder {
    /// A single-node replica set (the default: change streams and majority
    /// writes work, as on a production deployment).
    pub fn replica_set(mut self) -> Self {
        self.settings.replica_set = true;
        self
    }

    /// A standalone server: no change streams, so the crate's waiters poll.
    pub fn standalone(mut self) -> Self {
        self.settings.replica_set = false;
        self
    }

    /// Which server to run when both could be ([`Prefer::Mongod`] by
    /// default). The variable `MONGOELECTOR_TEST_SERVER` (`mongod` or
    /// `secantusdb`) overrides it.
    pub fn server(mut self, prefer: Prefer) -> Self {
        self.prefer = prefer;
        self
    }

    /// Keep SecantusDB's data in memory (faster; a
    /// [`restart`](TestServer::restart) then starts empty). `mongod`
    /// always keeps its data in the server's temporary directory.
    pub fn in_memory(mut self, in_memory: bool) -> Self {
        self.settings.in_memory = in_memory;
        self
    }

    /// Run the TTL monitor, which deletes expired documents, this often
    /// (MongoDB's default is 60 s; `mongod` takes whole seconds).
    pub fn ttl_monitor(mut self, every: Duration) -> Self {
        self.settings.ttl_monitor = Some(every);
        self
    }

    /// Where SecantusDB is installed on first use (default:
    /// `MONGOELECTOR_TEST_CACHE`, else `$XDG_CACHE_HOME/mongoelector`, else
    /// `~/.cache/mongoelector`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// One more argument for the server program, after the kit's own.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.settings.args.push(arg.into());
        self
    }

    /// One more environment variable for the server program.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.settings.env.push((key.into(), value.into()));
        self
    }

    /// Finds (or installs) the server program and starts it on a free
    /// loopback port; returns once it serves as a primary.
    pub fn start(self) -> Result<TestServer> {
        let kind = match install::choose(&Environment::read(), self.prefer)? {
            Choice::Run(kind) => {
                install::check_runnable(&kind)?;
                kind
            }
            Choice::InstallSecantusDb => {
                let cache = match self.cache_dir {
                    Some(dir) => dir,
                    None => install::default_cache_dir()?,
                };
                ServerKind::SecantusDb {
                    python: install::secantusdb(&cache)?,
                }
            }
        };
        let dir = TempDir::new()?;
        launch::prepare(&dir.0)?;
        // A free port can be taken between the look and the start: try again.
        let mut attempt = 0;
        let (port, process) = loop {
            attempt += 1;
            let port = free_port()?;
            // This attempt's log alone, so that "in use" is about its port.
            let _ = std::fs::remove_file(dir.log());
            match spawn(&kind, &self.settings, port, &dir.0) {
                Ok(process) => break (port, process),
                Err(e) if attempt < 3 && log_tail(&dir.log()).contains("in use") => {
                    log::debug!("mongoelector::testing: port {port} was taken ({e}); again");
                }
                Err(e) => return Err(e),
            }
        };
        log::info!(
            "mongoelector::testing: {} ({}) on 127.0.0.1:{port}, PID {}",
            kind.name(),
            if self.settings.replica_set {
                "replica set"
            } else {
                "standalone"
            },
            process.pid()
        );
        Ok(TestServer {
            kind,
            port,
            dir,
            state: Mutex::new(State {
                settings: self.settings,
                process: Some(process),
                frozen: false,
            }),
        })
    }
}

fn spawn(kind: &ServerKind, settings: &Settings, port: u16, dir: &Path) -> Result<Process> {
    let command = launch::command(kind, settings, port, dir);
    let mut process = Process::spawn(&command, &dir.join("server.log"))?;
    process.wait_listening(port, START_LIMIT)?;
    launch::until_ready(kind, settings, port, START_LIMIT)?;
    // What answered may have been another listener on the port, while
    // ours failed to bind it.
    process.ensure_running()?;
    Ok(process)
}

fn free_port() -> Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| kit_error("find a free port", e.to_string(), Some(e)))
}

/// A directory of the server's own (data, log, config), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "mongoelector-test-server-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|e| kit_error("create the server's directory", e.to_string(), Some(e)))?;
        Ok(TempDir(dir))
    }

    fn log(&self) -> PathBuf {
        self.0.join("server.log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct State {
    settings: Settings,
    process: Option<Process>,
    frozen: bool,
}

/// A throwaway MongoDB server of one test's own on a free loopback port,
/// with faults: [`freeze`](Self::freeze), [`restart`](Self::restart),
/// [`stop`](Self::stop), and a [`FaultProxy`] in front of it.
///
/// It runs `mongod` when one is on `PATH`, else SecantusDB (installed into
/// a cache directory on first use; see the [module](super) docs). Dropping
/// it stops the server (by PID) and removes its data; if the test process
/// dies without dropping it (a `static`, a kill), a watchdog stops it.
///
/// Every method takes `&self`, so a test may share it (in an `Arc`) with
/// the threads it checks.
///
/// ```no_run
/// use mongoelector::testing::TestServer;
/// use mongoelector::MongoLocker;
///
/// let server = TestServer::start()?;
/// let db = server.database("app")?;
/// let lock = MongoLocker::builder("job", &db).build()?;
/// let guard = lock.try_lock()?.expect("nobody else holds it");
///
/// server.freeze()?; // the database stops answering
/// server.thaw()?;
/// server.restart()?; // same port, same data
/// drop(guard);
/// # Ok::<(), mongoelector::Error>(())
/// ```
pub struct TestServer {
    kind: ServerKind,
    port: u16,
    dir: TempDir,
    state: Mutex<State>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("kind", &self.kind)
            .field("port", &self.port)
            .field("replica_set", &self.is_replica_set())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a single-node replica set with the default options
    /// ([`builder`](Self::builder) for others).
    ///
    /// ```no_run
    /// let server = mongoelector::testing::TestServer::start()?;
    /// println!("{} at {}", server.kind().name(), server.uri());
    /// # Ok::<(), mongoelector::Error>(())
    /// ```
    pub fn start() -> Result<TestServer> {
        Self::builder().start()
    }

    /// Options: standalone or replica set, which server, in memory, the
    /// TTL monitor's period.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder {
            settings: Settings {
                replica_set: true,
                in_memory: false,
                ttl_monitor: None,
                args: Vec::new(),
                env: Vec::new(),
            },
            prefer: Prefer::default(),
            cache_dir: None,
        }
    }

    /// The server program that runs.
    pub fn kind(&self) -> &ServerKind {
        &self.kind
    }

    /// Its port on 127.0.0.1 (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The PID of the running server (`None` once stopped).
    pub fn pid(&self) -> Option<u32> {
        self.state.lock().process.as_ref().map(Process::pid)
    }

    /// Whether it runs as a (single-node) replica set.
    pub fn is_replica_set(&self) -> bool {
        self.state.lock().settings.replica_set
    }

    /// A URI for it: `directConnection=true`, and timeouts of 2 s so that
    /// operations fail fast while it is frozen or down.
    ///
    /// ```no_run
    /// let server = mongoelector::testing::TestServer::start()?;
    /// let client = mongodb::sync::Client::with_uri_str(server.uri())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn uri(&self) -> String {
        launch::direct_uri(&self.address())
    }

    /// A new client of [`uri`](Self::uri).
    pub fn client(&self) -> Result<Client> {
        Ok(Client::with_uri_str(self.uri())?)
    }

    /// The database `name` on a new client, with the crate's two default
    /// collections created in it (SecantusDB's on-disk store can deadlock
    /// when the first write into a collection races the index build that
    /// creates it; a deployment would create them up front too).
    ///
    /// ```no_run
    /// let server = mongoelector::testing::TestServer::start()?;
    /// let db = server.database("app")?;
    /// let elector = mongoelector::MongoElector::builder("master", &db).build()?;
    /// # Ok::<(), mongoelector::Error>(())
    /// ```
    pub fn database(&self, name: &str) -> Result<Database> {
        let db = self.client()?.database(name);
        for collection in [
            crate::limits::DEFAULT_LOCK_COLLECTION,
            crate::limits::DEFAULT_STATUS_COLLECTION,
        ] {
            match db.create_collection(collection).run() {
                Ok(()) => {}
                // NamespaceExists.
                Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 48) =>
                    {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(db)
    }

    /// A [`FaultProxy`] in front of this server: give one client its
    /// [`uri`](FaultProxy::uri) and cut, delay or drop that client's
    /// traffic alone.
    pub fn proxy(&self) -> Result<FaultProxy> {
        FaultProxy::start(([127, 0, 0, 1], self.port).into())
    }

    /// Freezes the server (SIGSTOP): connections stay open and nothing is
    /// answered, as when a primary hangs or its machine stalls.
    pub fn freeze(&self) -> Result<()> {
        let mut state = self.state.lock();
        running(&state, "freeze the server")?.signal(Signal::SIGSTOP, "freeze the server")?;
        state.frozen = true;
        Ok(())
    }

    /// Lets a frozen server run again (SIGCONT).
    pub fn thaw(&self) -> Result<()> {
        let mut state = self.state.lock();
        running(&state, "thaw the server")?.signal(Signal::SIGCONT, "thaw the server")?;
        state.frozen = false;
        Ok(())
    }

    /// Whether it is frozen.
    pub fn is_frozen(&self) -> bool {
        self.state.lock().frozen
    }

    /// Stops the server (SIGTERM by PID, waiting for it to exit; SIGKILL
    /// after 30 s): clients see connections refused. Its data stays for a
    /// [`restart`](Self::restart).
    pub fn stop(&self) -> Result<()> {
        stop_locked(&mut self.state.lock())
    }

    /// Stops the server if it runs and starts it again on the same port
    /// with the same data (unless [in memory](TestServerBuilder::in_memory)),
    /// returning once it serves as a primary again.
    pub fn restart(&self) -> Result<()> {
        // One guard for both halves: two restarts at once must not each
        // start a server on the port (the second would find the first's
        // answering, adopt it, and then stop it).
        let mut state = self.state.lock();
        stop_locked(&mut state)?;
        let process = spawn(&self.kind, &state.settings, self.port, &self.dir.0)?;
        state.process = Some(process);
        Ok(())
    }

    /// [`restart`](Self::restart) with these environment variables for the
    /// server from now on, in place of the builder's (for example
    /// libfaketime's `LD_PRELOAD` and `FAKETIME` to move its clock).
    pub fn restart_with_env<K, V>(&self, env: impl IntoIterator<Item = (K, V)>) -> Result<()>
    where
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.state.lock().settings.env =
            env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.restart()
    }

    /// The server's log file (appended to at each restart).
    pub fn log_path(&self) -> PathBuf {
        self.dir.log()
    }
}

fn stop_locked(state: &mut State) -> Result<()> {
    state.frozen = false;
    match state.process.take() {
        Some(mut process) => process.stop(),
        None => Ok(()),
    }
}

fn running<'a>(state: &'a State, action: &'static str) -> Result<&'a Process> {
    state
        .process
        .as_ref()
        .ok_or_else(|| kit_error(action, "the server is stopped (restart it first)", None))
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut process) = self.state.get_mut().process.take() {
            if let Err(e) = process.stop() {
                log::warn!("mongoelector::testing: could not stop the test server: {e}");
            }
        }
    }
}
