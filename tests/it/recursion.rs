//! The embedded resolver in the DNS path: a second r53 on loopback is the upstream; the
//! server under test answers its own zones, resolves the rest for clients allowed to recurse,
//! completes CNAMEs that leave its zones, applies forwarding rules (which beat a private zone
//! of the same domain) and refuses everyone else.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use r53::app::{RecursionOptions, Running, ServeOptions};
use r53::dns::DnsOptions;
use r53::resolver::ResolverConfig;
use serde_json::json;
use tokio::net::UdpSocket;

use crate::support::{bare_id, http, query, query_tcp};

const UPSTREAM_ZONE: &str = "$ORIGIN upstream.test.\n$TTL 300\n\
    @ SOA ns.upstream.test. hostmaster.upstream.test. 1 3600 600 86400 60\n\
    @ NS ns.upstream.test.\n\
    ns A 198.51.100.1\n\
    www A 198.51.100.7\n\
    back CNAME ns.example.com.\n\
    gone CNAME nope.example.com.\n";

const LOCAL_ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n\
    @ SOA ns.example.com. hostmaster.example.com. 1 3600 600 86400 60\n\
    @ NS ns.example.com.\n\
    ns A 192.0.2.1\n\
    out CNAME www.upstream.test.\n";

async fn serve(
    dir: &std::path::Path,
    zones: &[(&str, &str)],
    recursion: Option<RecursionOptions>,
) -> Running {
    serve_with(dir, zones, recursion, DnsOptions::default()).await
}

async fn serve_with(
    dir: &std::path::Path,
    zones: &[(&str, &str)],
    recursion: Option<RecursionOptions>,
    dns: DnsOptions,
) -> Running {
    let zones_dir = dir.join("zones");
    std::fs::create_dir_all(&zones_dir).unwrap();
    for (name, text) in zones {
        std::fs::write(zones_dir.join(format!("{name}.zone")), text).unwrap();
    }
    r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.join("data"),
        zones_dir: Some(zones_dir),
        vpcs: vec![r53::app::parse_vpc_arg("vpc-a=127.0.0.2/32").unwrap()],
        recursion,
        dns,
        ..ServeOptions::default()
    })
    .await
    .expect("server starts")
}

fn resolving(upstreams: Vec<SocketAddr>, allow: Option<&str>) -> Option<RecursionOptions> {
    Some(RecursionOptions {
        resolver: ResolverConfig {
            upstreams,
            upstream_timeout: Duration::from_millis(300),
            ..ResolverConfig::default()
        },
        allow: allow.map(|a| vec![a.parse().unwrap()]),
    })
}

async fn ask(source: &str, server: SocketAddr, name: &str, qtype: RecordType, rd: bool) -> Message {
    let mut message = query(name, qtype);
    message.metadata.recursion_desired = rd;
    let socket = UdpSocket::bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    socket
        .send_to(&message.to_vec().unwrap(), server)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    Message::from_vec(&buf[..n]).unwrap()
}

fn data(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {}", r.record_type(), r.data))
        .collect()
}

#[tokio::test]
async fn names_outside_r53s_zones_are_resolved_for_allowed_clients() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[("example.com", LOCAL_ZONE)],
        resolving(vec![upstream.dns_addr], Some("127.0.0.2/32")),
    )
    .await;
    let dns = server.dns_addr;

    let resolved = ask("127.0.0.2", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(resolved.metadata.response_code, ResponseCode::NoError);
    assert!(
        resolved.metadata.recursion_available,
        "RA on recursive answers"
    );
    assert!(!resolved.metadata.authoritative);
    assert_eq!(data(&resolved), ["A 198.51.100.7"]);

    // A CNAME in r53's zone that leaves its zones is completed through the resolver.
    let chain = ask("127.0.0.2", dns, "out.example.com.", RecordType::A, true).await;
    assert_eq!(data(&chain), ["CNAME www.upstream.test.", "A 198.51.100.7"]);
    // Without RD, or from a client not allowed to recurse: r53's own answer only.
    let own = ask("127.0.0.2", dns, "out.example.com.", RecordType::A, false).await;
    assert_eq!(data(&own), ["CNAME www.upstream.test."]);
    assert!(own.metadata.authoritative);
    let no_rd = ask("127.0.0.2", dns, "www.upstream.test.", RecordType::A, false).await;
    assert_eq!(no_rd.metadata.response_code, ResponseCode::Refused);
    let not_allowed = ask("127.0.0.3", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(not_allowed.metadata.response_code, ResponseCode::Refused);
    assert!(not_allowed.answers.is_empty());

    // Negative answers come back with the upstream's SOA.
    let nx = ask("127.0.0.2", dns, "nope.upstream.test.", RecordType::A, true).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);

    // The cache answered the repeats: statistics in the API.
    for _ in 0..5 {
        ask("127.0.0.2", dns, "www.upstream.test.", RecordType::A, true).await;
    }
    let (status, stats) = http(server.api_addr.unwrap(), "GET", "/v1/resolver/stats", None).await;
    assert_eq!(status, 200);
    assert!(stats["Hits"].as_u64().unwrap() >= 5, "{stats}");
    assert!(stats["Entries"].as_u64().unwrap() >= 2, "{stats}");
    let (status, _) = http(
        server.api_addr.unwrap(),
        "POST",
        "/v1/resolver/flush",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 204);
    let (_, stats) = http(server.api_addr.unwrap(), "GET", "/v1/resolver/stats", None).await;
    assert_eq!(stats["Entries"], 0, "{stats}");
}

