//! Isolation (issue 7, item 5), as a matrix rather than a handful of cases.
//!
//! Private zones: a public example.com and a private twin (plus a private corp.internal with
//! no twin) whose data is marked so a leak shows anywhere in a message: 10.77.0.0/16 and
//! fd77::/16 addresses, TXT "private-secret", its own NS and SOA names (`private-only`). The
//! private data is reachable by every path the answer algorithm has: direct names, a wildcard,
//! a CNAME chain from a public zone into it, an Alias to an endpoint and to a record set, ANY,
//! a delegation with glue and DS, MX and NS additionals, and CNAMEs an upstream resolver hands
//! back that point into it. Every name × type × UDP/TCP × RD on/off is asked of two servers,
//! resolver off and on (its upstream a third r53), from inside the VPC first (so anything the
//! resolver might cache from the inside is cached) and then from outside; the outside must
//! never see a marker, the inside must see the private data (so the matrix can fail).
//!
//! API token: with `api_token` set, every mutating operation the spec documents is sent with
//! no token and with wrong ones; every answer is a 401 in Route 53's error shape, and the
//! state read back with the token (zones, record sets, VPCs, endpoints, rules, DNS answers)
//! is what it was. The same requests with the token then succeed, so the 401s were not hiding
//! requests that would have failed anyway.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use r53::app::{RecursionOptions, Running, ServeOptions};
use r53::resolver::ResolverConfig;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, UdpSocket};

use crate::support::{bare_id, http_as, query};

const INSIDE: &str = "127.0.0.2";
const OUTSIDE: &str = "127.0.0.3";

/// What only the private zones hold; none of it may reach the outside. Compared lower-cased
/// against every record (owner, type, data) of every section.
const MARKERS: &[&str] = &["10.77.", "fd77:", "private-secret", "private-only"];

/// The public twin, with its own SOA and NS so that the private ones stand out.
const PUBLIC_ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n\
    @ SOA ns1.public.test. hostmaster.example.com. 7 3600 600 86400 60\n\
    @ NS ns1.public.test.\n\
    @ MX 10 mx.public.test.\n\
    www A 192.0.2.10\n\
    www TXT \"public\"\n";

/// A public zone whose CNAMEs lead into the private zones.
const LINK_ZONE: &str = "$ORIGIN example.org.\n$TTL 300\n\
    @ SOA ns1.public.test. hostmaster.example.org. 1 3600 600 86400 60\n\
    @ NS ns1.public.test.\n\
    link CNAME chain.example.com.\n\
    corp CNAME db.corp.internal.\n";

/// The resolver's upstream: nothing useful, except CNAMEs into the private names, which the
/// resolving server must not complete from a private zone for an outside client.
const UPSTREAM_ZONE: &str = "$ORIGIN up.test.\n$TTL 300\n\
    @ SOA ns.up.test. hostmaster.up.test. 1 3600 600 86400 60\n\
    @ NS ns.up.test.\n\
    ns A 198.51.100.1\n\
    tolink CNAME db.example.com.\n\
    tocorp CNAME db.corp.internal.\n";

const ENDPOINT: &str = "app.elb.r53.internal.";

/// Every name asked. (The endpoint's own name is not: the endpoint zones are public by design.)
const NAMES: &[&str] = &[
    "example.com.",
    "www.example.com.",
    "db.example.com.",
    "mail.example.com.",
    "chain.example.com.",
    "alias.example.com.",
    "lb.example.com.",
    "apps.example.com.",
    "x.apps.example.com.",
    "sub.example.com.",
    "ns.sub.example.com.",
    "host.sub.example.com.",
    "nothere.example.com.",
    "link.example.org.",
    "corp.example.org.",
    "corp.internal.",
    "db.corp.internal.",
    "tolink.up.test.",
    "tocorp.up.test.",
];

const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::MX,
    RecordType::NS,
    RecordType::SOA,
    RecordType::DS,
    RecordType::CNAME,
    RecordType::SRV,
    RecordType::ANY,
];

