//! The embedded resolver against upstream servers the tests start: small DNS servers on
//! loopback that answer from a table, count what they are asked, and can be told to fail in
//! the ways upstreams fail (silence, SERVFAIL, truncation, a forged response first, gone).
//!
//! Each upstream runs its own tokio runtime inside `spawn_blocking`. Besides keeping it out
//! of the test's runtime, that matters for the paused-clock tests: tokio does not auto-advance
//! a paused clock while a blocking task runs, so the resolver's upstream timeouts stay
//! unfired while real packets travel, and the tests move time only with `advance`.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use r53::resolver::{ForwardingRule, Resolved, Resolver, ResolverConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio::time::advance;
use tokio_util::sync::CancellationToken;

fn name(s: &str) -> Name {
    Name::from_str(s).unwrap()
}

fn a(owner: &str, ttl: u32, last: u8) -> Record {
    Record::from_rdata(
        name(owner),
        ttl,
        RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
    )
}

fn soa(ttl: u32, minimum: u32) -> Record {
    let soa = SOA::new(
        name("ns.example.com."),
        name("hostmaster.example.com."),
        1,
        7200,
        3600,
        1_209_600,
        minimum,
    );
    Record::from_rdata(name("example.com."), ttl, RData::SOA(soa))
}

/// What an upstream answers for one question.
#[derive(Clone)]
enum Reply {
    Records(Vec<Record>),
    NxDomain(Record),
    NoData(Record),
    /// NXDOMAIN with the SOA and further authority records (a denial's proof).
    NxDomainWith(Record, Vec<Record>),
    /// An answer with authority records (a wildcard's proof).
    RecordsWith(Vec<Record>, Vec<Record>),
    ServFail,
}

/// DNSSEC records, which a server sends only to a query with DO set (RFC 3225 §3).
fn is_dnssec(r: &Record) -> bool {
    matches!(
        r.record_type(),
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
    )
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Via {
    Udp,
    Tcp,
}

#[derive(Default)]
struct Behaviour {
    table: HashMap<(Name, RecordType), Reply>,
    /// Receive and count, never answer.
    silent: bool,
    delay: Duration,
    /// Answer over UDP with TC set and nothing else.
    truncate_udp: bool,
    /// Send a response with the wrong ID and one with the wrong question before the real one.
    forge_first: bool,
    asked: Vec<(Name, RecordType, Via)>,
}

/// A counting upstream on 127.0.0.1, UDP and TCP on the same port.
struct Upstream {
    addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Upstream {
    fn start(table: &[(&str, RecordType, Reply)]) -> Self {
        let behaviour = Behaviour {
            table: table
                .iter()
                .map(|(n, t, r)| ((name(n), *t), r.clone()))
                .collect(),
            ..Behaviour::default()
        };
        let behaviour = Arc::new(Mutex::new(behaviour));
        // TCP on the UDP socket's port; another process may hold that port for TCP, so try
        // a few.
        let (udp, tcp) = (0..20)
            .find_map(|_| {
                let udp = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = std::net::TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a loopback port free for UDP and TCP");
        let addr = udp.local_addr().unwrap();
        udp.set_nonblocking(true).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let stop = CancellationToken::new();
        let (b, s) = (Arc::clone(&behaviour), stop.clone());
        let task = tokio::task::spawn_blocking(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let udp = Arc::new(UdpSocket::from_std(udp).unwrap());
                let tcp = TcpListener::from_std(tcp).unwrap();
                serve(udp, tcp, b, s).await;
            });
        });
        Self {
            addr,
            behaviour,
            stop,
            task: Some(task),
        }
    }

    fn set(&self, f: impl FnOnce(&mut Behaviour)) {
        f(&mut self.behaviour.lock().unwrap());
    }

    /// Questions received for `qname`/`qtype` over `via`.
    fn asked(&self, qname: &str, qtype: RecordType, via: Via) -> usize {
        let qname = name(qname);
        self.behaviour
            .lock()
            .unwrap()
            .asked
            .iter()
            .filter(|(n, t, v)| n == &qname && *t == qtype && *v == via)
            .count()
    }

    fn asked_total(&self) -> usize {
        self.behaviour.lock().unwrap().asked.len()
    }

    /// Stops answering and closes the sockets: queries then meet ICMP port unreachable.
    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn serve(
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: CancellationToken,
) {
    let mut buf = vec![0u8; 65_535];
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            got = udp.recv_from(&mut buf) => {
                let Ok((len, from)) = got else { continue };
                let request = buf[..len].to_vec();
                let (udp, behaviour) = (Arc::clone(&udp), Arc::clone(&behaviour));
                tokio::spawn(async move {
                    for out in answer(&behaviour, &request, Via::Udp).await {
                        let _ = udp.send_to(&out, from).await;
                    }
                });
            }
            got = tcp.accept() => {
                let Ok((stream, _)) = got else { continue };
                tokio::spawn(serve_tcp(stream, Arc::clone(&behaviour)));
            }
        }
    }
}

