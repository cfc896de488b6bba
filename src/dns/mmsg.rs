//! Batched UDP receive and send (Linux `recvmmsg`/`sendmmsg`): one system call moves up to
//! [`BATCH`] datagrams, where `recv_from`/`send_to` take one each. At a few hundred thousand
//! queries a second the system calls, not the answering, are what a core spends its time on;
//! NSD and Knot batch the same way.
//!
//! The unsafe code is the FFI: every pointer handed to the kernel points into buffers owned by
//! [`RecvBatch`] or [`SendBatch`] (or borrowed for the call) that outlive the call.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::SockAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;

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

    /// Waits for datagrams and receives as many as are queued (at most [`BATCH`]).
    pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        loop {
            socket.readable().await?;
            match socket.try_io(Interest::READABLE, || self.recv_now(socket.as_raw_fd())) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn recv_now(&mut self, fd: i32) -> io::Result<usize> {
        // Only what the last receive filled needs resetting: at a low rate a wake-up brings
        // one datagram, and preparing all BATCH headers each time was ~14% of the instructions.
        let filled = std::mem::take(&mut self.received);
        self.reset(filled);
        // SAFETY: `headers` holds BATCH initialised mmsghdr whose name and iov pointers point
        // into `addrs`, `iovecs` and `buffers` (set in `new`, heap storage that never moves),
        // all alive and unaliased for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
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

/// Room for one `sendmmsg`, kept from batch to batch so that sending allocates nothing.
pub struct SendBatch {
    addrs: Vec<SockAddr>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// The raw pointers inside are set, and used, only within one `send_now` call; in between they
// are never read.
unsafe impl Send for SendBatch {}

impl SendBatch {
    pub fn new() -> Self {
        Self {
            addrs: Vec::with_capacity(BATCH),
            iovecs: Vec::with_capacity(BATCH),
            headers: Vec::with_capacity(BATCH),
        }
    }

    /// Sends `datagrams` (each a range of `bytes` and where it goes) with as few system calls
    /// as the socket takes; whatever the socket does not take at once (its buffer full) is
    /// sent one by one, waiting.
    pub async fn send(
        &mut self,
        socket: &UdpSocket,
        bytes: &[u8],
        datagrams: &[(std::ops::Range<usize>, SocketAddr)],
    ) {
        let mut sent = 0;
        while sent < datagrams.len() {
            let chunk = &datagrams[sent..datagrams.len().min(sent + BATCH)];
            match socket.try_io(Interest::WRITABLE, || {
                self.send_now(socket.as_raw_fd(), bytes, chunk)
            }) {
                Ok(n) if n > 0 => sent += n,
                Ok(_) | Err(_) => {
                    // Full or failing: send the next one the ordinary way (it waits for room),
                    // so no answer is lost to a momentarily full buffer.
                    let (range, peer) = &datagrams[sent];
                    if let Err(error) = socket.send_to(&bytes[range.clone()], *peer).await {
                        tracing::debug!(%error, %peer, "udp send");
                    }
                    sent += 1;
                }
            }
        }
    }

    /// One `sendmmsg` of at most [`BATCH`] datagrams; how many the kernel took.
    fn send_now(
        &mut self,
        fd: i32,
        bytes: &[u8],
        datagrams: &[(std::ops::Range<usize>, SocketAddr)],
    ) -> io::Result<usize> {
        let datagrams = &datagrams[..datagrams.len().min(BATCH)];
        self.addrs.clear();
        self.iovecs.clear();
        self.headers.clear();
        for (range, peer) in datagrams {
            self.addrs.push(SockAddr::from(*peer));
            let data = &bytes[range.clone()];
            self.iovecs.push(libc::iovec {
                iov_base: data.as_ptr() as *mut libc::c_void,
                iov_len: data.len(),
            });
        }
        // No push below reallocates: each Vec has room for BATCH entries, so the pointers
        // into `addrs` and `iovecs` stay valid through the call.
        for i in 0..datagrams.len() {
            // SAFETY: an all-zero mmsghdr is a valid value.
            let mut header: libc::mmsghdr = unsafe { zeroed() };
            header.msg_hdr.msg_name = self.addrs[i].as_ptr() as *mut libc::c_void;
            header.msg_hdr.msg_namelen = self.addrs[i].len();
            header.msg_hdr.msg_iov = &mut self.iovecs[i];
            header.msg_hdr.msg_iovlen = 1;
            self.headers.push(header);
        }
        // SAFETY: every pointer in `headers` points into `addrs`, `iovecs` or `bytes`, which
        // outlive the call and are not touched during it; the kernel only reads them.
        let n = unsafe {
            libc::sendmmsg(
                fd,
                self.headers.as_mut_ptr(),
                self.headers.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }
}
