//! Which UDP socket of a SO_REUSEPORT group a datagram goes to, and where its thread runs.
//!
//! The kernel hands each datagram for a group to the socket a classic BPF program picks (by
//! its index in the group, in the order the sockets were bound). Two programs, two modes:
//!
//! - **Local**, while no socket is busy: the socket whose index is the number of the CPU the
//!   datagram was received on (on loopback, the sender's CPU) modulo the number of sockets,
//!   each socket's thread pinned to that CPU.
//!   A query is then answered on the CPU it arrived on: the wake-up is a local one, with no
//!   interrupt to another CPU (costly in a virtual machine) and no cache to move.
//! - **Spread**, once a socket takes [`SPREAD_RATE`] datagrams a second or more: a socket at
//!   random and the threads free to run anywhere, so that one busy CPU (one client, one NIC
//!   queue) cannot leave the others idle; and each busy loop yields its CPU before it pauses
//!   (`Pace::follow_group` in [`super::server`]).
//!
//! Measured by hand on 2 CPUs with dnsperf on the same machine (`bench/`'s zone and queries,
//! six rounds of 8 s in turn with NSD): at 78,000 queries a second, the 99th percentile
//! latency was 0.57–0.77 ms with steering against 0.63–1.12 ms with the random spread alone
//! (NSD 0.67–1.32 ms). Pinned for good, at full load the rate peaked ~10% lower than with
//! the random spread (means of 182k against 203k q/s), which is why the mode follows the
//! load.
//!
//! Local mode needs one socket per CPU the process may run on, the CPUs' numbers distinct
//! modulo the number of sockets (socket `cpu % n` for CPU `cpu`): otherwise, or when the
//! program cannot be attached, the group keeps the random spread ([`super::server`]'s
//! `spread_at_random`) and nothing here runs. A thread that cannot be pinned (logged at
//! debug) runs where the scheduler puts it: its datagrams still come by CPU, answered all
//! the same.

use std::io;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

/// A socket taking at least this many datagrams a second, over each of two
/// [`WINDOW`]s in a row, puts the group in spread mode. Below a pinned CPU's capacity
/// (~90,000 a second here, with the client on the same CPUs), so that one CPU receiving
/// everything (a single client, a single NIC queue) spreads before it saturates.
const SPREAD_RATE: u64 = 80_000;
/// Every socket below this many datagrams a second over [`COLD_WINDOWS`] windows in a row
/// puts the group back in local mode.
const LOCAL_RATE: u64 = 60_000;
const HOT_WINDOWS: u32 = 2;
const COLD_WINDOWS: u32 = 4;
/// The shortest time the rates are taken over: long enough that a client's burst is not a
/// rate (dnsperf at 78,000 q/s sends bursts that reach 115,000 a second over a few ms).
const WINDOW: Duration = Duration::from_millis(50);

/// The mode decided from each window's busiest socket.
#[derive(Debug, Default)]
struct Mode {
    spread: bool,
    hot: u32,
    cold: u32,
}

impl Mode {
    /// Notes a window whose busiest socket took `rate` datagrams a second; `Some(spread)`
    /// when the mode changes.
    fn observe(&mut self, rate: u64) -> Option<bool> {
        if rate >= SPREAD_RATE {
            self.hot += 1;
            self.cold = 0;
        } else if rate < LOCAL_RATE {
            self.cold += 1;
            self.hot = 0;
        } else {
            self.hot = 0;
            self.cold = 0;
        }
        let spread = if self.spread {
            self.cold < COLD_WINDOWS
        } else {
            self.hot >= HOT_WINDOWS
        };
        (spread != self.spread).then(|| {
            self.spread = spread;
            spread
        })
    }
}

struct Window {
    start: Instant,
    mode: Mode,
}

/// One SO_REUSEPORT group's steering, shared by its sockets' threads.
pub(super) struct Steering {
    /// A handle on the group, to attach its programs through.
    group: UdpSocket,
    /// The CPU each socket's thread runs on in local mode.
    cpus: Vec<usize>,
    /// The CPUs the process may run on, for a thread's affinity in spread mode.
    allowed: libc::cpu_set_t,
    /// Datagrams each socket took in the current window.
    counts: Vec<AtomicU64>,
    spread: AtomicBool,
    window: Mutex<Window>,
}

/// A socket thread's side: whether it is pinned now.
#[derive(Debug, Default)]
pub(super) struct ThreadSteering {
    pinned: Option<bool>,
}

