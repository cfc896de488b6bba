//! `r53 rds` end to end: r53 in-process, the controller as a task, "databases" that are plain
//! TCP listeners on 127.0.0.x addresses (all of 127.0.0.0/8 is loopback on Linux) stopped to
//! make them fail, and the endpoints' answers read over DNS.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use r53::app::{Running, ServeOptions};
use r53::config::ApiArgs;
use r53::stubs::rds::{self, RdsArgs};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{query, query_udp};

const WRITER: &str = "mydb.rds.r53.internal.";
const READER: &str = "mydb-ro.rds.r53.internal.";
const INTERVAL: Duration = Duration::from_millis(100);
const UNHEALTHY_THRESHOLD: u32 = 3;
/// Beyond interval × threshold: the registration request, r53's durable write, the query.
const SLACK: Duration = Duration::from_millis(500);

/// A database stand-in: a listener that accepts and closes connections until stopped.
struct Db {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Db {
    async fn start(ip: &str) -> Self {
        Self::start_at(format!("{ip}:0").parse().unwrap()).await
    }

    async fn start_at(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind a database");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        });
        Self { addr, task }
    }

    fn ip(&self) -> IpAddr {
        self.addr.ip()
    }

    /// Closes the listener: from now on connections are refused.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn start_r53(dir: &std::path::Path, api: SocketAddr) -> Running {
    r53::app::start(ServeOptions {
        api_addr: Some(api),
        data_dir: dir.join("data"),
        zones_dir: None,
        ..ServeOptions::default()
    })
    .await
    .expect("r53 starts")
}

struct Rds {
    control: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

fn args(api: SocketAddr, primary: &Db, standby: Option<&Db>, replicas: &[&Db]) -> RdsArgs {
    RdsArgs {
        name: "mydb".into(),
        primary: primary.addr.to_string(),
        standby: standby.map(|s| s.addr.to_string()),
        replicas: replicas.iter().map(|r| r.addr.to_string()).collect(),
        check_interval: INTERVAL,
        unhealthy_threshold: UNHEALTHY_THRESHOLD,
        healthy_threshold: 2,
        check_timeout: Duration::from_millis(100),
        control: "127.0.0.1:0".parse().unwrap(),
        api: ApiArgs {
            api: Some(format!("http://{api}")),
            api_token: None,
        },
        lease: Duration::from_secs(15),
        ttl: 5,
    }
}

impl Rds {
    async fn start(args: RdsArgs) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let control = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(rds::serve(args, listener, shutdown.clone()));
        Self {
            control,
            shutdown,
            task,
        }
    }

    async fn control(&self, method: &str, path: &str) -> (u16, Value) {
        http(method, &format!("http://{}{path}", self.control)).await
    }

    async fn status(&self) -> Value {
        let (status, body) = self.control("GET", "/status").await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the instance at `addr` has `health` (as `GET /status` shows it).
    async fn wait_health(&self, addr: SocketAddr, health: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.status().await;
            let now = status["Instances"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["Instance"] == addr.to_string())
                .map(|i| i["Health"].clone());
            if now.as_ref().and_then(Value::as_str) == Some(health) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{addr} never became {health}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("r53 rds stops")
            .expect("no panic")
            .expect("r53 rds exits cleanly");
    }
}

/// One HTTP request with ureq (blocking, so off the runtime); the status and the JSON body
/// (`Null` when empty).
async fn http(method: &str, url: &str) -> (u16, Value) {
    let (method, url) = (method.to_owned(), url.to_owned());
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = match method.as_str() {
            "POST" => agent.post(&url).send_empty(),
            "GET" => agent.get(&url).call(),
            "DELETE" => agent.delete(&url).call(),
            other => panic!("{other}"),
        }
        .expect("an HTTP answer");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    })
    .await
    .unwrap()
}

/// The A records r53 answers for `name`, and their TTL.
async fn answer(dns: SocketAddr, name: &str) -> (BTreeSet<IpAddr>, Option<u32>) {
    let response = query_udp(dns, &query(name, RecordType::A)).await;
    let ttl = response.answers.first().map(|r| r.ttl);
    let ips = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            _ => None,
        })
        .collect();
    (ips, ttl)
}

fn set(ips: &[IpAddr]) -> BTreeSet<IpAddr> {
    ips.iter().copied().collect()
}