#[tokio::test]
async fn ra_tells_a_client_whether_it_may_recurse_on_every_answer() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let options = DnsOptions {
        udp_sockets: 1,
        ..DnsOptions::default()
    };
    let server = serve_with(
        dir.path(),
        &[("example.com", LOCAL_ZONE)],
        resolving(vec![upstream.dns_addr], Some("127.0.0.4/32")),
        options,
    )
    .await;
    let dns = server.dns_addr;

    // RFC 1035 §4.1.1: RA says whether recursion is available to the asker, so an allowed
    // client sees it on r53's own answers too, with RD or without, and on a refusal; asked
    // again, the copy in the response cache says the same.
    for _ in 0..3 {
        for rd in [true, false] {
            let own = ask("127.0.0.4", dns, "ns.example.com.", RecordType::A, rd).await;
            assert_eq!(data(&own), ["A 192.0.2.1"]);
            assert!(own.metadata.authoritative);
            assert!(own.metadata.recursion_available, "rd={rd}");
        }
        let no_rd = ask("127.0.0.4", dns, "www.upstream.test.", RecordType::A, false).await;
        assert_eq!(no_rd.metadata.response_code, ResponseCode::Refused);
        assert!(no_rd.metadata.recursion_available);
    }
    // A client outside --recursion-allow never sees RA, even for a question whose answer an
    // allowed client's question left in the response cache (both clients are in no VPC:
    // the same view).
    for _ in 0..3 {
        for rd in [true, false] {
            let own = ask("127.0.0.3", dns, "ns.example.com.", RecordType::A, rd).await;
            assert_eq!(data(&own), ["A 192.0.2.1"]);
            assert!(!own.metadata.recursion_available, "rd={rd}");
            let refused = ask("127.0.0.3", dns, "www.upstream.test.", RecordType::A, rd).await;
            assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
            assert!(!refused.metadata.recursion_available, "rd={rd}");
        }
    }
}

#[tokio::test]
async fn an_upstream_cname_into_r53s_zones_is_completed_from_them() {
    // The upstream is authoritative for upstream.test only: it answers a CNAME into
    // example.com, which the server under test serves, with the CNAME alone, and would
    // refuse the target.
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[("example.com", LOCAL_ZONE)],
        resolving(vec![upstream.dns_addr], Some("127.0.0.2/32")),
    )
    .await;
    let dns = server.dns_addr;
    for _ in 0..2 {
        let m = ask("127.0.0.2", dns, "back.upstream.test.", RecordType::A, true).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(data(&m), ["CNAME ns.example.com.", "A 192.0.2.1"]);
        assert!(m.metadata.recursion_available && !m.metadata.authoritative);
    }
    // NODATA and NXDOMAIN at the target carry its zone's SOA (RFC 2308 §2.1, §2.2).
    let nodata = ask(
        "127.0.0.2",
        dns,
        "back.upstream.test.",
        RecordType::AAAA,
        true,
    )
    .await;
    assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
    assert_eq!(data(&nodata), ["CNAME ns.example.com."]);
    assert_eq!(owners_of(&nodata.authorities), ["example.com. SOA"]);
    let nx = ask("127.0.0.2", dns, "gone.upstream.test.", RecordType::A, true).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(data(&nx), ["CNAME nope.example.com."]);
    assert_eq!(owners_of(&nx.authorities), ["example.com. SOA"]);
}

fn owners_of(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {}", r.name, r.record_type()))
        .collect()
}