impl Steering {
    /// Local mode for `sockets` (one SO_REUSEPORT group, in the order bound), or `None` when
    /// it cannot be had here (see the module's doc).
    pub(super) fn new(sockets: &[UdpSocket]) -> Option<Self> {
        let n = sockets.len();
        if n < 2 {
            return None;
        }
        let allowed = current_affinity().ok()?;
        let mut cpus = vec![None; n];
        let mut found = 0;
        for cpu in cpus_in(&allowed) {
            found += 1;
            let slot = cpus.get_mut(cpu % n)?;
            if slot.replace(cpu).is_some() {
                return None;
            }
        }
        if found != n {
            return None;
        }
        let cpus: Vec<usize> = cpus.into_iter().collect::<Option<_>>()?;
        let group = sockets[0].try_clone().ok()?;
        if let Err(error) = select_socket_by(&group, libc::SKF_AD_CPU, n) {
            warn!(%error, "cannot steer UDP datagrams to the socket of their CPU");
            return None;
        }
        Some(Self {
            group,
            cpus,
            allowed,
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            spread: AtomicBool::new(false),
            window: Mutex::new(Window {
                start: Instant::now(),
                mode: Mode::default(),
            }),
        })
    }

    /// Socket `index`'s thread took `datagrams` more, the last of them at `now`; once a
    /// [`WINDOW`] has passed, one thread decides the mode for the group. Then the calling
    /// thread follows the mode (pinned in local mode, free in spread mode). Cheap enough
    /// for every few hundred datagrams: an atomic add, a `try_lock`, rarely a syscall.
    pub(super) fn note(
        &self,
        index: usize,
        datagrams: u64,
        now: Instant,
        thread: &mut ThreadSteering,
    ) {
        self.counts[index].fetch_add(datagrams, Ordering::Relaxed);
        if let Ok(mut window) = self.window.try_lock() {
            let elapsed = now.saturating_duration_since(window.start);
            if elapsed >= WINDOW {
                window.start = now;
                let busiest = self
                    .counts
                    .iter()
                    .map(|count| count.swap(0, Ordering::Relaxed))
                    .max()
                    .unwrap_or(0);
                let rate = u128::from(busiest) * 1_000_000_000 / elapsed.as_nanos();
                if let Some(spread) = window.mode.observe(rate as u64) {
                    self.switch(spread);
                }
            }
        }
        self.follow(index, thread);
    }

    /// Whether the group is in spread mode.
    pub(super) fn spread(&self) -> bool {
        self.spread.load(Ordering::Relaxed)
    }

    /// Pins the calling thread (socket `index`'s) to its CPU, as local mode wants; call it
    /// when the thread starts.
    pub(super) fn follow(&self, index: usize, thread: &mut ThreadSteering) {
        let pin = !self.spread.load(Ordering::Relaxed);
        if thread.pinned == Some(pin) {
            return;
        }
        let set = if pin {
            cpu_set_of(self.cpus[index])
        } else {
            self.allowed
        };
        // SAFETY: sched_setaffinity reads a live cpu_set_t of the size given.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            debug!(error = %io::Error::last_os_error(), pin, "udp thread affinity");
        }
        thread.pinned = Some(pin);
    }

    fn switch(&self, spread: bool) {
        let by = if spread {
            libc::SKF_AD_RANDOM
        } else {
            libc::SKF_AD_CPU
        };
        match select_socket_by(&self.group, by, self.counts.len()) {
            Ok(()) => {
                self.spread.store(spread, Ordering::Relaxed);
                debug!(spread, "udp steering");
            }
            Err(error) => warn!(%error, spread, "cannot change how UDP datagrams are steered"),
        }
    }
}

fn current_affinity() -> io::Result<libc::cpu_set_t> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // the size given into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(set)
    }
}

/// The CPUs in `set`, in order.
fn cpus_in(set: &libc::cpu_set_t) -> impl Iterator<Item = usize> + '_ {
    // SAFETY: CPU_ISSET reads a bit of the set, `cpu` below CPU_SETSIZE.
    (0..libc::CPU_SETSIZE as usize).filter(move |&cpu| unsafe { libc::CPU_ISSET(cpu, set) })
}

fn cpu_set_of(cpu: usize) -> libc::cpu_set_t {
    // SAFETY: as in `current_affinity`; CPU_SET writes a bit of the set, `cpu` came from
    // one below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        set
    }
}

