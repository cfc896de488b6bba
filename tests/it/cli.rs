//! The client commands end to end: the real `r53` binary against a server started in-process
//! (API and DNS on ephemeral ports), checked by what it prints, its exit code, and what DNS
//! answers afterwards.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use hickory_proto::rr::{Name, RecordType};
use r53::app::{Running, ServeOptions};
use r53::model::type_name;
use serde_json::Value;

use crate::support::{query, query_udp};

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "r53 failed: {self:?}");
        assert!(self.stderr.is_empty(), "r53 wrote to stderr: {self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

struct Server {
    running: Running,
    api: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Self {
        Self::start_with_token(None).await
    }

    async fn start_with_token(token: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let running = r53::app::start(ServeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            api_token: token.map(str::to_owned),
            data_dir: dir.path().join("data"),
            zones_dir: None,
            ..ServeOptions::default()
        })
        .await
        .expect("server starts");
        let api = running.api_addr.expect("the API is up");
        Self { running, api, dir }
    }

    fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// Runs `r53 ARGS` with this server's API in R53_API.
    async fn r53(&self, args: &[&str]) -> Run {
        r53_with_env(args, &[("R53_API", &self.url())]).await
    }

    /// The values DNS answers for `name`/`rtype`, sorted.
    async fn dns(&self, name: &str, rtype: RecordType) -> Vec<String> {
        let answer = query_udp(self.running.dns_addr, &query(name, rtype)).await;
        let mut values: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
        values.sort();
        values
    }
}

/// Runs the binary off the runtime (the server in this process must keep answering), with a
/// clean environment so the developer's own R53_* settings do not leak in.
async fn r53_with_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_r53"));
        command.args(&args);
        for (key, _) in std::env::vars() {
            if key.starts_with("R53_") {
                command.env_remove(key);
            }
        }
        let output = command
            .env("RUST_LOG", "error")
            .envs(env)
            .output()
            .expect("r53 runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    })
    .await
    .unwrap()
}

