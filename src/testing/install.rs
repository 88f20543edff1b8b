//! Which server program a [`TestServer`](super::TestServer) runs, and the
//! first-use install of SecantusDB into a cache directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use parking_lot::Mutex;

use super::kit_error;
use crate::Result;

/// The SecantusDB release the kit installs (pinned: it has no stable
/// release yet, and the crate is tested against this one).
pub const SECANTUSDB_VERSION: &str = "0.7.0b3";

/// The server program a [`TestServer`](super::TestServer) runs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerKind {
    /// MongoDB's own `mongod`, found on `PATH` (or named by
    /// `MONGOELECTOR_MONGOD`).
    Mongod {
        /// The program.
        path: PathBuf,
    },
    /// SecantusDB, a MongoDB-compatible server in Python, run by the Python
    /// of a virtual environment the kit installed (or the one named by
    /// `MONGOELECTOR_SECANTUS_PYTHON`).
    SecantusDb {
        /// The Python that has the `secantusdb` package.
        python: PathBuf,
    },
}

impl ServerKind {
    /// The program that is run (`mongod`, or the Python that runs SecantusDB).
    pub fn path(&self) -> &Path {
        match self {
            ServerKind::Mongod { path } => path,
            ServerKind::SecantusDb { python } => python,
        }
    }

    /// `"mongod"` or `"SecantusDB"`.
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Mongod { .. } => "mongod",
            ServerKind::SecantusDb { .. } => "SecantusDB",
        }
    }
}

/// Which server to prefer ([`TestServerBuilder::server`](super::TestServerBuilder::server)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Prefer {
    /// `mongod` when one is found, else SecantusDB (installed on first use).
    #[default]
    Mongod,
    /// SecantusDB even when a `mongod` is found.
    SecantusDb,
}

/// What the environment says, read once per start (so that the choice is
/// a pure function of it, tested without touching the process's own).
#[derive(Debug, Default)]
pub(super) struct Environment {
    /// `MONGOELECTOR_TEST_SERVER`: `mongod` or `secantusdb`.
    pub forced: Option<String>,
    /// `MONGOELECTOR_MONGOD`.
    pub mongod: Option<PathBuf>,
    /// `MONGOELECTOR_SECANTUS_PYTHON`.
    pub secantus_python: Option<PathBuf>,
    /// The first `mongod` on `PATH`.
    pub mongod_on_path: Option<PathBuf>,
}

impl Environment {
    pub(super) fn read() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Environment {
            forced: var("MONGOELECTOR_TEST_SERVER").map(|v| v.to_string_lossy().to_lowercase()),
            mongod: var("MONGOELECTOR_MONGOD").map(PathBuf::from),
            secantus_python: var("MONGOELECTOR_SECANTUS_PYTHON").map(PathBuf::from),
            mongod_on_path: var("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join("mongod"))
                    .find(|p| is_executable(p))
            }),
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What to run: a known program, or SecantusDB still to be installed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Choice {
    Run(ServerKind),
    InstallSecantusDb,
}

/// The choice, in this order: `MONGOELECTOR_TEST_SERVER` forces a kind;
/// a named program is used as given; `mongod` on `PATH` unless SecantusDB
/// is preferred; else SecantusDB.
pub(super) fn choose(env: &Environment, prefer: Prefer) -> Result<Choice> {
    let secantus = || match &env.secantus_python {
        Some(python) => Choice::Run(ServerKind::SecantusDb {
            python: python.clone(),
        }),
        None => Choice::InstallSecantusDb,
    };
    let mongod = env.mongod.clone().or_else(|| env.mongod_on_path.clone());
    match env.forced.as_deref() {
        Some("mongod") => mongod
            .map(|path| Choice::Run(ServerKind::Mongod { path }))
            .ok_or_else(|| {
                kit_error(
                    "find mongod",
                    "MONGOELECTOR_TEST_SERVER=mongod, but there is no mongod on PATH \
                     (or MONGOELECTOR_MONGOD): install MongoDB, or unset the variable to \
                     use SecantusDB",
                    None,
                )
            }),
        Some("secantusdb") => Ok(secantus()),
        Some(other) => Err(kit_error(
            "find a server",
            format!("MONGOELECTOR_TEST_SERVER is {other:?}: it takes `mongod` or `secantusdb`"),
            None,
        )),
        None => Ok(match (prefer, mongod) {
            (Prefer::Mongod, Some(path)) => Choice::Run(ServerKind::Mongod { path }),
            _ => secantus(),
        }),
    }
}

/// Where the kit keeps what it installs: `MONGOELECTOR_TEST_CACHE`, else
/// `$XDG_CACHE_HOME/mongoelector`, else `$HOME/.cache/mongoelector`.
pub(super) fn default_cache_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("MONGOELECTOR_TEST_CACHE") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("mongoelector"));
    }
    var("HOME")
        .map(|home| PathBuf::from(home).join(".cache/mongoelector"))
        .ok_or_else(|| {
            kit_error(
                "find a cache directory",
                "none of MONGOELECTOR_TEST_CACHE, XDG_CACHE_HOME and HOME is set",
                None,
            )
        })
}

