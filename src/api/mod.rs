//! The REST API, shaped like Route 53's (`/2013-04-01/...`, its field names and errors).
//!
//! One router per resource merged at the root; one error type ([`error::ApiError`]); wire
//! shapes in [`types`]; extractors that reject in Route 53's error shape in `extract`. The only module that knows HTTP and JSON. Handlers call the
//! [`Service`]; they never touch the store or the catalog.

mod changes;
mod endpoints;
pub mod error;
mod extract;
mod hosted_zones;
mod objects;
mod resolver;
mod rrsets;
pub mod types;
mod vpcs;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hickory_proto::rr::Name;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::service::Service;
use error::ApiError;

/// The OpenAPI description, served at `/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../api/openapi.yaml");

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub service: Arc<Service>,
    /// r53's own name servers, given to new zones.
    pub name_servers: Arc<Vec<Name>>,
    pub token: Option<Arc<str>>,
    /// The embedded resolver, when recursion is on.
    pub resolver: Option<Arc<crate::resolver::Resolver>>,
    pub body_limit: usize,
}

/// The whole API.
pub fn router(state: ApiState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .merge(hosted_zones::router())
        .merge(rrsets::router())
        .merge(changes::router())
        .merge(endpoints::router())
        .merge(vpcs::router())
        .merge(resolver::router())
        .route("/openapi.yaml", get(openapi))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn openapi() -> impl IntoResponse {
    ([("content-type", "application/yaml")], OPENAPI_YAML)
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::UnknownOperation(format!("{} {}", request.method(), request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::MethodNotAllowed(format!("{} {}", request.method(), request.uri().path()))
}

/// With a token configured, every request must carry `Authorization: Bearer <token>`.
async fn authorize(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        let presented = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let ok = presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes()));
        if !ok {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Limits on API requests that protect the server from slow and numerous clients.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    /// How long a request may take to arrive: its headers (hyper's `header_read_timeout`,
    /// which also closes a keep-alive connection idle this long), then its body. 408 when
    /// the body is late; a connection whose headers are late is closed.
    pub request_timeout: Duration,
    /// Requests handled at once; past it, 503 with Route 53's `Throttling` code at once
    /// (a client backs off and retries, as the AWS SDKs do on Throttling).
    pub max_concurrent: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            max_concurrent: 256,
        }
    }
}

/// Route 53's error shape for the rejections made here, before any handler runs.
fn rejection(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "Error": { "Type": "Sender", "Code": code, "Message": message }
    });
    (status, axum::Json(body)).into_response()
}

/// Puts `limits` around `router`: the concurrency cap outermost, then the body read under
/// the request timeout (with `body_limit` applied while reading).
///
/// The timeout covers receiving the request, not handling it: a handler dropped between
/// its sled commit and its in-memory update would leave an acknowledged-looking change on
/// disk that DNS does not serve, so once a request is in, it runs to the end. Handlers wait
/// only on the store and the writer lock, which the timeout would not make faster anyway.
pub fn limit(router: Router, limits: &ApiLimits, body_limit: usize) -> Router {
    let permits = Arc::new(Semaphore::new(limits.max_concurrent));
    let timeout = limits.request_timeout;
    router
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            read_body_in_time(request, next, timeout, body_limit)
        }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let permits = permits.clone();
            async move {
                let Ok(_permit) = permits.try_acquire_owned() else {
                    return rejection(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Throttling",
                        "Rate exceeded: too many requests in progress; retry later",
                    );
                };
                next.run(request).await
            }
        }))
}

/// Reads the whole body within `timeout` (at most `body_limit` bytes), then hands the request
/// on with the body in memory; a slow upload costs its sender a 408, never a handler's time.
async fn read_body_in_time(
    request: Request,
    next: Next,
    timeout: Duration,
    body_limit: usize,
) -> Response {
    let (parts, body) = request.into_parts();
    let read = Limited::new(body, body_limit).collect();
    let bytes = match tokio::time::timeout(timeout, read).await {
        Err(_) => {
            return rejection(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeout",
                &format!(
                    "The request body did not arrive within {} seconds",
                    timeout.as_secs_f64()
                ),
            )
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return ApiError::PayloadTooLarge.into_response()
        }
        Ok(Err(e)) => {
            return ApiError::InvalidInput(format!("Could not read the request body: {e}"))
                .into_response()
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    // The handler runs in a task of its own, to the end: hyper drops the request's future
    // when the client hangs up, and a change cancelled between its store write and its
    // in-memory update would be on disk but not served until a restart.
    let handler = tokio::spawn(next.run(Request::from_parts(parts, Body::from(bytes))));
    match handler.await {
        Ok(response) => response,
        Err(e) => ApiError::Internal(format!("API handler failed: {e}")).into_response(),
    }
}

/// Serves the API on `listener` until `shutdown`, then lets requests in progress finish.
///
/// hyper directly rather than `axum::serve`, which sets no timer and so no header read
/// timeout: a client trickling its headers (slowloris) would hold a connection for ever.
/// Here headers must arrive within `request_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ApiLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
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
                    warn!(error = %e, "the API cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        connections.spawn(async move {
            if let Err(e) = connection.await {
                debug!(client = %peer, error = %e, "API connection ended with an error");
            }
        });
    }
    drop(listener);
    // Requests in progress finish (a change being committed is never cut off); idle
    // connections close at once; one still trickling its headers gets its timeout, no more.
    if tokio::time::timeout(limits.request_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            connections = connections.len(),
            "API connections still open after the request timeout; closing them"
        );
    }
    connections.abort_all();
    Ok(())
}