#[tokio::test]
async fn recursive_answers_copy_cd_and_authoritative_ones_clear_it() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let options = DnsOptions {
        udp_sockets: 1,
        ..DnsOptions::default()
    };
    let server = serve_with(
        dir.path(),
        &[("example.com", LOCAL_ZONE)],
        resolving(vec![upstream.dns_addr], None),
        options,
    )
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ask_cd = |name: &'static str, cd: bool| {
        let socket = &socket;
        async move {
            let mut m = query(name, RecordType::A);
            m.metadata.recursion_desired = true;
            m.metadata.checking_disabled = cd;
            socket
                .send_to(&m.to_vec().unwrap(), server.dns_addr)
                .await
                .unwrap();
            let mut buf = vec![0u8; 65535];
            let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
                .await
                .expect("an answer")
                .unwrap();
            Message::from_vec(&buf[..n]).unwrap()
        }
    };
    // RFC 4035 §3.2.2: a recursive server copies CD into its response; the first answer
    // comes from the upstream, the next from the resolver's cache, the rest from the
    // response cache, which holds one copy for both settings.
    for cd in [true, true, false, true, false] {
        let m = ask_cd("www.upstream.test.", cd).await;
        assert_eq!(data(&m), ["A 198.51.100.7"]);
        assert_eq!(m.metadata.checking_disabled, cd);
    }
    // RFC 4035 §3.1.6: r53's own, authoritative answers clear it.
    for _ in 0..2 {
        let own = ask_cd("ns.example.com.", true).await;
        assert!(own.metadata.authoritative);
        assert!(!own.metadata.checking_disabled);
    }
}

#[tokio::test]
async fn a_forwarding_rule_beats_a_private_zone_of_the_same_domain() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    // The default upstream is dead: only the rule can reach the real one.
    let dead: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let server = serve(dir.path(), &[], resolving(vec![dead], None)).await;
    let api = server.api_addr.unwrap();
    let dns = server.dns_addr;

    let (status, body) = http(
        api,
        "POST",
        "/2013-04-01/hostedzone",
        Some(json!({
        "Name": "upstream.test", "CallerReference": "shadow",
        "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-a"}})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let zone = bare_id(&body["HostedZone"]["Id"]);
    let (status, _) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/rrset"),
        Some(json!({
        "ChangeBatch": {"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
            "Name": "www.upstream.test.", "Type": "A", "TTL": 60,
            "ResourceRecords": [{"Value": "10.9.9.9"}]}}]}})),
    )
    .await;
    assert_eq!(status, 200);
    let private = ask("127.0.0.2", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(data(&private), ["A 10.9.9.9"]);

    let target = json!({"TargetIps": [{"Ip": "127.0.0.1", "Port": upstream.dns_addr.port()}]});
    let (status, body) = http(api, "PUT", "/v1/resolver/rules/upstream.test", Some(target)).await;
    assert_eq!(status, 200, "{body}");
    let forwarded = ask("127.0.0.2", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(data(&forwarded), ["A 198.51.100.7"]);
    let (_, rules) = http(api, "GET", "/v1/resolver/rules", None).await;
    assert_eq!(rules["Rules"][0]["DomainName"], "upstream.test.");

    let (status, _) = http(api, "DELETE", "/v1/resolver/rules/upstream.test", None).await;
    assert_eq!(status, 204);
    let private_again = ask("127.0.0.2", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(data(&private_again), ["A 10.9.9.9"]);
    // With every upstream dead, SERVFAIL.
    let failed = ask("127.0.0.2", dns, "elsewhere.test.", RecordType::A, true).await;
    assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);
    assert!(failed.metadata.recursion_available);
}

/// The owner names of the answer section, letter case as sent.
fn owners(m: &Message) -> Vec<String> {
    m.answers.iter().map(|r| r.name.to_ascii()).collect()
}

fn ttls(m: &Message) -> Vec<u32> {
    m.answers
        .iter()
        .chain(&m.authorities)
        .map(|r| r.ttl)
        .collect()
}

/// Upserts one A record in the (only) zone of an r53 with an API.
async fn upsert_a(api: SocketAddr, name: &str, ttl: u32, address: &str) {
    let (status, zones) = http(api, "GET", "/2013-04-01/hostedzone", None).await;
    assert_eq!(status, 200, "{zones}");
    let id = zones["HostedZones"][0]["Id"].as_str().unwrap().to_owned();
    let (status, body) = http(
        api,
        "POST",
        &format!("/2013-04-01{id}/rrset"),
        Some(json!({
        "ChangeBatch": {"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": name, "Type": "A", "TTL": ttl,
            "ResourceRecords": [{"Value": address}]}}]}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn resolver_answers_take_the_askers_letter_case() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[], resolving(vec![upstream.dns_addr], None)).await;
    let dns = server.dns_addr;

    // The first asker's case fills the cache; every later asker gets its own back, whether
    // the answer comes from the resolver's cache or from the response cache (the third and
    // later questions), over UDP and TCP.
    for asked in [
        "WWW.Upstream.TEST.",
        "www.upstream.test.",
        "wWw.UPSTREAM.test.",
        "www.upstream.test.",
        "WWW.Upstream.TEST.",
    ] {
        let udp = ask("127.0.0.1", dns, asked, RecordType::A, true).await;
        assert_eq!(udp.metadata.response_code, ResponseCode::NoError);
        assert_eq!(owners(&udp), [asked], "over UDP");
        assert_eq!(udp.queries[0].name().to_ascii(), asked);
        let mut message = query(asked, RecordType::A);
        message.metadata.recursion_desired = true;
        let tcp = query_tcp(dns, &message).await;
        assert_eq!(owners(&tcp), [asked], "over TCP");
    }
    // The apex: the answer's owner is the question; the negative answer's SOA owner too.
    for asked in ["Upstream.Test.", "upstream.test.", "UPSTREAM.TEST."] {
        let soa = ask("127.0.0.1", dns, asked, RecordType::SOA, true).await;
        assert_eq!(owners(&soa), [asked]);
        let nodata = ask("127.0.0.1", dns, asked, RecordType::TXT, true).await;
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authorities[0].name.to_ascii(), asked);
    }
    // Other names keep the case they came with.
    let nx = ask("127.0.0.1", dns, "Nope.Upstream.Test.", RecordType::A, true).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        nx.authorities[0].name.to_ascii().to_lowercase(),
        "upstream.test."
    );
}

