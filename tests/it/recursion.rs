//! The embedded resolver in the DNS path: a second r53 on loopback is the upstream; the
//! server under test answers its own zones, resolves the rest for clients allowed to recurse,
//! completes CNAMEs that leave its zones, applies forwarding rules (which beat a private zone
//! of the same domain) and refuses everyone else.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use r53::app::{RecursionOptions, Running, ServeOptions};
use r53::resolver::ResolverConfig;
use serde_json::json;
use tokio::net::UdpSocket;

use crate::support::{http, query};

const UPSTREAM_ZONE: &str = "$ORIGIN upstream.test.\n$TTL 300\n\
    @ SOA ns.upstream.test. hostmaster.upstream.test. 1 3600 600 86400 60\n\
    @ NS ns.upstream.test.\n\
    ns A 198.51.100.1\n\
    www A 198.51.100.7\n";

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
    let zone = body["HostedZone"]["Id"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
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
