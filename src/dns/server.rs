//! The DNS socket loops: UDP and TCP on one address.
//!
//! UDP: one SO_REUSEPORT socket per worker, each with a thread that receives, answers inline
//! and sends ([`UdpLoop`]). Answering is a short CPU-bound step with no IO, so doing it inline
//! bounds the work in flight by the number of sockets (hickory-server's `Server` spawns a task
//! per datagram with no limit, which is why r53 keeps its own loop).
//! TCP: one task per connection, queries answered in turn as they arrive (pipelining,
//! RFC 7766 §6.2.1), an idle timeout between queries, a read timeout inside one, and a cap on
//! connections; a slow client holds its own task and nothing else.
//!
//! Where each bound on work and memory lives (issue 7, items 3 and 6):
//! - UDP answers: inline in the receive loop, so at most one per socket at a time
//!   (`udp_sockets`); a burst waits in the kernel's receive buffer, whose overflow drops.
//! - UDP responses per client network: [`super::rrl`] (`rrl`), a fixed-size table.
//! - Recursion: an answer the resolver's cache has is composed inline like an authoritative
//!   one; only a question that must wait for an upstream takes a task, `max_recursions` tasks
//!   per UDP socket, SERVFAIL past it; on TCP one question at a time per connection.
//! - TCP: `tcp_max_connections` tasks, each with one query buffer of at most 64 KiB; a
//!   connection that waits too long is closed (`tcp_idle_timeout`, `tcp_read_timeout`), and
//!   when the table is full, the connection that has waited longest for its next query (for
//!   at least `tcp_reclaim_after`) makes way for the newcomer. RFC 7766 §6.2.3: "Under
//!   high load … a server MAY close idle connections"; Unbound likewise shortens its TCP
//!   idle timeout as its connection buffers run out. Without this, a few hundred stalled
//!   connections would lock every honest TCP client out until their timeouts ran.
//! - Nothing on the query path keeps per-name or per-client state beyond the RRL table.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::steer::{Steering, ThreadSteering};

use super::cache::{Key, PlainQuery, ResponseCache};
use super::message::{
    respond_noting, ClientContext, Outcome, Recursion, RecursionPolicy, Transport,
};
use super::mmsg::{self, RecvBatch, SendBatch};
use super::rrl::{Rrl, RrlConfig, Verdict};
use crate::catalog::{Catalog, SharedCatalog};

#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// UDP sockets bound to the address with SO_REUSEPORT, each served by a thread of its own.
    pub udp_sockets: usize,
    /// A TCP connection with no query for this long is closed (RFC 7766 §6.2.3).
    pub tcp_idle_timeout: Duration,
    /// The most time one query may take to arrive once its first byte has.
    pub tcp_read_timeout: Duration,
    /// Most TCP connections open at once.
    pub tcp_max_connections: usize,
    /// With every TCP slot taken, a connection that has waited this long for its next query
    /// is closed to make room for a new one; a newcomer finding none such is closed at once.
    pub tcp_reclaim_after: Duration,
    /// Response-rate limiting on UDP (off by default).
    pub rrl: RrlConfig,
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
            tcp_reclaim_after: Duration::from_secs(1),
            rrl: RrlConfig::default(),
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

    /// Serves until `shutdown` is cancelled: TCP in a task, each UDP socket on a thread of its
    /// own (see [`UdpLoop`]) for which a task in the set stands. Fails only if a thread cannot
    /// be started.
    pub fn serve(
        self,
        catalog: SharedCatalog,
        options: DnsOptions,
        shutdown: CancellationToken,
    ) -> io::Result<JoinSet<()>> {
        let mut tasks = JoinSet::new();
        // One table for all sockets: a client's datagrams go to any of them (`spread_at_random`).
        let rrl = Rrl::new(options.rrl).map(Arc::new);
        if let Some(rrl) = &rrl {
            info!(
                rrl.rate = options.rrl.rate,
                rrl.slip = options.rrl.slip,
                rrl.buckets = rrl.table_len(),
                "response-rate limiting on UDP"
            );
        }
        let steering = Steering::new(&self.udp).map(Arc::new);
        if steering.is_some() {
            info!(
                sockets = self.udp.len(),
                "UDP queries answered on the CPU they arrive on while no socket is busy"
            );
        }
        for (i, socket) in self.udp.into_iter().enumerate() {
            let socket = Arc::new(socket);
            let stop = shutdown.child_token();
            let (done, finished) = tokio::sync::oneshot::channel::<()>();
            let udp = UdpLoop {
                socket: socket.clone(),
                catalog: catalog.clone(),
                options: options.clone(),
                rrl: rrl.clone(),
                stop: stop.clone(),
                runtime: tokio::runtime::Handle::current(),
                steering: steering.clone(),
                index: i,
            };
            std::thread::Builder::new()
                .name(format!("r53-udp-{i}"))
                .spawn(move || {
                    udp.run();
                    drop(done);
                })?;
            // When the server shuts down or the set is dropped, the thread is told to stop
            // and woken from its wait; on shutdown the task ends once the thread has.
            tasks.spawn(async move {
                let wake = StopUdpLoop { socket, stop };
                let mut finished = finished;
                tokio::select! {
                    _ = &mut finished => return,
                    _ = wake.stop.cancelled() => {}
                }
                drop(wake);
                let _ = finished.await;
            });
        }
        tasks.spawn(serve_tcp(self.tcp, catalog, options, shutdown));
        Ok(tasks)
    }
}