/// Questions the inside must get private data for, with the marker that shows it did.
const INSIDE_SEES: &[(&str, RecordType, &str)] = &[
    ("db.example.com.", RecordType::A, "10.77.0.5"),
    ("db.example.com.", RecordType::AAAA, "fd77::5"),
    ("db.example.com.", RecordType::TXT, "private-secret"),
    ("example.com.", RecordType::MX, "10.77.0.25"),
    ("example.com.", RecordType::NS, "private-only"),
    ("example.com.", RecordType::SOA, "private-only"),
    ("nothere.example.com.", RecordType::A, "private-only"),
    ("chain.example.com.", RecordType::A, "10.77.0.5"),
    ("alias.example.com.", RecordType::A, "10.77.0.5"),
    ("lb.example.com.", RecordType::A, "10.77.9.9"),
    ("x.apps.example.com.", RecordType::A, "10.77.0.7"),
    ("x.apps.example.com.", RecordType::TXT, "private-secret"),
    ("host.sub.example.com.", RecordType::A, "10.77.0.53"),
    ("sub.example.com.", RecordType::DS, "sub.example.com."),
    ("link.example.org.", RecordType::A, "10.77.0.5"),
    ("corp.example.org.", RecordType::A, "10.77.1.5"),
    ("db.corp.internal.", RecordType::A, "10.77.1.5"),
];

/// A call that must succeed.
async fn ok(api: SocketAddr, method: &str, path: &str, auth: Option<&str>, body: Value) -> Value {
    let (status, answer) = http_as(api, method, path, auth, Some(&body)).await;
    assert!(
        (200..300).contains(&status),
        "{method} {path}: {status} {answer}"
    );
    answer
}

fn zone_id(created: &Value) -> String {
    bare_id(&created["HostedZone"]["Id"])
}

fn set(name: &str, rtype: &str, values: &[&str]) -> Value {
    json!({"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": 60,
        "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>()}})
}

fn alias(name: &str, zone: &str, target: &str) -> Value {
    json!({"Action": "UPSERT", "ResourceRecordSet": {"Name": name, "Type": "A",
        "AliasTarget": {"HostedZoneId": zone, "DNSName": target, "EvaluateTargetHealth": false}}})
}

async fn start(
    dir: &std::path::Path,
    zones: &[(&str, &str)],
    recursion: Option<RecursionOptions>,
    token: Option<&str>,
) -> Running {
    let zones_dir = dir.join("zones");
    std::fs::create_dir_all(&zones_dir).unwrap();
    for (name, text) in zones {
        std::fs::write(zones_dir.join(format!("{name}.zone")), text).unwrap();
    }
    r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        api_token: token.map(str::to_owned),
        data_dir: dir.join("data"),
        zones_dir: Some(zones_dir),
        // Zones made through the API (the private ones here) get these as NS and SOA MNAME.
        name_servers: vec!["ns1.private-only.test.".parse().unwrap()],
        vpcs: vec![r53::app::parse_vpc_arg("vpc-a=127.0.0.2/32").unwrap()],
        recursion,
        ..ServeOptions::default()
    })
    .await
    .expect("server starts")
}

