//! The proxy against an echo server: bytes pass in order, delays add up,
//! a partition holds bytes until healed, a cut resets, drops do not hang.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use super::pump::is_timeout;
use super::{FaultProxy, ProxyMode};

/// An echo server on 127.0.0.1; its threads end with their connections.
fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn client(p: &FaultProxy) -> TcpStream {
    let s = TcpStream::connect(p.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg`, checks the echo, and returns the round-trip time.
fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    s.write_all(msg).unwrap();
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).unwrap();
    assert_eq!(got, msg);
    t.elapsed()
}

fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(3), "timed out: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn pass_through_echoes() {
    let p = FaultProxy::start(echo_server()).unwrap();
    assert_eq!(p.mode(), ProxyMode::Pass);
    let mut c = client(&p);
    round_trip(&mut c, b"hello");
    // A large payload keeps its byte order.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut r = c.try_clone().unwrap();
    let n = big.len();
    let reader = thread::spawn(move || {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).unwrap();
        got
    });
    c.write_all(&big).unwrap();
    assert_eq!(reader.join().unwrap(), big);
    assert_eq!(p.connections(), 1);
    assert_eq!(p.accepted(), 1);
}

#[test]
fn delay_delays_round_trip() {
    let p = FaultProxy::start(echo_server()).unwrap();
    let mut c = client(&p);
    round_trip(&mut c, b"warm");
    let d = Duration::from_millis(60);
    p.delay(d);
    assert_eq!(p.mode(), ProxyMode::Delay(d));
    // Delayed once on the way in and once on the way back.
    let rtt = round_trip(&mut c, b"slow");
    assert!(rtt >= 2 * d, "{rtt:?}");
    p.pass();
    let rtt = round_trip(&mut c, b"fast");
    assert!(rtt < d, "{rtt:?}");
}

#[test]
fn partition_holds_bytes_until_healed() {
    let p = FaultProxy::start(echo_server()).unwrap();
    let mut c = client(&p);
    round_trip(&mut c, b"before");
    p.partition();
    assert_eq!(p.mode(), ProxyMode::Partition);
    c.write_all(b"held bytes").unwrap();
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    let err = c.read(&mut buf).unwrap_err();
    assert!(is_timeout(&err), "{err:?}");
    // New connections are accepted, but nothing flows on them either.
    let mut c2 = client(&p);
    c2.write_all(b"new").unwrap();
    c2.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(is_timeout(&c2.read(&mut buf).unwrap_err()));
    wait_for("second accept", || p.accepted() == 2);
    assert_eq!(p.connections(), 2);
    p.pass();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 10];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"held bytes");
    let mut got = [0u8; 3];
    c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c2.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"new");
    round_trip(&mut c, b"after");
}

#[test]
fn cut_resets_connections() {
    let p = FaultProxy::start(echo_server()).unwrap();
    let mut c = client(&p);
    round_trip(&mut c, b"hello");
    let t = Instant::now();
    p.cut();
    let mut buf = [0u8; 16];
    match c.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("expected a reset, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    wait_for("connections closed", || p.connections() == 0);
    assert_eq!(p.mode(), ProxyMode::Pass);
    let mut c2 = client(&p);
    round_trip(&mut c2, b"again");
    assert_eq!(p.accepted(), 2);
}

#[test]
fn close_and_drop_do_not_hang() {
    let p = FaultProxy::start(echo_server()).unwrap();
    let mut c = client(&p);
    round_trip(&mut c, b"one");
    drop(c);
    wait_for("connection closed", || p.connections() == 0);
    let mut c = client(&p);
    round_trip(&mut c, b"two");
    let mut c2 = client(&p);
    p.partition();
    c2.write_all(b"stuck").unwrap();
    let t = Instant::now();
    drop(p);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let mut buf = [0u8; 16];
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    assert!(matches!(c2.read(&mut buf), Ok(0) | Err(_)));
}
