//! `--metrics-addr`: while the tool runs, the library's metrics are served
//! over HTTP in the Prometheus text format.

use super::*;

use std::io::{Read, Write as _};
use std::net::{TcpListener, TcpStream};

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET /metrics` over a plain TCP connection: the body.
fn scrape(port: u16) -> Option<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        conn,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The samples of a Prometheus text body: `name{labels}` to value.
fn samples(body: &str) -> Vec<(String, String, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            Some((name.to_owned(), labels.to_owned(), value.parse().ok()?))
        })
        .collect()
}

#[test]
fn lock_and_elect_serve_their_metrics_in_the_prometheus_format() {
    let s = Scene::new();
    for (subcommand, primitive, extra) in [
        ("lock", "lock", &["--ttl", "5s"][..]),
        ("elect", "elector", &["--ttl", "3s"][..]),
    ] {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let running = s.path(&format!("{subcommand}-running"));
        let script = format!("touch {}; sleep 30", running.display());
        let mut args = vec![subcommand, "m", "--metrics-addr", &addr];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--", "sh", "-c", &script]);
        let mut tool = s.start(subcommand, &args);
        assert!(
            wait_until(Duration::from_secs(20), || running.exists()),
            "{subcommand}: the command never ran: {}",
            fs::read_to_string(s.path(&format!("{subcommand}.err"))).unwrap_or_default()
        );
        let body = scrape(port).unwrap_or_else(|| panic!("{subcommand}: no metrics at {addr}"));
        let all = samples(&body);
        let value = |name: &str| {
            all.iter()
                .find(|(n, labels, _)| {
                    n == name
                        && labels.contains(&format!("primitive=\"{primitive}\""))
                        && labels.contains("key=\"m\"")
                })
                .map(|(_, _, v)| *v)
        };
        assert_eq!(
            value("mongoelector_acquisitions_total"),
            Some(1.0),
            "{subcommand}:\n{body}"
        );
        let held = if primitive == "elector" {
            "mongoelector_master"
        } else {
            "mongoelector_held"
        };
        assert_eq!(value(held), Some(1.0), "{subcommand}:\n{body}");
        assert!(
            all.iter()
                .any(|(n, _, _)| n.starts_with("mongoelector_round_trip_seconds")),
            "{subcommand}:\n{body}"
        );
        signal(&tool, libc::SIGTERM);
        wait_for(&mut tool, Duration::from_secs(30));
    }
}
