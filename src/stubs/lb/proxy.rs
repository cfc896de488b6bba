//! The data path: accept HTTP/1.1 connections, forward each request to the next healthy target,
//! stream the answer back.
//!
//! Bodies stream both ways (nothing is buffered whole), client connections are kept alive, and
//! target connections are pooled. Headers are rewritten as a gateway must (RFC 9110 §7.6):
//! hop-by-hop fields dropped, `Via` added, and the `X-Forwarded-*` fields a backend behind a
//! load balancer expects. This module chooses no targets itself; [`Pool`] does.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::http::uri::PathAndQuery;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::health::{describe, Pool};

/// Bodies in both directions: a target's or a client's stream, or one of ours.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// A client that sends no complete request head in this time is disconnected, so slow or idle
/// connections cannot pile up.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Reaching a target: a healthy target accepts at once; one that does not is failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle pooled connections to targets are closed before typical backends' own keep-alive
/// timeouts would close them under us.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
const VIA_VALUE: HeaderValue = HeaderValue::from_static("1.1 r53-lb");

pub struct Proxy {
    pool: Arc<Pool>,
    client: Client<HttpConnector, ProxyBody>,
}

impl Proxy {
    pub fn new(pool: Arc<Pool>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        Self { pool, client }
    }

    /// Answers one client request: the target's response, or 503/502/405/400 of our own.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Response<ProxyBody> {
        if request.method() == Method::CONNECT {
            return plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not supported: this is a load balancer, not a forward proxy\n",
            );
        }
        let Some(first) = self.pool.pick(None) else {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "no healthy targets\n");
        };
        let (mut parts, body) = request.into_parts();
        prepare_request(&mut parts, peer, local);
        // A request with no body to an idempotent method can be sent again when the first
        // target refuses the connection: nothing reached it, and the body is not lost.
        // Anything else is never retried.
        let empty = body.is_end_stream();
        let replay = (empty && is_idempotent(&parts.method)).then(|| parts.clone());
        let body = if empty { empty_body() } else { body.boxed() };
        let error = match self.send(first, parts, body).await {
            Ok(response) => return response,
            Err(e) => e,
        };
        let (target, error) = match (error, replay) {
            (SendError::Connect(e), Some(parts)) => match self.pool.pick(Some(first)) {
                Some(second) if second != first => {
                    debug!(lb.target = %self.pool.target(first), error = %e, "cannot connect; trying the next target");
                    match self.send(second, parts, empty_body()).await {
                        Ok(response) => return response,
                        Err(e) => (second, e),
                    }
                }
                _ => (first, SendError::Connect(e)),
            },
            (error, _) => (first, error),
        };
        match error {
            SendError::BadRequest(message) => plain(StatusCode::BAD_REQUEST, &message),
            SendError::Connect(e) | SendError::Failed(e) => {
                warn!(lb.target = %self.pool.target(target), error = %e, "the target failed the request");
                plain(
                    StatusCode::BAD_GATEWAY,
                    "bad gateway: the target did not answer\n",
                )
            }
        }
    }

    async fn send(
        &self,
        target: usize,
        mut parts: Parts,
        body: ProxyBody,
    ) -> Result<Response<ProxyBody>, SendError> {
        let path = match parts.uri.path_and_query() {
            Some(pq) => pq.clone(),
            None => PathAndQuery::from_static("/"),
        };
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(self.pool.target(target).clone())
            .path_and_query(path)
            .build()
            .map_err(|e| SendError::BadRequest(format!("bad request target: {e}\n")))?;
        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|e| {
                if e.is_connect() {
                    SendError::Connect(describe(&e))
                } else {
                    SendError::Failed(describe(&e))
                }
            })?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // The target's HTTP version is not the client's business: answered as HTTP/1.1, hyper
        // keeps the client connection alive (and still answers an HTTP/1.0 client in 1.0).
        parts.version = Version::HTTP_11;
        Ok(Response::from_parts(parts, body.boxed()))
    }
}

enum SendError {
    /// The connection to the target could not be made: the request never left.
    Connect(String),
    /// The target failed after the request (or part of it) was sent.
    Failed(String),
    /// The client's request cannot be forwarded as it is.
    BadRequest(String),
}

/// RFC 9110 §9.2.2: methods whose repetition has the effect of one request.
fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

