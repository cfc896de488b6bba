//! `r53 lb` end to end: real backends and the LB on 127.0.0.x sockets, requests over real
//! connections, and the LB's registration in a running r53 (API and DNS).
//!
//! Health checks run every 100 ms here; where a test must wait for one it polls with a
//! deadline instead of sleeping a fixed time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use clap::Parser;
use hickory_proto::rr::RecordType;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Frame};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use r53::config::{Cli, Command};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::{query, query_udp};

const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `probe` until it gives a value, failing the test after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---- backends -------------------------------------------------------------------------------

/// A backend: answers `/health` per its switch, echoes request bodies on `/echo`, and
/// describes every other request (its name and the headers the LB added) as JSON.
struct Backend {
    addr: SocketAddr,
    state: Arc<BackendState>,
    shutdown: CancellationToken,
}

struct BackendState {
    name: &'static str,
    healthy: AtomicBool,
    /// Requests other than health checks.
    requests: AtomicUsize,
}

impl Backend {
    async fn start(name: &'static str) -> Self {
        let state = Arc::new(BackendState {
            name,
            healthy: AtomicBool::new(true),
            requests: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/health", axum::routing::get(health))
            .route("/echo", any(echo))
            .fallback(describe)
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        Self {
            addr,
            state,
            shutdown,
        }
    }

    fn set_healthy(&self, healthy: bool) {
        self.state.healthy.store(healthy, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn health(State(state): State<Arc<BackendState>>) -> StatusCode {
    if state.healthy.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// Streams the request body back as it arrives.
async fn echo(State(state): State<Arc<BackendState>>, request: Request) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let body = Body::from_stream(request.into_body().into_data_stream());
    ([("x-backend", state.name)], body).into_response()
}

async fn describe(
    State(state): State<Arc<BackendState>>,
    headers: HeaderMap,
    request: Request,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    };
    axum::Json(json!({
        "backend": state.name,
        "method": request.method().as_str(),
        "path": request.uri().to_string(),
        "host": header("host"),
        "x-forwarded-for": header("x-forwarded-for"),
        "x-forwarded-proto": header("x-forwarded-proto"),
        "x-forwarded-port": header("x-forwarded-port"),
        "via": header("via"),
        "x-secret": header("x-secret"),
        "connection": header("connection"),
    }))
    .into_response()
}

/// A backend that passes its health checks and hangs up on every other request without an
/// answer: a target failing mid-request. Counts the requests it dropped.
async fn hang_up_backend() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if head.starts_with(b"GET /health ") {
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                } else {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, dropped)
}

/// An address where nothing listens.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

// ---- the LB ---------------------------------------------------------------------------------

struct Lb {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Lb {
    /// Starts `r53 lb` with these arguments (parsed as the command line is), listening on
    /// `listen` port 0, checking `/health` every 100 ms.
    async fn start_on(listen: &str, targets: &[SocketAddr], extra: &[&str]) -> Self {
        let mut argv: Vec<String> = [
            "r53",
            "lb",
            "--health-path",
            "/health",
            "--health-interval",
            "100ms",
            "--health-timeout",
            "500ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for target in targets {
            argv.push("--target".into());
            argv.push(target.to_string());
        }
        argv.extend(extra.iter().map(|s| s.to_string()));
        let Command::Lb(args) = Cli::try_parse_from(argv).unwrap().command else {
            unreachable!("parsed as `r53 lb`");
        };
        let listener = TcpListener::bind((listen, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(r53::stubs::lb::serve(
            args,
            vec![listener],
            shutdown.clone(),
        ));
        Self {
            addr,
            shutdown,
            task,
        }
    }

    async fn start(targets: &[SocketAddr]) -> Self {
        Self::start_on("127.0.0.1", targets, &[]).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.task)
            .await
            .expect("the LB stops")
            .unwrap()
            .expect("the LB stops cleanly");
    }
}

// ---- a client -------------------------------------------------------------------------------

type ClientBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A request body fed from a channel, sent as it is fed.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

fn channel(buffer: usize) -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
    let (tx, rx) = tokio::sync::mpsc::channel(buffer);
    (tx, ChannelBody(rx))
}

/// One client connection to `addr`.
async fn connect(addr: SocketAddr) -> SendRequest<ClientBody> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The backend that answered, from `describe`'s JSON.
    fn backend(&self) -> String {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text());
        self.json()["backend"].as_str().unwrap().to_owned()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(sender: &mut SendRequest<ClientBody>, request: hyper::Request<ClientBody>) -> Answer {
    sender.ready().await.unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

fn request(method: &str, path: &str) -> hyper::http::request::Builder {
    hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "app.example")
}

fn empty() -> ClientBody {
    Empty::new().boxed()
}

/// One GET on a connection of its own.
async fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut sender = connect(addr).await;
    send(&mut sender, request("GET", path).body(empty()).unwrap()).await
}

/// Waits until requests through the LB reach every one of `names` (each target passed its
/// first check).
async fn wait_for_rotation(lb: &Lb, names: &[&str]) {
    eventually("every backend in rotation", || async {
        let mut seen = Vec::new();
        for _ in 0..names.len() * 2 {
            let answer = get(lb.addr, "/").await;
            if answer.status != StatusCode::OK {
                return None;
            }
            seen.push(answer.backend());
        }
        names
            .iter()
            .all(|n| seen.iter().any(|s| s == n))
            .then_some(())
    })
    .await;
}

// ---- the tests ------------------------------------------------------------------------------

#[tokio::test]
async fn spreads_requests_round_robin_over_healthy_backends() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = Lb::start(&[a.addr, b.addr]).await;
    wait_for_rotation(&lb, &["a", "b"]).await;

    let mut order = Vec::new();
    for _ in 0..10 {
        order.push(get(lb.addr, "/").await.backend());
    }
    for pair in order.windows(2) {
        assert_ne!(pair[0], pair[1], "not round robin: {order:?}");
    }
    assert_eq!(order.iter().filter(|b| *b == "a").count(), 5);
    lb.stop().await;
}

#[tokio::test]
async fn a_failing_backend_leaves_the_rotation_and_comes_back() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = Lb::start(&[a.addr, b.addr]).await;
    wait_for_rotation(&lb, &["a", "b"]).await;

    b.set_healthy(false);
    // Two failed checks (the default threshold), then only `a` is sent traffic.
    eventually("b out of rotation", || async {
        let mut answers = Vec::new();
        for _ in 0..6 {
            answers.push(get(lb.addr, "/").await.backend());
        }
        answers.iter().all(|n| n == "a").then_some(())
    })
    .await;
    let before = b.requests();
    for _ in 0..6 {
        assert_eq!(get(lb.addr, "/").await.backend(), "a");
    }
    assert_eq!(b.requests(), before, "an unhealthy target got requests");

    b.set_healthy(true);
    wait_for_rotation(&lb, &["a", "b"]).await;
    lb.stop().await;
}

#[tokio::test]
async fn no_healthy_target_is_503() {
    // Nothing listens: the first check fails, and until it has run nothing is routed either.
    let lb = Lb::start(&[closed_port().await]).await;
    let answer = get(lb.addr, "/").await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        answer.text().contains("no healthy targets"),
        "{}",
        answer.text()
    );
    lb.stop().await;

