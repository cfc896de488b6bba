//! Fuzzing on stable (issue 7, item 2): the invariants of the `cargo fuzz` target run in-process
//! over a large deterministic corpus of random and mutated queries, the kept corpus and
//! crashers are replayed, and a live server is flooded with hostile datagrams while it must
//! keep answering correct queries.
//!
//! The harness (catalog with public and private zones, the clients of every view, the
//! invariants, the generator) is `fuzz/src/lib.rs`, shared with the libFuzzer target so that
//! both check the same things. Knobs, for longer runs than CI's:
//! - `R53_FUZZ_ITERS` (default 200,000) inputs through `respond`, from seed `R53_FUZZ_SEED`;
//! - `R53_FLOOD_DATAGRAMS` (default 100,000) datagrams sent to the live server.

#[path = "../../fuzz/src/lib.rs"]
mod harness;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use r53::dns::Transport;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::support::{query, query_tcp, rrs, TestServer};
use harness::{check_response, datagram, select, Harness, Rng, CLIENTS};

const ZONE: &str = include_str!("../../zones/example.com.zone");

/// Datagrams the flood lets go unanswered at once: well within what the server's socket
/// buffers hold.
const WINDOW: u64 = 256;

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds `R53_FUZZ_ITERS` generated inputs through `respond` from every client over both
/// transports. Also counts what came back, so that a generator that stopped reaching the
/// answering paths (everything FORMERR, say) fails too.
#[test]
fn respond_keeps_its_invariants_on_hostile_input() {
    let iterations = env_count("R53_FUZZ_ITERS", 200_000);
    let seed = env_count("R53_FUZZ_SEED", 0x5eed_0053);
    let harness = Harness::new();
    let mut rng = Rng::new(seed);
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let mut failures = Vec::new();
    let started = Instant::now();
    for i in 0..iterations {
        let selector = rng.byte();
        let request = datagram(&mut rng);
        let (client, transport) = select(selector);
        match harness.check(client, transport, &request) {
            Ok(None) => *seen.entry("dropped".into()).or_default() += 1,
            Ok(Some(response)) => {
                let rcode = ResponseCode::from(0, response[3] & 0x0f);
                *seen.entry(format!("{rcode:?}")).or_default() += 1;
                if response[2] & 0x02 != 0 {
                    *seen.entry("TC".into()).or_default() += 1;
                }
                if response[7] > 0 || response[6] > 0 {
                    *seen.entry("with answers".into()).or_default() += 1;
                }
            }
            Err(broken) => {
                // The input as a regression file: the selector byte, then the request.
                let input = [&[selector][..], &request].concat();
                failures.push(format!("#{i}: {broken}\n  input: {}", hex(&input)));
                if failures.len() >= 10 {
                    break;
                }
            }
        }
    }
    eprintln!(
        "fuzz: {iterations} inputs (seed {seed:#x}) in {:?}: {seen:?}",
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "broken invariants (save an input with `xxd -r -p` into tests/data/fuzz/regressions/):\n{}",
        failures.join("\n")
    );
    if iterations >= 10_000 {
        for outcome in [
            "NoError",
            "NXDomain",
            "FormErr",
            "NotImp",
            "Refused",
            "TC",
            "dropped",
            "with answers",
        ] {
            assert!(
                seen.get(outcome).copied().unwrap_or(0) > 0,
                "the generator never produced {outcome}: {seen:?}"
            );
        }
    }
}

