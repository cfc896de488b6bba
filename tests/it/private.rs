//! Private hosted zones and VPCs: clients on 127.0.0.2 (in the VPC) and 127.0.0.3 (outside
//! it) ask the same questions over UDP and TCP; the VPC side sees the private zone, which
//! shadows the public one, and the outside never sees a byte of it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use r53::app::{Running, ServeOptions};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, UdpSocket};

use crate::support::{bare_id, http, query};

const INSIDE: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.3";

/// Public example.com, with its own SOA so that a leak of the private one shows.
const PUBLIC_ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n\
    @ SOA ns1.public.test. public-hostmaster.example.com. 7 3600 600 86400 60\n\
    @ NS ns1.public.test.\n\
    www A 192.0.2.10\n\
    onlypublic A 192.0.2.11\n";

/// Public example.org pointing into the private zone.
const LINK_ZONE: &str = "$ORIGIN example.org.\n$TTL 300\n\
    @ SOA ns1.public.test. hostmaster.example.org. 1 3600 600 86400 60\n\
    @ NS ns1.public.test.\n\
    link CNAME db.example.com.\n\
    corp CNAME db.corp.internal.\n";

struct Setup {
    running: Running,
    api: SocketAddr,
    private_zone: String,
    _dir: tempfile::TempDir,
}