/// Creates the private twin and corp.internal in vpc-a with their data, and the endpoint.
/// Returns (private example.com id, corp.internal id).
async fn populate(api: SocketAddr, auth: Option<&str>) -> (String, String) {
    let private = |name: &str| {
        json!({"Name": name, "CallerReference": format!("iso-{name}"),
            "HostedZoneConfig": {"PrivateZone": true},
            "VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-a"}})
    };
    let twin = zone_id(
        &ok(
            api,
            "POST",
            "/2013-04-01/hostedzone",
            auth,
            private("example.com"),
        )
        .await,
    );
    let corp = zone_id(
        &ok(
            api,
            "POST",
            "/2013-04-01/hostedzone",
            auth,
            private("corp.internal"),
        )
        .await,
    );
    ok(
        api,
        "PUT",
        &format!("/v1/endpoints/{ENDPOINT}"),
        auth,
        json!({"Kind": "load-balancer", "Addresses": [{"Address": "10.77.9.9"}], "TTL": 60,
            "LeaseSeconds": 3600}),
    )
    .await;
    let changes = json!([
        set(
            "example.com.",
            "SOA",
            &["ns1.private-only.test. private-hostmaster.example.com. 1 7200 900 1209600 86400"]
        ),
        set("example.com.", "MX", &["10 mail.example.com."]),
        set("mail.example.com.", "A", &["10.77.0.25"]),
        set("db.example.com.", "A", &["10.77.0.5"]),
        set("db.example.com.", "AAAA", &["fd77::5"]),
        set("db.example.com.", "TXT", &["\"private-secret\""]),
        set("db.example.com.", "SRV", &["0 0 5432 db.example.com."]),
        set("chain.example.com.", "CNAME", &["db.example.com."]),
        set("*.apps.example.com.", "A", &["10.77.0.7"]),
        set("*.apps.example.com.", "TXT", &["\"private-secret\""]),
        set("sub.example.com.", "NS", &["ns.sub.example.com."]),
        set(
            "sub.example.com.",
            "DS",
            &["47077 13 2 77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA77AA"]
        ),
        set("ns.sub.example.com.", "A", &["10.77.0.53"]),
        alias("alias.example.com.", &twin, "db.example.com."),
        alias("lb.example.com.", "ZR53ELBENDPOINTS", ENDPOINT),
    ]);
    ok(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{twin}/rrset"),
        auth,
        json!({"ChangeBatch": {"Changes": changes}}),
    )
    .await;
    ok(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{corp}/rrset"),
        auth,
        json!({"ChangeBatch": {"Changes": [
            set("db.corp.internal.", "A", &["10.77.1.5"]),
            set("db.corp.internal.", "TXT", &["\"private-secret\""]),
        ]}}),
    )
    .await;
    (twin, corp)
}

/// Asks `server` from `source` over UDP or TCP; `None` when nothing came back (a silence
/// leaks nothing, but the matrix counts them so that a server that answers nothing fails).
async fn ask(
    source: &str,
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    tcp: bool,
    rd: bool,
) -> Option<Message> {
    let mut message = query(name, qtype);
    message.metadata.recursion_desired = rd;
    let bytes = message.to_vec().unwrap();
    let source: IpAddr = source.parse().unwrap();
    let raw = if tcp {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let mut stream = socket.connect(server).await.unwrap();
        crate::support::exchange_tcp(&mut stream, &bytes).await?
    } else {
        let socket = UdpSocket::bind(SocketAddr::new(source, 0)).await.unwrap();
        socket.send_to(&bytes, server).await.unwrap();
        let mut buf = vec![0u8; 65535];
        let n = tokio::time::timeout(Duration::from_secs(3), socket.recv(&mut buf))
            .await
            .ok()?
            .unwrap();
        buf.truncate(n);
        buf
    };
    Some(Message::from_vec(&raw).expect("a well-formed response"))
}

/// Every record of every section as `owner TYPE data`, lower-cased.
fn everything(m: &Message) -> String {
    m.answers
        .iter()
        .chain(&m.authorities)
        .chain(&m.additionals)
        .map(|r| format!("{} {} {}\n", r.name, r.record_type(), r.data).to_lowercase())
        .collect()
}

