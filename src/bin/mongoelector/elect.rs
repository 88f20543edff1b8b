//! `elect KEY -- CMD`: campaign; run CMD while this node is master, stop
//! it when mastership is lost, campaign again. Told to end, it stops CMD
//! and steps down, so another node takes over at once.

use crossbeam_channel::select;
use mongodb::sync::Database;
use mongoelector::{Error, Event, MongoElector};

use crate::args::ElectArgs;
use crate::child::{self, Outcome};
use crate::exit::{self, Failure};
use crate::signals::ends_the_tool;

pub fn run(db: &Database, collection: &str, args: ElectArgs) -> Result<u8, Failure> {
    let signals = crate::signals::listen()?;
    let doing = format!("campaigning for {:?}", args.key);
    let elector = MongoElector::builder(&args.key, db)
        .collection(collection)
        .status_collection(&args.status_collection)
        .ttl(args.ttl)
        .app_version(env!("CARGO_PKG_VERSION"))
        .timeparanoid(false)
        .build()
        .map_err(|e| Failure::from_error("setting up the election", &e))?;
    let events = elector.events();
    elector
        .start(false)
        .map_err(|e| Failure::from_error(&doing, &e))?;
    let stop = |code: u8| -> Result<u8, Failure> {
        elector
            .stop()
            .map_err(|e| Failure::from_error(&format!("stepping down from {:?}", args.key), &e))?;
        Ok(code)
    };
    // The fence of a term won while the last command was stopping: the
    // `BecameMaster` was read then, so it is not waited for again.
    let mut won_meanwhile: Option<i64> = None;
    loop {
        let fence = match won_meanwhile.take() {
            Some(fence) if elector.is_master() => fence,
            _ => select! {
                recv(events) -> event => match event {
                    Ok(Event::BecameMaster { fence, .. }) if elector.is_master() => fence,
                    // Another kind of primitive on the key: no poll will
                    // ever succeed, so it is bad usage, not a retry.
                    Ok(Event::PollFailed { error }) if matches!(error, Error::WrongKind { .. }) => {
                        let _ = elector.stop();
                        return Err(Failure::from_error(&doing, &error));
                    }
                    Ok(Event::PollFailed { error }) => {
                        eprintln!("mongoelector: {}", Failure::from_error(&doing, &error).message);
                        continue;
                    }
                    Ok(_) => continue,
                    Err(_) => return Err(Failure::new(exit::SOFTWARE, &doing, "the elector ended")),
                },
                recv(signals) -> signal => {
                    if signal.is_ok_and(ends_the_tool) {
                        return stop(0);
                    }
                    continue;
                },
            },
        };
        let env = [
            ("MONGOELECTOR_KEY", args.key.clone()),
            ("MONGOELECTOR_FENCE", fence.to_string()),
        ];
        let mut command = match child::spawn(&args.command, &env, args.kill_after) {
            Ok(command) => command,
            Err(failure) => {
                let _ = elector.stop();
                return Err(failure);
            }
        };
        // Every transition in order: the last one read says whether this
        // node won again while the command stopped.
        let lost = |e: &Event| match e {
            Event::LostMaster { .. } => {
                won_meanwhile = None;
                true
            }
            Event::BecameMaster { fence, .. } => {
                won_meanwhile = Some(*fence);
                false
            }
            _ => false,
        };
        let Outcome {
            status,
            lost,
            ended_by,
        } = command.supervise(&signals, &events, lost, args.kill_after);
        if ended_by.is_some() {
            return stop(0);
        }
        match lost {
            Some(Event::LostMaster { reason, .. }) => {
                let next = if won_meanwhile.is_some() && elector.is_master() {
                    "master again: starting it again"
                } else {
                    "campaigning again"
                };
                eprintln!(
                    "mongoelector: {doing}: lost mastership ({reason:?}); \
                     the command was stopped ({status}); {next}"
                );
            }
            // It ended on its own: step down and say how it ended.
            _ => return stop(exit::of_status(status)),
        }
    }
}