/// The harness's leak check is only as good as its picture of the views: each client gets the
/// zone its VPCs allow, so the invariant above is not passing vacuously.
#[test]
fn each_view_sees_exactly_its_private_zones() {
    let harness = Harness::new();
    for client in CLIENTS {
        let ask = |name: &str, qtype: RecordType| {
            let q = query(name, qtype).to_vec().unwrap();
            let out = harness
                .check(client, Transport::Udp, &q)
                .unwrap_or_else(|e| panic!("{}: {e}", client.address))
                .expect("an answer");
            Message::from_vec(&out).unwrap()
        };
        let www = ask("www.example.com.", RecordType::A);
        let expected = if client.sees_66 {
            vec!["www.example.com. 300 A 10.66.0.10"]
        } else {
            vec![
                "www.example.com. 300 A 192.0.2.10",
                "www.example.com. 300 A 192.0.2.11",
            ]
        };
        assert_eq!(rrs(&www.answers), expected, "{}", client.address);
        let private = ask("www.private-67.internal.", RecordType::A);
        if client.sees_67 {
            assert_eq!(
                rrs(&private.answers),
                ["www.private-67.internal. 300 A 10.67.0.10"]
            );
        } else {
            assert_eq!(
                private.metadata.response_code,
                ResponseCode::Refused,
                "{}",
                client.address
            );
        }
        // The public CNAME into the private-only zone ends at the CNAME outside VPC B.
        let corp = ask("corp.example.org.", RecordType::A);
        assert_eq!(corp.answers.len(), if client.sees_67 { 2 } else { 1 });
    }
}

/// The checks fail when they should: a private answer shown to an outsider, a wrong ID, QR
/// clear, an oversized UDP answer and a SERVFAIL are each caught.
#[test]
fn the_invariants_catch_what_they_claim_to() {
    let harness = Harness::new();
    let inside = CLIENTS.iter().find(|c| c.sees_66 && c.sees_67).unwrap();
    let outside = CLIENTS.iter().find(|c| !c.sees_66 && !c.sees_67).unwrap();
    for name in ["www.example.com.", "www.private-67.internal."] {
        let request = crate::support::plain_query(name, RecordType::A)
            .to_vec()
            .unwrap();
        let response = harness
            .check(*inside, Transport::Udp, &request)
            .unwrap()
            .unwrap();
        assert!(
            harness::check_no_leak(*outside, &response).is_err(),
            "{name}"
        );
        assert!(check_response(&request, Transport::Udp, &response).is_ok());
        let broken = |change: &dyn Fn(&mut Vec<u8>)| {
            let mut bad = response.clone();
            change(&mut bad);
            check_response(&request, Transport::Udp, &bad).is_err()
        };
        assert!(broken(&|r| r[1] ^= 1), "wrong ID");
        assert!(broken(&|r| r[2] &= 0x7f), "QR clear");
        assert!(broken(&|r| r[3] = (r[3] & 0xf0) | 2), "SERVFAIL");
        // 513 bytes to a query without EDNS: a TXT record padding the additional section.
        assert!(
            broken(&|r| {
                let pad = 513 - r.len() - 11;
                r[11] += 1;
                r.extend_from_slice(&[0, 0, 16, 0, 1, 0, 0, 0, 0]);
                r.extend_from_slice(&(pad as u16).to_be_bytes());
                r.extend(std::iter::repeat_n(0u8, pad));
            }),
            "over 512 bytes"
        );
    }
    // A panic that `respond` would catch and turn into one SERVFAIL is still seen.
    harness::install_panic_hook();
    let (caught, panicked) = harness::watch(|| std::panic::catch_unwind(|| panic!("boom")));
    assert!(caught.is_err());
    assert!(panicked.is_some_and(|m| m.contains("boom")));
}

