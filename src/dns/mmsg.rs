//! Batched UDP receive and send (Linux `recvmmsg`/`sendmmsg`): one system call moves up to
//! [`BATCH`] datagrams, where `recv_from`/`send_to` take one each. At a few hundred thousand
//! queries a second the system calls, not the answering, are what a core spends its time on;
//! NSD and Knot batch the same way.
//!
//! The unsafe code is the FFI: every pointer handed to the kernel points into buffers owned by
//! [`RecvBatch`] or [`SendBatch`] (or borrowed for the call) that outlive the call.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use socket2::SockAddr;

/// Datagrams moved per system call.
pub const BATCH: usize = 64;
/// Largest datagram received (a DNS query over UDP is at most 65535 bytes).
const MAX_DATAGRAM: usize = 65535;

/// Buffers for one `recvmmsg`.
pub struct RecvBatch {
    buffers: Vec<Vec<u8>>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    received: usize,
}

// The raw pointers inside only ever point into the batch's own buffers.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    pub fn new() -> Self {
        let mut batch = Self {
            buffers: (0..BATCH).map(|_| vec![0u8; MAX_DATAGRAM]).collect(),
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all
            // zero bytes are a valid value.
            addrs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            iovecs: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            headers: (0..BATCH).map(|_| unsafe { zeroed() }).collect(),
            received: 0,
        };
        // The pointers are set once: they point into the Vecs' heap storage, which never
        // moves (the Vecs are never resized), wherever the batch itself is moved.
        for i in 0..BATCH {
            batch.iovecs[i].iov_base = batch.buffers[i].as_mut_ptr().cast();
            batch.iovecs[i].iov_len = batch.buffers[i].len();
            let header = &mut batch.headers[i].msg_hdr;
            header.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
            header.msg_iov = &mut batch.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = std::ptr::null_mut();
            header.msg_controllen = 0;
        }
        batch.reset(BATCH);
        batch
    }

    /// Makes the first `n` headers ready to receive again: the kernel writes only the address
    /// length, the flags and the datagram length of the entries it filled.
    fn reset(&mut self, n: usize) {
        for header in &mut self.headers[..n] {
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_hdr.msg_flags = 0;
            header.msg_len = 0;
        }
    }

    /// Receives as many datagrams as are queued on `socket` (a blocking one), at most
    /// [`BATCH`]: with `wait`, sleeping until one comes (or the socket is shut down: then
    /// 0); without, an error of kind `WouldBlock` when none is queued.
    pub fn recv(&mut self, socket: &UdpSocket, wait: bool) -> io::Result<usize> {
        // Only what the last receive filled needs resetting: at a low rate a wake-up brings
        // one datagram, and preparing all BATCH headers each time was ~14% of the instructions.
        let filled = std::mem::take(&mut self.received);
        self.reset(filled);
        // SAFETY: `headers` holds BATCH initialised mmsghdr whose name and iov pointers point
        // into `addrs`, `iovecs` and `buffers` (set in `new`, heap storage that never moves),
        // all alive and unaliased for the call.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                // MSG_WAITFORONE: sleep until one datagram comes, then take what else is queued.
                if wait {
                    libc::MSG_WAITFORONE
                } else {
                    libc::MSG_DONTWAIT
                },
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// Datagram `i` of the last receive and who sent it (`None` for an address family r53
    /// does not answer).
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.received {
            return None;
        }
        let len = self.headers[i].msg_len as usize;
        // SAFETY: the kernel wrote a socket address of `msg_namelen` bytes into addrs[i].
        let addr = unsafe { SockAddr::new(self.addrs[i], self.headers[i].msg_hdr.msg_namelen) };
        let peer = addr.as_socket()?;
        Some((&self.buffers[i][..len.min(MAX_DATAGRAM)], peer))
    }
}

/// The most datagrams one segmented send carries (the kernel's `UDP_MAX_SEGMENTS` is 64 on
/// older kernels, more on newer ones).
const MAX_SEGMENTS: usize = 64;
/// The largest datagram sent as a segment. A segment must fit the path's MTU unfragmented
/// (the kernel refuses the send otherwise), and 1232 bytes fit any IPv6 path (1280 minus the
/// headers) and any ordinary IPv4 one; bigger answers go out one by one.
const MAX_SEGMENT: usize = 1232;
/// Bytes of payload one segmented send may carry (an IPv4 datagram's limit, less headers).
const MAX_SEGMENTED: usize = 65_000;
/// `UDP_SEGMENT` from linux/udp.h (Linux 4.18), not in the libc crate for glibc targets.
const UDP_SEGMENT: libc::c_int = 103;