#[tokio::test]
async fn cached_answers_need_no_recursion_slot() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let recursion = Some(RecursionOptions {
        resolver: ResolverConfig {
            upstreams: vec![upstream.dns_addr],
            upstream_timeout: Duration::from_secs(1),
            ..ResolverConfig::default()
        },
        allow: None,
    });
    // One socket with room for one question being resolved at a time.
    let options = DnsOptions {
        udp_sockets: 1,
        max_recursions: 1,
        ..DnsOptions::default()
    };
    let server = serve_with(dir.path(), &[], recursion, options).await;
    let (dns, api) = (server.dns_addr, server.api_addr.unwrap());
    let warm = ask("127.0.0.1", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(data(&warm), ["A 198.51.100.7"]);

    // An upstream that never answers holds the only slot.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let target = json!({"TargetIps": [{"Ip": "127.0.0.1", "Port": port}]});
    let (status, body) = http(api, "PUT", "/v1/resolver/rules/slow.test", Some(target)).await;
    assert_eq!(status, 200, "{body}");
    let slow = tokio::spawn(ask("127.0.0.1", dns, "a.slow.test.", RecordType::A, true));
    let mut buf = [0u8; 512];
    tokio::time::timeout(Duration::from_secs(3), silent.recv_from(&mut buf))
        .await
        .expect("the resolver asks the silent upstream")
        .unwrap();

    // A question that needs an upstream finds no slot...
    let busy = ask("127.0.0.1", dns, "x.upstream.test.", RecordType::A, true).await;
    assert_eq!(busy.metadata.response_code, ResponseCode::ServFail);
    // ...but answers in the resolver's cache need none, the first from the resolver's
    // cache, the next from the response cache.
    for _ in 0..3 {
        let hit = ask("127.0.0.1", dns, "www.upstream.test.", RecordType::A, true).await;
        assert_eq!(hit.metadata.response_code, ResponseCode::NoError);
        assert!(hit.metadata.recursion_available);
        assert_eq!(data(&hit), ["A 198.51.100.7"]);
    }
    let failed = slow.await.unwrap();
    assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);
    let (_, stats) = http(api, "GET", "/v1/resolver/stats", None).await;
    assert_eq!(stats["Hits"], 3, "{stats}");
}