/// Every file in the kept corpus and the crashers found so far replays clean: the same format
/// as the libFuzzer target's inputs (selector byte, then the request).
#[test]
fn kept_corpus_and_crashers_replay_clean() {
    let harness = Harness::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut replayed = 0;
    for dir in ["corpus", "regressions"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_none_or(|e| e != "md"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no inputs kept in {dir}");
        for path in files {
            let data = std::fs::read(&path).unwrap();
            if let Err(broken) = harness.run(&data) {
                panic!("{}: {broken}", path.display());
            }
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} kept inputs");
}

/// A correct query and a check of its answer against the seed zone.
struct Probe {
    name: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    /// A record the answer section must hold (`rrs` form).
    has: &'static str,
}

const PROBES: &[Probe] = &[
    Probe {
        name: "www.example.com.",
        qtype: RecordType::A,
        rcode: ResponseCode::NoError,
        has: "www.example.com. 300 A 192.0.2.11",
    },
    Probe {
        name: "docs.example.com.",
        qtype: RecordType::AAAA,
        rcode: ResponseCode::NoError,
        has: "www.example.com. 300 AAAA 2001:db8::10",
    },
    Probe {
        name: "x.apps.example.com.",
        qtype: RecordType::TXT,
        rcode: ResponseCode::NoError,
        has: "x.apps.example.com. 300 TXT wildcard",
    },
    Probe {
        name: "example.com.",
        qtype: RecordType::MX,
        rcode: ResponseCode::NoError,
        has: "example.com. 300 MX 20 mail2.example.com.",
    },
    Probe {
        name: "nothing.example.com.",
        qtype: RecordType::A,
        rcode: ResponseCode::NXDomain,
        has: "",
    },
];

fn check_probe(probe: &Probe, response: &Message) -> Result<(), String> {
    if response.metadata.response_code != probe.rcode {
        return Err(format!(
            "{} {}: {:?}, expected {:?}",
            probe.name, probe.qtype, response.metadata.response_code, probe.rcode
        ));
    }
    let answers = rrs(&response.answers);
    if !probe.has.is_empty() && !answers.iter().any(|r| r == probe.has) {
        return Err(format!("{} {}: {answers:?}", probe.name, probe.qtype));
    }
    if probe.has.is_empty()
        && !response
            .authorities
            .iter()
            .any(|r| matches!(r.data, RData::SOA(_)))
    {
        return Err(format!("{}: negative answer without SOA", probe.name));
    }
    Ok(())
}

/// Asks `probe` over UDP, resending every 50 ms: the flood may fill the server's socket
/// buffer, and a query the kernel dropped is the network's loss, not the server's. An answer
/// must come within `deadline`.
async fn ask_udp(socket: &UdpSocket, server: SocketAddr, probe: &Probe, deadline: Duration) {
    let request = query(probe.name, probe.qtype);
    let bytes = request.to_vec().unwrap();
    let give_up = Instant::now() + deadline;
    let mut buf = vec![0u8; 65535];
    while Instant::now() < give_up {
        socket.send_to(&bytes, server).await.unwrap();
        let resend = Instant::now() + Duration::from_millis(50);
        while let Ok(Ok((n, _))) =
            tokio::time::timeout_at(resend.into(), socket.recv_from(&mut buf)).await
        {
            let Ok(response) = Message::from_vec(&buf[..n]) else {
                panic!("unreadable answer to a probe: {}", hex(&buf[..n]));
            };
            // Answers to earlier, resent probes may still arrive: match on the ID.
            if response.metadata.id == request.metadata.id {
                if let Err(wrong) = check_probe(probe, &response) {
                    panic!("wrong answer during the flood: {wrong}");
                }
                return;
            }
        }
    }
    panic!(
        "no answer to {} {} within {deadline:?}",
        probe.name, probe.qtype
    );
}

/// Issue 7: "sends 100,000 random and mutated datagrams (bit flips, truncations,
/// compression-pointer loops, label lengths past the end, huge counts) to a live server, which
/// keeps answering correct queries throughout and afterwards". Bursts of 1,000 datagrams go
/// out from four sockets without waiting, their replies drained and checked concurrently; after
/// each burst a correct query must be answered correctly; afterwards UDP and TCP queries are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_server_answers_through_a_flood_of_hostile_datagrams() {
    let total = env_count("R53_FLOOD_DATAGRAMS", 100_000);
    let server = TestServer::start(&[("example.com", ZONE)]).await;
    let addr = server.addr;
    let started = Instant::now();

    let done = Arc::new(AtomicBool::new(false));
    let replies = Arc::new(AtomicU64::new(0));
    let replied = Arc::new(Notify::new());
    let mut senders = Vec::new();
    let mut drains = Vec::new();
    for _ in 0..4 {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        socket.connect(addr).await.unwrap();
        senders.push(socket.clone());
        let (done, replies, replied) = (done.clone(), replies.clone(), replied.clone());
        // Every reply must at least be a well-formed response; which query it answers is not
        // known (IDs repeat), so the per-request invariants are the in-process test's.
        drains.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 65535];
            loop {
                let got =
                    tokio::time::timeout(Duration::from_millis(300), socket.recv(&mut buf)).await;
                match got {
                    Ok(Ok(n)) => {
                        let reply = &buf[..n];
                        assert!(
                            n >= 12 && reply[2] & 0x80 != 0,
                            "not a response: {reply:02x?}"
                        );
                        assert!(n <= 1232, "{n}-byte UDP reply");
                        if let Err(e) = Message::from_vec(reply) {
                            panic!("unreadable reply ({e}): {}", hex(reply));
                        }
                        replies.fetch_add(1, Ordering::Relaxed);
                        replied.notify_one();
                    }
                    // ICMP errors surface as receive errors on a connected socket; the server
                    // is on loopback and alive, so keep going.
                    Ok(Err(_)) => {}
                    Err(_) if done.load(Ordering::Relaxed) => break,
                    Err(_) => {}
                }
            }
        }));
    }

    let probe_socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut rng = Rng::new(0xf100d);
    let mut sent = 0u64;
    let mut answerable = 0u64;
    let mut probes = 0usize;
    while sent < total {
        let burst = (total - sent).min(1000);
        for i in 0..burst {
            let datagram = datagram(&mut rng);
            if datagram.len() >= 12 && datagram[2] & 0x80 == 0 {
                answerable += 1;
            }
            // As fast as the server answers, not faster: past a window of unanswered
            // datagrams the kernel would drop the excess from the server's socket buffers
            // before r53 saw them, and the flood would test the kernel. A wait is short, so a
            // datagram lost anyway cannot stall the flood.
            while answerable.saturating_sub(replies.load(Ordering::Relaxed)) > WINDOW {
                if tokio::time::timeout(Duration::from_millis(20), replied.notified())
                    .await
                    .is_err()
                {
                    break;
                }
            }
            // A full send buffer or an ICMP error from an earlier datagram is not the server's
            // doing; the datagram is counted as sent either way.
            let _ = senders[i as usize % senders.len()].send(&datagram).await;
        }
        sent += burst;
        let probe = &PROBES[probes % PROBES.len()];
        ask_udp(&probe_socket, addr, probe, Duration::from_secs(5)).await;
        probes += 1;
    }
    let flood_time = started.elapsed();

    // Afterwards: every probe over UDP and TCP, answered at once.
    for round in 0..10 {
        for probe in PROBES {
            ask_udp(&probe_socket, addr, probe, Duration::from_secs(2)).await;
            if round % 5 == 0 {
                let response = query_tcp(addr, &query(probe.name, probe.qtype)).await;
                check_probe(probe, &response).unwrap();
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    for drain in drains {
        drain.await.expect("every reply was a well-formed response");
    }
    let replies = replies.load(Ordering::Relaxed);
    eprintln!(
        "flood: {sent} datagrams ({answerable} answerable) and {probes} probes in {flood_time:?}; \
         {replies} replies drained; total {:?}",
        started.elapsed()
    );
    // Loopback may still drop some datagrams, so not every one is answered; but most must
    // have reached and been answered by the server, or the flood tested nothing.
    assert!(
        replies * 2 >= answerable,
        "only {replies} replies to {answerable} answerable datagrams"
    );
    // The direct check of each reply against its request is the in-process test's; spot-check
    // a few here by exchanging them one at a time, so that the server's path (sockets and
    // all) is seen to produce the same invariants.
    let spot = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    spot.connect(addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    for _ in 0..200 {
        let request = datagram(&mut rng);
        if request.len() < 12 || request[2] & 0x80 != 0 {
            continue;
        }
        spot.send(&request).await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(2), spot.recv(&mut buf))
            .await
            .expect("an answer to every query-shaped datagram")
            .unwrap();
        if let Err(broken) = check_response(&request, Transport::Udp, &buf[..n]) {
            panic!("{broken}: request {}", hex(&request));
        }
    }
    server.running.shutdown().await.unwrap();
}
