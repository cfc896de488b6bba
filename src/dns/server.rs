//! The DNS socket loops: UDP and TCP on one address.
//!
//! UDP: one SO_REUSEPORT socket per worker, each with a task that receives, answers inline and
//! sends. Answering is a short CPU-bound step with no IO, so doing it inline bounds the work
//! in flight by the number of sockets (hickory-server's `Server` spawns a task per datagram
//! with no limit, which is why r53 keeps its own loop).
//! TCP: one task per connection, queries answered in turn as they arrive (pipelining,
//! RFC 7766 §6.2.1), an idle timeout between queries, a read timeout inside one, and a cap on
//! connections; a slow client holds its own task and nothing else.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::message::{respond, Outcome, RecursionPolicy, Transport};
use crate::catalog::SharedCatalog;

#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// UDP sockets (and receive tasks) bound to the address with SO_REUSEPORT.
    pub udp_sockets: usize,
    /// A TCP connection with no query for this long is closed (RFC 7766 §6.2.3).
    pub tcp_idle_timeout: Duration,
    /// The most time one query may take to arrive once its first byte has.
    pub tcp_read_timeout: Duration,
    pub tcp_max_connections: usize,
    /// Who may recurse, through which resolver (none: authoritative only).
    pub recursion: RecursionPolicy,
    /// Questions being resolved at once per UDP socket; past this, SERVFAIL at once.
    pub max_recursions: usize,
}

impl Default for DnsOptions {
    fn default() -> Self {
        Self {
            udp_sockets: std::thread::available_parallelism().map_or(2, |n| n.get()),
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_read_timeout: Duration::from_secs(5),
            tcp_max_connections: 1024,
            recursion: RecursionPolicy::default(),
            max_recursions: 1024,
        }
    }
}

/// Bound DNS sockets, not yet served.
pub struct DnsListeners {
    pub udp: Vec<UdpSocket>,
    pub tcp: TcpListener,
}

impl DnsListeners {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves until `shutdown` is cancelled.
    pub fn serve(
        self,
        catalog: SharedCatalog,
        options: DnsOptions,
        shutdown: CancellationToken,
    ) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        for socket in self.udp {
            tasks.spawn(serve_udp(
                socket,
                catalog.clone(),
                options.clone(),
                shutdown.clone(),
            ));
        }
        tasks.spawn(serve_tcp(self.tcp, catalog, options, shutdown));
        tasks
    }
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Binds UDP and TCP on `addr`. With port 0 the kernel picks a port for UDP and TCP takes the
/// same one, so one address serves both as on port 53.
pub fn bind(addr: SocketAddr, options: &DnsOptions) -> io::Result<DnsListeners> {
    let mut last_err = None;
    for _ in 0..16 {
        let first = udp_socket(addr)?;
        let port = first.local_addr()?.port();
        let at = SocketAddr::new(addr.ip(), port);
        let tcp = match tcp_listener(at) {
            Ok(tcp) => tcp,
            // Port 0 picked a port that is free for UDP but taken for TCP: try another.
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse => {
                last_err = Some(e);
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut udp = vec![first];
        for _ in 1..options.udp_sockets.max(1) {
            udp.push(udp_socket(at)?);
        }
        return Ok(DnsListeners { udp, tcp });
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port for UDP and TCP")))
}

async fn serve_udp(
    socket: UdpSocket,
    catalog: SharedCatalog,
    options: DnsOptions,
    shutdown: CancellationToken,
) {
    let socket = Arc::new(socket);
    // Questions for the resolver wait on upstreams, so they run in tasks of their own, as
    // many at once as this allows; the authoritative answers go on inline.
    let recursions = Arc::new(Semaphore::new(options.max_recursions));
    let mut buf = vec![0u8; 65535];
    loop {
        let (len, peer) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(error) => {
                    // ICMP errors from earlier sends surface here on some systems; keep going.
                    debug!(%error, "udp receive");
                    continue;
                }
            },
            _ = shutdown.cancelled() => return,
        };
        // RFC 1122-ish hygiene: never answer port 0 (nobody listens there).
        if peer.port() == 0 {
            continue;
        }
        let outcome = {
            let snapshot = catalog.load();
            respond(
                &snapshot,
                &buf[..len],
                Transport::Udp,
                peer.ip(),
                &options.recursion,
            )
        };
        let response = match outcome {
            None => continue,
            Some(Outcome::Reply(bytes)) => bytes,
            Some(Outcome::Recurse(recursion)) => match recursions.clone().try_acquire_owned() {
                Ok(permit) => {
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        let response = recursion.run().await;
                        if let Err(error) = socket.send_to(&response, peer).await {
                            debug!(%error, %peer, "udp send");
                        }
                        drop(permit);
                    });
                    continue;
                }
                Err(_) => recursion.busy(),
            },
        };
        if let Err(error) = socket.send_to(&response, peer).await {
            debug!(%error, %peer, "udp send");
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    catalog: SharedCatalog,
    options: DnsOptions,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(options.tcp_max_connections));
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // EMFILE and friends: back off briefly rather than spin.
                    warn!(%error, "tcp accept");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "tcp connection limit reached; closing");
            continue;
        };
        let catalog = catalog.clone();
        let options = options.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            tokio::select! {
                result = serve_connection(stream, &catalog, &options) => {
                    if let Err(error) = result {
                        debug!(%error, %peer, "tcp connection ended");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
        // Reap finished connections so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
    info!("dns tcp listener stopped");
}

async fn serve_connection(
    mut stream: TcpStream,
    catalog: &SharedCatalog,
    options: &DnsOptions,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?.ip();
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        // The first byte waits up to the idle timeout; the rest of the query must follow
        // within the read timeout.
        match tokio::time::timeout(options.tcp_idle_timeout, stream.read_exact(&mut len[..1])).await
        {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let body = async {
            stream.read_exact(&mut len[1..]).await?;
            let n = u16::from_be_bytes(len) as usize;
            buf.resize(n, 0);
            stream.read_exact(&mut buf).await?;
            Ok::<_, io::Error>(())
        };
        match tokio::time::timeout(options.tcp_read_timeout, body).await {
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "slow query")),
            Ok(r) => r?,
        }
        let outcome = {
            let snapshot = catalog.load();
            respond(&snapshot, &buf, Transport::Tcp, peer, &options.recursion)
        };
        let response = match outcome {
            // Not a query we answer (too short, or a response): the stream can't be trusted.
            None => return Ok(()),
            Some(Outcome::Reply(bytes)) => bytes,
            // Queries on one connection are answered in turn (RFC 7766 allows either).
            Some(Outcome::Recurse(recursion)) => recursion.run().await,
        };
        let mut framed = Vec::with_capacity(response.len() + 2);
        framed.extend_from_slice(&(response.len() as u16).to_be_bytes());
        framed.extend_from_slice(&response);
        tokio::time::timeout(options.tcp_read_timeout, stream.write_all(&framed))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "slow reader"))??;
    }
}
