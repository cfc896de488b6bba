//! VPCs (r53's own API, not Route 53's): named sets of CIDRs. A client whose source address
//! is in a VPC's CIDRs sees the private zones associated with that VPC.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{reply, JsonBody, PathId};
use super::types::{PutVpcRequest, VpcInfoDto};
use super::ApiState;
use crate::model::Vpc;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v1/vpcs", get(list))
        .route("/v1/vpcs/{id}", put(upsert).delete(remove))
}

#[derive(Serialize)]
struct ListResponse {
    #[serde(rename = "VPCs")]
    vpcs: Vec<VpcInfoDto>,
}

#[derive(Serialize)]
struct VpcResponse {
    #[serde(rename = "VPC")]
    vpc: VpcInfoDto,
}

async fn list(State(state): State<ApiState>) -> Response {
    let vpcs = state
        .service
        .vpcs()
        .await
        .iter()
        .map(VpcInfoDto::from)
        .collect();
    reply(StatusCode::OK, &ListResponse { vpcs })
}

async fn upsert(
    State(state): State<ApiState>,
    PathId(id): PathId,
    JsonBody(request): JsonBody<PutVpcRequest>,
) -> Result<Response, ApiError> {
    let vpc = Vpc::new(&id, &request.cidrs)?;
    let vpc = state.service.put_vpc(vpc).await?;
    Ok(reply(
        StatusCode::OK,
        &VpcResponse {
            vpc: VpcInfoDto::from(&vpc),
        },
    ))
}

async fn remove(
    State(state): State<ApiState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    state.service.delete_vpc(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