/// Whether a segmented send failed for being segmented: EINVAL from a kernel without
/// `UDP_SEGMENT`, a socket without checksums or a route whose MTU is below a segment, EIO from a
/// device that cannot checksum for it. Other errors (no route, a firewall) concern the peer.
fn refuses_segments(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::EOPNOTSUPP)
    )
}

/// Room for one `sendmmsg`, kept from batch to batch so that sending allocates nothing.
///
/// Answers to the same client address of the same length go out as one message with
/// UDP generic segmentation offload (`UDP_SEGMENT`): the kernel walks its output and
/// delivery path once for the group and cuts it into the same datagrams at the end. That
/// happens when one socket asks many questions at once: a load balancer such as dnsdist
/// (one socket per backend by default) or a load generator. If the kernel or the route
/// refuses a segmented send, the group goes out datagram by datagram, and the socket stops
/// segmenting.
pub struct SendBatch {
    /// One per message: the datagrams (as indexes into the batch) it carries are
    /// `order[start..start + count]`, all for the same peer and `len` bytes long but for a
    /// shorter last one.
    messages: Vec<Message>,
    order: Vec<usize>,
    addrs: Vec<SockAddr>,
    iovecs: Vec<libc::iovec>,
    /// Control data (one `UDP_SEGMENT` header) for each message; u64s for cmsghdr alignment.
    controls: Vec<[u64; 4]>,
    headers: Vec<libc::mmsghdr>,
    segment: bool,
}

#[derive(Clone, Copy)]
struct Message {
    /// The batch index of its first datagram (whose peer is the message's).
    first: usize,
    len: usize,
    start: usize,
    count: usize,
    /// Its last datagram is shorter than `len`, so nothing more can join it.
    closed: bool,
}