/// Stops a [`UdpLoop`] when dropped: cancels its token, then shuts its socket for reading,
/// which wakes a `recvmmsg` waiting on it (it returns at once from then on).
struct StopUdpLoop {
    socket: Arc<UdpSocket>,
    stop: CancellationToken,
}

impl Drop for StopUdpLoop {
    fn drop(&mut self) {
        self.stop.cancel();
        // Linux wakes the socket's waiters and answers ENOTCONN for an unconnected UDP
        // socket, having shut it all the same.
        let _ = socket2::SockRef::from(&*self.socket).shutdown(std::net::Shutdown::Read);
    }
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    make_room(&socket);
    // Blocking: its loop has a thread to itself (`UdpLoop`) and waits in `recvmmsg`.
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The receive buffer a UDP socket asks for (the kernel doubles it for its bookkeeping).
const RECV_BUFFER: usize = 4 << 20;

/// Gives `socket` a receive buffer of [`RECV_BUFFER`] bytes: beyond `net.core.rmem_max` when
/// allowed to (`SO_RCVBUFFORCE`, with CAP_NET_ADMIN), else as much of it as that allows.
///
/// The default (`rmem_default`, 208 KiB on most systems) holds a couple of hundred queries,
/// and a busy loop lets them gather for a pause ([`UdpLoop`]): a client with a few hundred
/// questions in flight lost some of them to a full buffer (dnsperf -q 300: 85 lost of 3.6
/// million). NSD 4.6 asks for 1 MiB (`ss -uamn` shows `rb2097152` on its sockets), Knot 3.2
/// keeps the default. Failing to get it costs only the headroom.
fn make_room(socket: &Socket) {
    let bytes = libc::c_int::try_from(RECV_BUFFER).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int.
    let forced = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    } == 0;
    if !forced {
        if let Err(error) = socket.set_recv_buffer_size(RECV_BUFFER) {
            debug!(%error, "udp receive buffer");
        }
    }
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

/// Makes the kernel hand each datagram for `socket`'s SO_REUSEPORT group of `sockets` to a
/// socket picked at random, with a classic BPF program (`ld rand; mod #sockets; ret a`: the
/// index of a socket in the group, in the order they were bound). [`Steering`] replaces it
/// with its own while no socket is busy, where it can.
///
/// Without it the kernel picks by the hash of the client's address and port, so a few busy
/// clients (a load balancer, a load generator: dnsperf's 4 sockets) can land 3 to 1 or 4 to 0
/// on two sockets, leaving one thread short of work and the other behind; the benchmark moved
/// by ±10% from run to run with the draw. DNS over UDP needs no order between datagrams.
fn spread_at_random(socket: &UdpSocket, sockets: usize) -> io::Result<()> {
    super::steer::select_socket_by(socket, libc::SKF_AD_RANDOM, sockets)
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
        if udp.len() > 1 {
            if let Err(error) = spread_at_random(&udp[0], udp.len()) {
                // Then the kernel hashes each client's address and port to a socket.
                warn!(%error, "cannot spread UDP datagrams over the sockets at random");
            }
        }
        return Ok(DnsListeners { udp, tcp });
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("no free port for UDP and TCP")))
}

/// Sends a UDP response, through the rate limiter when there is one, without waiting: from a
/// task, which must not block; with the socket's send buffer full it is dropped, as the
/// network may drop it.
fn send_udp(socket: &UdpSocket, rrl: Option<&Rrl>, mut response: Vec<u8>, peer: SocketAddr) {
    if !rrl_lets_out(rrl, &mut response, 0, peer) {
        return;
    }
    let sent = socket2::SockRef::from(socket).send_to_with_flags(
        &response,
        &peer.into(),
        libc::MSG_DONTWAIT,
    );
    if let Err(error) = sent {
        debug!(%error, %peer, "udp send");
    }
}

