//! Abuse limits (issue 7, items 3 and 6), each proven against a live server over real sockets:
//! UDP response-rate limiting per client network with TC slips; the TCP connection cap, what
//! happens when it is full, and slow connections that must not starve others; API request
//! timeouts (body and headers) and the concurrency cap, rejected in Route 53's error shape;
//! and memory that stays bounded under floods of random DNS names and API requests.
//!
//! Timing bounds are generous (a shared 2-core machine runs these with the rest of the suite):
//! each asserts an order of magnitude, not a schedule. The flood sizes can be raised with
//! `R53_FLOOD_QUERIES` and `R53_FLOOD_REQUESTS`.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use r53::app::{Running, ServeOptions};
use r53::dns::{DnsOptions, RrlConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::support::{exchange_tcp, exchange_udp, free_port, query, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_r53");

fn zone() -> String {
    r#"$ORIGIN example.com.
$TTL 3600
@     SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@     NS  ns1
ns1   A   192.0.2.53
www   A   192.0.2.1
*.wild TXT "wildcard"
"#
    .to_owned()
}

fn rrl_options(rate: u32, slip: u32) -> DnsOptions {
    DnsOptions {
        rrl: RrlConfig {
            rate,
            slip,
            table_size: 65_536,
        },
        ..DnsOptions::default()
    }
}

/// What one flooding client got back.
#[derive(Debug, Default)]
struct Tally {
    full: usize,
    slipped: usize,
    other: usize,
}

/// Sends `n` queries for `name` from `source` to `server` as fast as it can (in bursts of 25,
/// so the kernel's buffers are not what limits), counting the answers that come back until
/// nothing has arrived for 500 ms. Returns the tally and how long the sending took.
async fn flood(server: SocketAddr, source: &str, name: &str, n: usize) -> (Tally, Duration) {
    let socket = Arc::new(
        UdpSocket::bind(source)
            .await
            .expect("bind the flooding client"),
    );
    let reader = {
        let socket = socket.clone();
        tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut buf = vec![0u8; 65535];
            while let Ok(Ok(len)) =
                tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut buf)).await
            {
                match Message::from_vec(&buf[..len]) {
                    Ok(m) if m.metadata.truncation && m.answers.is_empty() => tally.slipped += 1,
                    Ok(m) if !m.metadata.truncation && m.answers.len() == 1 => tally.full += 1,
                    _ => tally.other += 1,
                }
            }
            tally
        })
    };
    let bytes = query(name, RecordType::A).to_vec().unwrap();
    let started = Instant::now();
    for i in 0..n {
        socket.send_to(&bytes, server).await.expect("send");
        if i % 25 == 24 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let sending = started.elapsed();
    (reader.await.expect("reader"), sending)
}

/// A TCP connection from a chosen loopback source address.
async fn tcp_from(source: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(source.parse().unwrap()).unwrap();
    socket.connect(server).await.expect("tcp connect")
}

#[tokio::test]
async fn rrl_limits_a_flooding_network_slips_some_and_spares_other_networks_and_tcp() {
    let s = TestServer::start_with(&[("example.com", &zone())], rrl_options(50, 2)).await;
    // 1000 queries from 127.0.0.9: about one second's budget (50) answered in full, plus the
    // refill while the flood lasts; of the rest, every second one slips as TC, the others
    // are dropped.
    let (tally, sending) = flood(s.addr, "127.0.0.9:0", "www.example.com", 1000).await;
    let budget = 50.0 + 50.0 * sending.as_secs_f64();
    eprintln!("rrl flood: {tally:?} in {sending:?}");
    assert!(
        tally.full >= 40 && (tally.full as f64) <= budget + 10.0,
        "{tally:?} in {sending:?} (budget {budget:.0})"
    );
    assert!(tally.slipped >= 200, "{tally:?}");
    assert_eq!(tally.other, 0, "{tally:?}");
    let limited = 1000 - tally.full;
    assert!(
        tally.slipped <= limited / 2 + 1,
        "at most every second limited answer slips: {tally:?}"
    );

    // Another /24 (127.0.1.0/24; all of 127/8 is loopback) is not affected, right away.
    let other = UdpSocket::bind("127.0.1.9:0").await.unwrap();
    let bytes = query("www.example.com", RecordType::A).to_vec().unwrap();
    let mut buf = vec![0u8; 65535];
    for _ in 0..20 {
        other.send_to(&bytes, s.addr).await.unwrap();
        let len = tokio::time::timeout(Duration::from_secs(2), other.recv(&mut buf))
            .await
            .expect("an answer for the other network")
            .unwrap();
        let m = Message::from_vec(&buf[..len]).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 1);
    }

    // TCP from the flooded network is never limited: its handshake proved its address.
    let mut stream = tcp_from("127.0.0.9:0", s.addr).await;
    for _ in 0..100 {
        let raw = exchange_tcp(&mut stream, &bytes).await.expect("tcp answer");
        let m = Message::from_vec(&raw).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 1);
    }

    // And the flooded network gets its budget back with time (here, after 1.5 s of quiet).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (tally, _) = flood(s.addr, "127.0.0.10:0", "www.example.com", 30).await;
    assert_eq!(tally.full, 30, "{tally:?}");
}