/// Runs the whole matrix against one server; returns the number of answers checked.
async fn matrix(dns: SocketAddr, resolver: bool) -> usize {
    let mut answered = 0;
    // Inside first: whatever the resolver would cache from an inside client's questions is in
    // the cache by the time the outside asks the same.
    for source in [INSIDE, OUTSIDE] {
        for &name in NAMES {
            for &qtype in TYPES {
                for tcp in [false, true] {
                    for rd in [false, true] {
                        let what = format!(
                            "{name} {qtype} from {source} tcp={tcp} rd={rd} resolver={resolver}"
                        );
                        let Some(m) = ask(source, dns, name, qtype, tcp, rd).await else {
                            panic!("no answer to {what}");
                        };
                        answered += 1;
                        if source == OUTSIDE {
                            let all = everything(&m);
                            for marker in MARKERS {
                                assert!(!all.contains(marker), "{what} leaked {marker:?}:\n{all}");
                            }
                        }
                    }
                }
            }
        }
    }
    // The resolver really is in the path for outside clients when on (the upstream's CNAME
    // comes back), and out of it when off.
    let upstream = ask(
        OUTSIDE,
        dns,
        "tolink.up.test.",
        RecordType::CNAME,
        false,
        true,
    )
    .await
    .expect("an answer");
    assert_eq!(
        everything(&upstream).contains("tolink.up.test. cname db.example.com."),
        resolver,
        "resolver={resolver}: {}",
        everything(&upstream)
    );
    // The same questions do reach the private data from inside, by every path.
    for &(name, qtype, expected) in INSIDE_SEES {
        for tcp in [false, true] {
            for rd in [false, true] {
                let m = ask(INSIDE, dns, name, qtype, tcp, rd)
                    .await
                    .expect("an answer");
                let all = everything(&m);
                assert!(
                    all.contains(expected),
                    "{name} {qtype} from inside tcp={tcp} rd={rd} resolver={resolver}: \
                     expected {expected:?} in\n{all}"
                );
            }
        }
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_of_a_private_zone_reaches_a_client_outside_its_vpcs() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = start(up_dir.path(), &[("up.test", UPSTREAM_ZONE)], None, None).await;
    let zones = [("example.com", PUBLIC_ZONE), ("example.org", LINK_ZONE)];

    for resolver in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let recursion = resolver.then(|| RecursionOptions {
            resolver: ResolverConfig {
                upstreams: vec![upstream.dns_addr],
                upstream_timeout: Duration::from_millis(300),
                ..ResolverConfig::default()
            },
            // Both sources may recurse: the outside being allowed is the harder case.
            allow: None,
        });
        let server = start(dir.path(), &zones, recursion, None).await;
        let api = server.api_addr.unwrap();
        populate(api, None).await;
        let answered = matrix(server.dns_addr, resolver).await;
        assert_eq!(answered, 2 * NAMES.len() * TYPES.len() * 4);
        server.shutdown().await.unwrap();
    }
    upstream.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// The API token.

const TOKEN: &str = "t0k3n";
const GOOD: &str = "Bearer t0k3n";

/// Everything a client can read back through the API, and DNS answers from both sides.
async fn snapshot(api: SocketAddr, dns: SocketAddr, zones: &[String]) -> Value {
    let get = |path: String| async move {
        let (status, body) = http_as(api, "GET", &path, Some(GOOD), None).await;
        json!({"status": status, "body": body})
    };
    let mut state = serde_json::Map::new();
    for path in [
        "/2013-04-01/hostedzone".to_owned(),
        "/2013-04-01/hostedzonesbyvpc?vpcid=vpc-a&vpcregion=us-east-1".to_owned(),
        "/2013-04-01/hostedzonesbyvpc?vpcid=vpc-b&vpcregion=us-east-1".to_owned(),
        "/v1/vpcs".to_owned(),
        "/v1/endpoints".to_owned(),
        "/v1/resolver/rules".to_owned(),
    ] {
        state.insert(path.clone(), get(path).await);
    }
    // Every zone that exists now, and the ones the test made (a deleted one answers 404).
    let (_, listed) = http_as(api, "GET", "/2013-04-01/hostedzone", Some(GOOD), None).await;
    let mut ids: BTreeSet<String> = zones.iter().cloned().collect();
    for z in listed["HostedZones"].as_array().unwrap() {
        ids.insert(bare_id(&z["Id"]));
    }
    for id in ids {
        for path in [
            format!("/2013-04-01/hostedzone/{id}"),
            format!("/2013-04-01/hostedzone/{id}/rrset"),
        ] {
            state.insert(path.clone(), get(path).await);
        }
    }
    for (source, name, qtype) in [
        (INSIDE, "www.example.com.", RecordType::A),
        (INSIDE, "lb.example.com.", RecordType::A),
        (INSIDE, "db.example.com.", RecordType::TXT),
        (OUTSIDE, "www.example.com.", RecordType::A),
        (OUTSIDE, "db.example.com.", RecordType::A),
        (OUTSIDE, "new.example.com.", RecordType::A),
        (OUTSIDE, ENDPOINT, RecordType::A),
    ] {
        let m = ask(source, dns, name, qtype, false, false)
            .await
            .expect("an answer");
        let mut lines: Vec<String> = everything(&m).lines().map(str::to_owned).collect();
        lines.sort();
        state.insert(
            format!("dns {source} {name} {qtype}"),
            json!({"rcode": m.metadata.response_code.to_string(), "records": lines}),
        );
    }
    Value::Object(state)
}

/// The mutating operations in api/openapi.yaml, as (method, path template).
fn documented_mutations() -> BTreeSet<(String, String)> {
    let spec: serde_norway::Value =
        serde_norway::from_str(r53::api::OPENAPI_YAML).expect("the spec is YAML");
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if ["post", "put", "delete", "patch"].contains(&method) {
                out.insert((method.to_uppercase(), path.as_str().unwrap().to_owned()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_no_request_without_it_changes_anything() {
    let up_dir = tempfile::tempdir().unwrap();
    let upstream = start(up_dir.path(), &[("up.test", UPSTREAM_ZONE)], None, None).await;
    let dir = tempfile::tempdir().unwrap();
    // Resolver on, so that the resolver routes reach their handlers when authorized.
    let recursion = Some(RecursionOptions {
        resolver: ResolverConfig {
            upstreams: vec![upstream.dns_addr],
            upstream_timeout: Duration::from_millis(300),
            ..ResolverConfig::default()
        },
        allow: None,
    });
    let server = start(
        dir.path(),
        &[("example.com", PUBLIC_ZONE), ("example.org", LINK_ZONE)],
        recursion,
        Some(TOKEN),
    )
    .await;
    let api = server.api_addr.unwrap();
    let dns = server.dns_addr;
    let (twin, corp) = populate(api, Some(GOOD)).await;
    let (_, listed) = http_as(api, "GET", "/2013-04-01/hostedzone", Some(GOOD), None).await;
    let public = listed["HostedZones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["Name"] == "example.com." && z["Config"]["PrivateZone"] == false)
        .map(|z| bare_id(&z["Id"]))
        .expect("the public example.com");
    // A zone that could be deleted, a VPC to associate, another to replace and delete, a rule.
    let empty = zone_id(
        &ok(
            api,
            "POST",
            "/2013-04-01/hostedzone",
            Some(GOOD),
            json!({"Name": "empty.test", "CallerReference": "iso-empty"}),
        )
        .await,
    );
    ok(
        api,
        "PUT",
        "/v1/vpcs/vpc-b",
        Some(GOOD),
        json!({"Cidrs": ["127.0.0.3/32"]}),
    )
    .await;
    ok(
        api,
        "PUT",
        "/v1/vpcs/vpc-c",
        Some(GOOD),
        json!({"Cidrs": ["10.1.0.0/16"]}),
    )
    .await;
    let rule_target = json!({"TargetIps": [{"Ip": "127.0.0.1", "Port": upstream.dns_addr.port()}]});
    ok(
        api,
        "PUT",
        "/v1/resolver/rules/up.test.",
        Some(GOOD),
        rule_target.clone(),
    )
    .await;

    // Each mutating operation, with a request that succeeds when the token is right: the
    // order is one in which every one of them does (associate before disassociate).
    let vpc_b = json!({"VPC": {"VPCRegion": "us-east-1", "VPCId": "vpc-b"}});
    let upsert =
        json!({"ChangeBatch": {"Changes": [set("new.example.com.", "A", &["192.0.2.99"])]}});
    let requests: Vec<(&str, &str, String, Option<Value>)> = vec![
        (
            "POST",
            "/2013-04-01/hostedzone",
            "/2013-04-01/hostedzone".into(),
            Some(json!({"Name": "intruder.test", "CallerReference": "intruder"})),
        ),
        (
            "POST",
            "/2013-04-01/hostedzone/{Id}/rrset",
            format!("/2013-04-01/hostedzone/{public}/rrset"),
            Some(upsert.clone()),
        ),
        (
            "POST",
            "/2013-04-01/hostedzone/{Id}/rrset/",
            format!("/2013-04-01/hostedzone/{twin}/rrset/"),
            Some(upsert),
        ),
        (
            "POST",
            "/2013-04-01/hostedzone/{Id}/associatevpc",
            format!("/2013-04-01/hostedzone/{twin}/associatevpc"),
            Some(vpc_b.clone()),
        ),
        (
            "POST",
            "/2013-04-01/hostedzone/{Id}/disassociatevpc",
            format!("/2013-04-01/hostedzone/{twin}/disassociatevpc"),
            Some(vpc_b),
        ),
        (
            "POST",
            "/2013-04-01/hostedzone/{Id}",
            format!("/2013-04-01/hostedzone/{corp}"),
            Some(json!({"Comment": "intruder"})),
        ),
        (
            "DELETE",
            "/2013-04-01/hostedzone/{Id}",
            format!("/2013-04-01/hostedzone/{empty}"),
            None,
        ),
        (
            "PUT",
            "/v1/vpcs/{VPCId}",
            "/v1/vpcs/vpc-c".into(),
            Some(json!({"Cidrs": ["127.0.0.3/32"]})),
        ),
        ("DELETE", "/v1/vpcs/{VPCId}", "/v1/vpcs/vpc-c".into(), None),
        (
            "PUT",
            "/v1/endpoints/{DNSName}",
            format!("/v1/endpoints/{ENDPOINT}"),
            Some(
                json!({"Kind": "load-balancer", "Addresses": [{"Address": "192.0.2.66"}],
                "TTL": 5, "LeaseSeconds": 7200}),
            ),
        ),
        (
            "DELETE",
            "/v1/endpoints/{DNSName}",
            format!("/v1/endpoints/{ENDPOINT}"),
            None,
        ),
        (
            "PUT",
            "/v1/resolver/rules/{DomainName}",
            "/v1/resolver/rules/example.net.".into(),
            Some(rule_target),
        ),
        (
            "DELETE",
            "/v1/resolver/rules/{DomainName}",
            "/v1/resolver/rules/up.test.".into(),
            None,
        ),
        (
            "POST",
            "/v1/resolver/flush",
            "/v1/resolver/flush".into(),
            Some(json!({})),
        ),
    ];
    // A mutating route added to the spec and not to this list fails here, so it gets tried.
    let covered: BTreeSet<(String, String)> = requests
        .iter()
        .map(|(m, template, _, _)| (m.to_string(), template.to_string()))
        .collect();
    assert_eq!(
        covered,
        documented_mutations(),
        "add new mutating routes to this test"
    );

    let zones = vec![public.clone(), twin.clone(), corp.clone(), empty.clone()];
    let before = snapshot(api, dns, &zones).await;
    let wrong = [
        None,
        Some("Bearer wrong"),
        Some("Bearer "),
        Some("Bearer t0k3"),
        Some("Bearer t0k3n0"),
        Some("Bearer T0K3N"),
        Some("t0k3n"),
        Some("Basic dDBrM246"),
    ];
    for (method, _, path, body) in &requests {
        for auth in wrong {
            let (status, answer) = http_as(api, method, path, auth, body.as_ref()).await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}: {answer}");
            assert_eq!(answer["Error"]["Code"], "AccessDenied", "{answer}");
            assert_eq!(answer["Error"]["Type"], "Sender", "{answer}");
            assert!(answer["Error"]["Message"].is_string(), "{answer}");
        }
    }
    // Reads are refused too: the token guards the whole API, the spec included.
    for path in ["/2013-04-01/hostedzone", "/openapi.yaml", "/v1/endpoints"] {
        let (status, _) = http_as(api, "GET", path, None, None).await;
        assert_eq!(status, 401, "GET {path}");
    }
    let after = snapshot(api, dns, &zones).await;
    assert_eq!(
        before, after,
        "a request without the token changed something"
    );

    // With the token the same requests go through, and the snapshot sees that they did.
    for (method, _, path, body) in &requests {
        let (status, answer) = http_as(api, method, path, Some(GOOD), body.as_ref()).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path} with the token: {status} {answer}"
        );
    }
    let changed = snapshot(api, dns, &zones).await;
    assert_ne!(before, changed, "the snapshot does not see changes");

    server.shutdown().await.unwrap();
    upstream.shutdown().await.unwrap();
}