async fn serve_tcp(mut stream: TcpStream, behaviour: Arc<Mutex<Behaviour>>) {
    while let Ok(len) = stream.read_u16().await {
        let mut request = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut request).await.is_err() {
            return;
        }
        for out in answer(&behaviour, &request, Via::Tcp).await {
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&out);
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
    }
}

/// The datagrams to send back for one request, in order.
async fn answer(behaviour: &Mutex<Behaviour>, request: &[u8], via: Via) -> Vec<Vec<u8>> {
    let Ok(request) = Message::from_vec(request) else {
        return vec![];
    };
    let Some(question) = request.queries.first().cloned() else {
        return vec![];
    };
    let (reply, silent, delay, truncate, forge) = {
        let mut b = behaviour.lock().unwrap();
        b.asked
            .push((question.name().clone(), question.query_type(), via));
        let reply = b
            .table
            .get(&(question.name().clone(), question.query_type()))
            .cloned();
        (
            reply,
            b.silent,
            b.delay,
            b.truncate_udp && via == Via::Udp,
            b.forge_first && via == Via::Udp,
        )
    };
    if silent {
        return vec![];
    }
    tokio::time::sleep(delay).await;
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(question.clone());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        response.set_edns(edns);
    }
    let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    if truncate {
        response.metadata.truncation = true;
    } else {
        match reply {
            Some(Reply::Records(records)) => {
                response.add_answers(records);
            }
            Some(Reply::NxDomain(soa)) => {
                response.metadata.response_code = ResponseCode::NXDomain;
                response.add_authority(soa);
            }
            Some(Reply::NoData(soa)) => {
                response.add_authority(soa);
            }
            Some(Reply::RecordsWith(records, authority)) => {
                response.add_answers(records);
                response.add_authorities(authority);
            }
            Some(Reply::NxDomainWith(soa, proof)) => {
                response.metadata.response_code = ResponseCode::NXDomain;
                response.add_authority(soa);
                response.add_authorities(proof);
            }
            Some(Reply::ServFail) => response.metadata.response_code = ResponseCode::ServFail,
            None => response.metadata.response_code = ResponseCode::Refused,
        }
    }
    if !dnssec_ok {
        response.answers.retain(|r| !is_dnssec(r));
        response.authorities.retain(|r| !is_dnssec(r));
    }
    let mut out = Vec::new();
    if forge {
        let mut wrong_id = response.clone();
        wrong_id.metadata.id ^= 0x5a5a;
        wrong_id.answers = vec![a(&question.name().to_string(), 3600, 66)];
        out.push(wrong_id.to_vec().unwrap());
        let mut wrong_question = wrong_id.clone();
        wrong_question.metadata.id = request.metadata.id;
        wrong_question.queries[0].set_name(name("evil.example."));
        out.push(wrong_question.to_vec().unwrap());
        out.push(vec![0xde, 0xad, 0xbe, 0xef]);
    }
    out.push(response.to_vec().unwrap());
    out
}

fn config(upstreams: &[&Upstream]) -> ResolverConfig {
    ResolverConfig {
        upstreams: upstreams.iter().map(|u| u.addr).collect(),
        ..ResolverConfig::default()
    }
}

fn last_octets(r: &Resolved) -> Vec<u8> {
    r.answers
        .iter()
        .filter_map(|rec| match &rec.data {
            RData::A(a) => Some(a.0.octets()[3]),
            _ => None,
        })
        .collect()
}

fn ttls(records: &[Record]) -> Vec<u32> {
    records.iter().map(|r| r.ttl).collect()
}

fn www() -> (&'static str, RecordType, Reply) {
    (
        "www.example.com.",
        RecordType::A,
        Reply::Records(vec![
            a("www.example.com.", 300, 80),
            a("www.example.com.", 300, 81),
        ]),
    )
}

