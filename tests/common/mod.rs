//! Shared set-up for the integration tests: they run against a real server
//! at `MONGODB_URI` (SecantusDB, started by `scripts/test.sh`), never a mock.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mongodb::bson::Document;
use mongodb::event::command::CommandEvent;
use mongodb::event::EventHandler;
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Database};

pub fn uri() -> String {
    match std::env::var("MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => panic!(
            "MONGODB_URI is not set. Run the tests with `scripts/test.sh`, which installs and \
             starts a SecantusDB test server, or start one with `scripts/server.sh start` and \
             set MONGODB_URI=mongodb://127.0.0.1:PORT/"
        ),
    }
}

pub fn client() -> Client {
    Client::with_uri_str(uri()).expect("valid MONGODB_URI")
}

/// A database of its own for one test, so tests never see each other's locks.
pub fn fresh_db(client: &Client) -> Database {
    client.database(&format!("t_{}", uuid::Uuid::new_v4().simple()))
}

pub fn db() -> Database {
    fresh_db(&client())
}

/// Every command the client starts, as sent (with its name).
#[derive(Clone, Default)]
pub struct Commands(Arc<Mutex<Vec<(String, Document)>>>);

impl Commands {
    pub fn take(&self) -> Vec<(String, Document)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn names(&self) -> Vec<String> {
        self.take().into_iter().map(|(n, _)| n).collect()
    }
}

pub fn monitored_client() -> (Client, Commands) {
    let commands = Commands::default();
    let sink = commands.clone();
    let mut options = ClientOptions::parse(uri())
        .run()
        .expect("valid MONGODB_URI");
    options.command_event_handler = Some(EventHandler::callback(move |ev: CommandEvent| {
        if let CommandEvent::Started(started) = ev {
            sink.0
                .lock()
                .unwrap()
                .push((started.command_name.clone(), started.command.clone()));
        }
    }));
    (Client::with_options(options).expect("client"), commands)
}

/// Polls `f` every 10 ms until it returns true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
