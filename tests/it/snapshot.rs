//! The start-up snapshot end to end with the `r53` binary: a SIGTERM leaves
//! `<data-dir>/r53-snapshot` behind, the next start loads its zones from it (and says so) and
//! keeps it, so a kill -9 straight after that start starts from it again, and a clean stop
//! with nothing written leaves it as it is; a change made after a start from it survives a
//! kill -9, read back from the store. In process: a change that arrives once shutdown has
//! begun is refused, so the snapshot and the store hold the same. While serving, once the
//! zones have been quiet for a moment, a live snapshot is written: a kill -9 then starts from
//! it, and a change made after it (the next start finds it stale) is read from the store.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::support::{bare_id, exchange_udp, free_port, http, query, query_udp, rrs};

const BIN: &str = env!("CARGO_BIN_EXE_r53");
const SNAPSHOT_FILE: &str = "r53-snapshot";

/// A server on `data` with fresh ports, serving once its API accepts connections (it binds the
/// API last).
/// Killed on drop (a failing test leaves no server behind).
struct Server {
    /// `None` once `terminate` or `kill` has taken it.
    child: Option<Child>,
    dns: SocketAddr,
    api: SocketAddr,
}

impl Server {
    /// With no live snapshot: only a clean shutdown writes one.
    fn start(data: &Path) -> Self {
        Self::start_with(data, 0)
    }

