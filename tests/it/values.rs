//! Record values are listed as they were entered, as Route 53 lists them: a CNAME sent as
//! `WWW.example.org` lists so, without the dot, while DNS answers the parsed data. Sets that
//! were never entered as API text (a zone file's, a new zone's SOA and NS) list in
//! presentation form. Real server, real sockets, real sled; through a clean restart too.

use std::path::Path;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use r53::app::{Running, ServeOptions};
use r53::model::{parse_type, parse_value};
use serde_json::{json, Value};

use crate::support::{bare_id, http, query, query_udp, rrs};

const ZONE_FILE: &str = "\
$ORIGIN file.test.
$TTL 300
@    IN SOA ns1.file.test. hostmaster.file.test. 1 7200 900 1209600 300
     IN NS  ns1.file.test.
ns1  IN A   192.0.2.53
www  IN CNAME Target.Example.org.
v6   IN AAAA 2001:DB8:0::1
";

async fn start(dir: &Path) -> Running {
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).unwrap();
    std::fs::write(zones.join("file.test.zone"), ZONE_FILE).unwrap();
    r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.join("data"),
        zones_dir: Some(zones),
        ..ServeOptions::default()
    })
    .await
    .expect("server starts")
}

fn change(action: &str, name: &str, rtype: &str, values: &[&str]) -> Value {
    json!({
        "Action": action,
        "ResourceRecordSet": {
            "Name": name, "Type": rtype, "TTL": 300,
            "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>(),
        }
    })
}

async fn submit(running: &Running, zone: &str, changes: Vec<Value>) -> (u16, Value) {
    http(
        running.api_addr.unwrap(),
        "POST",
        &format!("/2013-04-01/hostedzone/{zone}/rrset"),
        Some(json!({"ChangeBatch": {"Changes": changes}})),
    )
    .await
}