async fn create_private(api: SocketAddr, name: &str, vpc: &str) -> String {
    let (status, body) = http(
        api,
        "POST",
        "/2013-04-01/hostedzone",
        Some(
            json!({"Name": name, "CallerReference": format!("private-{name}-{vpc}"),
            "HostedZoneConfig": {"PrivateZone": true, "Comment": "inside"},
            "VPC": {"VPCRegion": "us-east-1", "VPCId": vpc}}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.get("DelegationSet").is_none(), "{body}");
    assert_eq!(body["VPC"]["VPCId"], vpc);
    assert_eq!(body["HostedZone"]["Config"]["PrivateZone"], true);
    bare_id(&body["HostedZone"]["Id"])
}

async fn upsert(api: SocketAddr, zone: &str, changes: Value) {
    let (status, body) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/rrset"),
        Some(json!({"ChangeBatch": {"Changes": changes}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

fn set(name: &str, rtype: &str, values: &[&str]) -> Value {
    json!({"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 60,
        "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>()}})
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let zones = dir.path().join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("example.com.zone"), PUBLIC_ZONE).unwrap();
    std::fs::write(zones.join("example.org.zone"), LINK_ZONE).unwrap();
    let running = r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.path().join("data"),
        zones_dir: Some(zones),
        vpcs: vec![r53::app::parse_vpc_arg("vpc-a=127.0.0.2/32,fd00::/64").unwrap()],
        ..ServeOptions::default()
    })
    .await
    .expect("server starts");
    let api = running.api_addr.unwrap();
    let private_zone = create_private(api, "example.com", "vpc-a").await;
    upsert(
        api,
        &private_zone,
        json!([
            set("www.example.com.", "A", &["10.0.0.10"]),
            set("db.example.com.", "A", &["10.0.0.5"]),
            set("db.example.com.", "TXT", &["\"secret\""]),
            set("example.com.", "MX", &["10 db.example.com."]),
            set("*.apps.example.com.", "A", &["10.0.0.7"]),
            set("chain.example.com.", "CNAME", &["db.example.com."]),
            set("sub.example.com.", "NS", &["ns.sub.example.com."]),
            set("ns.sub.example.com.", "A", &["10.0.0.53"]),
        ]),
    )
    .await;
    let corp = create_private(api, "corp.internal", "vpc-a").await;
    upsert(
        api,
        &corp,
        json!([set("db.corp.internal.", "A", &["10.0.1.5"])]),
    )
    .await;
    Setup {
        running,
        api,
        private_zone,
        _dir: dir,
    }
}

async fn ask_from(
    source: &str,
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    tcp: bool,
) -> Message {
    let message = query(name, qtype);
    let bytes = message.to_vec().unwrap();
    let source: IpAddr = source.parse().unwrap();
    let raw = if tcp {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        crate::support::exchange_tcp(&mut stream, &bytes)
            .await
            .expect("TCP answer")
    } else {
        let socket = UdpSocket::bind(SocketAddr::new(source, 0)).await.unwrap();
        socket.send_to(&bytes, server).await.unwrap();
        let mut buf = vec![0u8; 65535];
        let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
            .await
            .expect("UDP answer")
            .unwrap();
        buf.truncate(n);
        buf
    };
    Message::from_vec(&raw).unwrap()
}

fn everything(m: &Message) -> String {
    m.answers
        .iter()
        .chain(&m.authorities)
        .chain(&m.additionals)
        .map(|r| format!("{} {} {}\n", r.name, r.record_type(), r.data))
        .collect()
}

/// Nothing of the private zones: none of their addresses, strings or SOA.
fn assert_no_leak(m: &Message, what: &str) {
    let all = everything(m);
    for secret in [
        "10.0.",
        "secret",
        "hostmaster.example.com. 1 ",
        "ns1.r53.test",
    ] {
        assert!(!all.contains(secret), "{what} leaked {secret}:\n{all}");
    }
}

#[tokio::test]
async fn the_vpc_sees_the_private_zone_and_the_outside_the_public_one() {
    let s = setup().await;
    let dns = s.running.dns_addr;
    for tcp in [false, true] {
        let inside = ask_from(INSIDE, dns, "www.example.com.", RecordType::A, tcp).await;
        assert_eq!(inside.answers[0].data.to_string(), "10.0.0.10");
        assert!(inside.metadata.authoritative);
        let outside = ask_from(OUTSIDE, dns, "www.example.com.", RecordType::A, tcp).await;
        assert_eq!(outside.answers[0].data.to_string(), "192.0.2.10");
        // The private zone shadows the public one: a name only the public zone has is
        // NXDOMAIN inside the VPC, with the private zone's SOA.
        let shadowed = ask_from(INSIDE, dns, "onlypublic.example.com.", RecordType::A, tcp).await;
        assert_eq!(shadowed.metadata.response_code, ResponseCode::NXDomain);
        assert!(shadowed.answers.is_empty());
        assert!(everything(&shadowed).contains("hostmaster.example.com. 1 "));
        // A private zone with no public twin: refused outside, answered inside.
        let corp_out = ask_from(OUTSIDE, dns, "db.corp.internal.", RecordType::A, tcp).await;
        assert_eq!(corp_out.metadata.response_code, ResponseCode::Refused);
        let corp_in = ask_from(INSIDE, dns, "db.corp.internal.", RecordType::A, tcp).await;
        assert_eq!(corp_in.answers[0].data.to_string(), "10.0.1.5");
    }
}

#[tokio::test]
async fn no_private_record_reaches_a_client_outside_the_vpc() {
    let s = setup().await;
    let dns = s.running.dns_addr;
    let questions = [
        ("db.example.com.", RecordType::A),
        ("db.example.com.", RecordType::TXT),
        ("db.example.com.", RecordType::ANY),
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::ANY),
        ("example.com.", RecordType::SOA),
        ("example.com.", RecordType::NS),
        ("x.apps.example.com.", RecordType::A),
        ("chain.example.com.", RecordType::A),
        ("chain.example.com.", RecordType::CNAME),
        ("host.sub.example.com.", RecordType::A),
        ("sub.example.com.", RecordType::NS),
        ("link.example.org.", RecordType::A),
        ("corp.example.org.", RecordType::A),
        ("db.corp.internal.", RecordType::A),
        ("corp.internal.", RecordType::SOA),
    ];
    for tcp in [false, true] {
        for (name, qtype) in questions {
            let outside = ask_from(OUTSIDE, dns, name, qtype, tcp).await;
            assert_no_leak(&outside, &format!("{name} {qtype} tcp={tcp}"));
        }
    }
    // The same questions inside do reach the private data (so the matrix tests something).
    let chain = ask_from(INSIDE, dns, "link.example.org.", RecordType::A, false).await;
    assert!(
        everything(&chain).contains("10.0.0.5"),
        "{}",
        everything(&chain)
    );
    let wildcard = ask_from(INSIDE, dns, "x.apps.example.com.", RecordType::A, false).await;
    assert_eq!(wildcard.answers[0].data.to_string(), "10.0.0.7");
    let referral = ask_from(INSIDE, dns, "host.sub.example.com.", RecordType::A, true).await;
    assert!(everything(&referral).contains("10.0.0.53"));
}

#[tokio::test]
async fn vpc_association_follows_route53s_rules() {
    let s = setup().await;
    let api = s.api;
    let zone = &s.private_zone;
    let (status, got) = http(api, "GET", &format!("/2013-04-01/hostedzone/{zone}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        got["VPCs"],
        json!([{"VPCRegion": "us-east-1", "VPCId": "vpc-a"}])
    );
    assert!(got.get("DelegationSet").is_none());

    let vpc = |id: &str| json!({"VPC": {"VPCRegion": "us-east-1", "VPCId": id}});
    let (status, body) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/disassociatevpc"),
        Some(vpc("vpc-a")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["Error"]["Code"], "LastVPCAssociation");
    let (status, body) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/associatevpc"),
        Some(vpc("vpc-nope")),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["Error"]["Code"], "InvalidVPCId");

    // A second VPC covering 127.0.0.3: once associated, the outside client sees the zone.
    let (status, _) = http(
        api,
        "PUT",
        "/v1/vpcs/vpc-b",
        Some(json!({"Cidrs": ["127.0.0.3/32"]})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/associatevpc"),
        Some(vpc("vpc-b")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ChangeInfo"]["Status"], "INSYNC");
    // Again: Route 53's ConflictingDomainExists is a 400 (its model gives it no other status).
    let (status, body) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/associatevpc"),
        Some(vpc("vpc-b")),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "ConflictingDomainExists");
    let now_inside = ask_from(
        OUTSIDE,
        s.running.dns_addr,
        "www.example.com.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(now_inside.answers[0].data.to_string(), "10.0.0.10");
    let (_, by_vpc) = http(
        api,
        "GET",
        "/2013-04-01/hostedzonesbyvpc?vpcid=vpc-b&vpcregion=us-east-1",
        None,
    )
    .await;
    assert_eq!(
        by_vpc["HostedZoneSummaries"][0]["HostedZoneId"],
        zone.as_str()
    );
    assert_eq!(by_vpc["HostedZoneSummaries"][0]["Name"], "example.com.");

    // A VPC in use cannot be deleted; after disassociating it can.
    let (status, body) = http(api, "DELETE", "/v1/vpcs/vpc-b", None).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/disassociatevpc"),
        Some(vpc("vpc-b")),
    )
    .await;
    assert_eq!(status, 200);
    let outside_again = ask_from(
        OUTSIDE,
        s.running.dns_addr,
        "www.example.com.",
        RecordType::A,
        false,
    )
    .await;
    assert_eq!(outside_again.answers[0].data.to_string(), "192.0.2.10");
    let (status, _) = http(api, "DELETE", "/v1/vpcs/vpc-b", None).await;
    assert_eq!(status, 204);
    let (_, vpcs) = http(api, "GET", "/v1/vpcs", None).await;
    assert_eq!(
        vpcs["VPCs"],
        json!([{"VPCId": "vpc-a", "Cidrs": ["127.0.0.2/32", "fd00::/64"]}])
    );
}

#[tokio::test]
async fn bad_private_zone_requests_are_refused() {
    let s = setup().await;
    let cases = [
        (
            json!({"Name": "p.test", "CallerReference": "p1", "HostedZoneConfig": {"PrivateZone": true}}),
            "InvalidInput",
        ),
        (
            json!({"Name": "p.test", "CallerReference": "p2", "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-missing"}}),
            "InvalidVPCId",
        ),
        (
            json!({"Name": "p.test", "CallerReference": "p3", "VPC": {"VPCRegion": "us-east-1", "VPCId": "bad id!"}}),
            "InvalidVPCId",
        ),
    ];
    for (body, code) in cases {
        let (status, answer) =
            http(s.api, "POST", "/2013-04-01/hostedzone", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["Error"]["Code"], code, "{answer}");
    }
    for cidrs in [json!([]), json!(["10.0.0.0/40"]), json!(["nonsense"])] {
        let (status, answer) = http(
            s.api,
            "PUT",
            "/v1/vpcs/vpc-x",
            Some(json!({"Cidrs": cidrs})),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
    }
}

/// A VPC sees one private zone of a name: a second one for the same VPC, created or
/// associated, is ConflictingDomainExists (400) in Route 53's words; in another VPC it is fine.
#[tokio::test]
async fn a_vpc_sees_one_private_zone_of_a_name() {
    let s = setup().await;
    let twin = json!({"Name": "example.com", "CallerReference": "twin",
        "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-a"}});
    let (status, body) = http(s.api, "POST", "/2013-04-01/hostedzone", Some(twin)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "ConflictingDomainExists");
    assert_eq!(
        body["Error"]["Message"],
        format!(
            "The VPC vpc-a in region us-east-1 has already been associated with the hosted zone {} with the same domain name.",
            s.private_zone
        )
    );
    let (status, _) = http(
        s.api,
        "PUT",
        "/v1/vpcs/vpc-b",
        Some(json!({"Cidrs": ["127.0.0.3/32"]})),
    )
    .await;
    assert_eq!(status, 200);
    let other = create_private(s.api, "example.com", "vpc-b").await;
    let (status, body) = http(
        s.api,
        "POST",
        &format!("/2013-04-01/hostedzone/{other}/associatevpc"),
        Some(json!({"VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-a"}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "ConflictingDomainExists");
    assert!(
        body["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains(&s.private_zone),
        "{body}"
    );
}

/// ListHostedZones with hostedzonetype=PrivateHostedZone lists the private zones only; a
/// reusable delegation set's zones (r53 has no such sets) are NoSuchDelegationSet.
#[tokio::test]
async fn hosted_zones_are_listed_by_type() {
    let s = setup().await;
    let names = |body: &Value| -> Vec<(String, bool)> {
        body["HostedZones"]
            .as_array()
            .unwrap()
            .iter()
            .map(|z| {
                (
                    z["Name"].as_str().unwrap().to_owned(),
                    z["Config"]["PrivateZone"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let (_, all) = http(s.api, "GET", "/2013-04-01/hostedzone", None).await;
    assert!(names(&all).iter().any(|(_, private)| !private), "{all}");
    let (status, private) = http(
        s.api,
        "GET",
        "/2013-04-01/hostedzone?hostedzonetype=PrivateHostedZone",
        None,
    )
    .await;
    assert_eq!(status, 200, "{private}");
    let mut listed = names(&private);
    listed.sort();
    assert_eq!(
        listed,
        [
            ("corp.internal.".to_owned(), true),
            ("example.com.".to_owned(), true)
        ]
    );
    let (status, body) = http(
        s.api,
        "GET",
        "/2013-04-01/hostedzone?hostedzonetype=PublicHostedZone",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "InvalidInput");
    let (status, body) = http(
        s.api,
        "GET",
        "/2013-04-01/hostedzone?delegationsetid=NZ8X2CISAMPLE",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "NoSuchDelegationSet");
    // A ListHostedZonesByVPC token r53 did not hand out.
    let (status, body) = http(
        s.api,
        "GET",
        "/2013-04-01/hostedzonesbyvpc?vpcid=vpc-a&vpcregion=us-east-1&nexttoken=not-a-token",
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "InvalidPaginationToken");
}

#[tokio::test]
async fn a_caller_reference_retry_must_be_the_same_request() {
    let s = setup().await;
    let public = json!({"Name": "retry.test", "CallerReference": "retry-1"});
    let (status, _) = http(
        s.api,
        "POST",
        "/2013-04-01/hostedzone",
        Some(public.clone()),
    )
    .await;
    assert_eq!(status, 201);
    // The same reference asking for a private zone is another request, not a retry.
    let private = json!({"Name": "retry.test", "CallerReference": "retry-1",
        "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-a"}});
    let (status, body) = http(s.api, "POST", "/2013-04-01/hostedzone", Some(private)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["Error"]["Code"], "HostedZoneAlreadyExists");
    let (status, _) = http(s.api, "POST", "/2013-04-01/hostedzone", Some(public)).await;
    assert_eq!(status, 201, "a true retry still answers with the zone");
}