/// Polls DNS until `name` answers exactly `want`; returns when it first did.
async fn wait_answer(dns: SocketAddr, name: &str, want: &BTreeSet<IpAddr>) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (now, _) = answer(dns, name).await;
        if &now == want {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{name} answers {now:?}, never {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writer_moves_to_the_standby_within_interval_times_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let r53 = start_r53(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let api = r53.api_addr.unwrap();
    let primary = Db::start("127.0.0.11").await;
    let standby = Db::start("127.0.0.12").await;
    let (primary_addr, primary_ip, standby_ip) = (primary.addr, primary.ip(), standby.ip());
    let rds = Rds::start(args(api, &primary, Some(&standby), &[])).await;

    wait_answer(r53.dns_addr, WRITER, &set(&[primary_ip])).await;
    let (_, ttl) = answer(r53.dns_addr, WRITER).await;
    assert_eq!(ttl, Some(5), "the endpoint's TTL is --ttl");
    rds.wait_health(standby.addr, "healthy").await;

    primary.stop().await;
    let stopped = Instant::now();
    let moved = wait_answer(r53.dns_addr, WRITER, &set(&[standby_ip])).await;
    let took = moved - stopped;
    let bound = INTERVAL * UNHEALTHY_THRESHOLD;
    eprintln!("the writer moved {took:?} after the primary stopped (bound {bound:?})");
    assert!(
        took <= bound + SLACK,
        "the writer moved after {took:?}; the bound is {bound:?} (+{SLACK:?})"
    );
    // Three failed checks in a row, a check interval apart, cannot happen sooner.
    assert!(
        took >= INTERVAL * (UNHEALTHY_THRESHOLD - 1),
        "the writer moved after {took:?}, before the primary failed {UNHEALTHY_THRESHOLD} checks"
    );

    let status = rds.status().await;
    assert_eq!(status["Failovers"], 1, "{status}");
    let roles: Vec<(&str, &str)> = status["Instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["Role"].as_str().unwrap(), i["Address"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [("standby", "127.0.0.11"), ("primary", "127.0.0.12")]
    );

    // The old primary comes back: it stays the standby (no automatic fail-back).
    let primary = Db::start_at(primary_addr).await;
    rds.wait_health(primary_addr, "healthy").await;
    for _ in 0..3 {
        assert_eq!(answer(r53.dns_addr, WRITER).await.0, set(&[standby_ip]));
    }

    rds.stop().await;
    primary.stop().await;
    standby.stop().await;
    r53.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_failover_swaps_the_writer_at_once_and_needs_a_healthy_standby() {
    let dir = tempfile::tempdir().unwrap();
    let r53 = start_r53(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let api = r53.api_addr.unwrap();
    let primary = Db::start("127.0.0.11").await;
    let standby = Db::start("127.0.0.12").await;
    let rds = Rds::start(args(api, &primary, Some(&standby), &[])).await;
    wait_answer(r53.dns_addr, WRITER, &set(&[primary.ip()])).await;
    rds.wait_health(standby.addr, "healthy").await;

    let (status, body) = rds.control("POST", "/failover").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["Writer"]["Instance"],
        standby.addr.to_string(),
        "{body}"
    );
    assert_eq!(body["Writer"]["Address"], "127.0.0.12", "{body}");
    assert_eq!(
        body["Standby"]["Instance"],
        primary.addr.to_string(),
        "{body}"
    );
    assert_eq!(body["WriterEndpoint"], WRITER, "{body}");
    assert_eq!(body["Registered"], true, "{body}");
    // Acknowledged by r53 before the 200: the very next answer is the new writer.
    assert_eq!(answer(r53.dns_addr, WRITER).await.0, set(&[standby.ip()]));

    // And back: the old primary is a healthy standby now.
    let (status, body) = rds.control("POST", "/failover").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(answer(r53.dns_addr, WRITER).await.0, set(&[primary.ip()]));

    // With the standby down there is nothing to promote.
    let standby_addr = standby.addr;
    standby.stop().await;
    rds.wait_health(standby_addr, "unhealthy").await;
    let (status, body) = rds.control("POST", "/failover").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["Error"]["Code"], "InvalidDBInstanceState", "{body}");
    assert!(
        body["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains(&standby_addr.to_string()),
        "{body}"
    );
    assert_eq!(answer(r53.dns_addr, WRITER).await.0, set(&[primary.ip()]));

    // Unknown routes and methods answer in the same error shape.
    let (status, body) = rds.control("GET", "/failover").await;
    assert_eq!(status, 405, "{body}");
    assert_eq!(body["Error"]["Code"], "MethodNotAllowed", "{body}");
    let (status, body) = rds.control("GET", "/nope").await;
    assert_eq!(status, 404, "{body}");

    rds.stop().await;
    primary.stop().await;
    r53.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn post_failover_without_a_standby_is_409() {
    let dir = tempfile::tempdir().unwrap();
    let r53 = start_r53(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let primary = Db::start("127.0.0.11").await;
    let rds = Rds::start(args(r53.api_addr.unwrap(), &primary, None, &[])).await;
    wait_answer(r53.dns_addr, WRITER, &set(&[primary.ip()])).await;
    let (status, body) = rds.control("POST", "/failover").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["Error"]["Message"]
            .as_str()
            .unwrap()
            .contains("no standby"),
        "{body}"
    );
    rds.stop().await;
    primary.stop().await;
    r53.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reader_answers_the_healthy_replicas_then_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let r53 = start_r53(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let primary = Db::start("127.0.0.11").await;
    let r1 = Db::start("127.0.0.21").await;
    let r2 = Db::start("127.0.0.22").await;
    let r3 = Db::start("127.0.0.23").await;
    let rds = Rds::start(args(
        r53.api_addr.unwrap(),
        &primary,
        None,
        &[&r1, &r2, &r3],
    ))
    .await;
    let all = set(&[r1.ip(), r2.ip(), r3.ip()]);
    wait_answer(r53.dns_addr, READER, &all).await;
    // Every answer carries every healthy replica, so clients spread over all of them.
    for _ in 0..5 {
        assert_eq!(answer(r53.dns_addr, READER).await.0, all);
    }

    let (ip1, ip3) = (r1.ip(), r3.ip());
    r2.stop().await;
    let healthy = set(&[ip1, ip3]);
    wait_answer(r53.dns_addr, READER, &healthy).await;
    for _ in 0..5 {
        assert_eq!(answer(r53.dns_addr, READER).await.0, healthy);
    }

    // No healthy replica: reads go to the writer.
    r1.stop().await;
    r3.stop().await;
    wait_answer(r53.dns_addr, READER, &set(&[primary.ip()])).await;
    assert_eq!(answer(r53.dns_addr, WRITER).await.0, set(&[primary.ip()]));

    rds.stop().await;
    primary.stop().await;
    r53.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_deregisters_both_endpoints() {
    let dir = tempfile::tempdir().unwrap();
    let r53 = start_r53(dir.path(), "127.0.0.1:0".parse().unwrap()).await;
    let api = r53.api_addr.unwrap();
    let primary = Db::start("127.0.0.11").await;
    let replica = Db::start("127.0.0.21").await;
    let rds = Rds::start(args(api, &primary, None, &[&replica])).await;
    wait_answer(r53.dns_addr, WRITER, &set(&[primary.ip()])).await;
    wait_answer(r53.dns_addr, READER, &set(&[replica.ip()])).await;
    let (status, body) = http("GET", &format!("http://{api}/v1/endpoints")).await;
    assert_eq!(status, 200, "{body}");
    let kinds: Vec<&str> = body["Endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["database", "database"], "{body}");

    rds.stop().await;
    let (status, body) = http("GET", &format!("http://{api}/v1/endpoints")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Endpoints"].as_array().unwrap().len(), 0, "{body}");
    for name in [WRITER, READER] {
        let (status, body) = http("GET", &format!("http://{api}/v1/endpoints/{name}")).await;
        assert_eq!(status, 404, "{body}");
        assert!(answer(r53.dns_addr, name).await.0.is_empty(), "{name}");
    }

    primary.stop().await;
    replica.stop().await;
    r53.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registration_is_retried_until_r53_is_reachable() {
    // A port nothing listens on yet; r53 is started on it later.
    let api = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let primary = Db::start("127.0.0.11").await;
    let rds = Rds::start(args(api, &primary, None, &[])).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = rds.status().await;
        if status["RegistrationError"].is_string() {
            assert_eq!(status["Writer"]["Registered"], false, "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "no registration error: {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let dir = tempfile::tempdir().unwrap();
    let r53 = start_r53(dir.path(), api).await;
    wait_answer(r53.dns_addr, WRITER, &set(&[primary.ip()])).await;
    let status = rds.status().await;
    assert_eq!(status["Writer"]["Registered"], true, "{status}");
    assert_eq!(status["RegistrationError"], Value::Null, "{status}");

    rds.stop().await;
    primary.stop().await;
    r53.shutdown().await.unwrap();
}
