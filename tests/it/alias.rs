//! Alias records and the endpoint registry, end to end: register endpoints over HTTP, point
//! Alias records at them, and query DNS over real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use r53::app::{Running, ServeOptions};
use serde_json::{json, Value};

use crate::support::{bare_id, http, query, query_tcp, query_udp};

struct Server {
    running: Running,
    api: SocketAddr,
    zone: String,
    dir: tempfile::TempDir,
}

async fn start_in(dir: tempfile::TempDir) -> (Running, SocketAddr, tempfile::TempDir) {
    let running = r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.path().join("data"),
        zones_dir: None,
        ..ServeOptions::default()
    })
    .await
    .expect("server starts");
    let api = running.api_addr.unwrap();
    (running, api, dir)
}

impl Server {
    /// A server with hosted zone example.com holding `www` A 192.0.2.10.
    async fn start() -> Self {
        let (running, api, dir) = start_in(tempfile::tempdir().unwrap()).await;
        let (status, body) = http(
            api,
            "POST",
            "/2013-04-01/hostedzone",
            Some(json!({"Name": "example.com", "CallerReference": "alias-tests"})),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let zone = bare_id(&body["HostedZone"]["Id"]);
        let server = Self {
            running,
            api,
            zone,
            dir,
        };
        let (status, body) = server
            .change(json!([{"Action": "CREATE", "ResourceRecordSet": {
                "Name": "www.example.com.", "Type": "A", "TTL": 300,
                "ResourceRecords": [{"Value": "192.0.2.10"}]}}]))
            .await;
        assert_eq!(status, 200, "{body}");
        server
    }

    async fn restart(self) -> Self {
        let Self {
            running, zone, dir, ..
        } = self;
        running.shutdown().await.unwrap();
        let (running, api, dir) = start_in(dir).await;
        Self {
            running,
            api,
            zone,
            dir,
        }
    }

    async fn change(&self, changes: Value) -> (u16, Value) {
        http(
            self.api,
            "POST",
            &format!("/2013-04-01/hostedzone/{}/rrset", self.zone),
            Some(json!({"ChangeBatch": {"Changes": changes}})),
        )
        .await
    }

    async fn register(&self, name: &str, body: Value) -> (u16, Value) {
        http(
            self.api,
            "PUT",
            &format!("/v1/endpoints/{name}"),
            Some(body),
        )
        .await
    }

    async fn ask(&self, name: &str, qtype: RecordType) -> Message {
        query_udp(self.running.dns_addr, &query(name, qtype)).await
    }
}

fn lb(addresses: &[(&str, bool)], lease: Option<u64>) -> Value {
    let mut body = json!({
        "Kind": "load-balancer",
        "Addresses": addresses.iter().map(|(a, h)| json!({"Address": a, "Healthy": h})).collect::<Vec<_>>(),
    });
    if let Some(lease) = lease {
        body["LeaseSeconds"] = json!(lease);
    }
    body
}

fn alias(name: &str, rtype: &str, zone: &str, target: &str) -> Value {
    json!({"Action": "UPSERT", "ResourceRecordSet": {
        "Name": name, "Type": rtype,
        "AliasTarget": {"HostedZoneId": zone, "DNSName": target, "EvaluateTargetHealth": false}}})
}

fn addresses(m: &Message) -> Vec<String> {
    let mut out: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    out.sort();
    out
}

#[tokio::test]
async fn apex_alias_answers_the_load_balancers_healthy_addresses() {
    let s = Server::start().await;
    let (status, body) = s
        .register(
            "web.elb.r53.internal",
            lb(
                &[("127.0.0.4", true), ("127.0.0.5", false), ("::1", true)],
                None,
            ),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Endpoint"]["HostedZoneId"], "ZR53ELBENDPOINTS");
    assert_eq!(body["Endpoint"]["DNSName"], "web.elb.r53.internal.");
    assert_eq!(body["Endpoint"]["TTL"], 60);
    let (status, body) = s
        .change(json!([alias(
            "example.com.",
            "A",
            "ZR53ELBENDPOINTS",
            "web.elb.r53.internal."
        )]))
        .await;
    assert_eq!(status, 200, "{body}");

    let answer = s.ask("example.com.", RecordType::A).await;
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative);
    assert_eq!(addresses(&answer), ["127.0.0.4"]);
    assert_eq!(answer.answers[0].ttl, 60, "the target's TTL");
    assert_eq!(
        answer.answers[0].record_type(),
        RecordType::A,
        "no CNAME in sight"
    );

    // An alias answers only its own type: NODATA with the SOA, unlike a CNAME.
    let aaaa = s.ask("example.com.", RecordType::AAAA).await;
    assert_eq!(aaaa.metadata.response_code, ResponseCode::NoError);
    assert!(aaaa.answers.is_empty());
    assert_eq!(aaaa.authorities[0].record_type(), RecordType::SOA);
    // The endpoint answers by its own name too.
    let own = s.ask("web.elb.r53.internal.", RecordType::A).await;
    assert_eq!(addresses(&own), ["127.0.0.4"]);
    let own6 = query_tcp(
        s.running.dns_addr,
        &query("web.elb.r53.internal.", RecordType::AAAA),
    )
    .await;
    assert_eq!(addresses(&own6), ["::1"]);
    let missing = s.ask("nope.elb.r53.internal.", RecordType::A).await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
}

#[tokio::test]
async fn endpoint_changes_are_visible_to_the_next_query() {
    let s = Server::start().await;
    s.register("web.elb.r53.internal", lb(&[("127.0.0.4", true)], None))
        .await;
    s.change(json!([alias(
        "example.com.",
        "A",
        "ZR53ELBENDPOINTS",
        "web.elb.r53.internal."
    )]))
    .await;
    for i in 0..50u8 {
        let ip = format!("127.0.1.{i}");
        let (status, _) = s
            .register("web.elb.r53.internal", lb(&[(&ip, true)], None))
            .await;
        assert_eq!(status, 200);
        assert_eq!(addresses(&s.ask("example.com.", RecordType::A).await), [ip]);
    }
    // Health: only healthy addresses; none healthy fails open to all.
    s.register(
        "web.elb.r53.internal",
        lb(&[("127.0.0.4", false), ("127.0.0.5", true)], None),
    )
    .await;
    assert_eq!(
        addresses(&s.ask("example.com.", RecordType::A).await),
        ["127.0.0.5"]
    );
    s.register(
        "web.elb.r53.internal",
        lb(&[("127.0.0.4", false), ("127.0.0.5", false)], None),
    )
    .await;
    assert_eq!(
        addresses(&s.ask("example.com.", RecordType::A).await),
        ["127.0.0.4", "127.0.0.5"]
    );
    // Deregistered: the alias has nothing to answer.
    let (status, _) = http(s.api, "DELETE", "/v1/endpoints/web.elb.r53.internal.", None).await;
    assert_eq!(status, 204);
    let gone = s.ask("example.com.", RecordType::A).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NoError);
    assert!(gone.answers.is_empty());
}

