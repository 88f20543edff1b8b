//! From `--uri`/`MONGODB_URI` and `--db` to a database handle, with a short
//! server selection timeout unless the URI sets one, so that an unreachable
//! server is reported in seconds instead of the driver's 30 s.

use mongodb::error::ErrorKind;
use mongodb::options::ClientOptions;
use mongodb::sync::{Client, Database};

use crate::args::{Connection, DEFAULT_SERVER_SELECTION_TIMEOUT};
use crate::exit::{Failure, UNAVAILABLE, USAGE};

/// The database the command works in. No round trip yet: the driver
/// connects on the first operation.
pub fn database(connection: &Connection) -> Result<Database, Failure> {
    let doing = "reading the connection string";
    let uri = connection.uri.as_deref().ok_or_else(|| {
        Failure::new(
            USAGE,
            doing,
            "no server given: pass --uri or set MONGODB_URI",
        )
    })?;
    let mut options = ClientOptions::parse(uri).run().map_err(|e| {
        // A malformed string is the user's; a failed SRV lookup is the network's.
        let code = match *e.kind {
            ErrorKind::InvalidArgument { .. } => USAGE,
            _ => UNAVAILABLE,
        };
        Failure::new(code, doing, e)
    })?;
    options
        .server_selection_timeout
        .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
    options
        .connect_timeout
        .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
    let name = match (&connection.db, &options.default_database) {
        (Some(db), _) | (None, Some(db)) => db.clone(),
        (None, None) => {
            return Err(Failure::new(
                USAGE,
                "choosing the database",
                "none given: pass --db or name it in the URI's path (mongodb://host/DB)",
            ))
        }
    };
    check_name(&name)?;
    let client = Client::with_options(options)
        .map_err(|e| Failure::new(USAGE, "setting up the client", e))?;
    Ok(client.database(&name))
}

/// The characters MongoDB refuses in a database name, refused here with a
/// usage error rather than by the server.
fn check_name(name: &str) -> Result<(), Failure> {
    let bad =
        name.is_empty() || name.len() > 63 || name.contains(['/', '\\', '.', ' ', '"', '$', '\0']);
    if bad {
        return Err(Failure::new(
            USAGE,
            "choosing the database",
            format!("{name:?} cannot be a database name (1 to 63 characters, none of /\\. \"$)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(uri: &str, db: Option<&str>) -> Connection {
        Connection {
            uri: Some(uri.to_owned()),
            db: db.map(str::to_owned),
            collection: Some("c".into()),
        }
    }

    #[test]
    fn the_database_comes_from_the_flag_or_the_path() {
        assert_eq!(
            database(&connection("mongodb://h/app", None))
                .unwrap()
                .name(),
            "app"
        );
        assert_eq!(
            database(&connection("mongodb://h/app", Some("x")))
                .unwrap()
                .name(),
            "x"
        );
        assert_eq!(
            database(&connection("mongodb://h/", None))
                .unwrap_err()
                .code,
            USAGE
        );
        assert_eq!(
            database(&connection("mongodb://h/", Some("a.b")))
                .unwrap_err()
                .code,
            USAGE
        );
        assert_eq!(
            database(&connection("http://h/app", None))
                .unwrap_err()
                .code,
            USAGE
        );
        let none = Connection {
            uri: None,
            db: None,
            collection: Some("c".into()),
        };
        assert!(database(&none).unwrap_err().message.contains("MONGODB_URI"));
    }
}