    // A target that was healthy and fails its checks.
    let a = Backend::start("a").await;
    let lb = Lb::start(&[a.addr]).await;
    wait_for_rotation(&lb, &["a"]).await;
    a.set_healthy(false);
    eventually("503 once the only target is unhealthy", || async {
        (get(lb.addr, "/").await.status == StatusCode::SERVICE_UNAVAILABLE).then_some(())
    })
    .await;
    lb.stop().await;
}

#[tokio::test]
async fn a_target_failing_mid_request_is_502_and_a_post_is_not_retried() {
    let (addr, dropped) = hang_up_backend().await;
    let healthy = Backend::start("a").await;
    let lb = Lb::start(&[addr, healthy.addr]).await;
    // Both pass their checks; round robin sends one of the first POSTs to the one that hangs
    // up. (Until the checks have run, the answer is 503.)
    let mut sender = connect(lb.addr).await;
    let (lb_addr, healthy_ref) = (lb.addr, &healthy);
    let healthy_before = eventually("a request to the target that hangs up", || async move {
        let before = healthy_ref.requests();
        let body = Full::new(Bytes::from_static(b"order=1")).boxed();
        let answer = send(
            &mut connect(lb_addr).await,
            request("POST", "/orders").body(body).unwrap(),
        )
        .await;
        match answer.status {
            StatusCode::BAD_GATEWAY => Some(before),
            StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE => None,
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    })
    .await;
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        1,
        "the POST went to the failing target once"
    );
    assert_eq!(
        healthy.requests(),
        healthy_before,
        "the POST was retried on another target"
    );
    // The client's connection to the LB outlives the target's failure.
    let answer = send(&mut sender, request("GET", "/").body(empty()).unwrap()).await;
    assert!(
        matches!(answer.status, StatusCode::OK | StatusCode::BAD_GATEWAY),
        "{}",
        answer.status
    );
    lb.stop().await;
}