thread_local! {
    /// The response cache of the worker thread this runs on (see `cache`).
    static CACHE: RefCell<ResponseCache> = RefCell::new(ResponseCache::default());
}

/// Answers a request, from the thread's response cache when it is a plain query answered
/// before for this snapshot and view, else by `respond` (keeping the reply when it may be
/// reused). A question for the resolver is answered here too when the resolver's cache has
/// the answer (and a fresh one is kept in the response cache, its TTLs counting down); only
/// one that must wait for an upstream comes back as `Handled::Recurse`. `resolver_hits`
/// counts the answers served from copies of the resolver's entries, for its statistics. A
/// reply is appended to `out`.
fn answer_cached(
    snapshot: &Catalog,
    request: &[u8],
    transport: Transport,
    client: IpAddr,
    recursion: &RecursionPolicy,
    resolver_hits: &mut u64,
    out: &mut Vec<u8>,
) -> Option<Handled> {
    let context = ClientContext::new(snapshot, client, recursion);
    let mut key = Key::new();
    let plain = PlainQuery::read(request, &mut key).and_then(|q| {
        // Whether the client may recurse, not only whether this question recurses: RA
        // depends on it even for a question without RD. (RD is in the key already.)
        q.finish_key(
            &mut key,
            context.may_recurse,
            &context.view,
            transport == Transport::Tcp,
        )?;
        Some(q.name_end())
    });
    let resolver_generation = recursion.resolver.as_ref().map_or(0, |r| r.generation());
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.sync(snapshot.generation, resolver_generation);
        if let Some(hit) = plain.and_then(|end| cache.answer_into(&key, end, request, out)) {
            *resolver_hits += u64::from(hit.resolved);
            return Some(Handled::Replied);
        }
        let mut reusable = false;
        let outcome = respond_noting(
            snapshot,
            request,
            transport,
            &context,
            recursion,
            &mut reusable,
        );
        match outcome {
            Some(Outcome::Reply(bytes)) => {
                if reusable && plain.is_some() {
                    cache.insert(&key, &bytes, None);
                }
                out.extend_from_slice(&bytes);
                Some(Handled::Replied)
            }
            Some(Outcome::Recurse(question)) => match question.answer_from_cache() {
                Some((bytes, countdown)) => {
                    if let (Some(countdown), Some(_)) = (countdown, plain) {
                        cache.insert(&key, &bytes, Some(countdown));
                    }
                    out.extend_from_slice(&bytes);
                    Some(Handled::Replied)
                }
                None => Some(Handled::Recurse(question)),
            },
            None => None,
        }
    })
}

/// What became of a request [`answer_cached`] answers.
enum Handled {
    /// The reply was appended to the buffer given.
    Replied,
    /// It waits for an upstream: resolve it ([`Recursion::run`]), then send.
    Recurse(Box<Recursion>),
}

/// Applies RRL to the UDP response at `out[start..]`: keeps it, replaces it with a truncated
/// slip, or removes it. Whether something is left to send.
fn rrl_lets_out(rrl: Option<&Rrl>, out: &mut Vec<u8>, start: usize, peer: SocketAddr) -> bool {
    match rrl.map(|r| r.check(peer.ip(), &out[start..], Instant::now())) {
        None | Some(Verdict::Send) => true,
        Some(Verdict::Slip(bytes)) => {
            out.truncate(start);
            out.extend_from_slice(&bytes);
            true
        }
        Some(Verdict::Drop) => {
            out.truncate(start);
            false
        }
    }
}

/// After a batch of at least this many datagrams, received while the loop waited, the loop
/// is busy (see [`UdpLoop`]).
const BUSY_BATCH: usize = 4;
/// A busy loop that finds its socket empty pauses this long before it looks again.
const BUSY_PAUSE: Duration = Duration::from_micros(100);
/// A busy loop stays busy while each pause brings at least this many datagrams (160,000 a
/// second on the socket); fewer, or none, and it goes back to waiting.
const BUSY_STAYS: usize = 16;
/// A socket that took at least this many datagrams a second over each of its last two
/// [`RATE_WINDOW`]s is fast: its busy loop yields the CPU ([`FAST_YIELDS`] times) before it
/// pauses. Only where the group has no [`Steering`]: with one, a loop is fast while the
/// group is spread ([`Pace::follow_group`]).
const FAST_RATE: u64 = 100_000;
/// How many datagrams the rate is taken over (one clock read per window).
const RATE_WINDOW: usize = 128;
/// How often a fast busy loop yields and looks again before it pauses.
const FAST_YIELDS: usize = 2;

