//! Batched UDP receive and send (Linux `recvmmsg`/`sendmmsg`): one system call moves up to
//! [`BATCH`] datagrams, where `recv_from`/`send_to` take one each. At a few hundred thousand
//! queries a second the system calls, not the answering, are what a core spends its time on;
//! NSD and Knot batch the same way.
//!
//! The unsafe code is the FFI: every pointer handed to the kernel points into buffers owned by
//! [`RecvBatch`] (or borrowed for the call by `send_batch`) that outlive the call.

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

/// Sends `datagrams` with as few system calls as the socket takes; whatever the socket does
/// not take at once (its buffer full) is sent one by one, waiting.
/// Each datagram is a range of `bytes` and where it goes.
pub async fn send_batch(
    socket: &UdpSocket,
    bytes: &[u8],
    datagrams: &[(std::ops::Range<usize>, SocketAddr)],
) {
    let mut sent = 0;
    while sent < datagrams.len() {
        let chunk = &datagrams[sent..datagrams.len().min(sent + BATCH)];
        match socket.try_io(Interest::WRITABLE, || {
            send_now(socket.as_raw_fd(), bytes, chunk)
        }) {
            Ok(n) if n > 0 => sent += n,
            Ok(_) | Err(_) => {
                // Full or failing: send the next one the ordinary way (it waits for room), so
                // no answer is lost to a momentarily full buffer.
                let (range, peer) = &datagrams[sent];
                if let Err(error) = socket.send_to(&bytes[range.clone()], *peer).await {
                    tracing::debug!(%error, %peer, "udp send");
                }
                sent += 1;
            }
        }
    }
}

fn send_now(
    fd: i32,
    bytes: &[u8],
    datagrams: &[(std::ops::Range<usize>, SocketAddr)],
) -> io::Result<usize> {
    let addrs: Vec<SockAddr> = datagrams
        .iter()
        .map(|(_, peer)| SockAddr::from(*peer))
        .collect();
    let mut iovecs: Vec<libc::iovec> = datagrams
        .iter()
        .map(|(range, _)| libc::iovec {
            iov_base: bytes[range.clone()].as_ptr() as *mut libc::c_void,
            iov_len: range.len(),
        })
        .collect();
    // SAFETY: zeroed mmsghdr is valid; every pointer set below points into `addrs`, `iovecs`
    // or `datagrams`, which outlive the call, and the kernel only reads them.
    let mut headers: Vec<libc::mmsghdr> =
        (0..datagrams.len()).map(|_| unsafe { zeroed() }).collect();
    for (i, header) in headers.iter_mut().enumerate() {
        header.msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
        header.msg_hdr.msg_namelen = addrs[i].len();
        header.msg_hdr.msg_iov = &mut iovecs[i];
        header.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: as above.
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
