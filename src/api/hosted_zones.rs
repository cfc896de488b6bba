//! Hosted zones: CreateHostedZone, GetHostedZone, ListHostedZones, DeleteHostedZone.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{reply, JsonBody, Params, PathId};
use super::types::{ChangeInfoDto, CreateHostedZoneRequest, DelegationSetDto, HostedZoneDto};
use super::ApiState;
use crate::model::{normalize_name, HostedZoneId};
use crate::service::{NewHostedZone, ZoneState};
use crate::zonefile;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/2013-04-01/hostedzone", get(list).post(create))
        .route("/2013-04-01/hostedzone/{id}", get(fetch).delete(remove))
}

pub fn zone_id(raw: &str) -> Result<HostedZoneId, ApiError> {
    HostedZoneId::parse(raw).map_err(|_| ApiError::NoSuchHostedZone(raw.to_owned()))
}

/// The name servers a zone is delegated to: its apex NS set.
fn delegation_set(zone: &ZoneState) -> DelegationSetDto {
    let key = crate::model::RrKey::new(&zone.zone.name, RecordType::NS);
    let name_servers = zone
        .rrsets
        .get(&key)
        .map(|set| {
            set.records
                .iter()
                .filter_map(|r| match r {
                    RData::NS(ns) => Some(ns.0.to_ascii()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    DelegationSetDto { name_servers }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct CreateHostedZoneResponse {
    hosted_zone: HostedZoneDto,
    change_info: ChangeInfoDto,
    delegation_set: DelegationSetDto,
}

async fn create(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<CreateHostedZoneRequest>,
) -> Result<Response, ApiError> {
    let config = request.hosted_zone_config.unwrap_or_default();
    if config.private_zone || request.vpc.is_some() {
        return Err(ApiError::InvalidVpcId(
            "Private hosted zones (PrivateZone and VPC) are not supported by this r53 yet".into(),
        ));
    }
    if request.delegation_set_id.is_some() {
        return Err(ApiError::InvalidInput(
            "Reusable delegation sets (DelegationSetId) are not supported by this r53".into(),
        ));
    }
    let reference_chars = request.caller_reference.chars().count();
    if !(1..=128).contains(&reference_chars) {
        return Err(ApiError::InvalidInput(
            "1 validation error detected: Value at 'callerReference' failed to satisfy constraint: Member must have length between 1 and 128".into(),
        ));
    }
    let name = zonefile::parse_name(&request.name, &Name::root())
        .ok()
        .filter(|n| !n.is_root() && n.len() <= 255)
        .ok_or_else(|| {
            ApiError::InvalidDomainName(format!("{} is not a valid domain name", request.name))
        })?;
    let name = normalize_name(&name);
    if name.iter().any(|label| label.contains(&b'*')) {
        return Err(ApiError::InvalidDomainName(format!(
            "{} is not a valid domain name: a hosted zone name cannot contain an asterisk",
            request.name
        )));
    }
    let (zone, change) = state
        .service
        .create_hosted_zone(NewHostedZone {
            name,
            caller_reference: request.caller_reference,
            comment: config.comment,
            name_servers: state.name_servers.as_ref().clone(),
        })
        .await?;
    let body = CreateHostedZoneResponse {
        hosted_zone: HostedZoneDto::new(&zone.zone, zone.rrsets.len()),
        change_info: ChangeInfoDto::from(&change),
        delegation_set: delegation_set(&zone),
    };
    let location = format!("/2013-04-01/hostedzone/{}", zone.zone.id);
    let mut response = reply(StatusCode::CREATED, &body);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GetHostedZoneResponse {
    hosted_zone: HostedZoneDto,
    delegation_set: DelegationSetDto,
}

async fn fetch(State(state): State<ApiState>, PathId(id): PathId) -> Result<Response, ApiError> {
    let id = zone_id(&id)?;
    let zone = state
        .service
        .zone(&id)
        .await
        .ok_or_else(|| ApiError::NoSuchHostedZone(id.to_string()))?;
    Ok(reply(
        StatusCode::OK,
        &GetHostedZoneResponse {
            hosted_zone: HostedZoneDto::new(&zone.zone, zone.rrsets.len()),
            delegation_set: delegation_set(&zone),
        },
    ))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default, alias = "Marker")]
    marker: Option<String>,
    #[serde(default, alias = "MaxItems", alias = "maxItems")]
    maxitems: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ListHostedZonesResponse {
    hosted_zones: Vec<HostedZoneDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
    is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
    max_items: String,
}

/// Parses Route 53's `maxitems` (a decimal string, 1 to `cap`; default `cap`).
pub fn max_items(raw: Option<&str>, cap: usize) -> Result<usize, ApiError> {
    match raw {
        None => Ok(cap),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(n.min(cap)),
            _ => Err(ApiError::InvalidInput(format!(
                "1 validation error detected: Value '{s}' at 'maxItems' failed to satisfy constraint: Member must be a number from 1 to {cap}"
            ))),
        },
    }
}

/// Zones in id order; `Marker` is the id of the first zone of the page.
async fn list(
    State(state): State<ApiState>,
    Params(params): Params<ListParams>,
) -> Result<Response, ApiError> {
    let limit = max_items(params.maxitems.as_deref(), 100)?;
    let marker = match &params.marker {
        Some(m) => Some(zone_id(m).map_err(|_| {
            ApiError::InvalidInput(format!("The marker {m} is not a hosted zone id"))
        })?),
        None => None,
    };
    let zones = state.service.zone_summaries().await;
    let mut page: Vec<HostedZoneDto> = Vec::new();
    let mut next_marker = None;
    for (zone, count) in zones
        .iter()
        .filter(|(z, _)| marker.as_ref().is_none_or(|m| &z.id >= m))
    {
        if page.len() == limit {
            next_marker = Some(zone.id.to_string());
            break;
        }
        page.push(HostedZoneDto::new(zone, *count));
    }
    Ok(reply(
        StatusCode::OK,
        &ListHostedZonesResponse {
            hosted_zones: page,
            marker: params.marker,
            is_truncated: next_marker.is_some(),
            next_marker,
            max_items: limit.to_string(),
        },
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteHostedZoneResponse {
    change_info: ChangeInfoDto,
}

async fn remove(
    State(state): State<ApiState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let id = zone_id(&id)?;
    let (_, change) = state.service.delete_hosted_zone(&id).await?;
    Ok(reply(
        StatusCode::OK,
        &DeleteHostedZoneResponse {
            change_info: ChangeInfoDto::from(&change),
        },
    ))
}