/// What a busy UDP loop does when it finds its socket empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Let whoever else is ready run on this CPU, then look again.
    Yield,
    /// Sleep [`BUSY_PAUSE`], then look again.
    Pause,
    /// Stop being busy: the next receive waits in the kernel.
    Block,
}

/// When a UDP loop waits in the kernel for a datagram and when it is busy (see [`UdpLoop`]).
#[derive(Debug)]
struct Pace {
    busy: bool,
    /// The loop paused since its last datagram.
    paused: bool,
    /// Yields since the socket was last found holding datagrams, or since the last pause.
    yields: usize,
    /// The socket took at least [`FAST_RATE`] datagrams a second over each of the last two
    /// windows; with [`Steering`], the group is spread ([`Pace::follow_group`]).
    fast: bool,
    /// The last window alone was fast.
    last_window_fast: bool,
    window_start: Instant,
    window_count: usize,
}

impl Pace {
    fn new(now: Instant) -> Self {
        Self {
            busy: false,
            paused: false,
            yields: 0,
            fast: false,
            last_window_fast: false,
            window_start: now,
            window_count: 0,
        }
    }

    /// Whether the next receive waits in the kernel until a datagram comes.
    fn blocks(&self) -> bool {
        !self.busy
    }

    /// Notes a batch of `n` datagrams; `now` is read only when a rate window closes, and then
    /// the window's datagrams and that time are returned.
    fn received(&mut self, n: usize, now: impl FnOnce() -> Instant) -> Option<(usize, Instant)> {
        self.busy = if self.paused {
            n >= BUSY_STAYS
        } else {
            self.busy || n >= BUSY_BATCH
        };
        self.paused = false;
        self.yields = 0;
        self.window_count += n;
        if self.window_count < RATE_WINDOW {
            return None;
        }
        let now = now();
        let elapsed = now.saturating_duration_since(self.window_start);
        let window_fast =
            self.window_count as u128 * 1_000_000_000 >= u128::from(FAST_RATE) * elapsed.as_nanos();
        // Fast only after two fast windows in a row: one burst is not a rate.
        self.fast = window_fast && self.last_window_fast;
        self.last_window_fast = window_fast;
        self.window_start = now;
        Some((std::mem::take(&mut self.window_count), now))
    }

    /// With [`Steering`], the loop is fast while its group is spread (a socket takes
    /// [`super::steer`]'s spread rate or more), whatever this socket's own windows say: call
    /// it after each window. At full load the sockets of a group in local mode peaked at
    /// ~90,000 datagrams a second each here, under [`FAST_RATE`], so the loops never
    /// yielded and the rate stayed there (~180,000 q/s on 2 CPUs, one run in three by hand);
    /// fast as soon as the group spreads, they reached 204,000–239,000 in six runs out of
    /// six, and the 99th percentile latency at 78,000 q/s (local mode) was no worse.
    fn follow_group(&mut self, spread: bool) {
        self.fast = spread;
    }

    /// The busy loop's receive found the socket empty: what to do before looking again.
    fn empty(&mut self) -> Wait {
        if !self.busy {
            return Wait::Block;
        }
        if self.fast && self.yields < FAST_YIELDS {
            self.yields += 1;
            return Wait::Yield;
        }
        self.yields = 0;
        if self.paused {
            self.busy = false;
            self.paused = false;
            Wait::Block
        } else {
            self.paused = true;
            Wait::Pause
        }
    }
}