#[tokio::test]
async fn repeated_answers_count_down_and_follow_flushes_and_expiry() {
    let up_dir = tempfile::tempdir().unwrap();
    let zone = format!("{UPSTREAM_ZONE}short 1 A 198.51.100.8\n");
    let upstream = serve(up_dir.path(), &[("upstream.test", &zone)], None).await;
    let up_api = upstream.api_addr.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[], resolving(vec![upstream.dns_addr], None)).await;
    let (dns, api) = (server.dns_addr, server.api_addr.unwrap());

    // Asked upstream, then from the resolver's cache, then from the response cache.
    let mut first = Vec::new();
    for _ in 0..3 {
        let m = ask("127.0.0.1", dns, "www.upstream.test.", RecordType::A, true).await;
        assert_eq!(data(&m), ["A 198.51.100.7"]);
        first.push(ttls(&m)[0]);
    }
    assert!(
        first.iter().all(|&t| t == first[0]) && first[0] <= 300,
        "{first:?}"
    );
    let nx = ask("127.0.0.1", dns, "nope.upstream.test.", RecordType::A, true).await;
    let nx_ttl = ttls(&nx)[0];
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        let m = ask("127.0.0.1", dns, "www.upstream.test.", RecordType::A, true).await;
        let t = ttls(&m)[0];
        assert!(t < first[0] && t + 2 >= first[0], "{t} after {first:?}");
        let m = ask("127.0.0.1", dns, "nope.upstream.test.", RecordType::A, true).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        let t = ttls(&m)[0];
        assert!(t < nx_ttl && t + 2 >= nx_ttl, "{t} after {nx_ttl}");
    }
    let (_, stats) = http(api, "GET", "/v1/resolver/stats", None).await;
    assert_eq!(
        (stats["Hits"].as_u64(), stats["Misses"].as_u64()),
        (Some(6), Some(2)),
        "{stats}"
    );

    // A change upstream is seen after a flush...
    upsert_a(up_api, "www.upstream.test.", 300, "198.51.100.9").await;
    let cached = ask("127.0.0.1", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(data(&cached), ["A 198.51.100.7"]);
    let (status, _) = http(api, "POST", "/v1/resolver/flush", Some(json!({}))).await;
    assert_eq!(status, 204);
    let flushed = ask("127.0.0.1", dns, "www.upstream.test.", RecordType::A, true).await;
    assert_eq!(data(&flushed), ["A 198.51.100.9"]);

    // ...or once the cached answer expires.
    for _ in 0..3 {
        let m = ask(
            "127.0.0.1",
            dns,
            "short.upstream.test.",
            RecordType::A,
            true,
        )
        .await;
        assert_eq!(data(&m), ["A 198.51.100.8"]);
        assert_eq!(ttls(&m), [1]);
    }
    upsert_a(up_api, "short.upstream.test.", 1, "198.51.100.10").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = ask(
        "127.0.0.1",
        dns,
        "short.upstream.test.",
        RecordType::A,
        true,
    )
    .await;
    assert_eq!(data(&expired), ["A 198.51.100.10"]);
}

/// Queries pipelined on one TCP connection, in one write: answers from r53's zone, one that
/// waits for the upstream, one the resolver's cache then holds. Each comes back, in turn,
/// framed by its own length: the answers owed before the upstream question go out while it
/// waits, and nothing of them is sent twice or lost.
#[tokio::test]
async fn pipelined_tcp_answers_around_an_upstream_question_keep_their_order() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = serve(up_dir.path(), &[("upstream.test", UPSTREAM_ZONE)], None).await;
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &[("example.com", LOCAL_ZONE)],
        resolving(vec![upstream.dns_addr], None),
    )
    .await;
    let asked = [
        ("ns.example.com.", vec!["A 192.0.2.1"]),
        ("www.upstream.test.", vec!["A 198.51.100.7"]),
        ("ns.example.com.", vec!["A 192.0.2.1"]),
        (
            "out.example.com.",
            vec!["CNAME www.upstream.test.", "A 198.51.100.7"],
        ),
        ("www.upstream.test.", vec!["A 198.51.100.7"]),
    ];
    let mut bytes = Vec::new();
    for (i, (name, _)) in asked.iter().enumerate() {
        let mut message = query(name, RecordType::A);
        message.metadata.id = 100 + i as u16;
        message.metadata.recursion_desired = true;
        let wire = message.to_vec().unwrap();
        bytes.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&wire);
    }
    let mut stream = tokio::net::TcpStream::connect(server.dns_addr)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stream, &bytes)
        .await
        .unwrap();
    for (i, (name, want)) in asked.iter().enumerate() {
        let raw = crate::support::read_tcp(&mut stream)
            .await
            .unwrap_or_else(|| panic!("answer {i} ({name})"));
        let answer = Message::from_vec(&raw).unwrap();
        assert_eq!(answer.metadata.id, 100 + i as u16, "answers come in turn");
        assert_eq!(answer.queries[0].name().to_ascii(), *name);
        assert_eq!(data(&answer), *want, "{name}");
    }
}