#[tokio::test]
async fn forwarded_headers_are_added_and_hop_by_hop_ones_dropped() {
    let a = Backend::start("a").await;
    let lb = Lb::start(&[a.addr]).await;
    wait_for_rotation(&lb, &["a"]).await;

    let mut sender = connect(lb.addr).await;
    let answer = send(
        &mut sender,
        request("GET", "/some/path?x=1")
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
            .header("connection", "x-secret")
            .header("x-secret", "do not forward")
            .body(empty())
            .unwrap(),
    )
    .await;
    let seen = answer.json();
    assert_eq!(seen["path"], "/some/path?x=1");
    assert_eq!(seen["host"], "app.example", "the client's Host is kept");
    assert_eq!(seen["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-port"], lb.addr.port().to_string());
    assert_eq!(seen["via"], "1.1 r53-lb");
    assert_eq!(seen["x-secret"], Value::Null);

    // Without an incoming X-Forwarded-For, the client's address alone.
    let seen = get(lb.addr, "/").await.json();
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    lb.stop().await;
}

#[tokio::test]
async fn several_requests_share_one_client_connection() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let lb = Lb::start(&[a.addr, b.addr]).await;
    wait_for_rotation(&lb, &["a", "b"]).await;

    let mut sender = connect(lb.addr).await;
    let mut backends = Vec::new();
    for i in 0..6 {
        let answer = send(
            &mut sender,
            request("GET", &format!("/{i}")).body(empty()).unwrap(),
        )
        .await;
        assert_eq!(answer.json()["path"], format!("/{i}"));
        // The backend's keep-alive is the LB's business; the client must not see it.
        assert!(!answer.headers.contains_key("keep-alive"));
        backends.push(answer.backend());
    }
    // One client connection, still spread over both backends.
    assert!(backends.iter().any(|b| b == "a") && backends.iter().any(|b| b == "b"));
    lb.stop().await;
}

#[tokio::test]
async fn a_large_body_streams_through_and_back_intact() {
    let a = Backend::start("a").await;
    let lb = Lb::start(&[a.addr]).await;
    wait_for_rotation(&lb, &["a"]).await;

    let payload: Vec<u8> = (0..8 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let (tx, body) = channel(4);
    let chunks: Vec<Bytes> = payload
        .chunks(64 << 10)
        .map(Bytes::copy_from_slice)
        .collect();
    tokio::spawn(async move {
        for chunk in chunks {
            tx.send(chunk).await.unwrap();
        }
    });
    let mut sender = connect(lb.addr).await;
    let answer = send(
        &mut sender,
        request("POST", "/echo").body(body.boxed()).unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-backend"], "a");
    assert_eq!(answer.body.len(), payload.len());
    assert!(answer.body == payload, "the echoed body differs");
}

#[tokio::test]
async fn bodies_stream_both_ways_without_buffering() {
    // Each chunk comes back before the next is sent: an LB that buffered either body whole
    // would deadlock this exchange.
    let a = Backend::start("a").await;
    let lb = Lb::start(&[a.addr]).await;
    wait_for_rotation(&lb, &["a"]).await;

    let (tx, body) = channel(1);
    let mut sender = connect(lb.addr).await;
    tx.send(Bytes::from_static(b"ping 0;")).await.unwrap();
    sender.ready().await.unwrap();
    let response = tokio::time::timeout(
        DEADLINE,
        sender.send_request(request("POST", "/echo").body(body.boxed()).unwrap()),
    )
    .await
    .expect("response head before the request body ended")
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut incoming = response.into_body();
    let mut echoed = Vec::new();
    let mut sent = b"ping 0;".to_vec();
    for round in 1..=5 {
        while echoed.len() < sent.len() {
            let frame: Frame<Bytes> = tokio::time::timeout(DEADLINE, incoming.frame())
                .await
                .expect("the echo of what was sent so far")
                .unwrap()
                .unwrap();
            echoed.extend_from_slice(&frame.into_data().unwrap());
        }
        assert_eq!(echoed, sent);
        let chunk = format!("ping {round};");
        sent.extend_from_slice(chunk.as_bytes());
        tx.send(Bytes::from(chunk)).await.unwrap();
    }
    drop(tx);
    let rest = incoming.collect().await.unwrap().to_bytes();
    echoed.extend_from_slice(&rest);
    assert_eq!(echoed, sent);
    lb.stop().await;
}

#[tokio::test]
async fn requests_in_flight_finish_at_shutdown() {
    let a = Backend::start("a").await;
    let lb = Lb::start(&[a.addr]).await;
    wait_for_rotation(&lb, &["a"]).await;

    let (tx, body) = channel(1);
    let mut sender = connect(lb.addr).await;
    tx.send(Bytes::from_static(b"before;")).await.unwrap();
    sender.ready().await.unwrap();
    let response = sender
        .send_request(request("POST", "/echo").body(body.boxed()).unwrap())
        .await
        .unwrap();
    let mut incoming = response.into_body();
    let first = incoming
        .frame()
        .await
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"before;");

    // Shutdown begins with the request half done: the LB stops accepting connections...
    lb.shutdown.cancel();
    eventually("the listener closed", || async move {
        TcpStream::connect(lb.addr).await.is_err().then_some(())
    })
    .await;
    // ...and the request in flight still completes.
    tx.send(Bytes::from_static(b"after")).await.unwrap();
    drop(tx);
    let rest = incoming.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"after");
    tokio::time::timeout(DEADLINE, lb.task)
        .await
        .expect("the LB stops once the request is done")
        .unwrap()
        .unwrap();
}