#[tokio::test]
async fn rrl_off_by_default_and_slip_zero_drops_everything_limited() {
    let s = TestServer::start(&[("example.com", &zone())]).await;
    let (tally, _) = flood(s.addr, "127.0.2.9:0", "www.example.com", 300).await;
    // Without RRL every query is answered (allowing a few lost to the kernel's buffers).
    assert!(tally.full >= 290 && tally.slipped == 0, "{tally:?}");

    let s = TestServer::start_with(&[("example.com", &zone())], rrl_options(20, 0)).await;
    let (tally, sending) = flood(s.addr, "127.0.3.9:0", "www.example.com", 300).await;
    let budget = 20.0 + 20.0 * sending.as_secs_f64();
    assert!((tally.full as f64) <= budget + 5.0, "{tally:?}");
    assert_eq!(tally.slipped, 0, "{tally:?}");
}

/// Sends a query on `stream` and says whether an answer came back.
async fn answers(stream: &mut TcpStream) -> bool {
    let bytes = query("www.example.com", RecordType::A).to_vec().unwrap();
    exchange_tcp(stream, &bytes).await.is_some()
}

/// Whether the server has closed `stream` (EOF or reset) within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn tcp_connection_cap_closes_the_one_too_many_and_keeps_the_rest() {
    let options = DnsOptions {
        tcp_max_connections: 8,
        // Nobody has waited this long: no connection may be reclaimed.
        tcp_reclaim_after: Duration::from_secs(60),
        tcp_idle_timeout: Duration::from_secs(30),
        ..DnsOptions::default()
    };
    let s = TestServer::start_with(&[("example.com", &zone())], options).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        assert!(answers(&mut stream).await);
        held.push(stream);
    }
    let started = Instant::now();
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(3)).await,
        "the ninth connection is closed"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    // The eight keep working, several queries each.
    for stream in &mut held {
        for _ in 0..3 {
            assert!(answers(stream).await, "a held connection still answers");
        }
    }
    // Closing one frees its slot for a newcomer.
    drop(held.pop());
    let mut newcomer = None;
    for _ in 0..50 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        if answers(&mut stream).await {
            newcomer = Some(stream);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        newcomer.is_some(),
        "a freed slot is given to a new connection"
    );
}

#[tokio::test]
async fn a_full_table_makes_room_by_closing_the_longest_idle_connection() {
    let options = DnsOptions {
        tcp_max_connections: 4,
        tcp_reclaim_after: Duration::from_millis(200),
        tcp_idle_timeout: Duration::from_secs(30),
        ..DnsOptions::default()
    };
    let s = TestServer::start_with(&[("example.com", &zone())], options).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        assert!(answers(&mut stream).await);
        held.push(stream);
        // The first one is the longest idle, clearly.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut newcomer = TcpStream::connect(s.addr).await.unwrap();
    assert!(answers(&mut newcomer).await, "the newcomer is served");
    assert!(
        closed_within(&mut held[0], Duration::from_secs(3)).await,
        "the longest-idle connection made room"
    );
    for stream in &mut held[1..] {
        assert!(answers(stream).await, "the others are untouched");
    }
}

