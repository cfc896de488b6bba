//! Record sets: ChangeResourceRecordSets and ListResourceRecordSets.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{reply, JsonBody, Params, PathId};
use super::hosted_zones::{max_items, zone_id};
use super::types::{ChangeInfoResponse, ChangeResourceRecordSetsRequest, ResourceRecordSetDto};
use super::ApiState;
use crate::model::{parse_name, parse_type, route53_name, type_name, RrKey};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/2013-04-01/hostedzone/{id}/rrset", get(list).post(change))
        .route("/2013-04-01/hostedzone/{id}/rrset/", get(list).post(change))
}

async fn change(
    State(state): State<ApiState>,
    PathId(id): PathId,
    JsonBody(request): JsonBody<ChangeResourceRecordSetsRequest>,
) -> Result<Response, ApiError> {
    let id = zone_id(&id)?;
    let batch = request.change_batch.into_model()?;
    let change = state.service.change_rrsets(&id, batch).await?;
    Ok(reply(StatusCode::OK, &ChangeInfoResponse::from(&change)))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    rtype: Option<String>,
    #[serde(default)]
    identifier: Option<String>,
    #[serde(default)]
    maxitems: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListResponse {
    resource_record_sets: Vec<ResourceRecordSetDto>,
    is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_record_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_record_type: Option<String>,
    max_items: String,
}

/// Record sets in Route 53's order (names label by label from the right, then type),
/// starting at `name`/`type`.
async fn list(
    State(state): State<ApiState>,
    PathId(id): PathId,
    Params(params): Params<ListParams>,
) -> Result<Response, ApiError> {
    let id = zone_id(&id)?;
    let limit = max_items(params.maxitems.as_deref(), 300)?;
    // `identifier` pages among record sets with a SetIdentifier; until routing policies
    // exist no set has one, so it does not move the start. It is still checked as Route 53
    // checks a SetIdentifier (1 to 128 characters), so what the spec refuses is refused.
    if let Some(identifier) = &params.identifier {
        if !(1..=128).contains(&identifier.chars().count()) {
            return Err(ApiError::InvalidInput(
                "1 validation error detected: Value at 'startRecordIdentifier' failed to satisfy constraint: Member must have length between 1 and 128".into(),
            ));
        }
    }
    let start = match (&params.name, &params.rtype) {
        (None, Some(_)) => {
            return Err(ApiError::InvalidInput(
                "The input is not valid: StartRecordType requires StartRecordName".into(),
            ))
        }
        (None, None) => None,
        (Some(name), rtype) => {
            let name = parse_name(name)?;
            let rtype = match rtype {
                Some(t) => parse_type(t).ok_or_else(|| {
                    ApiError::InvalidInput(format!("Unsupported record type: {t}"))
                })?,
                None => hickory_proto::rr::RecordType::from(0u16),
            };
            Some(RrKey { name, rtype })
        }
    };
    let zone = state
        .service
        .zone(&id)
        .await
        .ok_or_else(|| ApiError::NoSuchHostedZone(id.to_string()))?;
    let mut sets = Vec::new();
    let mut next = None;
    for set in zone.rrsets.listing(start.as_ref()) {
        if sets.len() == limit {
            next = Some(set.key());
            break;
        }
        sets.push(ResourceRecordSetDto::from_model(&set));
    }
    Ok(reply(
        StatusCode::OK,
        &ListResponse {
            resource_record_sets: sets,
            is_truncated: next.is_some(),
            next_record_name: next.as_ref().map(|k| route53_name(&k.name)),
            next_record_type: next.as_ref().map(|k| type_name(k.rtype)),
            max_items: limit.to_string(),
        },
    ))
}
