//! Changes: GetChange.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use super::extract::{reply, PathId};
use super::types::ChangeInfoResponse;
use super::ApiState;

pub fn router() -> Router<ApiState> {
    Router::new().route("/2013-04-01/change/{id}", get(fetch))
}

async fn fetch(State(state): State<ApiState>, PathId(id): PathId) -> Result<Response, ApiError> {
    let change = state.service.change(&id).await?;
    Ok(reply(StatusCode::OK, &ChangeInfoResponse::from(&change)))
}