// ---- registration with r53 ------------------------------------------------------------------

/// A JSON request to r53's API: status and body.
async fn api(addr: SocketAddr, method: &str, path: &str) -> (StatusCode, Value) {
    let answer = send(
        &mut connect(addr).await,
        hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .body(empty())
            .unwrap(),
    )
    .await;
    let body = if answer.body.is_empty() {
        Value::Null
    } else {
        answer.json()
    };
    (answer.status, body)
}

#[tokio::test]
async fn registers_with_r53_reports_health_and_deregisters() {
    let dir = tempfile::tempdir().unwrap();
    let running = r53::app::start(r53::app::ServeOptions {
        api_addr: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: dir.path().join("data"),
        zones_dir: None,
        ..Default::default()
    })
    .await
    .unwrap();
    let api_addr = running.api_addr.unwrap();
    let a = Backend::start("a").await;
    // On 127.0.0.4, so the answer is the LB's own address and no accident.
    let lb = Lb::start_on(
        "127.0.0.4",
        &[a.addr],
        &[
            "--name",
            "web",
            "--api",
            &format!("http://{api_addr}"),
            "--lease",
            "15",
            "--ttl",
            "30",
        ],
    )
    .await;
    const NAME: &str = "web.elb.r53.internal.";

    // Listed, with the LB's address, healthy.
    let endpoint = eventually("the LB registered as healthy", || async {
        let (status, body) = api(api_addr, "GET", "/v1/endpoints").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["Endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["DNSName"] == NAME && e["Addresses"][0]["Healthy"] == true)
            .cloned()
    })
    .await;
    assert_eq!(endpoint["Kind"], "load-balancer");
    assert_eq!(endpoint["TTL"], 30);
    assert_eq!(
        endpoint["Addresses"],
        json!([{"Address": "127.0.0.4", "Healthy": true}])
    );
    assert!(endpoint["HostedZoneId"].as_str().unwrap().starts_with('Z'));
    assert!(endpoint["LeaseExpiresAt"].is_string());

    // Answered by its own name in DNS. Polled: r53's listing can show a registration whose
    // PUT is still being made durable, before DNS publishes it.
    let dns_addr = running.dns_addr;
    let answer = eventually("the LB's name answered in DNS", || async move {
        let answer = query_udp(dns_addr, &query(NAME, RecordType::A)).await;
        (!answer.answers.is_empty()).then_some(answer)
    })
    .await;
    let addresses: Vec<String> = answer.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(addresses, ["127.0.0.4"], "{answer:?}");
    assert_eq!(answer.answers[0].ttl, 30, "the TTL the LB registered");

    // Traffic through the registered address works.
    assert_eq!(get(lb.addr, "/").await.backend(), "a");

    // Every target down: the registration says so at once (not at the next renewal).
    a.set_healthy(false);
    eventually("the registration reporting no healthy target", || async {
        let (status, body) = api(api_addr, "GET", &format!("/v1/endpoints/{NAME}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (body["Endpoint"]["Addresses"][0]["Healthy"] == false).then_some(())
    })
    .await;

    // Shut down: deregistered, gone from the list and from DNS.
    lb.stop().await;
    let (status, body) = api(api_addr, "GET", &format!("/v1/endpoints/{NAME}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, body) = api(api_addr, "GET", "/v1/endpoints").await;
    assert!(
        !body["Endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["DNSName"] == NAME),
        "{body}"
    );
    let answer = query_udp(running.dns_addr, &query(NAME, RecordType::A)).await;
    assert!(answer.answers.is_empty(), "{answer:?}");
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn keeps_serving_while_r53_is_unreachable() {
    let a = Backend::start("a").await;
    let nowhere = closed_port().await;
    let lb = Lb::start_on(
        "127.0.0.1",
        &[a.addr],
        &["--name", "web", "--api", &format!("http://{nowhere}")],
    )
    .await;
    wait_for_rotation(&lb, &["a"]).await;
    assert_eq!(get(lb.addr, "/").await.backend(), "a");
    // Shutdown still completes: the failed deregistration is a warning, not a hang.
    lb.stop().await;
}