#[tokio::test]
async fn an_endpoint_that_is_not_renewed_drops_out() {
    let s = Server::start().await;
    let (status, body) = s
        .register(
            "db.rds.r53.internal",
            json!({
        "Kind": "database", "Addresses": [{"Address": "127.0.0.7", "Healthy": true}],
        "TTL": 5, "LeaseSeconds": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["Endpoint"]["LeaseExpiresAt"].is_string());
    s.change(json!([alias(
        "db.example.com.",
        "A",
        "ZR53RDSENDPOINTS",
        "db.rds.r53.internal."
    )]))
    .await;
    assert_eq!(
        addresses(&s.ask("db.example.com.", RecordType::A).await),
        ["127.0.0.7"]
    );
    // The lease is one second; the answer must go away once it has run out.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if s.ask("db.example.com.", RecordType::A)
            .await
            .answers
            .is_empty()
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired lease still answered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, listed) = http(s.api, "GET", "/v1/endpoints", None).await;
    assert_eq!(listed["Endpoints"], json!([]));
}

#[tokio::test]
async fn alias_to_a_record_set_in_the_zone_takes_its_ttl() {
    let s = Server::start().await;
    let zone = s.zone.clone();
    let (status, body) = s
        .change(json!([alias(
            "w2.example.com.",
            "A",
            &format!("/hostedzone/{zone}"),
            "www.example.com."
        )]))
        .await;
    assert_eq!(status, 200, "{body}");
    let answer = s.ask("w2.example.com.", RecordType::A).await;
    assert_eq!(addresses(&answer), ["192.0.2.10"]);
    assert_eq!(answer.answers[0].ttl, 300);
    assert_eq!(answer.answers[0].name.to_ascii(), "w2.example.com.");
    // Listed as Route 53 lists an alias: no TTL, the target echoed.
    let (_, listed) = http(
        s.api,
        "GET",
        &format!("/2013-04-01/hostedzone/{zone}/rrset?name=w2.example.com.&type=A&maxitems=1"),
        None,
    )
    .await;
    let set = &listed["ResourceRecordSets"][0];
    assert_eq!(set["Name"], "w2.example.com.");
    assert!(set.get("TTL").is_none(), "{set}");
    assert!(set.get("ResourceRecords").is_none(), "{set}");
    assert_eq!(set["AliasTarget"]["DNSName"], "www.example.com.");
    assert_eq!(set["AliasTarget"]["EvaluateTargetHealth"], false);
}

#[tokio::test]
async fn bad_aliases_are_refused_and_nothing_is_stored() {
    let s = Server::start().await;
    s.register("web.elb.r53.internal", lb(&[("127.0.0.4", true)], None))
        .await;
    let zone = s.zone.clone();
    let cases = [
        (
            alias(
                "a.example.com.",
                "A",
                "ZR53ELBENDPOINTS",
                "nope.elb.r53.internal.",
            ),
            "InvalidChangeBatch",
            "but that target was not found",
        ),
        (
            alias("a.example.com.", "A", &zone, "missing.example.com."),
            "InvalidChangeBatch",
            "but that target was not found",
        ),
        (
            alias(
                "a.example.com.",
                "MX",
                "ZR53ELBENDPOINTS",
                "web.elb.r53.internal.",
            ),
            "InvalidChangeBatch",
            "must be of type A or AAAA",
        ),
        (
            alias("a.example.com.", "A", &zone, "a.example.com."),
            "InvalidChangeBatch",
            "RRSet of type A with DNS name a.example.com. is not permitted as it creates a CNAME or alias loop in the zone.",
        ),
        (
            alias("example.com.", "CNAME", &zone, "www.example.com."),
            "InvalidChangeBatch",
            "is not permitted at apex",
        ),
        (
            json!({"Action": "CREATE", "ResourceRecordSet": {"Name": "a.example.com.", "Type": "A", "TTL": 60,
                "AliasTarget": {"HostedZoneId": "ZR53ELBENDPOINTS", "DNSName": "web.elb.r53.internal.", "EvaluateTargetHealth": false}}}),
            "InvalidInput",
            "found more than one",
        ),
    ];
    for (change, code, text) in cases {
        let (status, body) = s.change(json!([change])).await;
        assert_eq!(status, 400, "{change}: {body}");
        assert_eq!(body["Error"]["Code"], code, "{body}");
        assert!(
            body["Error"]["Message"].as_str().unwrap().contains(text),
            "{body}"
        );
    }
    let (_, listed) = http(
        s.api,
        "GET",
        &format!("/2013-04-01/hostedzone/{zone}/rrset"),
        None,
    )
    .await;
    assert_eq!(
        listed["ResourceRecordSets"].as_array().unwrap().len(),
        3,
        "{listed}"
    );

    let bad_endpoints = [
        ("web.example.com", lb(&[("127.0.0.4", true)], None)),
        (
            "bad..name.elb.r53.internal",
            lb(&[("127.0.0.4", true)], None),
        ),
        ("web2.elb.r53.internal", lb(&[("127.0.0.999", true)], None)),
        ("web2.elb.r53.internal", lb(&[], None)),
        (
            "web2.elb.r53.internal",
            json!({"Kind": "cache", "Addresses": [{"Address": "127.0.0.4"}]}),
        ),
        ("web2.rds.r53.internal", lb(&[("127.0.0.4", true)], None)),
    ];
    for (name, body) in bad_endpoints {
        let (status, answer) = s.register(name, body.clone()).await;
        assert_eq!(status, 400, "{name} {body}: {answer}");
        assert_eq!(answer["Error"]["Type"], "Sender");
    }
    let (_, listed) = http(s.api, "GET", "/v1/endpoints", None).await;
    assert_eq!(listed["Endpoints"].as_array().unwrap().len(), 1, "{listed}");
}

/// An Alias loop closed inside one batch (a to b, b to a) is refused in the words the same loop
/// gets when it closes across two batches, for each change on it, and leaves nothing behind;
/// a pair that ends at a real set is taken when its target comes first in the batch, and is
/// "not found" the other way round, as Route 53 judges targets in order.
#[tokio::test]
async fn an_alias_loop_closed_in_one_batch_is_a_loop() {
    let s = Server::start().await;
    let zone = s.zone.clone();
    let looped = |name: &str| {
        format!("RRSet of type A with DNS name {name} is not permitted as it creates a CNAME or alias loop in the zone.")
    };
    let (status, body) = s
        .change(json!([alias(
            "b.example.com.",
            "A",
            &zone,
            "www.example.com."
        )]))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .change(json!([
            alias("a.example.com.", "A", &zone, "b.example.com."),
            alias("b.example.com.", "A", &zone, "a.example.com."),
        ]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "InvalidChangeBatch", "{body}");
    assert_eq!(
        body["Error"]["Messages"],
        json!([looped("a.example.com."), looped("b.example.com.")]),
        "{body}"
    );
    // Both new in one batch: a's target is not there yet at its turn, and both loop.
    let (status, body) = s
        .change(json!([
            alias("c.example.com.", "A", &zone, "d.example.com."),
            alias("d.example.com.", "A", &zone, "c.example.com."),
        ]))
        .await;
    assert_eq!(status, 400, "{body}");
    let messages: Vec<String> = serde_json::from_value(body["Error"]["Messages"].clone()).unwrap();
    assert!(messages.contains(&looped("c.example.com.")), "{body}");
    assert!(messages.contains(&looped("d.example.com.")), "{body}");
    // Nothing of either batch was kept: b still answers www's address, a, c, d are not there.
    let answer = s.ask("a.example.com.", RecordType::A).await;
    assert_eq!(answer.response_code, ResponseCode::NXDomain);
    assert_eq!(
        addresses(&s.ask("b.example.com.", RecordType::A).await),
        ["192.0.2.10"]
    );
    // Target first: taken. Target second: not found.
    let (status, body) = s
        .change(json!([
            alias("f.example.com.", "A", &zone, "www.example.com."),
            alias("e.example.com.", "A", &zone, "f.example.com."),
        ]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        addresses(&s.ask("e.example.com.", RecordType::A).await),
        ["192.0.2.10"]
    );
    let (status, body) = s
        .change(json!([
            alias("g.example.com.", "A", &zone, "h.example.com."),
            alias("h.example.com.", "A", &zone, "www.example.com."),
        ]))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["Error"]["Messages"],
        json!([format!("Tried to create an alias that targets h.example.com., type A in zone {zone}, but that target was not found")]),
        "{body}"
    );
}

#[tokio::test]
async fn endpoints_and_aliases_survive_a_restart() {
    let s = Server::start().await;
    s.register("web.elb.r53.internal", lb(&[("127.0.0.4", true)], None))
        .await;
    s.change(json!([alias(
        "example.com.",
        "A",
        "ZR53ELBENDPOINTS",
        "web.elb.r53.internal."
    )]))
    .await;
    let s = s.restart().await;
    assert_eq!(
        addresses(&s.ask("example.com.", RecordType::A).await),
        ["127.0.0.4"]
    );
    let (status, one) = http(s.api, "GET", "/v1/endpoints/web.elb.r53.internal", None).await;
    assert_eq!(status, 200);
    assert_eq!(one["Endpoint"]["Addresses"][0]["Address"], "127.0.0.4");
}

/// Route 53 answers an Alias to another record set of the zone "as if the query is for the
/// record that is referenced by the alias record": the target's records and TTL under the
/// Alias's own name (a wildcard's under the name asked), for any type but NS and SOA; an
/// Alias of type CNAME is a CNAME, followed like one; nothing to answer is NODATA.
#[tokio::test]
async fn aliases_to_record_sets_answer_as_their_targets() {
    let s = Server::start().await;
    let z = s.zone.clone();
    let rec = |name: &str, rtype: &str, ttl: u32, values: &[&str]| {
        json!({"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": rtype, "TTL": ttl,
            "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>()}})
    };
    let (status, body) = s
        .change(json!([
            rec("mail.example.com.", "MX", 120, &["10 mx.example.com."]),
            rec("mx.example.com.", "A", 130, &["192.0.2.25"]),
            rec("c1.example.com.", "CNAME", 140, &["www.example.com."]),
            rec("t.example.com.", "TXT", 150, &["\"hello\""]),
            rec("out.example.com.", "CNAME", 160, &["foo.example.net."]),
            rec("doomed.example.com.", "A", 170, &["192.0.2.99"]),
        ]))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s
        .change(json!([
            alias("*.wild.example.com.", "A", &z, "www.example.com."),
            alias("mxa.example.com.", "MX", &z, "mail.example.com."),
            alias("c2.example.com.", "CNAME", &z, "c1.example.com."),
            alias("ta.example.com.", "TXT", &z, "t.example.com."),
            alias("example.com.", "A", &z, "WWW.Example.COM"),
            alias("chain.example.com.", "A", &z, "example.com."),
            alias("o2.example.com.", "CNAME", &z, "out.example.com."),
            alias("gone.example.com.", "A", &z, "doomed.example.com."),
        ]))
        .await;
    assert_eq!(status, 200, "{body}");
    // r53 lets the target go (its Alias then answers NODATA).
    let (status, body) = s
        .change(
            json!([{"Action": "DELETE", "ResourceRecordSet": {"Name": "doomed.example.com.",
            "Type": "A", "TTL": 170, "ResourceRecords": [{"Value": "192.0.2.99"}]}}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sections = |m: &Message| {
        let line = |r: &hickory_proto::rr::Record| {
            format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data)
        };
        (
            m.answers.iter().map(line).collect::<Vec<_>>(),
            m.authorities
                .iter()
                .map(|r| format!("{} {}", r.name, r.record_type()))
                .collect::<Vec<_>>(),
            m.additionals.iter().map(line).collect::<Vec<_>>(),
        )
    };
    // Name and type asked; the answer, authority and additional sections expected.
    type Case<'a> = (
        &'a str,
        RecordType,
        &'a [&'a str],
        &'a [&'a str],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        (
            "x.wild.example.com.",
            RecordType::A,
            &["x.wild.example.com. 300 A 192.0.2.10"],
            &[],
            &[],
        ),
        (
            "mxa.example.com.",
            RecordType::MX,
            &["mxa.example.com. 120 MX 10 mx.example.com."],
            &[],
            &["mx.example.com. 130 A 192.0.2.25"],
        ),
        (
            "c2.example.com.",
            RecordType::A,
            &[
                "c2.example.com. 140 CNAME www.example.com.",
                "www.example.com. 300 A 192.0.2.10",
            ],
            &[],
            &[],
        ),
        (
            "c2.example.com.",
            RecordType::CNAME,
            &["c2.example.com. 140 CNAME www.example.com."],
            &[],
            &[],
        ),
        (
            "ta.example.com.",
            RecordType::TXT,
            &["ta.example.com. 150 TXT hello"],
            &[],
            &[],
        ),
        (
            "example.com.",
            RecordType::A,
            &["example.com. 300 A 192.0.2.10"],
            &[],
            &[],
        ),
        (
            "chain.example.com.",
            RecordType::A,
            &["chain.example.com. 300 A 192.0.2.10"],
            &[],
            &[],
        ),
        (
            "o2.example.com.",
            RecordType::A,
            &["o2.example.com. 160 CNAME foo.example.net."],
            &[],
            &[],
        ),
        (
            "gone.example.com.",
            RecordType::A,
            &[],
            &["example.com. SOA"],
            &[],
        ),
        (
            "chain.example.com.",
            RecordType::AAAA,
            &[],
            &["example.com. SOA"],
            &[],
        ),
    ];
    for (name, qtype, answers, authorities, additionals) in cases {
        let m = query_tcp(s.running.dns_addr, &query(name, *qtype)).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {qtype}"
        );
        assert!(m.metadata.authoritative, "{name} {qtype}");
        let (an, ns, ad) = sections(&m);
        assert_eq!(
            (an, ns, ad),
            (
                answers.iter().map(|l| l.to_string()).collect(),
                authorities.iter().map(|l| l.to_string()).collect(),
                additionals.iter().map(|l| l.to_string()).collect(),
            ),
            "{name} {qtype}"
        );
    }
    // The DNSName was given in another case and without the final dot: listed as Route 53
    // lists names.
    let (_, listed) = http(
        s.api,
        "GET",
        &format!("/2013-04-01/hostedzone/{z}/rrset?name=example.com.&type=A&maxitems=1"),
        None,
    )
    .await;
    assert_eq!(
        listed["ResourceRecordSets"][0]["AliasTarget"]["DNSName"],
        "www.example.com."
    );
}