async fn create_zone(running: &Running, name: &str) -> String {
    let (status, body) = http(
        running.api_addr.unwrap(),
        "POST",
        "/2013-04-01/hostedzone",
        Some(json!({"Name": name, "CallerReference": name})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    bare_id(&body["HostedZone"]["Id"])
}

async fn zone_id(running: &Running, name: &str) -> String {
    let (status, body) = http(
        running.api_addr.unwrap(),
        "GET",
        &format!("/2013-04-01/hostedzonesbyname?dnsname={name}&maxitems=1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    bare_id(&body["HostedZones"][0]["Id"])
}

/// The values ListResourceRecordSets shows for the set `name`/`rtype`.
async fn listed(running: &Running, zone: &str, name: &str, rtype: &str) -> Vec<String> {
    let (status, body) = http(
        running.api_addr.unwrap(),
        "GET",
        &format!("/2013-04-01/hostedzone/{zone}/rrset?name={name}&type={rtype}&maxitems=1"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let set = &body["ResourceRecordSets"][0];
    assert_eq!(set["Name"], name, "{body}");
    assert_eq!(set["Type"], rtype, "{body}");
    set["ResourceRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Value"].as_str().unwrap().to_owned())
        .collect()
}

async fn answer(running: &Running, name: &str, rtype: RecordType) -> Vec<String> {
    let response = query_udp(running.dns_addr, &query(name, rtype)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    rrs(&response.answers)
}

/// Each value is one r53 used to list otherwise (in presentation form), so that listing it as
/// entered is this test's doing.
const ENTERED: &[(&str, &str, &str)] = &[
    ("www.values.test.", "CNAME", "WWW.example.org"),
    ("values.test.", "MX", "10 Mail.example.org"),
    ("v6.values.test.", "AAAA", "2001:DB8:0::1"),
    ("txt.values.test.", "TXT", "\"hello\"   \"world\""),
    ("_sip._tcp.values.test.", "SRV", "10 5 5060 Sip.Example.org"),
    ("values.test.", "CAA", "0  issue \"letsencrypt.org\""),
];

/// What DNS answers for [`ENTERED`]: the records as parsed, the names in the RDATA of CNAME, MX
/// and SRV lower-cased, as Knot stores and sends them (`catalog::order`).
const ANSWERS: &[(&str, RecordType, &str)] = &[
    (
        "www.values.test.",
        RecordType::CNAME,
        "www.values.test. 300 CNAME www.example.org.",
    ),
    (
        "values.test.",
        RecordType::MX,
        "values.test. 300 MX 10 mail.example.org.",
    ),
    (
        "v6.values.test.",
        RecordType::AAAA,
        "v6.values.test. 300 AAAA 2001:db8::1",
    ),
    (
        "txt.values.test.",
        RecordType::TXT,
        "txt.values.test. 300 TXT helloworld",
    ),
    (
        "_sip._tcp.values.test.",
        RecordType::SRV,
        "_sip._tcp.values.test. 300 SRV 10 5 5060 sip.example.org.",
    ),
];

async fn check_listed_as_entered(running: &Running, zone: &str) {
    for (name, rtype, value) in ENTERED {
        assert_eq!(
            listed(running, zone, name, rtype).await,
            [*value],
            "{name} {rtype}"
        );
    }
    for (name, rtype, expected) in ANSWERS {
        assert_eq!(answer(running, name, *rtype).await, [*expected], "{name}");
    }
}

#[tokio::test]
async fn values_are_listed_as_entered_and_answered_as_parsed() {
    for (_, rtype, value) in ENTERED {
        let parsed = parse_value(parse_type(rtype).unwrap(), value).unwrap();
        assert_ne!(
            r53::zonefile::rdata_text(&parsed),
            *value,
            "{rtype} {value} must differ from its presentation form"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let zone = create_zone(&running, "values.test").await;
    let changes = ENTERED
        .iter()
        .map(|(name, rtype, value)| change("CREATE", name, rtype, &[value]))
        .collect();
    let (status, body) = submit(&running, &zone, changes).await;
    assert_eq!(status, 200, "{body}");
    check_listed_as_entered(&running, &zone).await;

    // Never entered as API text: the new zone's SOA and NS, and a zone file's records, list
    // in presentation form.
    let soa = listed(&running, &zone, "values.test.", "SOA").await;
    assert!(
        soa[0].ends_with(" hostmaster.values.test. 1 7200 900 1209600 86400"),
        "{soa:?}"
    );
    let file_zone = zone_id(&running, "file.test.").await;
    assert_eq!(
        listed(&running, &file_zone, "www.file.test.", "CNAME").await,
        ["Target.Example.org."]
    );
    assert_eq!(
        listed(&running, &file_zone, "v6.file.test.", "AAAA").await,
        ["2001:db8::1"]
    );

    // The texts are kept through a clean stop (the start-up snapshot) and a start from it.
    running.shutdown().await.unwrap();
    assert!(dir.path().join("data/r53-snapshot").exists());
    let running = start(dir.path()).await;
    check_listed_as_entered(&running, &zone).await;
    assert_eq!(
        listed(&running, &file_zone, "v6.file.test.", "AAAA").await,
        ["2001:db8::1"]
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_upsert_that_only_changes_the_text_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let running = start(dir.path()).await;
    let zone = create_zone(&running, "upsert.test").await;
    let www = "www.upsert.test.";
    let cname = |action, value| change(action, www, "CNAME", &[value]);
    let (status, body) = submit(&running, &zone, vec![cname("CREATE", "foo.example.org")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listed(&running, &zone, www, "CNAME").await,
        ["foo.example.org"]
    );
    let dns = answer(&running, www, RecordType::CNAME).await;
    assert_eq!(dns, ["www.upsert.test. 300 CNAME foo.example.org."]);

    // The same DNS data with a trailing dot: acknowledged like any UPSERT, and listed so.
    let (status, body) = submit(&running, &zone, vec![cname("UPSERT", "foo.example.org.")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ChangeInfo"]["Status"], "INSYNC", "{body}");
    assert_eq!(
        listed(&running, &zone, www, "CNAME").await,
        ["foo.example.org."]
    );
    assert_eq!(answer(&running, www, RecordType::CNAME).await, dns);

    // Letter case too.
    let (status, body) = submit(&running, &zone, vec![cname("UPSERT", "FOO.example.org.")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        listed(&running, &zone, www, "CNAME").await,
        ["FOO.example.org."]
    );

    // DELETE matches values as DNS data, as it did: another spelling of the same name will do.
    let (status, body) = submit(&running, &zone, vec![cname("DELETE", "foo.example.org")]).await;
    assert_eq!(status, 200, "{body}");
    let gone = query_udp(running.dns_addr, &query(www, RecordType::CNAME)).await;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);

    // Two spellings of one value in a set are one value twice: Route 53 refuses it.
    let (status, body) = submit(
        &running,
        &zone,
        vec![change(
            "CREATE",
            "upsert.test.",
            "MX",
            &["10 a.example.", "10 A.example"],
        )],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["Error"]["Code"], "InvalidChangeBatch", "{body}");
    assert_eq!(
        body["Error"]["Messages"],
        json!(["Duplicate Resource Record: '10 A.example'"]),
        "{body}"
    );
    running.shutdown().await.unwrap();
}