// The raw pointers inside are set by `prepare` and used only by the system calls of the same
// `send`, during which everything they point to is alive and unmoved.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub fn new() -> Self {
        Self {
            messages: Vec::with_capacity(BATCH),
            order: Vec::with_capacity(BATCH),
            addrs: Vec::with_capacity(BATCH),
            iovecs: Vec::with_capacity(BATCH),
            controls: vec![[0; 4]; BATCH],
            headers: Vec::with_capacity(BATCH),
            segment: true,
        }
    }

    /// Sends `datagrams` (each a range of `bytes` and where it goes) with as few system calls
    /// as the socket takes; whatever the socket does not take at once (its buffer full) is
    /// sent one by one, waiting (`socket` is a blocking one).
    pub fn send(
        &mut self,
        socket: &UdpSocket,
        bytes: &[u8],
        datagrams: &[(std::ops::Range<usize>, SocketAddr)],
    ) {
        for chunk in datagrams.chunks(BATCH) {
            self.group(chunk);
            self.prepare(bytes, chunk);
            let mut sent = 0;
            while sent < self.messages.len() {
                match self.send_now(socket.as_raw_fd(), sent) {
                    Ok(n) if n > 0 => sent += n,
                    outcome => {
                        // Full or failing: send the next message's datagrams the ordinary way
                        // (each waits for room), so no answer is lost to a momentarily full
                        // buffer or a refused segmented send.
                        let message = self.messages[sent];
                        if let Err(error) = outcome {
                            if message.count > 1 && refuses_segments(&error) {
                                tracing::info!(%error, "UDP segmentation refused; answers go out one datagram each from now on");
                                self.segment = false;
                            }
                        }
                        for &i in &self.order[message.start..message.start + message.count] {
                            let (range, peer) = &chunk[i];
                            if let Err(error) = socket.send_to(&bytes[range.clone()], *peer) {
                                tracing::debug!(%error, %peer, "udp send");
                            }
                        }
                        sent += 1;
                    }
                }
            }
        }
    }

    /// Puts the datagrams of `chunk` (at most [`BATCH`]) into messages: with segmentation on,
    /// each joins the message of an earlier one to the same peer of its length while that has
    /// room; otherwise it is a message of its own.
    fn group(&mut self, chunk: &[(std::ops::Range<usize>, SocketAddr)]) {
        self.messages.clear();
        // The message each datagram joined.
        let mut message_of = [0usize; BATCH];
        for (i, (range, peer)) in chunk.iter().enumerate() {
            let len = range.len();
            let joins = if self.segment && len <= MAX_SEGMENT {
                // The same length, or else a shorter last one: the kernel cuts a segmented
                // send into datagrams of the first's length, and the last may be shorter.
                let open = |m: &Message| {
                    !m.closed
                        && m.len <= MAX_SEGMENT
                        && m.count < MAX_SEGMENTS
                        && m.count * m.len + len <= MAX_SEGMENTED
                        && chunk[m.first].1 == *peer
                };
                self.messages
                    .iter()
                    .position(|m| m.len == len && open(m))
                    .or_else(|| self.messages.iter().position(|m| m.len > len && open(m)))
            } else {
                None
            };
            let m = match joins {
                Some(m) => {
                    let message = &mut self.messages[m];
                    message.count += 1;
                    message.closed = len < message.len;
                    m
                }
                None => {
                    self.messages.push(Message {
                        first: i,
                        len,
                        start: 0,
                        count: 1,
                        closed: false,
                    });
                    self.messages.len() - 1
                }
            };
            message_of[i] = m;
        }
        // The datagrams of message 0, then of message 1, and so on, each message's in the
        // order they came.
        self.order.clear();
        self.order.extend(0..chunk.len());
        self.order.sort_unstable_by_key(|&i| (message_of[i], i));
        let mut next = 0;
        for message in &mut self.messages {
            message.start = next;
            next += message.count;
        }
    }

    /// Fills the `sendmmsg` headers for the messages `group` made.
    fn prepare(&mut self, bytes: &[u8], chunk: &[(std::ops::Range<usize>, SocketAddr)]) {
        self.addrs.clear();
        self.iovecs.clear();
        self.headers.clear();
        for &i in &self.order {
            let data = &bytes[chunk[i].0.clone()];
            self.iovecs.push(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
        }
        // No push below reallocates: each Vec has room for BATCH entries, so the pointers
        // into `addrs`, `iovecs` and `controls` stay valid until the next `prepare`.
        for (m, message) in self.messages.iter().enumerate() {
            self.addrs.push(SockAddr::from(chunk[message.first].1));
            // SAFETY: an all-zero mmsghdr is a valid value.
            let mut header: libc::mmsghdr = unsafe { zeroed() };
            header.msg_hdr.msg_name = self.addrs[m].as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = self.addrs[m].len();
            header.msg_hdr.msg_iov = &mut self.iovecs[message.start];
            header.msg_hdr.msg_iovlen = message.count as _;
            if message.count > 1 {
                let control = &mut self.controls[m];
                header.msg_hdr.msg_control = control.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is arithmetic; `control` (32 bytes, 8-aligned) has room
                // for one header with a u16 (24 bytes on 64-bit Linux), so CMSG_FIRSTHDR is
                // non-null and CMSG_DATA points inside it.
                unsafe {
                    header.msg_hdr.msg_controllen = libc::CMSG_SPACE(size_of::<u16>() as u32) as _;
                    let cmsg = libc::CMSG_FIRSTHDR(&header.msg_hdr);
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
                    std::ptr::write_unaligned(
                        libc::CMSG_DATA(cmsg).cast::<u16>(),
                        message.len as u16,
                    );
                }
            }
            self.headers.push(header);
        }
    }

    /// One `sendmmsg` of the prepared messages from `first` on; how many the kernel took.
    fn send_now(&mut self, fd: i32, first: usize) -> io::Result<usize> {
        let headers = &mut self.headers[first..];
        // SAFETY: every pointer in `headers` points into `addrs`, `iovecs`, `controls` or the
        // bytes `send` was given, all alive and untouched during the call; the kernel only
        // reads them.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                headers.as_mut_ptr(),
                headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Datagram `i` of `lens` is `lens[i].1` bytes, all of them `i`, for the peer `lens[i].0`.
    fn batch(
        peers: &[SocketAddr],
        lens: &[(usize, usize)],
    ) -> (Vec<u8>, Vec<(std::ops::Range<usize>, SocketAddr)>) {
        let mut bytes = Vec::new();
        let mut datagrams = Vec::new();
        for (i, &(peer, len)) in lens.iter().enumerate() {
            let start = bytes.len();
            bytes.resize(start + len, i as u8);
            datagrams.push((start..bytes.len(), peers[peer]));
        }
        (bytes, datagrams)
    }

    fn receiver(ip: &str) -> UdpSocket {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    /// What `socket` received, `n` datagrams: their first byte (the datagram's index) and length.
    fn received(socket: &UdpSocket, n: usize) -> Vec<(u8, usize)> {
        let mut buf = [0u8; 2048];
        (0..n)
            .map(|_| {
                let len = socket.recv(&mut buf).expect("a datagram");
                assert!(
                    buf[..len].iter().all(|&b| b == buf[0]),
                    "a datagram arrived whole"
                );
                (buf[0], len)
            })
            .collect()
    }

    // A: 30 30 . 40 30 20 30 1500 1500, B: 30 at index 2.
    const MIXED: [(usize, usize); 9] = [
        (0, 30),
        (0, 30),
        (1, 30),
        (0, 40),
        (0, 30),
        (0, 20),
        (0, 30),
        (0, 1500),
        (0, 1500),
    ];

    #[test]
    fn answers_to_one_peer_of_one_length_share_a_message() {
        let peers: Vec<SocketAddr> = vec![
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        ];
        let (_, datagrams) = batch(&peers, &MIXED);
        let mut sending = SendBatch::new();
        sending.group(&datagrams);
        let messages: Vec<Vec<usize>> = sending
            .messages
            .iter()
            .map(|m| sending.order[m.start..m.start + m.count].to_vec())
            .collect();
        // 20 ends A's message of 30s (a shorter last segment), so the next 30 ends the 40's;
        // B's 30 stays apart, and the 1500s are too long to segment.
        assert_eq!(
            messages,
            vec![vec![0, 1, 4, 5], vec![2], vec![3, 6], vec![7], vec![8]]
        );
        assert!(sending.messages[0].closed && !sending.messages[1].closed);

        // A short answer never ends a message of answers too long to segment.
        let (_, datagrams) = batch(&peers, &[(0, 1500), (0, 30)]);
        sending.group(&datagrams);
        assert_eq!(sending.messages.len(), 2);

        let (_, datagrams) = batch(&peers, &MIXED);
        sending.segment = false;
        sending.group(&datagrams);
        assert_eq!(sending.messages.len(), MIXED.len());
    }

    #[test]
    fn group_caps_a_message_at_max_segments() {
        let peer: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let (_, datagrams) = batch(&[peer], &[(0, 12); BATCH]);
        let mut sending = SendBatch::new();
        sending.group(&datagrams);
        assert!(sending.messages.iter().all(|m| m.count <= MAX_SEGMENTS));
        assert_eq!(
            sending.messages.iter().map(|m| m.count).sum::<usize>(),
            BATCH
        );
    }

    fn send_and_check(sender: &UdpSocket, sending: &mut SendBatch) {
        let ip = sender.local_addr().unwrap().ip().to_string();
        let (a, b) = (receiver(&ip), receiver(&ip));
        let peers = [a.local_addr().unwrap(), b.local_addr().unwrap()];
        let (bytes, datagrams) = batch(&peers, &MIXED);
        sending.send(sender, &bytes, &datagrams);
        let mut got = received(&a, 8);
        got.sort();
        let want: Vec<(u8, usize)> = MIXED
            .iter()
            .enumerate()
            .filter(|(_, (peer, _))| *peer == 0)
            .map(|(i, &(_, len))| (i as u8, len))
            .collect();
        assert_eq!(got, want);
        assert_eq!(received(&b, 1), vec![(2, 30)]);
        // Datagrams to one peer of one length arrive once each, in order.
        let (bytes, datagrams) = batch(&peers, &[(0, 30); 20]);
        sending.send(sender, &bytes, &datagrams);
        let order: Vec<u8> = received(&a, 20).into_iter().map(|(i, _)| i).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    }

    #[test]
    fn a_segmented_batch_arrives_as_the_same_datagrams() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut sending = SendBatch::new();
        send_and_check(&sender, &mut sending);
        assert!(sending.segment, "loopback takes segmented sends");
    }

    #[test]
    fn a_segmented_batch_arrives_as_the_same_datagrams_over_ipv6() {
        let Ok(sender) = UdpSocket::bind("[::1]:0") else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let mut sending = SendBatch::new();
        send_and_check(&sender, &mut sending);
        assert!(sending.segment, "loopback takes segmented sends");
    }

    #[test]
    fn a_refused_segmented_send_goes_out_datagram_by_datagram() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Linux refuses a segmented send (EINVAL) on a socket sending without UDP checksums.
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads an int from a live local for the call.
        let rc = unsafe {
            libc::setsockopt(
                sender.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_NO_CHECK,
                (&on as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        let mut sending = SendBatch::new();
        send_and_check(&sender, &mut sending);
        assert!(!sending.segment, "the refusal turned segmenting off");
    }
}