/// One UDP socket's loop, on a thread of its own: receive a batch, answer it inline, send it.
///
/// It waits for datagrams in the kernel (`recvmmsg`), so that a lone question is answered at
/// once. Under load that wait is what costs most: every wake-up is a context switch, and
/// whoever sends the datagram that ends it pays to wake the thread (on loopback, or in a
/// virtual machine where that is an interrupt to another CPU, more than the answering).
/// So once batches come several datagrams at a time ([`BUSY_BATCH`]) the loop is busy: when
/// its socket is empty it pauses [`BUSY_PAUSE`] instead, with no one to wake it, while the
/// queries pile up for one bigger batch. It waits again as soon as a pause brings few
/// ([`BUSY_STAYS`]). Measured with dnsperf (`bench/`): ~20% less CPU per query for r53 and
/// ~20% less for the client that loads it, at up to 100 us more latency only while the
/// socket sees more than ~160,000 queries a second.
///
/// On a socket taking more than [`FAST_RATE`] queries a second the loop first yields its CPU
/// ([`FAST_YIELDS`] times) and looks again before it pauses: whoever is ready to run there (on
/// a machine shared with its clients, often the client about to send the next queries) runs
/// at once, where a pause left the CPU idle once that client had to wait for its answers.
/// By hand on 2 CPUs (dnsperf -c 4, rounds of 6 s, alternating with the loop without
/// yields), the mean rate rose by 13%, 3% and 4% in three sets of rounds (188k -> 211k,
/// 216k -> 223k, 200k -> 208k), and a bar so high that no window was fast gave 187k; under
/// that load about 90% of the windows are over this bar. Only when fast, and only after two
/// fast windows in a row: yielding at every rate raised the 99th percentile latency at
/// 80,000 queries a second (40,000 a socket) from ~0.6-0.8 to ~1.0 ms, since a yield can
/// leave the loop queued behind a busy client for the rest of its time slice, and at that
/// rate a lone window can still be fast from one of the client's bursts.
struct UdpLoop {
    socket: Arc<UdpSocket>,
    catalog: SharedCatalog,
    options: DnsOptions,
    rrl: Option<Arc<Rrl>>,
    stop: CancellationToken,
    /// Where questions that wait for an upstream are resolved.
    runtime: tokio::runtime::Handle,
    /// The group's steering, when it has one ([`Steering`]), and this socket's index in it.
    steering: Option<Arc<Steering>>,
    index: usize,
}

impl UdpLoop {
    fn run(self) {
        let Self {
            socket,
            catalog,
            options,
            rrl,
            stop,
            runtime,
            steering,
            index,
        } = self;
        // Questions the resolver must ask upstreams about wait, so they run in tasks of their
        // own, as many at once as this allows; every other answer (authoritative, or from
        // the resolver's cache) goes on inline and out in the batch.
        let recursions = Arc::new(Semaphore::new(options.max_recursions));
        let resolver = options.recursion.resolver.clone();
        let mut batch = RecvBatch::new();
        let mut sending = SendBatch::new();
        // A batch's replies, one after another in one buffer, and where each is and goes.
        let mut out: Vec<u8> = Vec::with_capacity(mmsg::BATCH * 512);
        let mut replies: Vec<(std::ops::Range<usize>, SocketAddr)> =
            Vec::with_capacity(mmsg::BATCH);
        // A pause is a timer: let it end on time, not up to the default 50 us slack late.
        // SAFETY: prctl with PR_SET_TIMERSLACK takes a plain integer and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
        let mut pace = Pace::new(Instant::now());
        let mut thread_steering = ThreadSteering::default();
        if let Some(steering) = &steering {
            steering.follow(index, &mut thread_steering);
        }
        while !stop.is_cancelled() {
            let received = match batch.recv(&socket, pace.blocks()) {
                // No datagram, not even an empty one: the socket was shut down (`StopUdpLoop`).
                Ok(0) => break,
                Ok(n) => {
                    let window = pace.received(n, Instant::now);
                    if let (Some((datagrams, at)), Some(steering)) = (window, &steering) {
                        steering.note(index, datagrams as u64, at, &mut thread_steering);
                        pace.follow_group(steering.spread());
                    }
                    n
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    match pace.empty() {
                        Wait::Yield => std::thread::yield_now(),
                        Wait::Pause => std::thread::sleep(BUSY_PAUSE),
                        Wait::Block => {}
                    }
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // ICMP errors from earlier sends surface here on some systems; keep going.
                    debug!(%error, "udp receive");
                    continue;
                }
            };
            let snapshot = catalog.load();
            let mut resolver_hits = 0;
            for i in 0..received {
                let Some((request, peer)) = batch.get(i) else {
                    continue;
                };
                // RFC 1122-ish hygiene: never answer port 0 (nobody listens there).
                if peer.port() == 0 {
                    continue;
                }
                let start = out.len();
                let outcome = answer_cached(
                    &snapshot,
                    request,
                    Transport::Udp,
                    peer.ip(),
                    &options.recursion,
                    &mut resolver_hits,
                    &mut out,
                );
                match outcome {
                    None => continue,
                    Some(Handled::Replied) => {}
                    Some(Handled::Recurse(recursion)) => {
                        match recursions.clone().try_acquire_owned() {
                            Ok(permit) => {
                                let socket = socket.clone();
                                let rrl = rrl.clone();
                                let catalog = catalog.clone();
                                runtime.spawn(async move {
                                    let response = recursion.run(&catalog).await;
                                    send_udp(&socket, rrl.as_deref(), response, peer);
                                    drop(permit);
                                });
                                continue;
                            }
                            Err(_) => out.extend_from_slice(&recursion.busy()),
                        }
                    }
                }
                if rrl_lets_out(rrl.as_deref(), &mut out, start, peer) {
                    replies.push((start..out.len(), peer));
                }
            }
            drop(snapshot);
            if let Some(resolver) = &resolver {
                resolver.note_hits(resolver_hits);
            }
            sending.send(&socket, &out, &replies);
            replies.clear();
            out.clear();
        }
    }
}