/// Installs SecantusDB into `cache` unless it is there: a virtual
/// environment made by `python3` (or `$PYTHON`) and `pip install`, built
/// under a name of its own and renamed into place, so that test binaries
/// installing at once never see half an install. Returns its Python (which
/// finds its environment from where it is, so the rename keeps it working;
/// the environment's scripts would not).
pub(super) fn secantusdb(cache: &Path) -> Result<PathBuf> {
    // Threads of one test binary wait for one install.
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING.lock();
    let venv = cache.join(format!("secantusdb-{SECANTUSDB_VERSION}"));
    let program = venv.join("bin/python");
    let installed = venv.join(format!(".secantusdb-{SECANTUSDB_VERSION}"));
    if installed.exists() && is_executable(&program) {
        return Ok(program);
    }
    let io =
        |action: &'static str| move |e: std::io::Error| kit_error(action, e.to_string(), Some(e));
    std::fs::create_dir_all(cache).map_err(io("create the cache directory"))?;
    remove_stale_builds(cache);
    let building = cache.join(format!(
        ".secantusdb-{SECANTUSDB_VERSION}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let started = Instant::now();
    log::info!(
        "mongoelector::testing: installing SecantusDB {SECANTUSDB_VERSION} into {} (first use; \
         about 10-60 s)",
        venv.display()
    );
    eprintln!(
        "mongoelector::testing: installing the test server SecantusDB {SECANTUSDB_VERSION} \
         into {} (first use only; a mongod on PATH is used instead when there is one)",
        venv.display()
    );
    let result = (|| {
        run(
            Command::new(&python).arg("-m").arg("venv").arg(&building),
            "create a Python virtual environment",
            "install MongoDB (a mongod on PATH) or Python 3 with its venv module (for SecantusDB)",
        )?;
        run(
            Command::new(building.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .arg(format!("secantusdb=={SECANTUSDB_VERSION}")),
            "install SecantusDB",
            "pip could not install it: check the network's access to PyPI, or install \
             MongoDB (a mongod on PATH)",
        )?;
        std::fs::write(
            building.join(format!(".secantusdb-{SECANTUSDB_VERSION}")),
            b"",
        )
        .map_err(io("mark the install complete"))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&building);
        return Err(e);
    }
    // An earlier install that is not usable (killed before its mark, or
    // its Python gone: the base Python removed or upgraded) gives way;
    // another process that won the race keeps its own, and ours goes.
    if venv.exists() && !(installed.exists() && is_executable(&program)) {
        let _ = std::fs::remove_dir_all(&venv);
    }
    if std::fs::rename(&building, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    if !installed.exists() || !is_executable(&program) {
        return Err(kit_error(
            "install SecantusDB",
            format!("{} is missing after the install", program.display()),
            None,
        ));
    }
    eprintln!(
        "mongoelector::testing: SecantusDB installed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(program)
}

/// Removes the build directories of installs killed midway (about 150 MB
/// each) once they are an hour old: an install in progress is younger.
fn remove_stale_builds(cache: &Path) {
    let prefix = format!(".secantusdb-{SECANTUSDB_VERSION}-");
    let Ok(entries) = std::fs::read_dir(cache) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if old && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn run(command: &mut Command, action: &'static str, advice: &str) -> Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| kit_error(action, format!("{advice} ({e})"), Some(e)))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(kit_error(
        action,
        format!("{advice}; it exited with {}: {}", out.status, stderr.trim()),
        None,
    ))
}

/// Fails with what is wrong if `kind` cannot be run (for a named program).
pub(super) fn check_runnable(kind: &ServerKind) -> Result<()> {
    if is_executable(kind.path()) {
        Ok(())
    } else {
        Err(kit_error(
            "find a server",
            format!(
                "{} ({}) is not an executable file",
                kind.path().display(),
                kind.name()
            ),
            None,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(forced: Option<&str>, mongod: Option<&str>, on_path: Option<&str>) -> Environment {
        Environment {
            forced: forced.map(str::to_owned),
            mongod: mongod.map(PathBuf::from),
            secantus_python: None,
            mongod_on_path: on_path.map(PathBuf::from),
        }
    }

    fn mongod(p: &str) -> Choice {
        Choice::Run(ServerKind::Mongod { path: p.into() })
    }

    #[test]
    fn mongod_on_path_is_preferred() {
        let e = env(None, None, Some("/usr/bin/mongod"));
        assert_eq!(
            choose(&e, Prefer::Mongod).unwrap(),
            mongod("/usr/bin/mongod")
        );
        assert_eq!(
            choose(&e, Prefer::SecantusDb).unwrap(),
            Choice::InstallSecantusDb
        );
        let e = env(None, Some("/opt/m/mongod"), Some("/usr/bin/mongod"));
        assert_eq!(choose(&e, Prefer::Mongod).unwrap(), mongod("/opt/m/mongod"));
    }

    #[test]
    fn without_mongod_secantusdb_is_installed_or_named() {
        let mut e = env(None, None, None);
        assert_eq!(
            choose(&e, Prefer::Mongod).unwrap(),
            Choice::InstallSecantusDb
        );
        e.secantus_python = Some("/v/bin/python".into());
        assert_eq!(
            choose(&e, Prefer::Mongod).unwrap(),
            Choice::Run(ServerKind::SecantusDb {
                python: "/v/bin/python".into()
            })
        );
    }

    #[test]
    fn the_variable_forces_a_kind_and_says_what_is_missing() {
        let e = env(Some("secantusdb"), None, Some("/usr/bin/mongod"));
        assert_eq!(
            choose(&e, Prefer::Mongod).unwrap(),
            Choice::InstallSecantusDb
        );
        let e = env(Some("mongod"), None, None);
        let err = choose(&e, Prefer::SecantusDb).unwrap_err().to_string();
        assert!(err.contains("install MongoDB"), "{err}");
        let e = env(Some("postgres"), None, None);
        let err = choose(&e, Prefer::Mongod).unwrap_err().to_string();
        assert!(err.contains("`mongod` or `secantusdb`"), "{err}");
    }
}
