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
mod resolver;
mod rrsets;
pub mod types;
mod vpcs;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hickory_proto::rr::Name;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
