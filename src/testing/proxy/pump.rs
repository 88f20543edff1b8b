//! The proxy's connections: two threads per connection copy bytes each
//! way, each chunk held at a gate while the mode says so.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::ProxyMode as Mode;

/// How often blocked threads look at their stop flags.
pub(super) const TICK: Duration = Duration::from_millis(10);
pub(super) const OPEN: u8 = 0;
const CLOSED: u8 = 1;
pub(super) const RESET: u8 = 2;

/// One proxied connection; its sockets close when the last `Arc` is dropped.
pub(super) struct Conn {
    pub client: TcpStream,
    pub server: TcpStream,
    pub state: AtomicU8,
    pumps: AtomicUsize,
}

/// An in-place edit of server replies.
pub(super) type Rewrite = Arc<dyn Fn(&mut [u8]) + Send + Sync>;

pub(super) struct Shared {
    pub mode: Mutex<Mode>,
    pub changed: Condvar,
    pub stop: AtomicBool,
    pub conns: Mutex<Vec<Arc<Conn>>>,
    pub threads: Mutex<Vec<JoinHandle<()>>>,
    pub open: AtomicUsize,
    pub accepted: AtomicUsize,
    /// Applied, in place, to each chunk the server sends (same length).
    pub rewrite: Mutex<Option<Rewrite>>,
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Makes the next close of `s` send a TCP RST instead of a FIN.
pub(super) fn set_linger_zero(s: &TcpStream) -> io::Result<()> {
    socket2::SockRef::from(s).set_linger(Some(Duration::ZERO))
}

impl Shared {
    pub(super) fn new() -> Self {
        Shared {
            mode: Mutex::new(Mode::Pass),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
            open: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            rewrite: Mutex::new(None),
        }
    }

    /// Waits until traffic may flow: not partitioned and, for a chunk read at
    /// `since`, its latency (per the current mode) has elapsed. Returns false
    /// when the connection or the proxy is ending.
    fn gate(&self, conn: &Conn, since: Option<Instant>) -> bool {
        let mut mode = self.mode.lock();
        loop {
            if self.stop.load(Ordering::SeqCst) || conn.state.load(Ordering::SeqCst) != OPEN {
                return false;
            }
            let wait = match (*mode, since) {
                (Mode::Partition, _) => TICK,
                (Mode::Delay(d), Some(t)) => match (t + d).checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(TICK),
                    _ => return true,
                },
                _ => return true,
            };
            self.changed.wait_for(&mut mode, wait);
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
                if let Some(f) = self.rewrite.lock().clone() {
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
            self.conns.lock().retain(|c| !std::ptr::eq(&**c, conn));
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub(super) fn accept_loop(self: &Arc<Self>, listener: TcpListener, upstream: SocketAddr) {
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
        self.conns.lock().push(conn.clone());
        let mut threads = self.threads.lock();
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