    /// With a live snapshot once the zones have been quiet for `quiet_ms` (0: none).
    fn start_with(data: &Path, quiet_ms: u64) -> Self {
        let dns: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let api: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut child = Command::new(BIN)
            .args(["serve", "--dns-addr", &dns.to_string()])
            .args(["--api-addr", &api.to_string()])
            .arg("--data-dir")
            .arg(data)
            .args(["--zones-dir", "/nonexistent", "--no-recursion"])
            .args(["--snapshot-quiet-ms", &quiet_ms.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("r53 starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(api).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("r53 exited early: {status}");
            }
            assert!(Instant::now() < deadline, "r53 did not start within 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            dns,
            api,
        }
    }

    /// The answer section for `name`, as `rrs` prints it.
    async fn answer(&self, name: &str, rtype: RecordType) -> Vec<String> {
        // The server answers DNS before the API is up; this only makes the check plain.
        assert!(
            exchange_udp(self.dns, &query(name, rtype).to_vec().unwrap())
                .await
                .is_some()
        );
        let response = query_udp(self.dns, &query(name, rtype)).await;
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        rrs(&response.answers)
    }

    /// SIGTERM; the exit must be clean. Returns the log.
    fn terminate(mut self) -> String {
        let child = self.child.take().expect("running");
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let out = child.wait_with_output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "r53 exit {}:\n{log}", out.status);
        log
    }

    /// SIGKILL. Returns the log.
    fn kill(mut self) -> String {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `hosted zones loaded` line of a log.
fn loaded_line(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("hosted zones loaded"))
        .unwrap_or_else(|| panic!("no `hosted zones loaded` line in:\n{log}"))
}

fn change(action: &str, name: &str, value: &str) -> serde_json::Value {
    json!({"ChangeBatch": {"Changes": [{
        "Action": action,
        "ResourceRecordSet": {
            "Name": name, "Type": "A", "TTL": 300,
            "ResourceRecords": [{"Value": value}],
        }
    }]}})
}

/// An acknowledged UPSERT of `name` A `value` through `rrset` (a ChangeResourceRecordSets path).
async fn upsert(server: &Server, rrset: &str, name: &str, value: &str) {
    let (status, body) = http(
        server.api,
        "POST",
        rrset,
        Some(change("UPSERT", name, value)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Creates the empty hosted zone `<label>.test` through the API; its id and its
/// ChangeResourceRecordSets path.
async fn empty_zone(server: &Server, label: &str) -> (String, String) {
    let (status, body) = http(
        server.api,
        "POST",
        "/2013-04-01/hostedzone",
        Some(json!({"Name": format!("{label}.test"), "CallerReference": format!("{label}-1")})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let zone = bare_id(&body["HostedZone"]["Id"]);
    let rrset = format!("/2013-04-01/hostedzone/{zone}/rrset");
    (zone, rrset)
}

/// Creates the hosted zone `<label>.test` through the API, with `www` A 192.0.2.10 and `api` A
/// 192.0.2.11 in it; its id and its ChangeResourceRecordSets path.
async fn zone_with_two_hosts(server: &Server, label: &str) -> (String, String) {
    let (zone, rrset) = empty_zone(server, label).await;
    for (host, value) in [("www", "192.0.2.10"), ("api", "192.0.2.11")] {
        let name = format!("{host}.{label}.test");
        let (status, body) = http(
            server.api,
            "POST",
            &rrset,
            Some(change("CREATE", &name, value)),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    (zone, rrset)
}

#[tokio::test]
async fn a_clean_restart_loads_the_snapshot_and_a_later_change_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let snapshot = data.join(SNAPSHOT_FILE);

    // A zone and records made through the API.
    let server = Server::start(&data);
    let (zone, rrset) = zone_with_two_hosts(&server, "snap").await;
    let www = server.answer("www.snap.test.", RecordType::A).await;
    assert_eq!(www, ["www.snap.test. 300 A 192.0.2.10"]);
    let ns = server.answer("snap.test.", RecordType::NS).await;
    assert!(!ns.is_empty());
    assert!(!snapshot.exists(), "no snapshot while serving");
    let log = server.terminate();
    assert!(log.contains("start-up snapshot written"), "{log}");
    assert!(snapshot.exists(), "SIGTERM leaves {}", snapshot.display());

    // A clean restart: the zones come from the snapshot, which is kept.
    let server = Server::start(&data);
    assert!(snapshot.exists(), "the snapshot is kept when it is read");
    assert_eq!(server.answer("www.snap.test.", RecordType::A).await, www);
    assert_eq!(
        server.answer("api.snap.test.", RecordType::A).await,
        ["api.snap.test. 300 A 192.0.2.11"]
    );
    assert_eq!(server.answer("snap.test.", RecordType::NS).await, ns);
    let (status, body) = http(
        server.api,
        "GET",
        &format!("/2013-04-01/hostedzone/{zone}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["HostedZone"]["ResourceRecordSetCount"], 4, "{body}");

    // A change after that start, then kill -9: no snapshot can hide it.
    upsert(&server, &rrset, "www.snap.test", "192.0.2.20").await;
    assert_eq!(
        server.answer("www.snap.test.", RecordType::A).await,
        ["www.snap.test. 300 A 192.0.2.20"]
    );
    let log = server.kill();
    let line = loaded_line(&log);
    assert!(line.contains("from=snapshot"), "{line}");
    assert!(line.contains("record_sets=4"), "{line}");

    // The snapshot is still on disk, and stale: the change is read from the store.
    let server = Server::start(&data);
    assert_eq!(
        server.answer("www.snap.test.", RecordType::A).await,
        ["www.snap.test. 300 A 192.0.2.20"]
    );
    assert_eq!(
        server.answer("api.snap.test.", RecordType::A).await,
        ["api.snap.test. 300 A 192.0.2.11"]
    );
    let log = server.terminate();
    let line = loaded_line(&log);
    assert!(line.contains("from=store"), "{line}");
    assert!(log.contains("the start-up snapshot is stale"), "{log}");
    assert!(!log.contains("start-up snapshot read"), "{log}");
    assert!(log.contains("start-up snapshot written"), "{log}");
    assert!(snapshot.exists());
}

/// The snapshot file's inode and modification time: a file written again differs in both.
fn file_identity(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).unwrap();
    (meta.ino(), meta.modified().unwrap())
}

#[tokio::test]
async fn a_kill_9_right_after_a_start_from_the_snapshot_starts_from_it_again_until_a_change() {
    // The default quiet period: every kill -9 below comes well within it, before any live
    // snapshot could be written.
    const QUIET_MS: u64 = 2000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let snapshot = data.join(SNAPSHOT_FILE);
    let www = || ["www.kept.test. 300 A 192.0.2.10"];
    let api = || ["api.kept.test. 300 A 192.0.2.11"];

    let server = Server::start_with(&data, QUIET_MS);
    let (_, rrset) = zone_with_two_hosts(&server, "kept").await;
    let log = server.terminate();
    assert!(log.contains("start-up snapshot written"), "{log}");
    let written = file_identity(&snapshot);

    // (1) A start from the snapshot, killed as soon as it serves.
    let server = Server::start_with(&data, QUIET_MS);
    assert_eq!(server.answer("www.kept.test.", RecordType::A).await, www());
    let log = server.kill();
    assert!(log.contains("start-up snapshot read"), "{log}");
    assert!(loaded_line(&log).contains("from=snapshot"), "{log}");

    // (2) The next start reads the same file again, and serves its data.
    let server = Server::start_with(&data, QUIET_MS);
    assert_eq!(server.answer("www.kept.test.", RecordType::A).await, www());
    assert_eq!(server.answer("api.kept.test.", RecordType::A).await, api());
    assert!(!server.answer("kept.test.", RecordType::NS).await.is_empty());
    assert_eq!(file_identity(&snapshot), written, "the same file");
    // Then an acknowledged change, and kill -9 at once.
    upsert(&server, &rrset, "www.kept.test", "192.0.2.20").await;
    let log = server.kill();
    assert!(log.contains("start-up snapshot read"), "{log}");
    let line = loaded_line(&log);
    assert!(line.contains("from=snapshot"), "{line}");
    assert!(line.contains("record_sets=4"), "{line}");
    assert!(
        !log.contains("live start-up snapshot written"),
        "no live snapshot within the quiet period: {log}"
    );

    // (3) The change is there: the snapshot was stale, the store read.
    let server = Server::start_with(&data, QUIET_MS);
    assert_eq!(
        server.answer("www.kept.test.", RecordType::A).await,
        ["www.kept.test. 300 A 192.0.2.20"]
    );
    assert_eq!(server.answer("api.kept.test.", RecordType::A).await, api());
    let log = server.terminate();
    assert!(log.contains("the start-up snapshot is stale"), "{log}");
    assert!(loaded_line(&log).contains("from=store"), "{log}");
    assert!(log.contains("start-up snapshot written"), "{log}");
    let written = file_identity(&snapshot);

    // (4) A start from that snapshot and a clean stop with no change: the file is left as
    // it is, and still read by the start after.
    let server = Server::start_with(&data, QUIET_MS);
    assert_eq!(
        server.answer("www.kept.test.", RecordType::A).await,
        ["www.kept.test. 300 A 192.0.2.20"]
    );
    let log = server.terminate();
    assert!(loaded_line(&log).contains("from=snapshot"), "{log}");
    assert!(log.contains("start-up snapshot already current"), "{log}");
    assert!(!log.contains("start-up snapshot written"), "{log}");
    assert_eq!(file_identity(&snapshot), written, "left as it is");
    let server = Server::start_with(&data, QUIET_MS);
    assert_eq!(
        server.answer("www.kept.test.", RecordType::A).await,
        ["www.kept.test. 300 A 192.0.2.20"]
    );
    let log = server.terminate();
    assert!(loaded_line(&log).contains("from=snapshot"), "{log}");
}

/// A change that reaches the service after shutdown began (an API handler runs to the end in
/// a task of its own, and may outlive the server's listeners) is refused, through each write
/// path: the snapshot must hold everything the store does, and the store nothing more.
#[tokio::test]
async fn a_change_arriving_after_shutdown_is_refused_and_the_snapshot_matches_the_store() {
    use hickory_proto::rr::{Name, RData};
    use r53::model::{Action, Change, ChangeBatch, HostedZone, ResourceRecordSet};

    let server = crate::support::TestServer::start(&[(
        "example.com",
        "$ORIGIN example.com.\n$TTL 300\n@ SOA ns1 hostmaster 1 7200 900 1209600 300\n@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n",
    )])
    .await;
    let service = server.running.service.clone();
    let zone = service
        .zone_by_name(&Name::from_ascii("example.com.").unwrap())
        .await
        .unwrap()
        .zone()
        .id
        .clone();
    let set = |name: &str, ip: &str| {
        ResourceRecordSet::new(
            &Name::from_ascii(name).unwrap(),
            RecordType::A,
            300,
            vec![RData::A(ip.parse().unwrap())],
        )
    };
    let crate::support::TestServer { running, dir, .. } = server;
    running.shutdown().await.unwrap();
    assert!(dir.path().join("data").join(SNAPSHOT_FILE).exists());

    let upsert = ChangeBatch {
        comment: None,
        changes: vec![Change {
            action: Action::Upsert,
            rrset: set("www.example.com.", "192.0.2.99"),
            value_chars: 10,
        }],
    };
    let refused = service.change_rrsets(&zone, upsert).await.unwrap_err();
    assert!(refused.to_string().contains("shutting down"), "{refused}");
    let late = HostedZone::new(&Name::from_ascii("late.example.").unwrap(), "late", None);
    let refused = service
        .create_zone(late, vec![set("www.late.example.", "192.0.2.7")])
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("shutting down"), "{refused}");
    drop(service);

    // Started again: from the snapshot, without either change.
    let running = crate::support::start_in(dir.path(), Default::default()).await;
    let zones = running.service.zone_summaries().await;
    assert_eq!(zones.len(), 1, "{zones:?}");
    let answer = query_udp(running.dns_addr, &query("www.example.com.", RecordType::A)).await;
    assert_eq!(rrs(&answer.answers), ["www.example.com. 300 A 192.0.2.1"]);
    running.shutdown().await.unwrap();

    // And the store itself (a scan) holds the same.
    use r53::store::{SledStore, Store};
    let store = SledStore::open(&dir.path().join("data"), 1 << 20).unwrap();
    let stored = store.load().unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].zone.id, zone);
    let www = stored[0]
        .rrsets
        .decode()
        .unwrap()
        .into_iter()
        .filter(|s| s.name == Name::from_ascii("www.example.com.").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(www, [set("www.example.com.", "192.0.2.1")]);
}

/// The values as an API client entered them (listed so, as Route 53 lists them) are in the
/// start-up snapshot and in the store: they list the same after a clean restart, and after a
/// kill -9, when the zones are read back from sled.
#[tokio::test]
async fn values_as_entered_survive_a_clean_restart_and_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let batch = |action: &str, cname: &str| {
        json!({"ChangeBatch": {"Changes": [
            {"Action": action, "ResourceRecordSet": {"Name": "www.entered.test", "Type": "CNAME",
                "TTL": 60, "ResourceRecords": [{"Value": cname}]}},
            {"Action": "UPSERT", "ResourceRecordSet": {"Name": "v6.entered.test", "Type": "AAAA",
                "TTL": 60, "ResourceRecords": [{"Value": "2001:DB8:0::1"}, {"Value": "2001:db8::0:2"}]}},
        ]}})
    };
    let listing = |server: &Server, zone: &str| {
        let (api, path) = (server.api, format!("/2013-04-01/hostedzone/{zone}/rrset"));
        async move {
            let (status, body) = http(api, "GET", &path, None).await;
            assert_eq!(status, 200, "{body}");
            body["ResourceRecordSets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["Name"] != "entered.test.")
                .map(|s| {
                    let values = s["ResourceRecords"].as_array().unwrap().iter();
                    let values: Vec<_> = values.map(|r| r["Value"].as_str().unwrap()).collect();
                    format!("{} {} {}", s["Name"], s["Type"], values.join(" | "))
                })
                .collect::<Vec<_>>()
        }
    };

    let server = Server::start(&data);
    let (zone, rrset) = empty_zone(&server, "entered").await;
    let (status, body) = http(
        server.api,
        "POST",
        &rrset,
        Some(batch("CREATE", "Target.Example.org")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entered = [
        r#""v6.entered.test." "AAAA" 2001:DB8:0::1 | 2001:db8::0:2"#,
        r#""www.entered.test." "CNAME" Target.Example.org"#,
    ];
    assert_eq!(listing(&server, &zone).await, entered);
    server.terminate();

    // From the start-up snapshot.
    let server = Server::start(&data);
    assert_eq!(listing(&server, &zone).await, entered);
    assert_eq!(
        server.answer("www.entered.test.", RecordType::CNAME).await,
        // Answered with the name lower-cased, as Knot stores it; listed as entered.
        ["www.entered.test. 60 CNAME target.example.org."]
    );
    // Only a trailing dot added: a change all the same, and then kill -9.
    let (status, body) = http(
        server.api,
        "POST",
        &rrset,
        Some(batch("UPSERT", "Target.Example.org.")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let log = server.kill();
    assert!(loaded_line(&log).contains("from=snapshot"), "{log}");

    // From the store.
    let server = Server::start(&data);
    assert_eq!(
        listing(&server, &zone).await,
        [
            r#""v6.entered.test." "AAAA" 2001:DB8:0::1 | 2001:db8::0:2"#,
            r#""www.entered.test." "CNAME" Target.Example.org."#,
        ]
    );
    assert_eq!(
        server.answer("v6.entered.test.", RecordType::AAAA).await,
        [
            "v6.entered.test. 60 AAAA 2001:db8::1",
            "v6.entered.test. 60 AAAA 2001:db8::2"
        ]
    );
    let log = server.terminate();
    assert!(loaded_line(&log).contains("from=store"), "{log}");
}

/// Waits until `<data>/r53-snapshot` holds a record set named `last` (in the store's wire
/// form): a live snapshot begun after `last`, the last record set written, was written (one
/// begun before that write cannot hold it). Its file is renamed into place before the server
/// logs it, so a kill at once may come before the log line.
fn wait_for_live_snapshot(data: &Path, last: &str) {
    let path = data.join(SNAPSHOT_FILE);
    let mut wire = Vec::new();
    for label in last.trim_end_matches('.').split('.') {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(wire.len()).any(|w| w == wire.as_slice()) {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no live snapshot holding {last} within 30 s: {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn after_a_quiet_moment_kill_9_starts_from_the_live_snapshot_and_a_later_change_is_not_hidden(
) {
    const QUIET_MS: u64 = 1000;
    let quiet = Duration::from_millis(QUIET_MS);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let snapshot = data.join(SNAPSHOT_FILE);

    let server = Server::start_with(&data, QUIET_MS);
    let (_, rrset) = zone_with_two_hosts(&server, "live").await;
    // `api` is the last record set zone_with_two_hosts writes.
    wait_for_live_snapshot(&data, "api.live.test.");
    server.kill();

    // (1) kill -9 after a quiet moment: the next start reads the live snapshot, and keeps it.
    let written = file_identity(&snapshot);
    let server = Server::start_with(&data, QUIET_MS);
    assert_eq!(
        server.answer("www.live.test.", RecordType::A).await,
        ["www.live.test. 300 A 192.0.2.10"]
    );
    assert_eq!(
        server.answer("api.live.test.", RecordType::A).await,
        ["api.live.test. 300 A 192.0.2.11"]
    );
    assert!(!server.answer("live.test.", RecordType::NS).await.is_empty());
    // The snapshot it read stands for the store: no live snapshot is written over it, however
    // quiet the zones are.
    std::thread::sleep(quiet * 2);
    assert_eq!(file_identity(&snapshot), written, "not written again");

    // (2) One more acknowledged change after it, then kill -9 at once.
    upsert(&server, &rrset, "www.live.test", "192.0.2.20").await;
    let log = server.kill();
    let line = loaded_line(&log);
    assert!(line.contains("from=snapshot"), "{line}");
    assert!(line.contains("record_sets=4"), "{line}");
    assert!(log.contains("start-up snapshot read"), "{log}");
    assert!(
        !log.contains("live start-up snapshot written"),
        "nothing rewritten while it stood: {log}"
    );
    assert_eq!(
        file_identity(&snapshot),
        written,
        "the live snapshot made before the change"
    );

    // The change is there: the snapshot was refused as stale, the store read.
    let server = Server::start_with(&data, 0);
    assert_eq!(
        server.answer("www.live.test.", RecordType::A).await,
        ["www.live.test. 300 A 192.0.2.20"]
    );
    assert_eq!(
        server.answer("api.live.test.", RecordType::A).await,
        ["api.live.test. 300 A 192.0.2.11"]
    );
    let log = server.terminate();
    assert!(log.contains("the start-up snapshot is stale"), "{log}");
    let line = loaded_line(&log);
    assert!(line.contains("from=store"), "{line}");
}

/// Record sets whose values an API client entered out of canonical order: DNS answers send
/// them in canonical order (Knot's, RFC 4034 §6.3), while the API lists them in the order and
/// spelling entered, after a clean restart (from the start-up snapshot, which the zone index,
/// kept in canonical order, writes) and after a kill -9 (from sled) alike.
#[tokio::test]
async fn values_list_in_the_order_entered_across_restarts_while_answers_are_canonical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let sets = [
        ("A", vec!["192.0.2.9", "192.0.2.10", "10.0.0.1"]),
        ("TXT", vec!["\"abcd\"", "\"ab\"", "\"abc\" \"d\""]),
        (
            "MX",
            vec!["20 a.order.test", "10 C.Order.test.", "10 b.order.test."],
        ),
    ];
    let listed_as_entered: Vec<String> = sets
        .iter()
        .map(|(rtype, values)| format!("{rtype} {}", values.join(" | ")))
        .collect();
    // As answers send them: by RDATA octets, names lower-cased (hickory shows a TXT record's
    // strings run together).
    let answered = [
        ("A", vec!["10.0.0.1", "192.0.2.9", "192.0.2.10"]),
        ("TXT", vec!["ab", "abcd", "abcd"]),
        (
            "MX",
            vec!["10 b.order.test.", "10 c.order.test.", "20 a.order.test."],
        ),
    ];
    let listing = |server: &Server, zone: &str| {
        let (api, path) = (server.api, format!("/2013-04-01/hostedzone/{zone}/rrset"));
        async move {
            let (status, body) = http(api, "GET", &path, None).await;
            assert_eq!(status, 200, "{body}");
            body["ResourceRecordSets"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["Name"] == "www.order.test.")
                .map(|s| {
                    let values = s["ResourceRecords"].as_array().unwrap().iter();
                    let values: Vec<_> = values.map(|r| r["Value"].as_str().unwrap()).collect();
                    format!("{} {}", s["Type"].as_str().unwrap(), values.join(" | "))
                })
                .collect::<Vec<_>>()
        }
    };
    let check = |server: &Server, zone: String| {
        let (dns, listed_as_entered, answered) = (server.dns, &listed_as_entered, &answered);
        let listed = listing(server, &zone);
        async move {
            let mut expected = listed_as_entered.clone();
            expected.sort(); // Route 53 lists a name's sets by type mnemonic
            assert_eq!(listed.await, expected);
            for (rtype, values) in answered {
                let rtype: RecordType = rtype.parse().unwrap();
                let response = query_udp(dns, &query("www.order.test.", rtype)).await;
                let got: Vec<String> = response
                    .answers
                    .iter()
                    .map(|r| r.data.to_string().to_ascii_lowercase())
                    .collect();
                assert_eq!(got, *values, "{rtype} in the order answers send it");
            }
        }
    };

    let server = Server::start(&data);
    let (zone, rrset) = empty_zone(&server, "order").await;
    let changes: Vec<_> = sets
        .iter()
        .map(|(rtype, values)| {
            let records: Vec<_> = values.iter().map(|v| json!({"Value": v})).collect();
            json!({"Action": "CREATE", "ResourceRecordSet": {"Name": "www.order.test",
                "Type": rtype, "TTL": 60, "ResourceRecords": records}})
        })
        .collect();
    let (status, body) = http(
        server.api,
        "POST",
        &rrset,
        Some(json!({"ChangeBatch": {"Changes": changes}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    check(&server, zone.clone()).await;
    server.terminate();

    // From the start-up snapshot.
    let server = Server::start(&data);
    check(&server, zone.clone()).await;
    // A change elsewhere makes the snapshot stale; then kill -9.
    upsert(&server, &rrset, "other.order.test", "192.0.2.1").await;
    let log = server.kill();
    assert!(loaded_line(&log).contains("from=snapshot"), "{log}");

    // From the store.
    let server = Server::start(&data);
    check(&server, zone).await;
    let log = server.terminate();
    assert!(loaded_line(&log).contains("from=store"), "{log}");
}
