//! The command line: subcommands, flags and their help.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::exit::{Failure, USAGE};

/// Server selection and connect timeout when the URI sets none (the help
/// text states it).
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

const ABOUT: &str = "Distributed locks and leader election on MongoDB: run a command under a \
lock held across machines, or only on the elected master.";

/// `mongoelector [--uri URI] [--db DB] [--collection C] COMMAND ...`
#[derive(Debug, Parser)]
#[command(name = "mongoelector", version, about = ABOUT, after_help = help_footer())]
pub struct Cli {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub command: Command,
}

fn help_footer() -> String {
    let timeout = DEFAULT_SERVER_SELECTION_TIMEOUT.as_secs();
    format!(
        "Durations are written like 500ms, 30s, 5m, 1h30m, and are at most 365days.\n\n\
         The connection string comes from --uri or MONGODB_URI; the database from --db or \
         the URI's path (mongodb://host/DB). When the URI sets no serverSelectionTimeoutMS, \
         the tool uses {timeout} s (and a {timeout} s connect timeout), so an unreachable \
         server is reported within seconds.\n\n{}",
        crate::exit::TABLE
    )
}

/// Where the locks are.
#[derive(Debug, Args)]
pub struct Connection {
    /// MongoDB connection string [env: MONGODB_URI]
    #[arg(long, env = "MONGODB_URI", hide_env = true, global = true)]
    pub uri: Option<String>,
    /// Database (default: the one named in the URI's path)
    #[arg(long, global = true)]
    pub db: Option<String>,
    /// Collection of the lock documents [default: mongolocker; for `semaphore`: mongosemaphore]
    #[arg(long, global = true)]
    pub collection: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take the lock KEY, run CMD while holding it (renewed every ttl/3), release it when CMD exits, and exit with CMD's status.
    ///
    /// CMD gets MONGOELECTOR_KEY and MONGOELECTOR_FENCE in its environment,
    /// and runs in a session and process group of its own: every signal
    /// below goes to that whole group. If the lock is lost while CMD runs,
    /// the group gets SIGTERM, then SIGKILL after --kill-after, and the tool
    /// exits 79. SIGINT, SIGTERM, SIGHUP and SIGQUIT are passed on (SIGKILL
    /// after --kill-after); the lock is released once the group has ended.
    /// SIGUSR1, SIGUSR2 and SIGWINCH are passed on. If the tool dies, the
    /// group gets SIGTERM, then SIGKILL after --kill-after. Told to end while
    /// it waits for the lock, it exits 128+N (N the signal) without running
    /// CMD.
    Lock(LockArgs),
    /// Take one of N permits of KEY, run CMD while holding it (renewed every ttl/3), release it when CMD exits, and exit with CMD's status: at most N commands run at once.
    ///
    /// As `lock`, with up to N holders: the same environment, signals,
    /// --timeout and --no-wait, and exit codes (75 when no permit is free,
    /// 79 when the permit is lost). Every user of KEY must give the same
    /// --permits: another count is refused (exit 64) and nothing is taken.
    Semaphore(SemaphoreArgs),
    /// Campaign for KEY; run CMD each time this node becomes master, stop it when mastership is lost, campaign again.
    ///
    /// CMD gets MONGOELECTOR_KEY and MONGOELECTOR_FENCE in its environment.
    /// On SIGINT or SIGTERM: CMD is stopped (the signal, then SIGKILL after
    /// --kill-after), the tool steps down so that another node takes over at
    /// once, and exits 0. If CMD exits on its own, the tool steps down and
    /// exits with CMD's status.
    Elect(ElectArgs),
    /// Show who holds KEY (host, pid, fence, since, expiry, metadata) and, for an election, its members.
    Status(StatusArgs),
    /// List every key of the collection with a live holder.
    List(ListArgs),
    /// Free KEY whoever holds it (the holder finds out at its next renewal), printing what was freed.
    Release(ReleaseArgs),
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The lock's name
    pub key: String,
    /// Lease length; the lease is renewed every ttl/3 while CMD runs
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub ttl: Duration,
    /// Give up (exit 75) when not acquired within this time [default: wait forever]
    #[arg(long, value_parser = duration, conflicts_with = "no_wait")]
    pub timeout: Option<Duration>,
    /// Give up (exit 75) at once when the lock is held
    #[arg(long)]
    pub no_wait: bool,
    /// Keep the lock taken until this long after it was acquired, however soon CMD ends (run-once jobs)
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub hold_at_least: Duration,
    /// Serve the metrics at http://ADDR/metrics in the Prometheus text format while running (HOST:PORT)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// How long CMD has between SIGTERM and SIGKILL
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub kill_after: Duration,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct SemaphoreArgs {
    /// The semaphore's name
    pub key: String,
    /// How many commands may hold a permit at once (every user of KEY must agree)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub permits: u32,
    /// Lease length; the lease is renewed every ttl/3 while CMD runs
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub ttl: Duration,
    /// Give up (exit 75) when no permit is acquired within this time [default: wait forever]
    #[arg(long, value_parser = duration, conflicts_with = "no_wait")]
    pub timeout: Option<Duration>,
    /// Give up (exit 75) at once when every permit is held
    #[arg(long)]
    pub no_wait: bool,
    /// Serve the metrics at http://ADDR/metrics in the Prometheus text format while running (HOST:PORT)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// How long CMD has between SIGTERM and SIGKILL
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub kill_after: Duration,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ElectArgs {
    /// The election's name
    pub key: String,
    /// Lease length: a dead master is replaced after about ttl + ttl/5
    #[arg(long, value_parser = duration, default_value = "15s")]
    pub ttl: Duration,
    /// Serve the metrics at http://ADDR/metrics in the Prometheus text format while running (HOST:PORT)
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// How long CMD has between SIGTERM and SIGKILL
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub kill_after: Duration,
    /// Collection of the members' status reports
    #[arg(long, default_value = mongoelector::limits::DEFAULT_STATUS_COLLECTION)]
    pub status_collection: String,
    /// The command and its arguments, after `--`
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The lock's or election's name
    pub key: String,
    /// Keep running, printing each change of holder with a timestamp
    #[arg(long)]
    pub watch: bool,
    /// Print JSON (with --watch: one object per line)
    #[arg(long)]
    pub json: bool,
    /// Collection of the members' status reports
    #[arg(long, default_value = mongoelector::limits::DEFAULT_STATUS_COLLECTION)]
    pub status_collection: String,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print a JSON array
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The lock's or election's name
    pub key: String,
    /// Required: the lock is freed whoever holds it
    #[arg(long, required = true)]
    pub force: bool,
}

/// The longest duration the tool accepts, for every flag: the library's
/// longest lease (a year). Anything longer is a typo, and one so long that
/// `Instant + it` overflows would panic mid-run, after the lock was taken.
pub const MAX_DURATION: Duration = mongoelector::limits::MAX_TTL;

/// `30s`, `5m`, `1h30m`, `250ms`; at most [`MAX_DURATION`].
fn duration(text: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if parsed > MAX_DURATION {
        return Err(format!(
            "must be at most {}days (one year)",
            MAX_DURATION.as_secs() / 86_400
        ));
    }
    Ok(parsed)
}

/// A clap error as the tool reports errors: `--help` and `--version` print
/// and exit 0; anything else is one line and exit 64.
pub fn parse() -> Result<Cli, Failure> {
    Cli::try_parse().map_err(|error| {
        use clap::error::ErrorKind;
        if matches!(
            error.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            let code = if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                USAGE
            } else {
                0
            };
            let _ = error.print();
            return Failure {
                code,
                message: String::new(),
            };
        }
        let text = error.render().to_string();
        let first = text.lines().next().unwrap_or("bad usage");
        let first = first.strip_prefix("error: ").unwrap_or(first);
        Failure::new(
            USAGE,
            "reading the command line",
            format!("{first} (see --help)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_humans_write_them() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert!(duration("30").is_err(), "a unit is required");
        assert!(duration("soon").is_err());
        assert_eq!(duration("365days").unwrap(), MAX_DURATION);
        let too_long = duration("366days").unwrap_err();
        assert!(too_long.contains("at most 365days"), "{too_long}");
        assert!(duration("500000000000y").is_err(), "past an Instant");
    }

    #[test]
    fn the_command_follows_a_double_dash() {
        let cli = Cli::try_parse_from([
            "mongoelector",
            "lock",
            "k",
            "--no-wait",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        let Command::Lock(lock) = cli.command else {
            panic!("not lock")
        };
        assert!(lock.no_wait);
        assert_eq!(lock.command, ["sh", "-c", "exit 3"]);
        assert!(Cli::try_parse_from([
            "mongoelector",
            "lock",
            "k",
            "--no-wait",
            "--timeout",
            "1s",
            "--",
            "true"
        ])
        .is_err());
        assert!(
            Cli::try_parse_from(["mongoelector", "release", "k"]).is_err(),
            "--force is required"
        );
    }

    #[test]
    fn a_semaphore_needs_a_positive_count_of_permits() {
        let cli = Cli::try_parse_from([
            "mongoelector",
            "semaphore",
            "k",
            "--permits",
            "3",
            "--no-wait",
            "--",
            "true",
        ])
        .unwrap();
        let Command::Semaphore(sem) = cli.command else {
            panic!("not semaphore")
        };
        assert_eq!((sem.permits, sem.no_wait), (3, true));
        assert_eq!(sem.command, ["true"]);
        for bad in [&["--permits", "0"][..], &[][..], &["--permits", "-1"][..]] {
            let mut args = vec!["mongoelector", "semaphore", "k"];
            args.extend_from_slice(bad);
            args.extend_from_slice(&["--", "true"]);
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_help_lists_the_exit_codes() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("79   lock: the lock was lost"), "{help}");
        assert!(
            help.contains(&format!("{} s", DEFAULT_SERVER_SELECTION_TIMEOUT.as_secs())),
            "{help}"
        );
    }
}
