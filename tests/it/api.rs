//! The REST API: every route and validation rule through the router (`oneshot`), and end to
//! end over real sockets (a change is answered by DNS right after its acknowledgement, and
//! after a restart).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use http_body_util::BodyExt;
use r53::api::{router, ApiState};
use r53::app::{Running, ServeOptions};
use r53::service::Service;
use r53::store::SledStore;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::support::{bare_id, http, query, query_tcp, query_udp};

struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

impl Api {
    fn new() -> Self {
        Self::with_token(None)
    }

    fn with_token(token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let service = Arc::new(Service::open(Arc::new(store)).unwrap());
        let router = router(ApiState {
            service,
            name_servers: Arc::new(vec![
                Name::from_ascii("ns1.r53.test.").unwrap(),
                Name::from_ascii("ns2.r53.test.").unwrap(),
            ]),
            token: token.map(Arc::from),
            body_limit: 64 * 1024,
            resolver: None,
        });
        Self { router, _dir: dir }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call_raw(method, path, body.map(|b| b.to_string()), None)
            .await
    }

    async fn call_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let request = request
            .header("content-type", "application/json")
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Creates `name` and returns its bare id.
    async fn create_zone(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/2013-04-01/hostedzone",
                Some(json!({"Name": name, "CallerReference": format!("ref-{name}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        bare_id(&body["HostedZone"]["Id"])
    }

    async fn change(&self, zone: &str, changes: Value) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/2013-04-01/hostedzone/{zone}/rrset"),
            Some(json!({"ChangeBatch": {"Changes": changes}})),
        )
        .await
    }

    async fn list(&self, zone: &str, query: &str) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/2013-04-01/hostedzone/{zone}/rrset{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

fn rrset(action: &str, name: &str, rtype: &str, ttl: i64, values: &[&str]) -> Value {
    json!({
        "Action": action,
        "ResourceRecordSet": {
            "Name": name, "Type": rtype, "TTL": ttl,
            "ResourceRecords": values.iter().map(|v| json!({"Value": v})).collect::<Vec<_>>(),
        }
    })
}

fn error_code(body: &Value) -> &str {
    assert_eq!(body["Error"]["Type"], "Sender", "{body}");
    body["Error"]["Code"].as_str().unwrap_or_default()
}

fn error_message(body: &Value) -> String {
    body["Error"]["Message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn create_hosted_zone_makes_route53_soa_and_ns() {
    let api = Api::new();
    let (status, body) = api
        .call(
            Method::POST,
            "/2013-04-01/hostedzone",
            Some(json!({"Name": "Example.COM", "CallerReference": "r1",
                        "HostedZoneConfig": {"Comment": "team zone", "PrivateZone": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let zone = &body["HostedZone"];
    assert!(zone["Id"].as_str().unwrap().starts_with("/hostedzone/Z"));
    assert_eq!(zone["Name"], "example.com.");
    assert_eq!(zone["CallerReference"], "r1");
    assert_eq!(zone["Config"]["Comment"], "team zone");
    assert_eq!(zone["Config"]["PrivateZone"], false);
    assert_eq!(zone["ResourceRecordSetCount"], 2);
    assert_eq!(body["ChangeInfo"]["Status"], "INSYNC");
    assert_eq!(
        body["DelegationSet"]["NameServers"],
        json!(["ns1.r53.test.", "ns2.r53.test."])
    );
    let id = bare_id(&zone["Id"]);
    let sets = api.list(&id, "").await;
    assert_eq!(
        sets["ResourceRecordSets"],
        json!([
            {"Name": "example.com.", "Type": "NS", "TTL": 172800,
             "ResourceRecords": [{"Value": "ns1.r53.test."}, {"Value": "ns2.r53.test."}]},
            {"Name": "example.com.", "Type": "SOA", "TTL": 900,
             "ResourceRecords": [{"Value": "ns1.r53.test. hostmaster.example.com. 1 7200 900 1209600 86400"}]},
        ])
    );
}

/// Route 53 makes no public zone for a top-level domain.
#[tokio::test]
async fn a_public_zone_for_a_tld_is_refused() {
    let api = Api::new();
    let (status, body) = api
        .call(
            Method::POST,
            "/2013-04-01/hostedzone",
            Some(json!({"Name": "test2", "CallerReference": "tld"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "InvalidDomainName");
    assert_eq!(error_message(&body), "test2 is reserved by AWS!");
}

#[tokio::test]
async fn caller_reference_reuse_for_another_zone_is_refused() {
    let api = Api::new();
    let make = |name: &str| json!({"Name": name, "CallerReference": "same"});
    let (s1, b1) = api
        .call(Method::POST, "/2013-04-01/hostedzone", Some(make("a.test")))
        .await;
    assert_eq!(s1, StatusCode::CREATED);
    // The same request again is answered with the same zone (a retry).
    let (s2, b2) = api
        .call(Method::POST, "/2013-04-01/hostedzone", Some(make("a.test")))
        .await;
    assert_eq!(s2, StatusCode::CREATED);
    assert_eq!(b1["HostedZone"]["Id"], b2["HostedZone"]["Id"]);
    let (s3, b3) = api
        .call(Method::POST, "/2013-04-01/hostedzone", Some(make("b.test")))
        .await;
    assert_eq!(s3, StatusCode::CONFLICT);
    assert_eq!(error_code(&b3), "HostedZoneAlreadyExists");
}

#[tokio::test]
async fn get_list_and_delete_hosted_zones() {
    let api = Api::new();
    let mut ids = Vec::new();
    for name in ["a.test", "b.test", "c.test"] {
        ids.push(api.create_zone(name).await);
    }
    ids.sort();
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/2013-04-01/hostedzone/{}", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["HostedZone"]["Id"], format!("/hostedzone/{}", ids[0]));
    assert_eq!(body["DelegationSet"]["NameServers"][0], "ns1.r53.test.");

    let (_, page) = api
        .call(Method::GET, "/2013-04-01/hostedzone?maxitems=2", None)
        .await;
    assert_eq!(page["HostedZones"].as_array().unwrap().len(), 2);
    assert_eq!(page["IsTruncated"], true);
    assert_eq!(page["MaxItems"], "2");
    assert_eq!(page["NextMarker"], ids[2]);
    let (_, rest) = api
        .call(
            Method::GET,
            &format!("/2013-04-01/hostedzone?maxitems=2&marker={}", ids[2]),
            None,
        )
        .await;
    assert_eq!(rest["HostedZones"].as_array().unwrap().len(), 1);
    assert_eq!(rest["IsTruncated"], false);

    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/2013-04-01/hostedzone/{}", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["ChangeInfo"]["Status"], "INSYNC");
    let change = body["ChangeInfo"]["Id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(Method::GET, &format!("/2013-04-01{change}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/2013-04-01/hostedzone/{}", ids[1]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NoSuchHostedZone");
    assert_eq!(
        error_message(&body),
        format!("No hosted zone found with ID: {}", ids[1])
    );
}

/// UpdateHostedZoneComment sets and removes the comment, as GetHostedZone then shows;
/// GetHostedZoneCount counts every zone.
#[tokio::test]
async fn zone_comments_are_updated_and_zones_counted() {
    let api = Api::new();
    let (_, body) = api
        .call(Method::GET, "/2013-04-01/hostedzonecount", None)
        .await;
    assert_eq!(body, json!({"HostedZoneCount": 0}));
    let id = api.create_zone("example.com").await;
    api.create_zone("example.net").await;
    let (status, body) = api
        .call(Method::GET, "/2013-04-01/hostedzonecount", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"HostedZoneCount": 2}));

    let path = format!("/2013-04-01/hostedzone/{id}");
    let (status, body) = api
        .call(Method::POST, &path, Some(json!({"Comment": "team zone"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["HostedZone"]["Id"], format!("/hostedzone/{id}"));
    assert_eq!(body["HostedZone"]["Config"]["Comment"], "team zone");
    assert_eq!(body["HostedZone"]["ResourceRecordSetCount"], 2);
    let (_, body) = api.call(Method::GET, &path, None).await;
    assert_eq!(body["HostedZone"]["Config"]["Comment"], "team zone");
    let (status, body) = api.call(Method::POST, &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["HostedZone"]["Config"].get("Comment").is_none(),
        "{body}"
    );
    // Route 53 keeps comments to 256 characters, here as at creation and in a change batch.
    let long = "x".repeat(257);
    let (status, body) = api
        .call(Method::POST, &path, Some(json!({ "Comment": long })))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidInput");
    let (status, body) = api
        .call(
            Method::POST,
            "/2013-04-01/hostedzone",
            Some(json!({"Name": "long.test", "CallerReference": "long",
                "HostedZoneConfig": {"Comment": long}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("hostedZoneConfig.comment"),
        "{body}"
    );
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/2013-04-01/hostedzone/{id}/rrset"),
            Some(json!({"ChangeBatch": {"Comment": long, "Changes": [
                rrset("CREATE", "c.example.com.", "A", 300, &["192.0.2.1"])]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("changeBatch.comment"),
        "{body}"
    );
    let ok = "x".repeat(256);
    let (status, body) = api
        .call(Method::POST, &path, Some(json!({ "Comment": ok })))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api
        .call(
            Method::POST,
            "/2013-04-01/hostedzone/ZNOSUCHZONE",
            Some(json!({"Comment": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NoSuchHostedZone");
}

/// ListHostedZonesByName: names with their labels reversed as ASCII, then ids; pages go on
/// from NextDNSName and NextHostedZoneId.
#[tokio::test]
async fn hosted_zones_by_name_page_in_route53_order() {
    let api = Api::new();
    let mut ids = std::collections::HashMap::new();
    for name in [
        "www.example.com",
        "example.com",
        "a-b.example.com",
        "example.net",
    ] {
        ids.insert(name, api.create_zone(name).await);
    }
    let (status, body) = api
        .call(
            Method::POST,
            "/2013-04-01/hostedzone",
            Some(json!({"Name": "example.net", "CallerReference": "twin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let twin = bare_id(&body["HostedZone"]["Id"]);
    let mut net = [ids["example.net"].clone(), twin];
    net.sort();
    let mut seen = Vec::new();
    let mut query = "?maxitems=2".to_owned();
    loop {
        let (status, page) = api
            .call(
                Method::GET,
                &format!("/2013-04-01/hostedzonesbyname{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["MaxItems"], "2");
        for zone in page["HostedZones"].as_array().unwrap() {
            seen.push((
                zone["Name"].as_str().unwrap().to_owned(),
                zone["Id"].as_str().unwrap().to_owned(),
            ));
        }
        if page["IsTruncated"] != true {
            assert!(page.get("NextDNSName").is_none(), "{page}");
            break;
        }
        query = format!(
            "?maxitems=2&dnsname={}&hostedzoneid={}",
            page["NextDNSName"].as_str().unwrap(),
            page["NextHostedZoneId"].as_str().unwrap()
        );
    }
    let zone = |name: &str, id: &str| (name.to_owned(), format!("/hostedzone/{id}"));
    assert_eq!(
        seen,
        [
            zone("example.com.", &ids["example.com"]),
            zone("a-b.example.com.", &ids["a-b.example.com"]),
            zone("www.example.com.", &ids["www.example.com"]),
            zone("example.net.", &net[0]),
            zone("example.net.", &net[1]),
        ]
    );
    // A name alone starts at the first zone at or after it, and is echoed.
    let (_, page) = api
        .call(
            Method::GET,
            "/2013-04-01/hostedzonesbyname?dnsname=EXAMPLE.net",
            None,
        )
        .await;
    assert_eq!(page["DNSName"], "EXAMPLE.net");
    assert_eq!(page["HostedZones"].as_array().unwrap().len(), 2);
    assert_eq!(page["IsTruncated"], false);
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/2013-04-01/hostedzonesbyname?hostedzoneid={}", net[0]),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidInput");
    let (status, body) = api
        .call(
            Method::GET,
            "/2013-04-01/hostedzonesbyname?dnsname=a..b",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidDomainName");
}

#[tokio::test]
async fn zone_with_records_cannot_be_deleted() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let (status, _) = api
        .change(
            &id,
            json!([rrset("CREATE", "www.example.com", "A", 300, &["192.0.2.1"])]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/2013-04-01/hostedzone/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "HostedZoneNotEmpty");
}

#[tokio::test]
async fn change_batch_returns_insync_change_that_get_change_finds() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/2013-04-01/hostedzone/{id}/rrset/"),
            Some(json!({"ChangeBatch": {"Comment": "first", "Changes": [
                rrset("CREATE", "www.example.com.", "A", 300, &["192.0.2.1", "192.0.2.2"])]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let info = &body["ChangeInfo"];
    assert_eq!(info["Status"], "INSYNC");
    assert_eq!(info["Comment"], "first");
    let change_id = info["Id"].as_str().unwrap();
    assert!(change_id.starts_with("/change/C"));
    let (status, got) = api
        .call(Method::GET, &format!("/2013-04-01{change_id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["ChangeInfo"]["Id"], change_id);
    assert_eq!(got["ChangeInfo"]["SubmittedAt"], info["SubmittedAt"]);
    let (status, missing) = api
        .call(Method::GET, "/2013-04-01/change/CNOSUCHCHANGE", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&missing), "NoSuchChange");
}

#[tokio::test]
async fn invalid_change_batch_messages_match_route53() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let (status, _) = api
        .change(
            &id,
            json!([
                rrset("CREATE", "a.example.com.", "A", 300, &["192.0.2.1"]),
                rrset("CREATE", "c.example.com.", "CNAME", 300, &["example.net."]),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let cases = [
        (
            rrset("CREATE", "c.example.com.", "A", 300, &["192.0.2.1"]),
            "RRSet of type A with DNS name c.example.com. is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists in zone example.com.",
        ),
        (
            rrset("CREATE", "a.example.com.", "A", 300, &["192.0.2.9"]),
            "Tried to create resource record set [name='a.example.com.', type='A'] but it already exists",
        ),
        (
            rrset("DELETE", "b.example.com.", "A", 300, &["192.0.2.1"]),
            "Tried to delete resource record set [name='b.example.com.', type='A'] but it was not found",
        ),
        (
            rrset("DELETE", "a.example.com.", "A", 300, &["192.0.2.2"]),
            "Tried to delete resource record set [name='a.example.com.', type='A'] but the values provided do not match the current values",
        ),
        (
            rrset("CREATE", "a.example.com.", "CNAME", 300, &["example.net."]),
            "RRSet of type CNAME with DNS name a.example.com. is not permitted as it conflicts with other records with the same DNS name in zone example.com.",
        ),
        (
            rrset("CREATE", "example.com.", "CNAME", 300, &["example.net."]),
            "RRSet of type CNAME with DNS name example.com. is not permitted at apex in zone example.com.",
        ),
        (
            rrset("CREATE", "www.example.org.", "A", 300, &["192.0.2.1"]),
            "RRSet with DNS name www.example.org. is not permitted in zone example.com.",
        ),
    ];
    for (change, message) in cases {
        let (status, body) = api.change(&id, json!([change])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "InvalidChangeBatch");
        assert_eq!(body["Error"]["Messages"], json!([message]));
        assert_eq!(error_message(&body), format!("[{message}]"));
    }
    let twice = rrset("UPSERT", "c.example.com.", "A", 300, &["192.0.2.1"]);
    let (status, body) = api.change(&id, json!([twice.clone(), twice])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidChangeBatch");
    assert!(
        error_message(&body).contains("invalid set of changes"),
        "{body}"
    );
}

/// Route 53 refuses a value it cannot read as InvalidChangeBatch (`[Invalid Resource Record:
/// 'FATAL problem: ...']`), not InvalidInput.
#[tokio::test]
async fn malformed_values_are_invalid_change_batches() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let cases = [
        ("A", "192.0.2.300"),
        ("A", "2001:db8::1"),
        ("AAAA", "2001:db8::zz"),
        ("MX", "mail.example.com."),
        ("SRV", "10 5 sip.example.com."),
        ("SRV", "10 5 99999 sip.example.com."),
        ("TXT", "not quoted"),
        ("CAA", "0 issue letsencrypt.org"),
        ("CAA", "256 issue \"letsencrypt.org\""),
        ("A", "192.0.2.1, 192.0.2.2"),
        ("CNAME", "a..example.com"),
    ];
    for (rtype, value) in cases {
        let (status, body) = api
            .change(
                &id,
                json!([rrset("CREATE", "v.example.com.", rtype, 300, &[value])]),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{rtype} {value}: {body}");
        assert_eq!(
            error_code(&body),
            "InvalidChangeBatch",
            "{rtype} {value}: {body}"
        );
        assert!(error_message(&body).contains(value), "{body}");
    }
    let (_, body) = api
        .change(
            &id,
            json!([rrset(
                "CREATE",
                "v.example.com.",
                "A",
                300,
                &["192.0.2.300"]
            )]),
        )
        .await;
    assert_eq!(
        body["Error"]["Messages"],
        json!(["Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '192.0.2.300''"])
    );
}

#[tokio::test]
async fn ttl_names_and_wildcards_are_checked() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let long_label = format!("{}.example.com.", "a".repeat(64));
    let long_name = format!("{}example.com.", "abcdefghij.".repeat(23));
    // The request's shape is InvalidInput; a name Route 53 cannot read is InvalidChangeBatch.
    let cases = [
        (
            rrset("CREATE", "t.example.com.", "A", -1, &["192.0.2.1"]),
            "InvalidInput",
        ),
        (
            rrset("CREATE", "t.example.com.", "A", 2147483648, &["192.0.2.1"]),
            "InvalidInput",
        ),
        (
            rrset("CREATE", "t.example.com.", "BOGUS", 300, &["192.0.2.1"]),
            "InvalidInput",
        ),
        (
            rrset("CREATE", &long_label, "A", 300, &["192.0.2.1"]),
            "InvalidChangeBatch",
        ),
        (
            rrset("CREATE", &long_name, "A", 300, &["192.0.2.1"]),
            "InvalidChangeBatch",
        ),
        (
            rrset("CREATE", "a.*.example.com.", "A", 300, &["192.0.2.1"]),
            "InvalidChangeBatch",
        ),
        (
            rrset("CREATE", "x*.example.com.", "A", 300, &["192.0.2.1"]),
            "InvalidChangeBatch",
        ),
    ];
    for (change, code) in cases {
        let (status, body) = api.change(&id, json!([change])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{change}: {body}");
        assert_eq!(error_code(&body), code, "{change}: {body}");
    }
    // The edges of the TTL range and a wildcard are fine; Route 53 lists `*` as `\052`.
    let (status, body) = api
        .change(
            &id,
            json!([
                rrset("CREATE", "*.example.com.", "A", 0, &["192.0.2.1"]),
                rrset(
                    "CREATE",
                    "max.example.com.",
                    "A",
                    2147483647,
                    &["192.0.2.1"]
                ),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sets = api
        .list(&id, "?name=%5C052.example.com.&type=A&maxitems=1")
        .await;
    assert_eq!(sets["ResourceRecordSets"][0]["Name"], "\\052.example.com.");
}

/// The apex SOA and NS cannot be deleted, but a DELETE and a CREATE of one in the same batch
/// replace it, as they do in Route 53 (the way record sets were changed before UPSERT).
#[tokio::test]
async fn apex_soa_is_replaced_by_delete_and_create_in_one_batch() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let page = api
        .list(&id, "?name=example.com.&type=SOA&maxitems=1")
        .await;
    let soa = page["ResourceRecordSets"][0].clone();
    let value = soa["ResourceRecords"][0]["Value"]
        .as_str()
        .unwrap()
        .to_owned();
    let ttl = soa["TTL"].as_i64().unwrap();
    let delete = rrset("DELETE", "example.com.", "SOA", ttl, &[&value]);
    let (status, body) = api.change(&id, json!([delete.clone()])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["Error"]["Messages"],
        json!(["A HostedZone must contain exactly one SOA record."])
    );
    let newer = value.replace(" 1 7200 ", " 2 7200 ");
    assert_ne!(newer, value);
    let create = rrset("CREATE", "example.com.", "SOA", 60, &[&newer]);
    let (status, body) = api.change(&id, json!([delete.clone(), create])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let page = api
        .list(&id, "?name=example.com.&type=SOA&maxitems=1")
        .await;
    assert_eq!(page["ResourceRecordSets"][0]["TTL"], 60);
    assert_eq!(
        page["ResourceRecordSets"][0]["ResourceRecords"][0]["Value"],
        newer.as_str()
    );
    // Deleting it twice is still refused.
    let old = rrset("DELETE", "example.com.", "SOA", 60, &[&newer]);
    let (status, body) = api.change(&id, json!([old.clone(), old])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("invalid set of changes"),
        "{body}"
    );
}

#[tokio::test]
async fn malformed_json_names_the_field() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let path = format!("/2013-04-01/hostedzone/{id}/rrset");
    let (status, body) = api
        .call_raw(Method::POST, &path, Some("{not json".into()), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidInput");
    let (status, body) = api
        .call(
            Method::POST,
            &path,
            Some(json!({"ChangeBatch": {"Changes": [{"Action": "CREATE",
                "ResourceRecordSet": {"Name": "a.example.com.", "Type": "A", "TTL": "soon",
                                      "ResourceRecords": [{"Value": "192.0.2.1"}]}}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&body).contains("ChangeBatch.Changes[0].ResourceRecordSet.TTL"),
        "{body}"
    );
}

/// A body that is a JSON array is refused, though serde would read it as a struct's fields in
/// order: `[]` removed a zone's comment with a 200, and `["a.example", "ref"]` created a zone.
#[tokio::test]
async fn a_json_array_body_is_refused_not_read_as_fields() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let path = format!("/2013-04-01/hostedzone/{id}");
    let (status, body) = api
        .call(Method::POST, &path, Some(json!({"Comment": "team zone"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (path, raw) in [
        (path.as_str(), " []"),
        (path.as_str(), "[\"set by an array\"]"),
        ("/2013-04-01/hostedzone", "[\"a.example\", \"ref\"]"),
        ("/2013-04-01/hostedzone", "[]"),
    ] {
        let (status, body) = api
            .call_raw(Method::POST, path, Some(raw.into()), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}: {body}");
        assert_eq!(error_code(&body), "InvalidInput", "{raw}: {body}");
    }
    let (_, body) = api.call(Method::GET, &path, None).await;
    assert_eq!(body["HostedZone"]["Config"]["Comment"], "team zone");
    let (_, body) = api
        .call(Method::GET, "/2013-04-01/hostedzonecount", None)
        .await;
    assert_eq!(body, json!({"HostedZoneCount": 1}));
}

/// Every object inside a body is refused as an array too, naming the field it is at: serde read
/// `{"ChangeBatch": [null, [...]]}` as a batch, `[["CREATE", {...}]]` as Changes, a record set
/// `["a.example.com.", "A", 60, [...]]` as its fields, and so on, and made the change.
#[tokio::test]
async fn an_array_where_an_object_belongs_is_refused_naming_the_field() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let rrsets = format!("/2013-04-01/hostedzone/{id}/rrset");
    let set = json!(["a.example.com.", "A", 60, [{"Value": "192.0.2.1"}]]);
    let record = json!({"Name": "a.example.com.", "Type": "A", "TTL": 60,
                        "ResourceRecords": [["192.0.2.1"]]});
    let alias = json!({"Name": "a.example.com.", "Type": "A",
                       "AliasTarget": [id.as_str(), "www.example.com.", false]});
    let cases = [
        (
            rrsets.as_str(),
            json!({"ChangeBatch": [null, [{"Action": "CREATE", "ResourceRecordSet": record.clone()}]]}),
            "ChangeBatch",
        ),
        (
            rrsets.as_str(),
            json!({"ChangeBatch": {"Changes": [["CREATE", set.clone()]]}}),
            "ChangeBatch.Changes[0]",
        ),
        (
            rrsets.as_str(),
            json!({"ChangeBatch": {"Changes": [{"Action": "CREATE", "ResourceRecordSet": set}]}}),
            "ChangeBatch.Changes[0].ResourceRecordSet",
        ),
        (
            rrsets.as_str(),
            json!({"ChangeBatch": {"Changes": [{"Action": "CREATE", "ResourceRecordSet": record}]}}),
            "ChangeBatch.Changes[0].ResourceRecordSet.ResourceRecords[0]",
        ),
        (
            rrsets.as_str(),
            json!({"ChangeBatch": {"Changes": [{"Action": "CREATE", "ResourceRecordSet": alias}]}}),
            "ChangeBatch.Changes[0].ResourceRecordSet.AliasTarget",
        ),
        (
            "/2013-04-01/hostedzone",
            json!({"Name": "example.net", "CallerReference": "r2",
                   "HostedZoneConfig": ["a comment", false]}),
            "HostedZoneConfig",
        ),
        (
            "/2013-04-01/hostedzone",
            json!({"Name": "example.org", "CallerReference": "r3", "VPC": ["us-east-1", "vpc-1"]}),
            "VPC",
        ),
    ];
    for (path, body, field) in cases {
        let (status, reply) = api.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(error_code(&reply), "InvalidInput", "{body}: {reply}");
        let message = error_message(&reply);
        assert!(
            message.starts_with(&format!(
                "Malformed request body at '{field}': expected a JSON object, found an array"
            )),
            "{body}: {reply}"
        );
    }
    // Nothing was made: the zone holds its SOA and NS, and it is the only zone.
    let page = api.list(&id, "").await;
    assert_eq!(
        page["ResourceRecordSets"].as_array().unwrap().len(),
        2,
        "{page}"
    );
    let (_, count) = api
        .call(Method::GET, "/2013-04-01/hostedzonecount", None)
        .await;
    assert_eq!(count, json!({"HostedZoneCount": 1}));
    // The same batch written with objects is taken.
    let (status, reply) = api
        .change(
            &id,
            json!([rrset("CREATE", "a.example.com.", "A", 60, &["192.0.2.1"])]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

/// An empty name in a batch is refused in Route 53's words for an empty AliasTarget DNSName
/// ("[FATAL problem: DomainNameEmpty (Domain name is empty) encountered with '']",
/// harmony-one/harmony-ops#491); r53 said "DNS name must not be empty".
#[tokio::test]
async fn an_empty_name_is_domain_name_empty() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let empty_target = json!({"Action": "CREATE", "ResourceRecordSet": {
        "Name": "a.example.com.", "Type": "A",
        "AliasTarget": {"HostedZoneId": id.as_str(), "DNSName": "", "EvaluateTargetHealth": false}}});
    let empty_name = rrset("CREATE", "", "A", 60, &["192.0.2.1"]);
    for change in [empty_target, empty_name] {
        let (status, body) = api.change(&id, json!([change])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "InvalidChangeBatch", "{body}");
        assert_eq!(
            body["Error"]["Messages"],
            json!(["FATAL problem: DomainNameEmpty (Domain name is empty) encountered with ''"]),
            "{body}"
        );
    }
}

/// A body with more after its JSON object is refused: serde read the object and stopped, so
/// `{...} trailing` made the change.
#[tokio::test]
async fn bytes_after_the_json_body_are_refused() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let batch = json!({"ChangeBatch": {"Changes": [rrset("CREATE", "a.example.com.", "A", 60, &["192.0.2.1"])]}});
    let path = format!("/2013-04-01/hostedzone/{id}/rrset");
    for tail in [" trailing", " {}", "]"] {
        let (status, body) = api
            .call_raw(Method::POST, &path, Some(format!("{batch}{tail}")), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{tail}: {body}");
        assert_eq!(error_code(&body), "InvalidInput", "{tail}: {body}");
        assert!(
            error_message(&body).starts_with("Malformed request body: trailing characters"),
            "{tail}: {body}"
        );
    }
    let page = api.list(&id, "").await;
    assert_eq!(
        page["ResourceRecordSets"].as_array().unwrap().len(),
        2,
        "{page}"
    );
    // Whitespace after it is not more JSON.
    let (status, body) = api
        .call_raw(Method::POST, &path, Some(format!("{batch} \n")), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn batch_limits_are_route53s() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    // 400 values per set.
    let values: Vec<String> = (0..401)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let (status, body) = api
        .change(
            &id,
            json!([rrset("CREATE", "big.example.com.", "A", 300, &refs)]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "InvalidInput");
    // 1000 records per batch, UPSERT counting twice: 3 sets of 200 upserted = 1200.
    let changes: Vec<Value> = (0..3)
        .map(|n| {
            rrset(
                "UPSERT",
                &format!("u{n}.example.com."),
                "A",
                300,
                &refs[..200],
            )
        })
        .collect();
    let (status, body) = api.change(&id, json!(changes)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "InvalidChangeBatch");
    assert!(error_message(&body).contains("1000"), "{body}");
    // Values over 4000 characters.
    let long = format!("\"{}\"", "x".repeat(4001));
    let (status, body) = api
        .change(
            &id,
            json!([rrset(
                "CREATE",
                "t.example.com.",
                "TXT",
                300,
                &[long.as_str()]
            )]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn failed_batch_leaves_no_trace() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let before = api.list(&id, "").await;
    let (status, body) = api
        .change(
            &id,
            json!([
                rrset("CREATE", "one.example.com.", "A", 300, &["192.0.2.1"]),
                rrset("CREATE", "two.example.com.", "A", 300, &["192.0.2.2"]),
                rrset("DELETE", "missing.example.com.", "A", 300, &["192.0.2.3"]),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(api.list(&id, "").await, before);
}

/// Route 53 sorts names as their labels reversed, in ASCII (`com.example.b-c.` before
/// `com.example.b.`), then types by mnemonic (MX, NS, SOA at the apex).
#[tokio::test]
async fn list_pages_in_route53_order() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let (status, body) = api
        .change(
            &id,
            json!([
                rrset("CREATE", "b.example.com.", "A", 300, &["192.0.2.1"]),
                rrset("CREATE", "b.example.com.", "AAAA", 300, &["2001:db8::1"]),
                rrset("CREATE", "a.b.example.com.", "A", 300, &["192.0.2.2"]),
                rrset("CREATE", "z.example.com.", "TXT", 300, &["\"z\""]),
                rrset("CREATE", "b-c.example.com.", "A", 300, &["192.0.2.3"]),
                rrset("CREATE", "*.example.com.", "A", 300, &["192.0.2.4"]),
                rrset(
                    "CREATE",
                    "example.com.",
                    "MX",
                    300,
                    &["10 mail.example.com."]
                ),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut seen = Vec::new();
    let mut query = "?maxitems=2".to_owned();
    loop {
        let page = api.list(&id, &query).await;
        for set in page["ResourceRecordSets"].as_array().unwrap() {
            seen.push(format!(
                "{} {}",
                set["Name"].as_str().unwrap(),
                set["Type"].as_str().unwrap()
            ));
        }
        if page["IsTruncated"] != true {
            break;
        }
        query = format!(
            "?maxitems=2&name={}&type={}",
            page["NextRecordName"].as_str().unwrap(),
            page["NextRecordType"].as_str().unwrap()
        );
    }
    assert_eq!(
        seen,
        [
            "example.com. MX",
            "example.com. NS",
            "example.com. SOA",
            "\\052.example.com. A",
            "b-c.example.com. A",
            "b.example.com. A",
            "b.example.com. AAAA",
            "a.b.example.com. A",
            "z.example.com. TXT",
        ]
    );
}

#[tokio::test]
async fn unknown_zone_and_route_get_route53_errors() {
    let api = Api::new();
    let (status, body) = api
        .change(
            "ZNOSUCHZONE123",
            json!([rrset("CREATE", "a.example.com.", "A", 1, &["192.0.2.1"])]),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "NoSuchHostedZone");
    let (status, body) = api.call(Method::GET, "/2013-04-01/nothing", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["Error"]["Code"].is_string(), "{body}");
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let api = Api::with_token(Some("s3cret"));
    let create = Some(json!({"Name": "example.com", "CallerReference": "x"}).to_string());
    for token in [None, Some("wrong")] {
        let (status, body) = api
            .call_raw(
                Method::POST,
                "/2013-04-01/hostedzone",
                create.clone(),
                token,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body["Error"]["Code"].is_string());
    }
    let (_, list) = api
        .call_raw(Method::GET, "/2013-04-01/hostedzone", None, Some("s3cret"))
        .await;
    assert_eq!(
        list["HostedZones"],
        json!([]),
        "nothing was created without the token"
    );
    let (status, _) = api
        .call_raw(
            Method::POST,
            "/2013-04-01/hostedzone",
            create,
            Some("s3cret"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let api = Api::new();
    let body = format!("{{\"Name\": \"{}\"}}", "a".repeat(100 * 1024));
    let (status, body) = api
        .call_raw(Method::POST, "/2013-04-01/hostedzone", Some(body), None)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["Error"]["Code"].is_string());
}

// ---- end to end, real sockets ----

async fn start_server(dir: &std::path::Path) -> Running {
    r53::app::start(ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.join("data"),
        zones_dir: None,
        ..ServeOptions::default()
    })
    .await
    .expect("server starts")
}

#[tokio::test]
async fn acknowledged_change_is_answered_at_once_and_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let running = start_server(dir.path()).await;
    let api = running.api_addr.unwrap();
    let (status, body) = http(
        api,
        "POST",
        "/2013-04-01/hostedzone",
        Some(json!({"Name": "live.test", "CallerReference": "e2e"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = bare_id(&body["HostedZone"]["Id"]);
    for i in 1..=20u8 {
        let ip = format!("192.0.2.{i}");
        let (status, body) = http(api,
            "POST",
            &format!("/2013-04-01/hostedzone/{id}/rrset"),
            Some(json!({"ChangeBatch": {"Changes": [rrset("UPSERT", "www.live.test.", "A", 60, &[ip.as_str()])]}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        // The very next query sees the change.
        let answer = query_udp(running.dns_addr, &query("www.live.test.", RecordType::A)).await;
        assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(answer.answers[0].data.to_string(), ip);
    }
    let (status, _) = http(
        api,
        "POST",
        &format!("/2013-04-01/hostedzone/{id}/rrset"),
        Some(json!({"ChangeBatch": {"Changes": [
            rrset("CREATE", "new.live.test.", "A", 60, &["192.0.2.100"]),
            rrset("CREATE", "www.live.test.", "A", 60, &["192.0.2.101"]),
        ]}})),
    )
    .await;
    assert_eq!(status, 400);
    let refused = query_udp(running.dns_addr, &query("new.live.test.", RecordType::A)).await;
    assert_eq!(
        refused.metadata.response_code,
        ResponseCode::NXDomain,
        "no half-applied batch"
    );

    running.shutdown().await.unwrap();
    let running = start_server(dir.path()).await;
    let answer = query_tcp(running.dns_addr, &query("www.live.test.", RecordType::A)).await;
    assert_eq!(answer.answers.len(), 1);
    assert_eq!(answer.answers[0].data.to_string(), "192.0.2.20");
    let nx = query_udp(running.dns_addr, &query("new.live.test.", RecordType::A)).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_method_and_query_get_route53_shaped_errors() {
    let api = Api::new();
    let (status, body) = api.call(Method::PUT, "/2013-04-01/hostedzone", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body), "MethodNotAllowed");
    let (status, body) = api
        .call(
            Method::GET,
            "/2013-04-01/hostedzone?maxitems=1&maxitems=2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "InvalidInput");
}

/// Route 53's escapes in names are a backslash and three octal digits, in and out: `\101` is
/// `a`, and a listing writes every character but `a-z0-9-_` so (`/` is `\057`), which reads
/// back as the same name. Zone names too (`ex\344mple.com`).
#[tokio::test]
async fn escapes_in_names_are_octal_as_route53_writes_them() {
    let api = Api::new();
    let id = api.create_zone("example.com").await;
    let (status, body) = api
        .change(
            &id,
            json!([
                rrset("CREATE", "a\\101.example.com.", "A", 300, &["192.0.2.1"]),
                rrset("CREATE", "0/26.example.com.", "A", 300, &["192.0.2.2"]),
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sets = api
        .list(&id, "?name=aa.example.com.&type=A&maxitems=1")
        .await;
    assert_eq!(sets["ResourceRecordSets"][0]["Name"], "aa.example.com.");
    let sets = api
        .list(&id, "?name=0%5C05726.example.com.&type=A&maxitems=1")
        .await;
    assert_eq!(
        sets["ResourceRecordSets"][0]["Name"],
        "0\\05726.example.com."
    );
    let (status, body) = api
        .change(
            &id,
            json!([rrset(
                "DELETE",
                "0\\05726.example.com.",
                "A",
                300,
                &["192.0.2.2"]
            )]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let umlaut = api.create_zone("ex\\344mple.com").await;
    let (_, zone) = api
        .call(
            Method::GET,
            &format!("/2013-04-01/hostedzone/{umlaut}"),
            None,
        )
        .await;
    assert_eq!(zone["HostedZone"]["Name"], "ex\\344mple.com.");
}