#[tokio::test]
async fn many_stalled_connections_do_not_starve_normal_clients() {
    let options = DnsOptions {
        tcp_max_connections: 64,
        tcp_reclaim_after: Duration::from_millis(200),
        // Long enough that only reclaiming, not the timeout, can free slots during the test.
        tcp_read_timeout: Duration::from_secs(30),
        tcp_idle_timeout: Duration::from_secs(30),
        ..DnsOptions::default()
    };
    let s = TestServer::start_with(&[("example.com", &zone())], options).await;
    // 200 connections that send the first byte of a length prefix and stall.
    let mut stalled = Vec::new();
    for _ in 0..200 {
        if let Ok(mut stream) = TcpStream::connect(s.addr).await {
            let _ = stream.write_all(&[0]).await;
            stalled.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Normal clients: UDP at once, and TCP on new connections (each reclaims a stalled slot).
    let started = Instant::now();
    for _ in 0..20 {
        let m = s.udp("www.example.com", RecordType::A).await;
        assert_eq!(m.answers.len(), 1);
        let m = s.tcp("www.example.com", RecordType::A).await;
        assert_eq!(m.answers.len(), 1);
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "20 UDP and 20 TCP queries took {:?}",
        started.elapsed()
    );
    // A stalled connection keeps its slot only while nobody needs it: most of them are gone.
    let mut closed = 0;
    for stream in &mut stalled {
        if closed_within(stream, Duration::from_millis(5)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 136,
        "only {closed} of 200 stalled connections were closed"
    );
}

// ---- API ----

async fn start_api(dir: &std::path::Path, limits: r53::api::ApiLimits) -> Running {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        api_limits: limits,
        data_dir: dir.join("data"),
        zones_dir: Some(dir.join("zones")),
        ..ServeOptions::default()
    })
    .await
    .expect("server starts")
}

/// Sends raw bytes and reads until the server closes; status and body. `None` when the
/// connection closes without a response.
async fn http_raw(addr: SocketAddr, raw: &[u8], wait: Duration) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream.write_all(raw).await.ok()?;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// Route 53's error shape, its code.
fn error_code(body: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    assert_eq!(json["Error"]["Type"], "Sender", "{json}");
    assert!(json["Error"]["Message"].is_string(), "{json}");
    json["Error"]["Code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const LIST: &[u8] =
    b"GET /2013-04-01/hostedzone HTTP/1.1\r\nHost: r53\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn api_slow_uploads_time_out_and_slowloris_headers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_api(
        dir.path(),
        r53::api::ApiLimits {
            request_timeout: Duration::from_secs(1),
            max_concurrent: 16,
        },
    )
    .await;
    let api = running.api_addr.unwrap();
    // A body that never finishes: 408 RequestTimeout in Route 53's shape, after about 1 s.
    let started = Instant::now();
    let slow_body = b"POST /2013-04-01/hostedzone HTTP/1.1\r\nHost: r53\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{\"Name\":";
    let (status, body) = http_raw(api, slow_body, Duration::from_secs(10))
        .await
        .expect("a response");
    assert_eq!(status, 408, "{body}");
    assert_eq!(error_code(&body), "RequestTimeout");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(8),
        "{took:?}"
    );
    // Headers that never finish: the connection is closed (hyper's header_read_timeout).
    let started = Instant::now();
    let mut stream = TcpStream::connect(api).await.unwrap();
    stream
        .write_all(b"GET /2013-04-01/hostedzone HTTP/1.1\r\nHost: r53\r\n")
        .await
        .unwrap();
    assert!(closed_within(&mut stream, Duration::from_secs(8)).await);
    assert!(started.elapsed() < Duration::from_secs(8));
    // A well-behaved client is served meanwhile and afterwards.
    let (status, body) = http_raw(api, LIST, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn api_concurrency_cap_answers_throttling_in_route53_shape() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_api(
        dir.path(),
        r53::api::ApiLimits {
            request_timeout: Duration::from_secs(3),
            max_concurrent: 2,
        },
    )
    .await;
    let api = running.api_addr.unwrap();
    // Two uploads that stall hold both slots.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(api).await.unwrap();
        stream
            .write_all(b"POST /2013-04-01/hostedzone HTTP/1.1\r\nHost: r53\r\nContent-Type: application/json\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{")
            .await
            .unwrap();
        slow.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = http_raw(api, LIST, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "Throttling");
    // Once they time out (408), the slots are free again.
    for mut stream in slow {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut out)).await;
        assert!(
            String::from_utf8_lossy(&out).starts_with("HTTP/1.1 408"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    let (status, body) = http_raw(api, LIST, Duration::from_secs(5)).await.unwrap();
    assert_eq!(status, 200, "{body}");
    // The body limit still answers 413 in the same shape.
    let big = format!(
        "POST /2013-04-01/hostedzone HTTP/1.1\r\nHost: r53\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        2 << 20,
        " ".repeat(2 << 20)
    );
    let (status, body) = http_raw(api, big.as_bytes(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(status, 413, "{body}");
    assert_eq!(error_code(&body), "RequestEntityTooLarge");
    running.shutdown().await.unwrap();
}

// ---- resource bounds ----

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// r53 as its own process, so that its memory is its own (the tests in this binary share one
/// process and allocator). Killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Child {
    /// Context switches so far of each of r53's UDP threads (named `r53-udp-N`, in that
    /// order), from /proc/PID/task/*/status: a thread that sleeps until a datagram comes
    /// makes none while none comes, and about one per datagram when they come one by one.
    fn udp_thread_switches(&self) -> Vec<u64> {
        let tasks =
            std::fs::read_dir(format!("/proc/{}/task", self.0.id())).expect("r53 is running");
        let mut threads = Vec::new();
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("r53-udp-") {
                continue;
            }
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let switches = status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
            threads.push((comm, switches));
        }
        threads.sort();
        threads.into_iter().map(|(_, switches)| switches).collect()
    }

    /// Resident memory in KiB, from /proc/PID/status.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))
            .expect("r53 is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

async fn spawn_server(dir: &std::path::Path) -> (Child, SocketAddr, SocketAddr) {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("example.com.zone"), zone()).unwrap();
    let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Child(
        Command::new(BIN)
            .args(["serve", "--dns-addr", &dns.to_string()])
            .args(["--api-addr", &api.to_string()])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--zones-dir")
            .arg(&zones)
            .args(["--udp-sockets", "2", "--cache-mb", "8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("r53 starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let probe = query("www.example.com.", RecordType::A).to_vec().unwrap();
    while exchange_udp(dns, &probe).await.is_none() {
        assert!(Instant::now() < deadline, "r53 did not answer within 20 s");
    }
    (child, dns, api)
}

fn random_label(rng: &mut impl rand::Rng) -> String {
    let len = rng.random_range(1..=30);
    (0..len)
        .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
        .collect()
}

/// Sends `n` queries for random names (a third under example.com, a third under its
/// wildcard, a third outside every zone) with four windows of 32 in flight.
async fn random_name_flood(dns: SocketAddr, n: usize) -> usize {
    let answered = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..4 {
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
            let mut buf = vec![0u8; 4096];
            let quota = n / 4 + usize::from(w < n % 4);
            let mut sent = 0;
            while sent < quota {
                let burst = 32.min(quota - sent);
                for _ in 0..burst {
                    let label = random_label(&mut rng);
                    let name = match sent % 3 {
                        0 => format!("{label}.example.com."),
                        1 => format!("{label}.wild.example.com."),
                        _ => format!("{label}.{}.test.", random_label(&mut rng)),
                    };
                    let qtype = [RecordType::A, RecordType::AAAA, RecordType::TXT][sent % 3];
                    let bytes = query(&name, qtype).to_vec().unwrap();
                    let _ = socket.send_to(&bytes, dns).await;
                    sent += 1;
                }
                for _ in 0..burst {
                    match tokio::time::timeout(Duration::from_millis(200), socket.recv(&mut buf))
                        .await
                    {
                        Ok(Ok(_)) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => break,
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    answered.load(Ordering::Relaxed)
}

#[tokio::test]
async fn memory_stays_bounded_under_a_random_name_flood() {
    let n = env_count("R53_FLOOD_QUERIES", 200_000);
    let dir = tempfile::tempdir().unwrap();
    let (child, dns, _) = spawn_server(dir.path()).await;
    // Warm up so the allocator's pools and the sockets' buffers are in the baseline.
    random_name_flood(dns, 5_000).await;
    let before = child.rss_kib();
    let answered = random_name_flood(dns, n).await;
    let after = child.rss_kib();
    assert!(answered >= n * 9 / 10, "only {answered} of {n} answered");
    let grew_mib = after.saturating_sub(before) / 1024;
    eprintln!("random-name flood: {answered}/{n} answered, VmRSS {before} kB -> {after} kB");
    assert!(
        grew_mib < 50,
        "resident memory grew by {grew_mib} MiB ({before} kB to {after} kB) over {n} random names"
    );
    // And it still answers correctly.
    let m = crate::support::query_udp(dns, &query("www.example.com.", RecordType::A)).await;
    assert_eq!(m.answers.len(), 1);
}

/// Under a flood the UDP loops pause between batches instead of waiting on the socket (see
/// `UdpLoop` in src/dns/server.rs); once the flood is over they must go back to waiting in
/// the kernel, where an idle server spends no CPU, and answer the next lone question at once.
#[tokio::test]
async fn after_a_flood_the_udp_threads_sleep_until_the_next_question() {
    let dir = tempfile::tempdir().unwrap();
    let (child, dns, _) = spawn_server(dir.path()).await;
    let answered = random_name_flood(dns, 20_000).await;
    assert!(answered >= 18_000, "only {answered} of 20000 answered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before: u64 = child.udp_thread_switches().iter().sum();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: u64 = child.udp_thread_switches().iter().sum();
    // A loop left pausing would wake 10,000 times a second; an idle one not at all (the odd
    // switch is allowed for a stray datagram or the scheduler).
    assert!(
        after - before < 20,
        "the idle UDP threads switched {} times in a second",
        after - before
    );
    let probe = query("www.example.com.", RecordType::A).to_vec().unwrap();
    assert!(
        exchange_udp(dns, &probe).await.is_some(),
        "a lone query is answered"
    );
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: an all-zero cpu_set_t is a valid empty set; sched_getaffinity writes at most its
    // size into it, and CPU_ISSET reads a bit of it below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

/// Pins the calling thread to `cpus`.
fn pin(cpus: &[usize]) {
    // SAFETY: as in `allowed_cpus`; CPU_SET writes a bit below CPU_SETSIZE.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &cpu in cpus {
            libc::CPU_SET(cpu, &mut set);
        }
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// How many times each UDP thread of `child` woke while one client asked 200 questions one
/// after another, from the calling thread.
fn wakes_for_200_questions(child: &Child, dns: SocketAddr) -> Vec<u64> {
    let before = child.udp_thread_switches();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(dns).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let probe = query("www.example.com.", RecordType::A).to_vec().unwrap();
    let mut buf = [0u8; 512];
    for i in 0..200 {
        socket.send(&probe).unwrap();
        socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("question {i} unanswered: {e}"));
    }
    let after = child.udp_thread_switches();
    after.iter().zip(&before).map(|(a, b)| a - b).collect()
}

/// Which UDP thread answers (src/dns/steer.rs): with one socket per CPU (here
/// `--udp-sockets 2` on a 2-CPU machine), a quiet server answers each question on the CPU
/// it arrived on (on loopback, the client's): a client pinned to a CPU wakes that CPU's
/// thread alone. Otherwise a datagram goes to a socket at random (`spread_at_random` in
/// src/dns/server.rs), not by the client's address and port: a single client's questions
/// wake both threads.
#[tokio::test]
async fn which_udp_thread_answers_follows_the_cpu_or_chance_never_the_clients_address() {
    let dir = tempfile::tempdir().unwrap();
    let (child, dns, _) = spawn_server(dir.path()).await;
    assert_eq!(
        child.udp_thread_switches().len(),
        2,
        "one thread per UDP socket (--udp-sockets 2)"
    );
    let cpus = allowed_cpus();
    let woken = tokio::task::spawn_blocking(move || {
        if cpus.len() == 2 {
            cpus.iter()
                .map(|&cpu| {
                    pin(&[cpu]);
                    (cpu, wakes_for_200_questions(&child, dns))
                })
                .collect::<Vec<_>>()
        } else {
            vec![(usize::MAX, wakes_for_200_questions(&child, dns))]
        }
    })
    .await
    .unwrap();
    for (cpu, woken) in woken {
        if cpu == usize::MAX {
            // By the client's hash, one thread would take all 200 and the other none; at
            // random each takes about 100.
            assert!(
                woken.iter().all(|&w| w >= 25),
                "one client's 200 questions woke the UDP threads {woken:?} times"
            );
        } else {
            let (mine, other) = (woken[cpu % 2], woken[1 - cpu % 2]);
            assert!(
                mine >= 150 && other < 50,
                "a client on CPU {cpu} woke the UDP threads {woken:?} times"
            );
        }
    }
}

/// One API request of a mixed flood: listings, unknown routes, junk bodies, bad ids.
fn api_request(i: usize, rng: &mut impl rand::Rng) -> Vec<u8> {
    let junk: String = (0..rng.random_range(0..2000))
        .map(|_| char::from(rng.random_range(32u8..127)))
        .collect();
    let (method, path, body) = match i % 5 {
        0 => ("GET", "/2013-04-01/hostedzone".to_owned(), String::new()),
        1 => (
            "GET",
            format!("/{}/{}", random_label(rng), random_label(rng)),
            String::new(),
        ),
        2 => ("POST", "/2013-04-01/hostedzone".to_owned(), junk),
        3 => (
            "POST",
            format!(
                "/2013-04-01/hostedzone/Z{}/rrset",
                random_label(rng).to_uppercase()
            ),
            format!("{{\"ChangeBatch\":{{\"Changes\":[{junk:?}]}}}}"),
        ),
        _ => (
            "GET",
            format!(
                "/2013-04-01/hostedzone/Z{}",
                random_label(rng).to_uppercase()
            ),
            String::new(),
        ),
    };
    format!(
        "{method} {path} HTTP/1.1\r\nHost: r53\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn api_flood(api: SocketAddr, n: usize) -> (usize, usize) {
    let ok = Arc::new(AtomicUsize::new(0));
    let server_errors = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (ok, server_errors) = (ok.clone(), server_errors.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::from_os_rng();
            for i in (w..n).step_by(4) {
                let raw = api_request(i, &mut rng);
                match http_raw(api, &raw, Duration::from_secs(5)).await {
                    Some((status, _)) if status >= 500 => {
                        server_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    None => {}
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    (
        ok.load(Ordering::Relaxed),
        server_errors.load(Ordering::Relaxed),
    )
}

#[tokio::test]
async fn memory_stays_bounded_under_an_api_flood() {
    let n = env_count("R53_FLOOD_REQUESTS", 5_000);
    let dir = tempfile::tempdir().unwrap();
    let (child, dns, api) = spawn_server(dir.path()).await;
    api_flood(api, 500).await;
    let before = child.rss_kib();
    let (answered, server_errors) = api_flood(api, n).await;
    let after = child.rss_kib();
    assert_eq!(server_errors, 0, "5xx answers to junk");
    assert!(answered >= n * 9 / 10, "only {answered} of {n} answered");
    let grew_mib = after.saturating_sub(before) / 1024;
    eprintln!("api flood: {answered}/{n} answered, VmRSS {before} kB -> {after} kB");
    assert!(
        grew_mib < 50,
        "resident memory grew by {grew_mib} MiB ({before} kB to {after} kB) over {n} requests"
    );
    let m = crate::support::query_udp(dns, &query("www.example.com.", RecordType::A)).await;
    assert_eq!(m.answers.len(), 1);
}
