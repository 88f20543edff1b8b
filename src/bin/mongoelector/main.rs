//! `mongoelector`: run a command under a distributed lock or only while
//! elected, and look at locks and elections, from the shell.
//!
//! Built on the library's public API. Every failure is one line on stderr
//! naming what the tool was doing and why, with an exit code from
//! `sysexits.h` where one fits (see `exit`).

mod args;
mod child;
mod connect;
mod elect;
mod exit;
mod group;
mod hold;
mod list;
mod lock;
mod metrics;
mod output;
mod release;
mod render;
mod semaphore;
mod signals;
mod status;
mod supervisor;

use std::process::ExitCode;

use args::Command;
use exit::Failure;

fn main() -> ExitCode {
    // A bug must still end in one line and a code, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "mongoelector: internal error: {}",
            exit::one_line(&info.to_string())
        );
    }));
    if let Some(code) = supervisor::requested() {
        return code;
    }
    let code = match std::panic::catch_unwind(run) {
        Ok(Ok(code)) => code,
        Ok(Err(failure)) => {
            if !failure.message.is_empty() {
                eprintln!("mongoelector: {}", failure.message);
            }
            failure.code
        }
        Err(_) => exit::SOFTWARE,
    };
    ExitCode::from(code)
}

fn run() -> Result<u8, Failure> {
    let cli = args::parse()?;
    let db = connect::database(&cli.connection)?;
    let collection = cli.connection.collection.as_deref();
    let locks = collection.unwrap_or(mongoelector::limits::DEFAULT_LOCK_COLLECTION);
    match cli.command {
        Command::Lock(a) => {
            metrics::serve(a.metrics_addr)?;
            lock::run(&db, locks, a)
        }
        Command::Semaphore(a) => {
            metrics::serve(a.metrics_addr)?;
            semaphore::run(
                &db,
                collection.unwrap_or(mongoelector::limits::DEFAULT_SEMAPHORE_COLLECTION),
                a,
            )
        }
        Command::Elect(a) => {
            metrics::serve(a.metrics_addr)?;
            elect::run(&db, locks, a)
        }
        Command::Status(a) => status::run(&db, locks, a),
        Command::List(a) => list::run(&db, locks, a),
        Command::Release(a) => release::run(&db, locks, a),
    }
}