/// The bare id of the only zone named `name`.
async fn zone_id(server: &Server, name: &str) -> String {
    let listed = server.r53(&["zone", "list", "--output", "json"]).await.ok();
    let zones = listed.json()["HostedZones"].as_array().unwrap().clone();
    let ids: Vec<String> = zones
        .iter()
        .filter(|z| z["Name"] == name)
        .map(|z| {
            z["Id"]
                .as_str()
                .unwrap()
                .trim_start_matches("/hostedzone/")
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{zones:?}");
    ids[0].clone()
}

#[tokio::test]
async fn create_upsert_and_list_as_table_and_json() {
    let server = Server::start().await;
    let created = server
        .r53(&["zone", "create", "example.com", "--comment", "from the cli"])
        .await
        .ok();
    assert!(
        created
            .stdout
            .contains("Name                    example.com.\n"),
        "{}",
        created.stdout
    );
    assert!(
        created
            .stdout
            .contains("Comment                 from the cli\n"),
        "{}",
        created.stdout
    );
    assert!(
        created
            .stdout
            .contains("NameServer              ns1.r53.test.\n"),
        "{}",
        created.stdout
    );
    let id = zone_id(&server, "example.com.").await;

    let zones = server.r53(&["zone", "list"]).await.ok();
    assert_eq!(
        zones.stdout,
        format!(
            "ID{pad}  NAME          RECORDS  PRIVATE  COMMENT\n{id}  example.com.  2        false    from the cli\n",
            pad = " ".repeat(id.len() - 2)
        )
    );

    let upserted = server
        .r53(&[
            "record",
            "upsert",
            "example.com",
            "www",
            "A",
            "300",
            "192.0.2.1",
            "192.0.2.2",
        ])
        .await
        .ok();
    assert!(upserted.stdout.contains("INSYNC"), "{}", upserted.stdout);
    // Acknowledged means served.
    assert_eq!(
        server.dns("www.example.com.", RecordType::A).await,
        ["192.0.2.1", "192.0.2.2"]
    );

    let table = server.r53(&["record", "list", "example.com"]).await.ok();
    assert_eq!(
        table.stdout,
        "NAME              TYPE  TTL     VALUE\n\
         example.com.      NS    172800  ns1.r53.test.\n\
         example.com.      SOA   900     ns1.r53.test. hostmaster.example.com. 1 7200 900 1209600 86400\n\
         www.example.com.  A     300     192.0.2.1\n\
         www.example.com.  A     300     192.0.2.2\n"
    );

    // By id rather than name, filtered to one name, in the API's JSON.
    let listed = server
        .r53(&[
            "record",
            "list",
            &format!("/hostedzone/{id}"),
            "--name",
            "www",
            "--output",
            "json",
        ])
        .await
        .ok();
    assert_eq!(
        listed.json(),
        serde_json::json!({"ResourceRecordSets": [{
            "Name": "www.example.com.", "Type": "A", "TTL": 300,
            "ResourceRecords": [{"Value": "192.0.2.1"}, {"Value": "192.0.2.2"}]
        }]})
    );
    // aws's indentation: four spaces.
    assert!(
        listed
            .stdout
            .starts_with("{\n    \"ResourceRecordSets\": [\n        {\n"),
        "{}",
        listed.stdout
    );

    let got = server
        .r53(&["zone", "get", &id, "--output", "json"])
        .await
        .ok();
    assert_eq!(got.json()["HostedZone"]["ResourceRecordSetCount"], 3);
    assert_eq!(
        got.json()["DelegationSet"]["NameServers"][0],
        "ns1.r53.test."
    );
}

#[tokio::test]
async fn a_failing_change_prints_the_aws_error_and_exits_254() {
    let server = Server::start().await;
    server.r53(&["zone", "create", "example.com"]).await.ok();
    server
        .r53(&[
            "record",
            "upsert",
            "example.com",
            "www",
            "A",
            "300",
            "192.0.2.1",
        ])
        .await
        .ok();
    let batch = server.dir.path().join("create-again.json");
    std::fs::write(
        &batch,
        r#"{"Changes": [{"Action": "CREATE", "ResourceRecordSet": {"Name": "www.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.9"}]}}]}"#,
    )
    .unwrap();
    let failed = server
        .r53(&["change", "example.com", "--file", batch.to_str().unwrap()])
        .await;
    assert_eq!(failed.code, 254, "{failed:?}");
    assert_eq!(failed.stdout, "");
    assert_eq!(
        failed.stderr,
        "An error occurred (InvalidChangeBatch) when calling the ChangeResourceRecordSets operation: [Tried to create resource record set [name='www.example.com.', type='A'] but it already exists]\n"
    );
    // Nothing of it was applied.
    assert_eq!(
        server.dns("www.example.com.", RecordType::A).await,
        ["192.0.2.1"]
    );

    let bad_value = server
        .r53(&[
            "record",
            "upsert",
            "example.com",
            "www",
            "A",
            "300",
            "192.0.2.256",
        ])
        .await;
    assert_eq!(bad_value.code, 254, "{bad_value:?}");
    assert!(bad_value.stderr.starts_with(
        "An error occurred (InvalidChangeBatch) when calling the ChangeResourceRecordSets operation: [Invalid Resource Record:"
    ), "{}", bad_value.stderr);

    let no_zone = server.r53(&["record", "list", "nowhere.example"]).await;
    assert_eq!(no_zone.code, 254, "{no_zone:?}");
    assert!(
        no_zone
            .stderr
            .contains("No hosted zone named nowhere.example."),
        "{}",
        no_zone.stderr
    );

    let no_such_id = server.r53(&["zone", "get", "ZNOSUCHZONE0001"]).await;
    assert_eq!(no_such_id.code, 254, "{no_such_id:?}");
    assert_eq!(
        no_such_id.stderr,
        "An error occurred (NoSuchHostedZone) when calling the GetHostedZone operation: No hosted zone found with ID: ZNOSUCHZONE0001\n"
    );
}

#[tokio::test]
async fn change_applies_an_aws_change_batch_file() {
    let server = Server::start().await;
    server.r53(&["zone", "create", "example.com"]).await.ok();
    // Exactly what `aws route53 change-resource-record-sets --change-batch file://…` takes.
    let batch = server.dir.path().join("batch.json");
    std::fs::write(
        &batch,
        r#"{
  "Comment": "mail for example.com",
  "Changes": [
    {"Action": "CREATE", "ResourceRecordSet": {"Name": "mail.example.com.", "Type": "A", "TTL": 300,
      "ResourceRecords": [{"Value": "192.0.2.25"}]}},
    {"Action": "UPSERT", "ResourceRecordSet": {"Name": "example.com.", "Type": "MX", "TTL": 3600,
      "ResourceRecords": [{"Value": "10 mail.example.com."}]}}
  ]
}"#,
    )
    .unwrap();
    let file_url = format!("file://{}", batch.display());
    let applied = server
        .r53(&[
            "change",
            "example.com",
            "--change-batch",
            &file_url,
            "--output",
            "json",
        ])
        .await
        .ok();
    let info = &applied.json()["ChangeInfo"];
    assert_eq!(info["Status"], "INSYNC");
    assert_eq!(info["Comment"], "mail for example.com");
    assert!(
        info["Id"].as_str().unwrap().starts_with("/change/C"),
        "{info}"
    );
    assert_eq!(
        server.dns("example.com.", RecordType::MX).await,
        ["10 mail.example.com."]
    );
    assert_eq!(
        server.dns("mail.example.com.", RecordType::A).await,
        ["192.0.2.25"]
    );

    // More record sets than one ListResourceRecordSets page (300): the listing follows
    // NextRecordName/NextRecordType to the end.
    let changes: Vec<Value> = (0..305)
        .map(|i| {
            serde_json::json!({"Action": "CREATE", "ResourceRecordSet": {
                "Name": format!("host{i}.example.com."), "Type": "A", "TTL": 60,
                "ResourceRecords": [{"Value": format!("198.51.100.{}", i % 250)}]}})
        })
        .collect();
    let many = server.dir.path().join("many.json");
    std::fs::write(&many, serde_json::json!({ "Changes": changes }).to_string()).unwrap();
    server
        .r53(&["change", "example.com", "--file", many.to_str().unwrap()])
        .await
        .ok();
    let all = server
        .r53(&["record", "list", "example.com", "--output", "json"])
        .await
        .ok();
    let names: BTreeSet<String> = all.json()["ResourceRecordSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["Name"].as_str().unwrap(),
                s["Type"].as_str().unwrap()
            )
        })
        .collect();
    // SOA, NS, MX, mail A and the 305 hosts, each once.
    assert_eq!(names.len(), 309, "{names:?}");
    assert!(names.contains("host304.example.com. A"));
    let table = server
        .r53(&[
            "record",
            "list",
            "example.com",
            "--name",
            "host299",
            "--type",
            "A",
        ])
        .await
        .ok();
    assert_eq!(
        table.stdout,
        "NAME                  TYPE  TTL  VALUE\nhost299.example.com.  A     60   198.51.100.49\n"
    );

    let not_json = server.dir.path().join("broken.json");
    std::fs::write(&not_json, "{\"Changes\": [").unwrap();
    let refused = server
        .r53(&[
            "change",
            "example.com",
            "--file",
            not_json.to_str().unwrap(),
        ])
        .await;
    assert_eq!(refused.code, 252, "{refused:?}");
    assert!(
        refused.stderr.contains("is not valid JSON"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn record_delete_removes_the_set_whatever_its_values() {
    let server = Server::start().await;
    server.r53(&["zone", "create", "example.org."]).await.ok();
    server
        .r53(&[
            "record",
            "upsert",
            "example.org",
            "txt",
            "TXT",
            "120",
            "v=spf1 -all",
            "\"two\" \"strings\"",
        ])
        .await
        .ok();
    server
        .r53(&[
            "record",
            "upsert",
            "example.org",
            "@",
            "A",
            "60",
            "192.0.2.7",
        ])
        .await
        .ok();
    let listed = server
        .r53(&[
            "record",
            "list",
            "example.org",
            "--type",
            "TXT",
            "--output",
            "json",
        ])
        .await
        .ok();
    assert_eq!(
        listed.json()["ResourceRecordSets"][0]["ResourceRecords"],
        serde_json::json!([{"Value": "\"v=spf1 -all\""}, {"Value": "\"two\" \"strings\""}])
    );

    server
        .r53(&["record", "delete", "example.org", "txt.example.org.", "txt"])
        .await
        .ok();
    let after = server
        .r53(&["record", "list", "example.org", "--output", "json"])
        .await
        .ok();
    let left: Vec<String> = after.json()["ResourceRecordSets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["Name"].as_str().unwrap(),
                s["Type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        left,
        ["example.org. A", "example.org. NS", "example.org. SOA"]
    );

    let again = server
        .r53(&["record", "delete", "example.org", "txt", "TXT"])
        .await;
    assert_eq!(again.code, 254, "{again:?}");
    assert!(
        again
            .stderr
            .contains("No TXT record set named txt.example.org."),
        "{}",
        again.stderr
    );

    // The apex SOA is Route 53's to keep: the API refuses, the CLI reports it.
    let soa = server
        .r53(&["record", "delete", "example.org", "@", "SOA"])
        .await;
    assert_eq!(soa.code, 254, "{soa:?}");
    assert!(
        soa.stderr.contains("(InvalidChangeBatch)"),
        "{}",
        soa.stderr
    );

    server
        .r53(&["record", "delete", "example.org", "@", "A"])
        .await
        .ok();
    let deleted = server.r53(&["zone", "delete", "example.org"]).await.ok();
    assert!(deleted.stdout.contains("INSYNC"), "{}", deleted.stdout);
    let gone = server.r53(&["zone", "list", "--output", "json"]).await.ok();
    assert_eq!(gone.json(), serde_json::json!({"HostedZones": []}));
}

const SHOP_ZONE: &str = "$ORIGIN shop.test.
$TTL 300
@       3600 IN SOA ns1 admin 2026010101 7200 900 1209600 300
@       3600 IN NS  ns1
ns1          IN A   192.0.2.53
www          IN A   192.0.2.10
www          IN A   192.0.2.11
@            IN MX  10 mail
mail         IN A   192.0.2.25
txt          IN TXT \"hello world\" \"second\"
*.wild       IN CNAME www
";

/// Record sets as comparable text: (name, type, TTL, values in any order).
fn canonical(text: &str) -> BTreeSet<(String, String, u32, BTreeSet<String>)> {
    let origin = Name::from_ascii("shop.test.").unwrap();
    let parsed = r53::zonefile::parse(text, &origin, "zone").expect("a zone file");
    parsed
        .rrsets
        .iter()
        .map(|s| {
            (
                s.name.to_ascii(),
                type_name(s.rtype),
                s.ttl,
                s.records.iter().map(r53::zonefile::rdata_text).collect(),
            )
        })
        .collect()
}

async fn import(server: &Server, file: &Path) -> Run {
    server
        .r53(&["zone", "import", file.to_str().unwrap()])
        .await
        .ok()
}

#[tokio::test]
async fn import_and_export_through_the_api_round_trip() {
    let server = Server::start().await;
    let file = server.dir.path().join("shop.test.zone");
    std::fs::write(&file, SHOP_ZONE).unwrap();

    let first = import(&server, &file).await;
    assert!(
        first
            .stdout
            .starts_with("shop.test.: created hosted zone Z"),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("8 record sets upserted, 0 deleted"),
        "{}",
        first.stdout
    );
    assert_eq!(
        server.dns("www.shop.test.", RecordType::A).await,
        ["192.0.2.10", "192.0.2.11"]
    );
    assert_eq!(
        server.dns("x.wild.shop.test.", RecordType::CNAME).await,
        ["www.shop.test."]
    );

    let exported = server.r53(&["zone", "export", "shop.test"]).await.ok();
    assert_eq!(canonical(&exported.stdout), canonical(SHOP_ZONE));

    // The file changes: one set changes, one goes, one comes. Only those are sent.
    let edited = SHOP_ZONE
        .replace("www          IN A   192.0.2.11\n", "")
        .replace("txt          IN TXT \"hello world\" \"second\"\n", "")
        + "new          IN AAAA 2001:db8::1\n";
    std::fs::write(&file, &edited).unwrap();
    let second = import(&server, &file).await;
    assert!(
        second.stdout.contains("updated hosted zone Z")
            && second
                .stdout
                .contains("2 record sets upserted, 1 deleted, 6 unchanged"),
        "{}",
        second.stdout
    );
    assert_eq!(
        server.dns("www.shop.test.", RecordType::A).await,
        ["192.0.2.10"]
    );
    assert!(server
        .dns("txt.shop.test.", RecordType::TXT)
        .await
        .is_empty());

    let id = zone_id(&server, "shop.test.").await;
    let exported = server.r53(&["zone", "export", &id]).await.ok();
    assert_eq!(canonical(&exported.stdout), canonical(&edited));

    let third = import(&server, &file).await;
    assert!(
        third.stdout.contains("nothing to change"),
        "{}",
        third.stdout
    );
}

#[tokio::test]
async fn import_refuses_a_broken_zone_file_and_changes_nothing() {
    let server = Server::start().await;
    let file = server.dir.path().join("broken.test.zone");
    std::fs::write(
        &file,
        "$TTL 300\n@ IN SOA ns1 admin 1 2 3 4 5\nwww IN A 192.0.2.300\n",
    )
    .unwrap();
    let refused = server
        .r53(&["zone", "import", file.to_str().unwrap()])
        .await;
    assert_eq!(refused.code, 252, "{refused:?}");
    assert!(
        refused.stderr.contains("broken.test.zone:3"),
        "{}",
        refused.stderr
    );
    let zones = server.r53(&["zone", "list", "--output", "json"]).await.ok();
    assert_eq!(zones.json(), serde_json::json!({"HostedZones": []}));
}

#[tokio::test]
async fn an_unreachable_api_is_one_line_naming_the_url_and_exit_255() {
    // A port that was free a moment ago: bind, note, release.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = r53_with_env(&["zone", "list", "--api", &url], &[]).await;
    assert_eq!(run.code, 255, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains(&url), "{}", run.stderr);
    assert!(run.stderr.contains("connection refused"), "{}", run.stderr);
    assert!(run.stderr.contains("r53 serve"), "{}", run.stderr);
}

#[tokio::test]
async fn the_api_token_is_sent_as_a_bearer_token() {
    let server = Server::start_with_token(Some("s3cret")).await;
    let denied = server.r53(&["zone", "list"]).await;
    assert_eq!(denied.code, 254, "{denied:?}");
    assert!(
        denied.stderr.starts_with(
            "An error occurred (AccessDenied) when calling the ListHostedZones operation:"
        ),
        "{}",
        denied.stderr
    );
    server
        .r53(&["zone", "create", "example.net", "--api-token", "s3cret"])
        .await
        .ok();
    let listed = r53_with_env(
        &["zone", "list", "--output", "json"],
        &[("R53_API", &server.url()), ("R53_API_TOKEN", "s3cret")],
    )
    .await
    .ok();
    assert_eq!(listed.json()["HostedZones"][0]["Name"], "example.net.");
}