/// `work`, unless it takes longer than `limit`: then a TimedOut error saying `what`.
async fn within<T>(
    limit: Duration,
    what: &'static str,
    work: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, what))?
}

/// Whether `buffered` (bytes read from a TCP connection) starts with a whole length-prefixed
/// message, so that answering it needs no read.
fn holds_whole_message(buffered: &[u8]) -> bool {
    match buffered {
        [high, low, rest @ ..] => rest.len() >= usize::from(u16::from_be_bytes([*high, *low])),
        _ => false,
    }
}

/// The open TCP connections: the cap, and which connection to close when it is reached.
struct TcpTable {
    max: usize,
    reclaim_after: Duration,
    inner: Mutex<TcpSlots>,
}

#[derive(Default)]
struct TcpSlots {
    next_id: u64,
    open: HashMap<u64, TcpSlot>,
}

struct TcpSlot {
    /// When the connection began waiting for its next query; `None` while one is answered.
    waiting_since: Option<Instant>,
    close: CancellationToken,
}

impl TcpTable {
    fn new(max: usize, reclaim_after: Duration) -> Self {
        Self {
            max,
            reclaim_after,
            inner: Mutex::new(TcpSlots::default()),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, TcpSlots> {
        // Only plain bookkeeping happens under the lock; a poisoned one is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A slot for a new connection, or `None` when every slot is taken by a connection that
    /// is answering or has waited less than `reclaim_after`. To make room, the connection
    /// that has waited longest for its next query is told to close.
    fn admit(&self, now: Instant) -> Option<(u64, CancellationToken)> {
        let mut slots = self.slots();
        if slots.open.len() >= self.max {
            let (_, victim) = slots
                .open
                .iter()
                .filter_map(|(id, slot)| {
                    let since = slot.waiting_since?;
                    (now.saturating_duration_since(since) >= self.reclaim_after)
                        .then_some((since, *id))
                })
                .min()?;
            if let Some(slot) = slots.open.remove(&victim) {
                slot.close.cancel();
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let close = CancellationToken::new();
        slots.open.insert(
            id,
            TcpSlot {
                waiting_since: Some(now),
                close: close.clone(),
            },
        );
        Some((id, close))
    }

    fn set_waiting(&self, id: u64, since: Option<Instant>) {
        if let Some(slot) = self.slots().open.get_mut(&id) {
            slot.waiting_since = since;
        }
    }

    fn release(&self, id: u64) {
        self.slots().open.remove(&id);
    }
}

/// Gives a connection's slot back however its task ends.
struct SlotGuard<'a> {
    table: &'a TcpTable,
    id: u64,
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        self.table.release(self.id);
    }
}

async fn serve_tcp(
    listener: TcpListener,
    catalog: SharedCatalog,
    options: DnsOptions,
    shutdown: CancellationToken,
) {
    let table = Arc::new(TcpTable::new(
        options.tcp_max_connections,
        options.tcp_reclaim_after,
    ));
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
        let Some((id, close)) = table.admit(Instant::now()) else {
            debug!(%peer, "tcp connection limit reached and no idle connection to close; closing");
            continue;
        };
        let catalog = catalog.clone();
        let options = options.clone();
        let shutdown = shutdown.clone();
        let table = table.clone();
        connections.spawn(async move {
            let _slot = SlotGuard { table: &table, id };
            tokio::select! {
                result = serve_connection(stream, &catalog, &options, &table, id) => {
                    if let Err(error) = result {
                        debug!(%error, %peer, "tcp connection ended");
                    }
                }
                _ = close.cancelled() => debug!(%peer, "tcp connection closed to make room"),
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
    table: &TcpTable,
    id: u64,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let peer: IpAddr = stream.peer_addr()?.ip();
    // Buffered both ways: pipelined queries arrive many to a read, and answers go out many
    // to a write, written whenever no further whole query is already waiting in the buffer
    // (or `TCP_OUT_FLUSH` bytes are owed), and before the connection is given up: every
    // query answered gets its answer (RFC 7766 §6.2.1), whatever comes after it. A query
    // already in the buffer is answered without a timer, a clock read or the connection
    // table's lock: only waiting on the peer needs those.
    let (reader, mut writer) = stream.split();
    let mut reader = BufReader::with_capacity(16 * 1024, reader);
    // The answers owed, each with its length prefix.
    let mut out: Vec<u8> = Vec::with_capacity(TCP_OUT_FLUSH);
    let mut query = Vec::with_capacity(512);
    loop {
        let buffered = reader.buffer();
        if holds_whole_message(buffered) {
            let len = usize::from(u16::from_be_bytes([buffered[0], buffered[1]]));
            query.clear();
            query.extend_from_slice(&buffered[2..2 + len]);
            reader.consume(2 + len);
        } else {
            send_owed(&mut writer, &mut out, options).await?;
            // Waiting for a query (idle, or part-way through one) makes the connection one
            // that may be closed when the table is full; answering does not.
            table.set_waiting(id, Some(Instant::now()));
            let mut len = [0u8; 2];
            // The first byte waits up to the idle timeout; the rest of the query must follow
            // within the read timeout.
            match tokio::time::timeout(options.tcp_idle_timeout, reader.read_exact(&mut len[..1]))
                .await
            {
                Err(_) => return Ok(()),
                Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(r) => r?,
            };
            let body = async {
                reader.read_exact(&mut len[1..]).await?;
                query.resize(usize::from(u16::from_be_bytes(len)), 0);
                reader.read_exact(&mut query).await?;
                Ok::<_, io::Error>(())
            };
            within(options.tcp_read_timeout, "slow query", body).await?;
            table.set_waiting(id, None);
        }
        // The answer goes after a length prefix, filled in once its length is known.
        let start = out.len();
        out.extend_from_slice(&[0, 0]);
        let outcome = {
            let snapshot = catalog.load();
            let mut resolver_hits = 0;
            let outcome = answer_cached(
                &snapshot,
                &query,
                Transport::Tcp,
                peer,
                &options.recursion,
                &mut resolver_hits,
                &mut out,
            );
            if let Some(resolver) = &options.recursion.resolver {
                resolver.note_hits(resolver_hits);
            }
            outcome
        };
        // Where the answer's length prefix is.
        let prefix = match outcome {
            // Not a query we answer (too short, or a response): the stream can't be trusted,
            // but the answers to the queries before it are owed.
            None => {
                out.truncate(start);
                return send_owed(&mut writer, &mut out, options).await;
            }
            Some(Handled::Replied) => start,
            // Queries on one connection are answered in turn (RFC 7766 allows either); the
            // answers before this one go out while it waits for an upstream.
            Some(Handled::Recurse(recursion)) => {
                out.truncate(start);
                send_owed(&mut writer, &mut out, options).await?;
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&recursion.run(catalog).await);
                0
            }
        };
        // Every response is composed within the 65,535 bytes a TCP message can carry.
        let len = u16::try_from(out.len() - prefix - 2).unwrap_or(u16::MAX);
        out[prefix..prefix + 2].copy_from_slice(&len.to_be_bytes());
        if out.len() >= TCP_OUT_FLUSH {
            send_owed(&mut writer, &mut out, options).await?;
        }
    }
}

/// Answers owed on a TCP connection beyond this many bytes are written at once, without
/// waiting for the queries buffered after them to be answered too.
const TCP_OUT_FLUSH: usize = 16 * 1024;

/// Writes the answers owed (`out`, emptied) within the read timeout ("slow reader").
async fn send_owed(
    writer: &mut tokio::net::tcp::WriteHalf<'_>,
    out: &mut Vec<u8>,
    options: &DnsOptions,
) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    within(
        options.tcp_read_timeout,
        "slow reader",
        writer.write_all(out),
    )
    .await?;
    out.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel lets an unprivileged socket ask for.
    fn rmem_max() -> usize {
        std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn udp_sockets_get_a_receive_buffer_beyond_the_default() {
        let socket = udp_socket("127.0.0.1:0".parse().unwrap()).unwrap();
        let size = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        // The kernel reports twice what was asked (its bookkeeping share): with
        // CAP_NET_ADMIN all of it, else up to rmem_max.
        let least = 2 * RECV_BUFFER.min(rmem_max());
        assert!(
            size >= least,
            "receive buffer {size} bytes, want at least {least}"
        );
    }

    /// `pace` fed `windows` full rate windows of datagrams, a batch of [`RATE_WINDOW`] every
    /// `gap` from `start`.
    fn fed(mut pace: Pace, start: Instant, gap: Duration, windows: u32) -> Pace {
        for i in 1..=windows {
            pace.received(RATE_WINDOW, || start + gap * i);
        }
        pace
    }

    #[test]
    fn a_loop_fed_one_datagram_at_a_time_keeps_waiting_in_the_kernel() {
        let start = Instant::now();
        let mut pace = Pace::new(start);
        for i in 0..1000u32 {
            pace.received(1, || start + Duration::from_micros(10) * i);
            assert!(pace.blocks());
        }
    }

    #[test]
    fn a_busy_loop_pauses_once_then_waits_in_the_kernel_when_the_pause_brings_nothing() {
        let mut pace = Pace::new(Instant::now());
        pace.received(BUSY_BATCH, Instant::now);
        assert!(!pace.blocks());
        assert_eq!(pace.empty(), Wait::Pause);
        assert_eq!(pace.empty(), Wait::Block);
        assert!(pace.blocks());
        // A pause that brings a few keeps it busy no longer either.
        pace.received(BUSY_BATCH, Instant::now);
        assert_eq!(pace.empty(), Wait::Pause);
        pace.received(BUSY_STAYS - 1, Instant::now);
        assert!(pace.blocks());
    }

    #[test]
    fn a_busy_loop_on_a_slow_socket_never_yields() {
        let start = Instant::now();
        // 128 datagrams every 4 ms: 32,000 a second.
        let mut pace = fed(Pace::new(start), start, Duration::from_millis(4), 3);
        assert!(!pace.blocks());
        assert_eq!(pace.empty(), Wait::Pause);
        pace.received(BUSY_STAYS, Instant::now);
        assert_eq!(pace.empty(), Wait::Pause);
    }

    #[test]
    fn a_busy_loop_on_a_fast_socket_yields_before_each_pause_until_it_slows_down() {
        let start = Instant::now();
        // 128 datagrams every 1 ms: 128,000 a second.
        let mut pace = fed(Pace::new(start), start, Duration::from_millis(1), 3);
        for _ in 0..FAST_YIELDS {
            assert_eq!(pace.empty(), Wait::Yield);
        }
        assert_eq!(pace.empty(), Wait::Pause);
        // After the pause it yields again before giving up being busy.
        for _ in 0..FAST_YIELDS {
            assert_eq!(pace.empty(), Wait::Yield);
        }
        assert_eq!(pace.empty(), Wait::Block);
        // One window at 12,800 a second makes it slow again.
        let later = start + Duration::from_millis(3);
        let mut pace = fed(pace, later, Duration::from_millis(10), 1);
        assert!(!pace.blocks());
        assert_eq!(pace.empty(), Wait::Pause);
    }

    #[test]
    fn one_fast_window_after_a_slow_one_is_a_burst_not_a_rate() {
        let start = Instant::now();
        // 128 datagrams in 4 ms, then 128 in the next 1 ms: one fast window, after a slow one.
        let pace = fed(Pace::new(start), start, Duration::from_millis(4), 1);
        let mut pace = fed(
            pace,
            start + Duration::from_millis(4),
            Duration::from_millis(1),
            1,
        );
        assert!(!pace.blocks());
        assert_eq!(pace.empty(), Wait::Pause);
        // A second fast window in a row: now it is a rate.
        let mut pace = fed(
            pace,
            start + Duration::from_millis(5),
            Duration::from_millis(1),
            1,
        );
        assert_eq!(pace.empty(), Wait::Yield);
    }

    #[test]
    fn a_steered_loop_is_fast_while_its_group_is_spread_whatever_its_own_rate() {
        let start = Instant::now();
        // Busy, at 32,000 datagrams a second: slow by its own windows.
        let mut pace = fed(Pace::new(start), start, Duration::from_millis(4), 3);
        assert!(!pace.blocks());
        pace.follow_group(true);
        assert_eq!(pace.empty(), Wait::Yield);
        // 128 datagrams in 0.1 ms: fast by its own windows, but the group is local.
        let mut pace = fed(
            pace,
            start + Duration::from_millis(12),
            Duration::from_micros(100),
            2,
        );
        pace.follow_group(false);
        assert_eq!(pace.empty(), Wait::Pause);
    }
}
