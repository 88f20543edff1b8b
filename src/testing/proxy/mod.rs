//! [`FaultProxy`]: a TCP proxy in front of a server that delays, drops or
//! cuts the traffic of the clients that connect through it.

use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::kit_error;
use super::launch::direct_uri;
use crate::Result;

mod pump;
#[cfg(test)]
mod tests;

use pump::{set_linger_zero, Conn, Shared, OPEN, RESET};

/// What a [`FaultProxy`] does with the traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyMode {
    /// Forwards it.
    Pass,
    /// Forwards each chunk, both ways, this long after it came.
    Delay(Duration),
    /// Forwards nothing, either way: bytes wait (in the kernel's buffers)
    /// and connections stay open, as across a network partition.
    Partition,
}

/// A fault-injecting TCP proxy on a free loopback port, forwarding to a
/// server: give one client its [`uri`](Self::uri) and that client alone
/// sees the faults, while the others, connected straight to the server,
/// do not (the partition of one process from the database).
///
/// Made by [`TestServer::proxy`](super::TestServer::proxy), or
/// [`start`](Self::start) for any address. Dropping it closes every
/// connection through it.
///
/// ```no_run
/// use std::time::Duration;
/// use mongoelector::testing::TestServer;
///
/// let server = TestServer::start()?;
/// let proxy = server.proxy()?;
/// let client = mongodb::sync::Client::with_uri_str(proxy.uri())?;
///
/// proxy.delay(Duration::from_millis(200)); // a slow network
/// proxy.partition(); // nothing gets through; connections hang
/// proxy.pass(); // healed: what waited flows on
/// proxy.cut(); // every open connection reset (TCP RST)
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("addr", &self.addr)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards each connection to
    /// `upstream`, in [`ProxyMode::Pass`].
    ///
    /// ```no_run
    /// let proxy = mongoelector::testing::FaultProxy::start("127.0.0.1:27017".parse().unwrap())?;
    /// # Ok::<(), mongoelector::Error>(())
    /// ```
    pub fn start(upstream: SocketAddr) -> Result<FaultProxy> {
        let io = |e: std::io::Error| kit_error("start the fault proxy", e.to_string(), Some(e));
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let shared = Arc::new(Shared::new());
        let me = shared.clone();
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || me.accept_loop(listener, upstream))
            .map_err(io)?;
        Ok(FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A URI through the proxy. It has `directConnection=true`: otherwise
    /// the driver would learn the replica set's member address from the
    /// server and connect to it directly, around the proxy. Timeouts are
    /// 2 s, as [`TestServer::uri`](super::TestServer::uri)'s.
    pub fn uri(&self) -> String {
        direct_uri(&self.addr.to_string())
    }

    fn set_mode(&self, mode: ProxyMode) {
        *self.shared.mode.lock() = mode;
        self.shared.changed.notify_all();
    }

    /// Forwards normally again (a partition healed: what waited flows on).
    pub fn pass(&self) {
        self.set_mode(ProxyMode::Pass);
    }

    /// Delays every chunk, both ways, by `delay` (a round trip takes twice
    /// that more).
    pub fn delay(&self, delay: Duration) {
        self.set_mode(ProxyMode::Delay(delay));
    }

    /// Stops all traffic both ways until [`pass`](Self::pass) or
    /// [`delay`](Self::delay); connections stay open, new ones are
    /// accepted and hang too.
    pub fn partition(&self) {
        self.set_mode(ProxyMode::Partition);
    }

    /// Resets every open connection (a TCP RST to both ends), as a dying
    /// router or a failover does; the mode stays, and new connections are
    /// accepted.
    pub fn cut(&self) {
        let conns: Vec<Arc<Conn>> = self.shared.conns.lock().drain(..).collect();
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

    /// Edits, in place, every chunk the server sends from now on (the edit
    /// keeps the length): a server that answers differently (for example a
    /// field renamed, to see what a client makes of a reply it does not
    /// expect).
    pub fn rewrite_replies(&self, edit: impl Fn(&mut [u8]) + Send + Sync + 'static) {
        *self.shared.rewrite.lock() = Some(Arc::new(edit));
    }

    /// The current mode.
    pub fn mode(&self) -> ProxyMode {
        *self.shared.mode.lock()
    }

    /// Connections open through it now.
    pub fn connections(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Connections accepted since it started.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for c in self.shared.conns.lock().iter() {
            let _ = c.client.shutdown(Shutdown::Both);
            let _ = c.server.shutdown(Shutdown::Both);
        }
        self.shared.changed.notify_all();
        let threads: Vec<JoinHandle<()>> = self.shared.threads.lock().drain(..).collect();
        for h in threads {
            let _ = h.join();
        }
    }
}