/// Makes the kernel hand each datagram for `socket`'s SO_REUSEPORT group of `sockets` to the
/// socket at index `value % sockets`, `value` one of the kernel's ancillary values
/// (`SKF_AD_RANDOM`, `SKF_AD_CPU`): a classic BPF program `ld value; mod #sockets; ret a`.
/// Attaching another replaces it.
pub(super) fn select_socket_by(socket: &UdpSocket, value: i32, sockets: usize) -> io::Result<()> {
    let program = [
        bpf(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + value) as u32,
        ),
        bpf(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, sockets as u32),
        bpf(libc::BPF_RET | libc::BPF_A, 0),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: setsockopt reads the sock_fprog and the program it points to (both alive on
    // this stack frame) during the call; the kernel keeps its own copy.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One classic BPF instruction without jumps.
fn bpf(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};
    use std::net::SocketAddr;

    fn allowed_cpus() -> Vec<usize> {
        cpus_in(&current_affinity().unwrap()).collect()
    }

    /// `n` UDP sockets of one SO_REUSEPORT group on a port of 127.0.0.1.
    fn group(n: usize) -> Vec<UdpSocket> {
        let mut sockets: Vec<UdpSocket> = Vec::new();
        let mut addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        for _ in 0..n {
            let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
            socket.set_reuse_port(true).unwrap();
            socket.bind(&addr.into()).unwrap();
            socket.set_nonblocking(true).unwrap();
            let socket: UdpSocket = socket.into();
            addr = socket.local_addr().unwrap();
            sockets.push(socket);
        }
        sockets
    }

    /// Sends `count` datagrams to the group from the calling thread, then how many each
    /// socket received.
    fn send_and_count(sockets: &[UdpSocket], count: usize) -> Vec<usize> {
        let to = sockets[0].local_addr().unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..count {
            client.send_to(b"q", to).unwrap();
        }
        let mut got = vec![0; sockets.len()];
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut buf = [0u8; 16];
        while got.iter().sum::<usize>() < count && Instant::now() < deadline {
            for (socket, got) in sockets.iter().zip(&mut got) {
                while socket.recv_from(&mut buf).is_ok() {
                    *got += 1;
                }
            }
        }
        got
    }

    /// What the kernel does with the programs, on this machine's CPUs (one socket per CPU
    /// the test may run on, as r53 binds by default).
    #[test]
    fn local_mode_hands_each_datagram_to_the_socket_of_the_cpu_it_was_sent_from() {
        let cpus = allowed_cpus();
        assert!(
            cpus.len() >= 2,
            "steering needs two CPUs or more; this test runs on {cpus:?}"
        );
        let sockets = group(cpus.len());
        let steering = Steering::new(&sockets).expect("local mode on one socket per CPU");
        let n = sockets.len();
        for &cpu in &cpus {
            let mut thread = ThreadSteering::default();
            // The test thread stands in for a client on `cpu`.
            steering.follow(cpu % n, &mut thread);
            let mut expected = vec![0; n];
            expected[cpu % n] = 20;
            assert_eq!(
                send_and_count(&sockets, 20),
                expected,
                "sent from CPU {cpu}"
            );
        }
        steering.switch(true);
        let mut thread = ThreadSteering::default();
        steering.follow(0, &mut thread);
        let spread = send_and_count(&sockets, 400);
        assert_eq!(spread.iter().sum::<usize>(), 400);
        assert!(
            spread.iter().all(|&got| got > 0),
            "at random from one CPU, every socket gets some: {spread:?}"
        );
        // Spread mode frees the thread it had pinned.
        assert_eq!(allowed_cpus(), cpus);
    }

    #[test]
    fn no_local_mode_without_one_socket_per_cpu() {
        let cpus = allowed_cpus();
        assert!(Steering::new(&group(1)).is_none());
        assert!(Steering::new(&group(cpus.len() + 1)).is_none());
    }

    #[test]
    fn two_busy_windows_in_a_row_spread_and_four_quiet_ones_bring_it_back() {
        let mut mode = Mode::default();
        assert_eq!(
            mode.observe(SPREAD_RATE),
            None,
            "one busy window is a burst"
        );
        assert_eq!(mode.observe(SPREAD_RATE + 1), Some(true));
        assert_eq!(mode.observe(SPREAD_RATE * 2), None);
        for _ in 1..COLD_WINDOWS {
            assert_eq!(mode.observe(LOCAL_RATE - 1), None);
        }
        assert_eq!(mode.observe(0), Some(false));
    }

    #[test]
    fn a_rate_between_the_bars_keeps_the_mode_and_restarts_both_counts() {
        let mut mode = Mode::default();
        assert_eq!(mode.observe(SPREAD_RATE), None);
        assert_eq!(mode.observe(LOCAL_RATE), None, "between: not busy");
        assert_eq!(mode.observe(SPREAD_RATE), None, "the count started again");
        assert_eq!(mode.observe(SPREAD_RATE), Some(true));
        for _ in 1..COLD_WINDOWS {
            assert_eq!(mode.observe(LOCAL_RATE - 1), None);
        }
        assert_eq!(mode.observe(LOCAL_RATE), None, "between: not quiet");
        for _ in 1..COLD_WINDOWS {
            assert_eq!(mode.observe(0), None);
        }
        assert_eq!(mode.observe(0), Some(false));
    }
}