#[tokio::test(start_paused = true)]
async fn answers_within_the_ttl_come_from_the_cache() {
    let upstream = Upstream::start(&[www()]);
    let resolver = Resolver::new(config(&[&upstream]));
    for i in 0..20 {
        let qname = if i % 2 == 0 {
            "www.example.com."
        } else {
            "WWW.Example.COM."
        };
        let r = resolver.resolve(&name(qname), RecordType::A).await;
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert_eq!(last_octets(&r), [80, 81]);
        assert!(!r.stale);
        advance(Duration::from_secs(10)).await;
    }
    assert_eq!(
        upstream.asked("www.example.com.", RecordType::A, Via::Udp),
        1
    );
    let stats = resolver.stats();
    assert_eq!((stats.hits, stats.misses, stats.entries), (19, 1, 1));
    assert_eq!((stats.upstream_queries, stats.upstream_errors), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn ttls_count_down_and_expiry_asks_again() {
    let upstream = Upstream::start(&[www()]);
    let resolver = Resolver::new(config(&[&upstream]));
    let www = name("www.example.com.");
    let first = resolver.resolve(&www, RecordType::A).await;
    assert_eq!(ttls(&first.answers), [300, 300]);
    advance(Duration::from_millis(100_500)).await;
    let later = resolver.resolve(&www, RecordType::A).await;
    assert_eq!(
        ttls(&later.answers),
        [200, 200],
        "remaining = ttl - elapsed"
    );
    advance(Duration::from_secs(199)).await;
    let last = resolver.resolve(&www, RecordType::A).await;
    assert_eq!(ttls(&last.answers), [1, 1]);
    assert_eq!(
        upstream.asked("www.example.com.", RecordType::A, Via::Udp),
        1
    );
    advance(Duration::from_secs(1)).await;
    let fresh = resolver.resolve(&www, RecordType::A).await;
    assert_eq!(ttls(&fresh.answers), [300, 300]);
    assert_eq!(
        upstream.asked("www.example.com.", RecordType::A, Via::Udp),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_cname_chain_is_cached_whole_for_the_question() {
    let cname = Record::from_rdata(
        name("alias.example.com."),
        3600,
        RData::CNAME(CNAME(name("www.example.net."))),
    );
    let upstream = Upstream::start(&[(
        "alias.example.com.",
        RecordType::A,
        Reply::Records(vec![cname, a("www.example.net.", 60, 7)]),
    )]);
    let resolver = Resolver::new(config(&[&upstream]));
    let alias = name("alias.example.com.");
    let r = resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(r.answers.len(), 2);
    assert_eq!(r.answers[0].record_type(), RecordType::CNAME);
    advance(Duration::from_secs(59)).await;
    let r = resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(ttls(&r.answers), [3541, 1]);
    assert_eq!(
        upstream.asked_total(),
        1,
        "the target is not chased separately"
    );
    advance(Duration::from_secs(1)).await;
    resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(
        upstream.asked_total(),
        2,
        "the whole answer expires with its least TTL"
    );
}

#[tokio::test(start_paused = true)]
async fn negative_answers_are_cached_for_the_soa_minimum() {
    let upstream = Upstream::start(&[
        (
            "gone.example.com.",
            RecordType::A,
            Reply::NxDomain(soa(3600, 60)),
        ),
        (
            "www.example.com.",
            RecordType::AAAA,
            Reply::NoData(soa(45, 300)),
        ),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    let gone = name("gone.example.com.");
    let r = resolver.resolve(&gone, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert!(r.answers.is_empty());
    assert_eq!(r.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(
        ttls(&r.authorities),
        [60],
        "RFC 2308 §3: min(SOA TTL, MINIMUM)"
    );

    let nodata = name("www.example.com.");
    let r = resolver.resolve(&nodata, RecordType::AAAA).await;
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(ttls(&r.authorities), [45]);

    advance(Duration::from_secs(30)).await;
    let r = resolver.resolve(&gone, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert_eq!(ttls(&r.authorities), [30]);
    let r = resolver.resolve(&nodata, RecordType::AAAA).await;
    assert_eq!(ttls(&r.authorities), [15]);
    assert_eq!(upstream.asked_total(), 2);

    advance(Duration::from_secs(15)).await;
    resolver.resolve(&nodata, RecordType::AAAA).await;
    resolver.resolve(&gone, RecordType::A).await;
    assert_eq!(
        upstream.asked("www.example.com.", RecordType::AAAA, Via::Udp),
        2
    );
    assert_eq!(
        upstream.asked("gone.example.com.", RecordType::A, Via::Udp),
        1
    );
    advance(Duration::from_secs(15)).await;
    resolver.resolve(&gone, RecordType::A).await;
    assert_eq!(
        upstream.asked("gone.example.com.", RecordType::A, Via::Udp),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn servfail_when_the_upstream_fails_or_is_down() {
    let mut upstream = Upstream::start(&[
        www(),
        ("broken.example.com.", RecordType::A, Reply::ServFail),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    let r = resolver
        .resolve(&name("broken.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert!(r.answers.is_empty());
    let r = resolver
        .resolve(&name("broken.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert_eq!(upstream.asked_total(), 2, "SERVFAIL is not cached");

    upstream.stop().await;
    let r = resolver
        .resolve(&name("www.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
    let stats = resolver.stats();
    assert_eq!((stats.upstream_errors, stats.entries), (3, 0));
}

#[tokio::test(start_paused = true)]
async fn serve_stale_answers_expired_records_with_ttl_30() {
    let mut upstream = Upstream::start(&[www()]);
    let stale_ok = Resolver::new(ResolverConfig {
        serve_stale: true,
        ..config(&[&upstream])
    });
    let strict = Resolver::new(config(&[&upstream]));
    let www = name("www.example.com.");
    stale_ok.resolve(&www, RecordType::A).await;
    strict.resolve(&www, RecordType::A).await;
    advance(Duration::from_secs(3600)).await;
    upstream.stop().await;

    let r = stale_ok.resolve(&www, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert!(r.stale);
    assert_eq!(last_octets(&r), [80, 81]);
    assert_eq!(ttls(&r.answers), [30, 30], "RFC 8767 §4");
    let r = strict.resolve(&www, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert!(!r.stale);

    // RFC 8767 §4's failure recheck timer: within 30 s the stale answer comes without
    // another upstream attempt.
    let before = stale_ok.stats();
    let r = stale_ok.resolve(&www, RecordType::A).await;
    assert!(r.stale);
    let after = stale_ok.stats();
    assert_eq!(after.upstream_queries, before.upstream_queries);
    assert_eq!(after.stale_answers, 2);
    assert_eq!(after.hits, 0);

    // Kept no longer than a day past expiry.
    advance(Duration::from_secs(86_400)).await;
    let r = stale_ok.resolve(&www, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
}

#[tokio::test]
async fn concurrent_identical_misses_make_one_upstream_query() {
    let upstream = Upstream::start(&[www()]);
    // The upstream takes its time, so that all 50 questions arrive while the first is out.
    upstream.set(|b| b.delay = Duration::from_millis(300));
    let resolver = Resolver::new(config(&[&upstream]));
    let mut all = JoinSet::new();
    for _ in 0..50 {
        let resolver = resolver.clone();
        all.spawn(async move {
            resolver
                .resolve(&name("www.example.com."), RecordType::A)
                .await
        });
    }
    while let Some(r) = all.join_next().await {
        assert_eq!(last_octets(&r.unwrap()), [80, 81]);
    }
    assert_eq!(upstream.asked_total(), 1);
    let stats = resolver.stats();
    assert_eq!((stats.misses, stats.upstream_queries), (50, 1));
}

#[tokio::test]
async fn a_waiting_client_giving_up_does_not_cancel_the_answer() {
    let upstream = Upstream::start(&[www()]);
    upstream.set(|b| b.delay = Duration::from_millis(500));
    let resolver = Resolver::new(config(&[&upstream]));
    let www = name("www.example.com.");
    let gave_up = tokio::time::timeout(
        Duration::from_millis(20),
        resolver.resolve(&www, RecordType::A),
    )
    .await;
    assert!(gave_up.is_err());
    let r = resolver.resolve(&www, RecordType::A).await;
    assert_eq!(last_octets(&r), [80, 81]);
    assert_eq!(
        upstream.asked_total(),
        1,
        "the second question joined the first"
    );
}

#[tokio::test]
async fn failing_upstreams_move_on_to_the_next() {
    let silent = Upstream::start(&[www()]);
    silent.set(|b| b.silent = true);
    let servfail = Upstream::start(&[("www.example.com.", RecordType::A, Reply::ServFail)]);
    let good = Upstream::start(&[www()]);
    let resolver = Resolver::new(ResolverConfig {
        upstream_timeout: Duration::from_millis(200),
        ..config(&[&silent, &servfail, &good])
    });
    let r = resolver
        .resolve(&name("www.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert_eq!(last_octets(&r), [80, 81]);
    for u in [&silent, &servfail, &good] {
        assert_eq!(u.asked("www.example.com.", RecordType::A, Via::Udp), 1);
    }
    let stats = resolver.stats();
    assert_eq!((stats.upstream_queries, stats.upstream_errors), (3, 2));
}

#[tokio::test(start_paused = true)]
async fn truncated_answers_are_asked_again_over_tcp() {
    let upstream = Upstream::start(&[www()]);
    upstream.set(|b| b.truncate_udp = true);
    let resolver = Resolver::new(config(&[&upstream]));
    let r = resolver
        .resolve(&name("www.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert_eq!(last_octets(&r), [80, 81]);
    assert_eq!(
        upstream.asked("www.example.com.", RecordType::A, Via::Udp),
        1
    );
    assert_eq!(
        upstream.asked("www.example.com.", RecordType::A, Via::Tcp),
        1
    );
    assert_eq!(resolver.stats().upstream_errors, 0);
}

#[tokio::test(start_paused = true)]
async fn forged_and_garbled_responses_are_ignored() {
    let upstream = Upstream::start(&[www()]);
    upstream.set(|b| b.forge_first = true);
    let resolver = Resolver::new(config(&[&upstream]));
    let r = resolver
        .resolve(&name("www.example.com."), RecordType::A)
        .await;
    assert_eq!(
        last_octets(&r),
        [80, 81],
        "only the matching response is believed"
    );
    assert_eq!(resolver.stats().upstream_errors, 0);
}

#[tokio::test(start_paused = true)]
async fn the_cache_is_bounded_least_recently_used_first() {
    let names = ["a.example.com.", "b.example.com.", "c.example.com."];
    let table: Vec<_> = names
        .iter()
        .map(|n| (*n, RecordType::A, Reply::Records(vec![a(n, 300, 1)])))
        .collect();
    let upstream = Upstream::start(&table);
    let resolver = Resolver::new(ResolverConfig {
        cache_entries: 2,
        ..config(&[&upstream])
    });
    for n in [
        "a.example.com.",
        "b.example.com.",
        "a.example.com.",
        "c.example.com.",
    ] {
        resolver.resolve(&name(n), RecordType::A).await;
    }
    let stats = resolver.stats();
    assert_eq!((stats.entries, stats.evictions), (2, 1));
    resolver
        .resolve(&name("a.example.com."), RecordType::A)
        .await;
    assert_eq!(
        upstream.asked("a.example.com.", RecordType::A, Via::Udp),
        1,
        "recently used: kept"
    );
    resolver
        .resolve(&name("b.example.com."), RecordType::A)
        .await;
    assert_eq!(
        upstream.asked("b.example.com.", RecordType::A, Via::Udp),
        2,
        "least recent: evicted"
    );
    let stats = resolver.stats();
    assert_eq!((stats.entries, stats.evictions), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn flush_drops_everything_or_one_name() {
    let aaaa = Record::from_rdata(
        name("a.example.com."),
        300,
        RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
    );
    let upstream = Upstream::start(&[
        (
            "a.example.com.",
            RecordType::A,
            Reply::Records(vec![a("a.example.com.", 300, 1)]),
        ),
        (
            "a.example.com.",
            RecordType::AAAA,
            Reply::Records(vec![aaaa]),
        ),
        (
            "b.example.com.",
            RecordType::A,
            Reply::Records(vec![a("b.example.com.", 300, 2)]),
        ),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    let (an, bn) = (name("a.example.com."), name("b.example.com."));
    resolver.resolve(&an, RecordType::A).await;
    resolver.resolve(&an, RecordType::AAAA).await;
    resolver.resolve(&bn, RecordType::A).await;
    assert_eq!(resolver.stats().entries, 3);

    resolver.flush(Some(&name("A.Example.Com.")));
    assert_eq!(resolver.stats().entries, 1);
    resolver.resolve(&an, RecordType::AAAA).await;
    resolver.resolve(&bn, RecordType::A).await;
    assert_eq!(
        upstream.asked("a.example.com.", RecordType::AAAA, Via::Udp),
        2
    );
    assert_eq!(upstream.asked("b.example.com.", RecordType::A, Via::Udp), 1);

    resolver.flush(None);
    assert_eq!(resolver.stats().entries, 0);
    resolver.resolve(&bn, RecordType::A).await;
    assert_eq!(upstream.asked("b.example.com.", RecordType::A, Via::Udp), 2);
}

#[tokio::test(start_paused = true)]
async fn the_most_specific_forwarding_rule_picks_the_upstreams() {
    let names = ["www.other.org.", "www.corp.example.", "x.dev.corp.example."];
    // Each upstream answers every name with its own address, so the answer tells who was
    // asked.
    let upstream = |id: u8| {
        let table: Vec<_> = names
            .iter()
            .map(|n| (*n, RecordType::A, Reply::Records(vec![a(n, 300, id)])))
            .collect();
        Upstream::start(&table)
    };
    let (default, corp, dev) = (upstream(1), upstream(2), upstream(3));
    let resolver = Resolver::new(config(&[&default]));
    resolver.set_rules(vec![
        ForwardingRule {
            domain: name("corp.example."),
            upstreams: vec![corp.addr],
        },
        ForwardingRule {
            domain: name("dev.corp.example."),
            upstreams: vec![dev.addr],
        },
    ]);
    let who = |n: &'static str| {
        let resolver = resolver.clone();
        async move { last_octets(&resolver.resolve(&name(n), RecordType::A).await) }
    };
    assert_eq!(who("x.dev.corp.example.").await, [3]);
    assert_eq!(who("www.corp.example.").await, [2]);
    assert_eq!(who("www.other.org.").await, [1]);
    assert!(resolver.forwards(&name("x.dev.corp.example.")));
    assert!(!resolver.forwards(&name("www.other.org.")));
    assert_eq!(
        (default.asked_total(), corp.asked_total(), dev.asked_total()),
        (1, 1, 1)
    );

    // Replacing the rules drops what the old upstreams said under the changed domains.
    resolver.set_rules(vec![ForwardingRule {
        domain: name("corp.example."),
        upstreams: vec![corp.addr],
    }]);
    assert_eq!(who("x.dev.corp.example.").await, [2]);
    assert_eq!(who("www.corp.example.").await, [2]);
    assert_eq!(
        corp.asked_total(),
        2,
        "www.corp.example's rule is unchanged: still cached"
    );
}

fn cname(owner: &str, ttl: u32, target: &str) -> Record {
    Record::from_rdata(name(owner), ttl, RData::CNAME(CNAME(name(target))))
}

fn types(records: &[Record]) -> Vec<RecordType> {
    records.iter().map(Record::record_type).collect()
}

#[tokio::test(start_paused = true)]
async fn a_cname_the_upstream_did_not_follow_is_followed_and_cached_whole() {
    // An authoritative upstream answers a CNAME out of its zones with the CNAME alone.
    let upstream = Upstream::start(&[
        (
            "alias.example.com.",
            RecordType::A,
            Reply::Records(vec![cname("alias.example.com.", 3600, "www.example.net.")]),
        ),
        (
            "www.example.net.",
            RecordType::A,
            Reply::Records(vec![a("www.example.net.", 60, 7)]),
        ),
        (
            "gone.example.com.",
            RecordType::A,
            Reply::Records(vec![cname("gone.example.com.", 3600, "nx.example.net.")]),
        ),
        (
            "nx.example.net.",
            RecordType::A,
            Reply::NxDomain(soa(3600, 30)),
        ),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    let alias = name("alias.example.com.");
    let r = resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert_eq!(types(&r.answers), [RecordType::CNAME, RecordType::A]);
    assert_eq!(last_octets(&r), [7]);
    assert_eq!(ttls(&r.answers), [3600, 60]);
    assert_eq!(
        upstream.asked("www.example.net.", RecordType::A, Via::Udp),
        1
    );

    // The whole chain is the cached answer to the question, until its least TTL runs out;
    // the target's own answer is cached for its own question.
    advance(Duration::from_secs(59)).await;
    let r = resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(ttls(&r.answers), [3541, 1]);
    let r = resolver
        .resolve(&name("www.example.net."), RecordType::A)
        .await;
    assert_eq!(last_octets(&r), [7]);
    assert_eq!(upstream.asked_total(), 2);
    advance(Duration::from_secs(1)).await;
    resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(
        upstream.asked("alias.example.com.", RecordType::A, Via::Udp),
        2
    );
    assert_eq!(
        upstream.asked("www.example.net.", RecordType::A, Via::Udp),
        2
    );

    // RFC 6604 §2: the rcode is the last name's; negative for the SOA's minimum.
    let gone = name("gone.example.com.");
    let r = resolver.resolve(&gone, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert_eq!(types(&r.answers), [RecordType::CNAME]);
    assert_eq!(types(&r.authorities), [RecordType::SOA]);
    assert_eq!(ttls(&r.authorities), [30]);
    advance(Duration::from_secs(29)).await;
    let r = resolver.resolve(&gone, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert_eq!(ttls(&r.authorities), [1]);
    assert_eq!(
        upstream.asked("gone.example.com.", RecordType::A, Via::Udp),
        1
    );
    assert_eq!(
        upstream.asked("nx.example.net.", RecordType::A, Via::Udp),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn a_cname_target_is_asked_where_its_forwarding_rule_says() {
    let default = Upstream::start(&[(
        "alias.example.com.",
        RecordType::A,
        Reply::Records(vec![cname("alias.example.com.", 300, "host.corp.example.")]),
    )]);
    let corp = Upstream::start(&[(
        "host.corp.example.",
        RecordType::A,
        Reply::Records(vec![a("host.corp.example.", 300, 10)]),
    )]);
    let resolver = Resolver::new(config(&[&default]));
    resolver.set_rules(vec![ForwardingRule {
        domain: name("corp.example."),
        upstreams: vec![corp.addr],
    }]);
    let r = resolver
        .resolve(&name("alias.example.com."), RecordType::A)
        .await;
    assert_eq!(types(&r.answers), [RecordType::CNAME, RecordType::A]);
    assert_eq!(last_octets(&r), [10]);
    assert_eq!((default.asked_total(), corp.asked_total()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_cname_chain_that_loops_or_ends_unanswered_is_servfail() {
    let upstream = Upstream::start(&[
        (
            "a.example.com.",
            RecordType::A,
            Reply::Records(vec![cname("a.example.com.", 300, "b.example.net.")]),
        ),
        (
            "b.example.net.",
            RecordType::A,
            Reply::Records(vec![cname("b.example.net.", 300, "A.Example.com.")]),
        ),
        (
            "c.example.com.",
            RecordType::A,
            Reply::Records(vec![cname("c.example.com.", 300, "dead.example.net.")]),
        ),
        ("dead.example.net.", RecordType::A, Reply::ServFail),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    let r = resolver
        .resolve(&name("a.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert!(r.answers.is_empty());
    assert_eq!(upstream.asked_total(), 2, "the loop is seen, not walked");
    let r = resolver
        .resolve(&name("c.example.com."), RecordType::A)
        .await;
    assert_eq!(r.rcode, ResponseCode::ServFail);
    assert_eq!(resolver.stats().entries, 0, "nothing cached");
}

#[tokio::test(start_paused = true)]
async fn a_cname_into_names_answered_locally_is_handed_back_uncached() {
    let upstream = Upstream::start(&[
        (
            "alias.example.com.",
            RecordType::A,
            Reply::Records(vec![cname("alias.example.com.", 300, "www.local.test.")]),
        ),
        (
            "www.local.test.",
            RecordType::A,
            Reply::Records(vec![a("www.local.test.", 300, 5)]),
        ),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    resolver.set_local_names(|n| name("local.test.").zone_of(n));
    let alias = name("alias.example.com.");
    for asked in 1..=2 {
        let r = resolver.resolve(&alias, RecordType::A).await;
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert_eq!(types(&r.answers), [RecordType::CNAME]);
        assert_eq!(
            upstream.asked("alias.example.com.", RecordType::A, Via::Udp),
            asked
        );
    }
    assert_eq!(
        upstream.asked("www.local.test.", RecordType::A, Via::Udp),
        0
    );
    assert_eq!(resolver.stats().entries, 0);

    // A forwarding rule beats r53's zones: then the target is chased.
    resolver.set_rules(vec![ForwardingRule {
        domain: name("local.test."),
        upstreams: vec![upstream.addr],
    }]);
    let r = resolver.resolve(&alias, RecordType::A).await;
    assert_eq!(types(&r.answers), [RecordType::CNAME, RecordType::A]);
    assert_eq!(
        upstream.asked("www.local.test.", RecordType::A, Via::Udp),
        1
    );
}

fn rrsig(owner: &str, covered: RecordType, ttl: u32) -> Record {
    use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, RRSIG};
    use hickory_proto::dnssec::Algorithm;
    let input = SigInput {
        type_covered: covered,
        algorithm: Algorithm::ECDSAP256SHA256,
        num_labels: name(owner).num_labels(),
        original_ttl: ttl,
        sig_expiration: 2_000_000_000.into(),
        sig_inception: 1_700_000_000.into(),
        key_tag: 4242,
        signer_name: name("example.com."),
    };
    let sig = RRSIG::from_sig(input, vec![7; 64]);
    Record::from_rdata(name(owner), ttl, RData::DNSSEC(DNSSECRData::RRSIG(sig)))
}

#[tokio::test(start_paused = true)]
async fn upstreams_are_asked_with_do_and_signatures_and_proofs_are_kept() {
    use hickory_proto::dnssec::rdata::{DNSSECRData, NSEC};
    let nsec = |owner: &str, ttl: u32| {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::DNSSEC(DNSSECRData::NSEC(NSEC::new(
                name("www.example.com."),
                [RecordType::A, RecordType::RRSIG, RecordType::NSEC],
            ))),
        )
    };
    let ns = Record::from_rdata(
        name("example.com."),
        3600,
        RData::NS(hickory_proto::rr::rdata::NS(name("ns.example.com."))),
    );
    let upstream = Upstream::start(&[
        (
            "www.example.com.",
            RecordType::A,
            Reply::Records(vec![
                a("www.example.com.", 300, 1),
                rrsig("www.example.com.", RecordType::A, 300),
            ]),
        ),
        (
            "nope.example.com.",
            RecordType::A,
            Reply::NxDomainWith(
                soa(3600, 60),
                vec![
                    rrsig("example.com.", RecordType::SOA, 3600),
                    nsec("gone.example.com.", 3600),
                    rrsig("gone.example.com.", RecordType::NSEC, 3600),
                    ns.clone(),
                    rrsig("example.com.", RecordType::NS, 3600),
                ],
            ),
        ),
        (
            "a.wild.example.com.",
            RecordType::A,
            Reply::RecordsWith(
                vec![
                    a("a.wild.example.com.", 300, 9),
                    rrsig("a.wild.example.com.", RecordType::A, 300),
                ],
                vec![
                    nsec("*.wild.example.com.", 120),
                    rrsig("*.wild.example.com.", RecordType::NSEC, 120),
                    ns,
                    rrsig("example.com.", RecordType::NS, 3600),
                ],
            ),
        ),
    ]);
    let resolver = Resolver::new(config(&[&upstream]));
    let r = resolver
        .resolve(&name("www.example.com."), RecordType::A)
        .await;
    assert_eq!(types(&r.answers), [RecordType::A, RecordType::RRSIG]);

    // RFC 4035 §3.1.3: the denial's proof goes with the SOA, and its TTLs are bounded by
    // the negative TTL as the SOA's is (RFC 2308 §5).
    let nope = name("nope.example.com.");
    let r = resolver.resolve(&nope, RecordType::A).await;
    assert_eq!(r.rcode, ResponseCode::NXDomain);
    assert_eq!(
        types(&r.authorities),
        [
            RecordType::SOA,
            RecordType::RRSIG,
            RecordType::NSEC,
            RecordType::RRSIG
        ]
    );
    assert_eq!(ttls(&r.authorities), [60, 60, 60, 60]);
    advance(Duration::from_secs(20)).await;
    let r = resolver.resolve(&nope, RecordType::A).await;
    assert_eq!(ttls(&r.authorities), [40, 40, 40, 40]);
    assert_eq!(upstream.asked_total(), 2);

    // RFC 4035 §3.1.3.3: a wildcard answer keeps the proof that no closer name exists, and
    // lives no longer than it.
    let wild = name("a.wild.example.com.");
    let r = resolver.resolve(&wild, RecordType::A).await;
    assert_eq!(types(&r.answers), [RecordType::A, RecordType::RRSIG]);
    assert_eq!(types(&r.authorities), [RecordType::NSEC, RecordType::RRSIG]);
    advance(Duration::from_secs(119)).await;
    let r = resolver.resolve(&wild, RecordType::A).await;
    assert_eq!(ttls(&r.authorities), [1, 1]);
    assert_eq!(
        upstream.asked("a.wild.example.com.", RecordType::A, Via::Udp),
        1
    );
    advance(Duration::from_secs(1)).await;
    resolver.resolve(&wild, RecordType::A).await;
    assert_eq!(
        upstream.asked("a.wild.example.com.", RecordType::A, Via::Udp),
        2
    );
}