fn empty_body() -> ProxyBody {
    Empty::new()
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// A short text answer of the LB's own.
fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::copy_from_slice(text.as_bytes()))
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Rewrites a client's request head for a target: the gateway's duties of RFC 9110 §7.6 and
/// the `X-Forwarded-*` fields.
pub fn prepare_request(parts: &mut Parts, peer: SocketAddr, local: SocketAddr) {
    // RFC 9112 §3.2.2: a request in absolute-form names its host in the target, and that wins
    // over any Host field. It goes on in origin-form, so the host moves to the Host field.
    if let Some(authority) = parts.uri.authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            parts.headers.insert(header::HOST, host);
        }
    }
    strip_hop_by_hop(&mut parts.headers);
    // The LB answers `Expect: 100-continue` itself (hyper sends the 100 as soon as the body is
    // read, which is when it starts streaming to the target), so the target must not see it.
    parts.headers.remove(header::EXPECT);
    let headers = &mut parts.headers;
    // Appended to what earlier proxies wrote, as AWS's load balancers do: the client's own
    // address is the last entry, the only one this LB vouches for.
    let client = peer.ip().to_canonical().to_string();
    let mut forwarded_for: Vec<u8> = Vec::new();
    for value in headers.get_all(&X_FORWARDED_FOR) {
        let value = value.as_bytes().trim_ascii();
        if !value.is_empty() {
            forwarded_for.extend_from_slice(value);
            forwarded_for.extend_from_slice(b", ");
        }
    }
    forwarded_for.extend_from_slice(client.as_bytes());
    if let Ok(value) = HeaderValue::from_bytes(&forwarded_for) {
        headers.insert(X_FORWARDED_FOR, value);
    }
    // These describe the connection to this LB, so a client's own values are replaced.
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    headers.insert(X_FORWARDED_PORT, HeaderValue::from(local.port()));
    // RFC 9110 §7.6.3: a gateway MUST send Via in each request it forwards.
    headers.append(header::VIA, VIA_VALUE);
    // The target connection is the LB's own, and HTTP/1.1 whatever the client spoke.
    parts.version = Version::HTTP_11;
}

/// RFC 9110 §7.6.1: removes the fields named in `Connection`, `Connection` itself, and the
/// fields known to be hop-by-hop whether or not they are named (Proxy-Connection, Keep-Alive,
/// TE, Transfer-Encoding, Upgrade). Upgrades (WebSocket) are therefore not passed through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|option| HeaderName::from_bytes(option.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("proxy-connection"),
        HeaderName::from_static("keep-alive"),
        header::TE,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Serves one listener until `shutdown`, then lets the open connections finish their requests
/// for up to `drain` before closing them.
pub async fn accept_loop(
    listener: TcpListener,
    proxy: Arc<Proxy>,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let local = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            warn!(error = %e, "a listener has no local address; not serving it");
            return;
        }
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    warn!(lb.listen = %local, error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        // Small writes (a response head) should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        let service = service_fn(move |request| {
            let proxy = proxy.clone();
            async move { Ok::<_, Infallible>(proxy.handle(request, peer, local).await) }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                debug!(client = %peer, error = %e, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(lb.listen = %local, connections = connections.len(), "connections still busy after the drain timeout; closing them");
    }
    connections.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::get("/path?q=1");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_appended_to_what_came_in() {
        let mut p = parts(&[
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-for", "198.51.100.1, 10.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
        ]);
        prepare_request(&mut p, addr("192.0.2.9:5555"), addr("127.0.0.1:8080"));
        let all: Vec<_> = p.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(all, ["203.0.113.7, 198.51.100.1, 10.0.0.1, 192.0.2.9"]);
        assert_eq!(p.headers["x-forwarded-proto"], "http");
        assert_eq!(p.headers["x-forwarded-port"], "8080");
        assert_eq!(p.headers["via"], "1.1 r53-lb");
    }

    #[test]
    fn a_mapped_ipv4_client_is_written_as_ipv4() {
        let mut p = parts(&[]);
        prepare_request(&mut p, addr("[::ffff:192.0.2.9]:1"), addr("[::]:80"));
        assert_eq!(p.headers["x-forwarded-for"], "192.0.2.9");
    }

    #[test]
    fn hop_by_hop_fields_are_not_forwarded() {
        let mut p = parts(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "close"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("expect", "100-continue"),
            ("x-kept", "yes"),
        ]);
        prepare_request(&mut p, addr("192.0.2.9:1"), addr("127.0.0.1:80"));
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "proxy-connection",
            "te",
            "transfer-encoding",
            "upgrade",
            "expect",
        ] {
            assert!(!p.headers.contains_key(gone), "{gone} was forwarded");
        }
        assert_eq!(p.headers["x-kept"], "yes");
    }

    #[test]
    fn a_client_cannot_name_our_own_fields_away() {
        // `Connection: x-forwarded-for` drops the client's value, not the one the LB adds.
        let mut p = parts(&[
            ("connection", "x-forwarded-for"),
            ("x-forwarded-for", "1.2.3.4"),
        ]);
        prepare_request(&mut p, addr("192.0.2.9:1"), addr("127.0.0.1:80"));
        assert_eq!(p.headers["x-forwarded-for"], "192.0.2.9");
    }

    #[test]
    fn absolute_form_host_wins_over_the_host_field() {
        let mut p = Request::get("http://example.com:81/x")
            .header("host", "other.example")
            .body(())
            .unwrap()
            .into_parts()
            .0;
        prepare_request(&mut p, addr("192.0.2.9:1"), addr("127.0.0.1:80"));
        assert_eq!(p.headers["host"], "example.com:81");
    }
}
