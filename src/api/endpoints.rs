//! Endpoints (r53's own API, not Route 53's): the load balancers and databases that Alias
//! records target. `PUT` registers, replaces and renews; `DELETE` deregisters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{reply, JsonBody, PathId};
use super::types::{EndpointDto, PutEndpointRequest};
use super::ApiState;
use crate::model::parse_name;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/endpoints", get(list))
        .route("/v1/endpoints/{name}", get(fetch).put(put).delete(remove))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    endpoints: Vec<EndpointDto>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointResponse {
    endpoint: EndpointDto,
}

async fn list(State(state): State<ApiState>) -> Response {
    let now = std::time::SystemTime::now();
    let endpoints = state
        .service
        .endpoints()
        .await
        .iter()
        .filter(|e| e.is_live(now))
        .map(EndpointDto::from)
        .collect();
    reply(StatusCode::OK, &ListResponse { endpoints })
}

async fn fetch(State(state): State<ApiState>, PathId(name): PathId) -> Result<Response, ApiError> {
    let dns_name = parse_name(&name)?;
    let endpoint = state
        .service
        .endpoint(&dns_name)
        .await
        .filter(|e| e.is_live(std::time::SystemTime::now()))
        .ok_or_else(|| ApiError::NoSuchEndpoint(dns_name.to_string()))?;
    Ok(reply(
        StatusCode::OK,
        &EndpointResponse {
            endpoint: EndpointDto::from(&endpoint),
        },
    ))
}

async fn put(
    State(state): State<ApiState>,
    PathId(name): PathId,
    JsonBody(request): JsonBody<PutEndpointRequest>,
) -> Result<Response, ApiError> {
    let endpoint = request.into_model(&name)?;
    let endpoint = state.service.put_endpoint(endpoint).await?;
    Ok(reply(
        StatusCode::OK,
        &EndpointResponse {
            endpoint: EndpointDto::from(&endpoint),
        },
    ))
}

async fn remove(
    State(state): State<ApiState>,
    PathId(name): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let dns_name = parse_name(&name)?;
    state.service.delete_endpoint(&dns_name).await?;
    Ok(StatusCode::NO_CONTENT)
}
