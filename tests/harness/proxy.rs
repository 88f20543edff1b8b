//! A fault-injecting TCP proxy for tests: forwards 127.0.0.1 connections to an
//! upstream server and can add latency, partition the traffic or reset every
//! connection. Only std threads; `libc` is used for SO_LINGER alone.
#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often blocked threads look at their stop flags.
const TICK: Duration = Duration::from_millis(10);
const OPEN: u8 = 0;
const CLOSED: u8 = 1;
const RESET: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Latency(Duration),
    Partition,
}

/// One proxied connection; its sockets close when the last `Arc` is dropped.
struct Conn {
    client: TcpStream,
    server: TcpStream,
    state: AtomicU8,
    pumps: AtomicUsize,
}

struct Shared {
    mode: Mutex<Mode>,
    changed: Condvar,
    stop: AtomicBool,
    conns: Mutex<Vec<Arc<Conn>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    open: AtomicUsize,
    accepted: AtomicUsize,
    /// Applied, in place, to each chunk the server sends (same length).
    rewrite: Mutex<Option<Rewrite>>,
}

/// An in-place edit of server replies.
pub type Rewrite = Arc<dyn Fn(&mut [u8]) + Send + Sync>;

pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Makes the next close of `s` send a TCP RST instead of a FIN.
fn set_linger_zero(s: &TcpStream) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let lg = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the fd is open for as long as `s` is borrowed, and the pointer and
    // length describe a live, correctly sized `linger` value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&lg as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Shared {
    /// Waits until traffic may flow: not partitioned and, for a chunk read at
    /// `since`, its latency (per the current mode) has elapsed. Returns false
    /// when the connection or the proxy is ending.
    fn gate(&self, conn: &Conn, since: Option<Instant>) -> bool {
        let mut mode = lock(&self.mode);
        loop {
            if self.stop.load(Ordering::SeqCst) || conn.state.load(Ordering::SeqCst) != OPEN {
                return false;
            }
            let wait = match (*mode, since) {
                (Mode::Partition, _) => TICK,
                (Mode::Latency(d), Some(t)) => match (t + d).checked_duration_since(Instant::now())
                {
                    Some(left) if !left.is_zero() => left.min(TICK),
                    _ => return true,
                },
                _ => return true,
            };
            mode = self
                .changed
                .wait_timeout(mode, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Copies `src` to `dst` until EOF, an error, or the end of the connection.
    fn pump(&self, conn: &Conn, mut src: &TcpStream, mut dst: &TcpStream) {
        let mut buf = vec![0u8; 64 * 1024];
        'outer: while self.gate(conn, None) {
            let n = match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            if std::ptr::eq(src, &conn.server) {
                if let Some(f) = lock(&self.rewrite).clone() {
                    f(&mut buf[..n]);
                }
            }
            let read_at = Instant::now();
            let mut off = 0;
            while off < n {
                if !self.gate(conn, Some(read_at)) {
                    break 'outer;
                }
                match dst.write(&buf[off..n]) {
                    Ok(0) => break 'outer,
                    Ok(k) => off += k,
                    Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break 'outer,
                }
            }
        }
        // Closing one side closes the other; after a reset, leave the sockets
        // alone so that their last close sends the RST.
        let _ = conn
            .state
            .compare_exchange(OPEN, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
        if conn.state.load(Ordering::SeqCst) != RESET {
            let _ = conn.client.shutdown(Shutdown::Both);
            let _ = conn.server.shutdown(Shutdown::Both);
        }
        self.changed.notify_all();
        if conn.pumps.fetch_sub(1, Ordering::SeqCst) == 1 {
            lock(&self.conns).retain(|c| !std::ptr::eq(&**c, conn));
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn accept_loop(self: &Arc<Self>, listener: TcpListener, upstream: SocketAddr) {
        while !self.stop.load(Ordering::SeqCst) {
            let client = match listener.accept() {
                Ok((s, _)) => s,
                Err(_) => {
                    // WouldBlock (idle) or a transient error such as EMFILE.
                    thread::sleep(Duration::from_millis(5));
                    continue;
                }
            };
            self.accepted.fetch_add(1, Ordering::SeqCst);
            // On failure, dropping `client` closes it.
            if let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) {
                let _ = self.register(client, server);
            }
        }
    }

    fn register(self: &Arc<Self>, client: TcpStream, server: TcpStream) -> io::Result<()> {
        for s in [&client, &server] {
            s.set_nonblocking(false)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(TICK))?;
            s.set_write_timeout(Some(TICK))?;
        }
        let conn = Arc::new(Conn {
            client,
            server,
            state: AtomicU8::new(OPEN),
            pumps: AtomicUsize::new(2),
        });
        self.open.fetch_add(1, Ordering::SeqCst);
        lock(&self.conns).push(conn.clone());
        let mut threads = lock(&self.threads);
        threads.retain(|h| !h.is_finished());
        for upward in [true, false] {
            let (me, c) = (self.clone(), conn.clone());
            threads.push(thread::spawn(move || {
                if upward {
                    me.pump(&c, &c.client, &c.server)
                } else {
                    me.pump(&c, &c.server, &c.client)
                }
            }));
        }
        Ok(())
    }
}

impl Proxy {
    /// Listens on 127.0.0.1:0 and forwards each accepted connection to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            mode: Mutex::new(Mode::Pass),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            rewrite: Mutex::new(None),
        });
        let me = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("proxy-accept-{}", addr.port()))
            .spawn(move || me.accept_loop(listener, upstream))?;
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
        self.shared.changed.notify_all();
    }

    /// Edits, in place, every chunk the server sends from now on (the edit
    /// must keep the length): a server that answers differently.
    pub fn rewrite_replies(&self, f: impl Fn(&mut [u8]) + Send + Sync + 'static) {
        *lock(&self.shared.rewrite) = Some(Arc::new(f));
    }

    /// Forward normally (also heals a partition: held bytes then flow on).
    pub fn pass(&self) {
        self.set_mode(Mode::Pass);
    }

    /// Forward, delaying every chunk in both directions by `d`.
    pub fn latency(&self, d: Duration) {
        self.set_mode(Mode::Latency(d));
    }

    /// Silently stop all traffic both ways; connections stay open and bytes
    /// stay in kernel buffers until pass() or latency().
    pub fn partition(&self) {
        self.set_mode(Mode::Partition);
    }

    /// Abort every open connection with a TCP RST on both sides; the mode is
    /// unchanged and new connections are accepted afterwards.
    pub fn reset(&self) {
        let conns: Vec<Arc<Conn>> = lock(&self.shared.conns).drain(..).collect();
        for c in &conns {
            let _ = set_linger_zero(&c.client);
            let _ = set_linger_zero(&c.server);
            let _ = c
                .state
                .compare_exchange(OPEN, RESET, Ordering::SeqCst, Ordering::SeqCst);
        }
        self.shared.changed.notify_all();
        // The pumps notice within a tick; the last `Arc` dropped closes the
        // sockets, which sends the RSTs.
    }

    pub fn mode(&self) -> Mode {
        *lock(&self.shared.mode)
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Total connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for c in lock(&self.shared.conns).iter() {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
        self.shared.changed.notify_all();
        let threads: Vec<JoinHandle<()>> = lock(&self.shared.threads).drain(..).collect();
        for h in threads {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn client(p: &Proxy) -> TcpStream {
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
        let p = Proxy::start(echo_server()).unwrap();
        assert_eq!(p.mode(), Mode::Pass);
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
    fn latency_delays_round_trip() {
        let p = Proxy::start(echo_server()).unwrap();
        let mut c = client(&p);
        round_trip(&mut c, b"warm");
        let d = Duration::from_millis(60);
        p.latency(d);
        assert_eq!(p.mode(), Mode::Latency(d));
        // Delayed once on the way in and once on the way back.
        let rtt = round_trip(&mut c, b"slow");
        assert!(rtt >= 2 * d, "{rtt:?}");
        p.pass();
        let rtt = round_trip(&mut c, b"fast");
        assert!(rtt < d, "{rtt:?}");
    }

    #[test]
    fn partition_holds_bytes_until_healed() {
        let p = Proxy::start(echo_server()).unwrap();
        let mut c = client(&p);
        round_trip(&mut c, b"before");
        p.partition();
        assert_eq!(p.mode(), Mode::Partition);
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
    fn reset_aborts_connections() {
        let p = Proxy::start(echo_server()).unwrap();
        let mut c = client(&p);
        round_trip(&mut c, b"hello");
        let t = Instant::now();
        p.reset();
        let mut buf = [0u8; 16];
        match c.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected a reset, got {other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        wait_for("connections closed", || p.connections() == 0);
        assert_eq!(p.mode(), Mode::Pass);
        let mut c2 = client(&p);
        round_trip(&mut c2, b"again");
        assert_eq!(p.accepted(), 2);
    }

    #[test]
    fn close_and_drop_do_not_hang() {
        let p = Proxy::start(echo_server()).unwrap();
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
}
