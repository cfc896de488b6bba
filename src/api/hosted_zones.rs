//! Hosted zones: CreateHostedZone, GetHostedZone, GetHostedZoneCount, ListHostedZones,
//! ListHostedZonesByName, UpdateHostedZoneComment, DeleteHostedZone, and their VPC
//! associations.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hickory_proto::rr::{Name, RData, RecordType};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{reply, JsonBody, Params, PathId};
use super::types::{
    check_comment, check_vpc_id, ChangeInfoDto, ChangeInfoResponse, CreateHostedZoneRequest,
    DelegationSetDto, HostedZoneDto, UpdateHostedZoneCommentRequest, VpcAssociationRequest, VpcDto,
};
use super::ApiState;
use crate::model::{parse_name, reversed_name, route53_name, HostedZone, HostedZoneId, WireName};
use crate::service::{NewHostedZone, ZoneState};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/2013-04-01/hostedzone", get(list).post(create))
        .route("/2013-04-01/hostedzonecount", get(count))
        .route(
            "/2013-04-01/hostedzone/{id}",
            get(fetch).post(update_comment).delete(remove),
        )
        .route("/2013-04-01/hostedzone/{id}/associatevpc", post(associate))
        .route(
            "/2013-04-01/hostedzone/{id}/disassociatevpc",
            post(disassociate),
        )
        .route("/2013-04-01/hostedzonesbyvpc", get(by_vpc))
        .route("/2013-04-01/hostedzonesbyname", get(by_name))
}

pub fn zone_id(raw: &str) -> Result<HostedZoneId, ApiError> {
    HostedZoneId::parse(raw).map_err(|_| ApiError::NoSuchHostedZone(raw.to_owned()))
}

/// The name servers a zone is delegated to: its apex NS set.
fn delegation_set(zone: &ZoneState) -> DelegationSetDto {
    let key = crate::model::RrKey::new(&zone.zone().name, RecordType::NS);
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
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_set: Option<DelegationSetDto>,
    #[serde(rename = "VPC", skip_serializing_if = "Option::is_none")]
    vpc: Option<VpcDto>,
}

async fn create(
    State(state): State<ApiState>,
    JsonBody(request): JsonBody<CreateHostedZoneRequest>,
) -> Result<Response, ApiError> {
    let config = request.hosted_zone_config.unwrap_or_default();
    check_comment(config.comment.as_deref(), "hostedZoneConfig.comment")?;
    let vpc = match request.vpc {
        Some(vpc) => Some(vpc.into_model()?),
        None if config.private_zone => {
            return Err(ApiError::InvalidInput(
                "When you're creating a private hosted zone (when you specify true for PrivateZone), you must also specify values for VPCId and VPCRegion.".into(),
            ))
        }
        None => None,
    };
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
    let name = parse_name(&request.name)
        .ok()
        .filter(|n| !n.is_root())
        .ok_or_else(|| {
            ApiError::InvalidDomainName(format!("{} is not a valid domain name", request.name))
        })?;
    if name.iter().any(|label| label.contains(&b'*')) {
        return Err(ApiError::InvalidDomainName(format!(
            "{} is not a valid domain name: a hosted zone name cannot contain an asterisk",
            request.name
        )));
    }
    // Route 53 makes no public zone for a top-level domain ("You can't create a hosted zone
    // for a top-level domain (TLD) such as .com"), in these words.
    if vpc.is_none() && name.num_labels() == 1 {
        return Err(ApiError::InvalidDomainName(format!(
            "{} is reserved by AWS!",
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
            vpc,
        })
        .await?;
    // Route 53 gives a private zone no delegation set and echoes its VPC instead.
    let private = zone.zone().private;
    let body = CreateHostedZoneResponse {
        hosted_zone: HostedZoneDto::new(zone.zone(), zone.rrsets.len()),
        change_info: ChangeInfoDto::from(&change),
        delegation_set: (!private).then(|| delegation_set(&zone)),
        vpc: zone.zone().vpcs.first().map(VpcDto::from_model),
    };
    let location = format!("/2013-04-01/hostedzone/{}", zone.zone().id);
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
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_set: Option<DelegationSetDto>,
    #[serde(rename = "VPCs", skip_serializing_if = "Option::is_none")]
    vpcs: Option<Vec<VpcDto>>,
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
            hosted_zone: HostedZoneDto::new(zone.zone(), zone.rrsets.len()),
            delegation_set: (!zone.zone().private).then(|| delegation_set(&zone)),
            vpcs: zone
                .zone()
                .private
                .then(|| zone.zone().vpcs.iter().map(VpcDto::from_model).collect()),
        },
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HostedZoneResponse {
    hosted_zone: HostedZoneDto,
}

/// UpdateHostedZoneComment: answers the zone as it is now.
async fn update_comment(
    State(state): State<ApiState>,
    PathId(id): PathId,
    JsonBody(request): JsonBody<UpdateHostedZoneCommentRequest>,
) -> Result<Response, ApiError> {
    let id = zone_id(&id)?;
    check_comment(request.comment.as_deref(), "comment")?;
    let (zone, count) = state.service.update_comment(&id, request.comment).await?;
    Ok(reply(
        StatusCode::OK,
        &HostedZoneResponse {
            hosted_zone: HostedZoneDto::new(&zone, count),
        },
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HostedZoneCountResponse {
    hosted_zone_count: usize,
}

/// GetHostedZoneCount: every hosted zone, public and private.
async fn count(State(state): State<ApiState>) -> Response {
    let hosted_zone_count = state.service.zone_summaries().await.len();
    reply(
        StatusCode::OK,
        &HostedZoneCountResponse { hosted_zone_count },
    )
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(default, alias = "Marker")]
    marker: Option<String>,
    #[serde(default, alias = "MaxItems", alias = "maxItems")]
    maxitems: Option<String>,
    /// `PrivateHostedZone` lists private zones only.
    #[serde(default)]
    hostedzonetype: Option<String>,
    /// Zones of a reusable delegation set, which r53 has none of.
    #[serde(default)]
    delegationsetid: Option<String>,
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

/// Zones in id order (private ones only with `hostedzonetype=PrivateHostedZone`); `Marker` is
/// the id of the first zone of the page.
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
    let private_only = match params.hostedzonetype.as_deref() {
        None => false,
        Some("PrivateHostedZone") => true,
        Some(other) => {
            return Err(ApiError::InvalidInput(format!(
                "1 validation error detected: Value '{other}' at 'hostedZoneType' failed to satisfy constraint: Member must satisfy enum value set: [PrivateHostedZone]"
            )))
        }
    };
    // r53 makes no reusable delegation sets, so no id names one.
    if params.delegationsetid.is_some() {
        return Err(ApiError::BadRequest(
            "NoSuchDelegationSet",
            "A reusable delegation set with the specified ID does not exist.".into(),
        ));
    }
    let zones = state.service.zone_summaries().await;
    let mut page: Vec<HostedZoneDto> = Vec::new();
    let mut next_marker = None;
    for (zone, count) in zones
        .iter()
        .filter(|(z, _)| !private_only || z.private)
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

#[derive(Deserialize)]
struct ByNameParams {
    #[serde(default)]
    dnsname: Option<String>,
    #[serde(default)]
    hostedzoneid: Option<String>,
    #[serde(default)]
    maxitems: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ByNameResponse {
    hosted_zones: Vec<HostedZoneDto>,
    #[serde(rename = "DNSName", skip_serializing_if = "Option::is_none")]
    dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hosted_zone_id: Option<String>,
    is_truncated: bool,
    #[serde(rename = "NextDNSName", skip_serializing_if = "Option::is_none")]
    next_dns_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_hosted_zone_id: Option<String>,
    max_items: String,
}

/// The order ListHostedZonesByName lists zones in: names with their labels reversed, as ASCII
/// (`com.example.www.`), then ids (zones may share a name).
fn by_name_key(name: &Name) -> Vec<u8> {
    WireName::new(name).map_or_else(Vec::new, |w| reversed_name(w.key()))
}

/// ListHostedZonesByName: every zone in name order, from `dnsname` (and, for a page after the
/// first, `hostedzoneid`) on.
async fn by_name(
    State(state): State<ApiState>,
    Params(params): Params<ByNameParams>,
) -> Result<Response, ApiError> {
    let limit = max_items(params.maxitems.as_deref(), 100)?;
    let start_name = match &params.dnsname {
        Some(raw) => Some(parse_name(raw).ok().ok_or_else(|| {
            ApiError::InvalidDomainName(format!("{raw} is not a valid domain name"))
        })?),
        None => None,
    };
    let start_id = match (&start_name, &params.hostedzoneid) {
        (None, Some(_)) => {
            return Err(ApiError::InvalidInput(
                "The input is not valid: hostedzoneid requires dnsname".into(),
            ))
        }
        (_, Some(raw)) => Some(zone_id(raw).map_err(|_| {
            ApiError::InvalidInput(format!("The hostedzoneid {raw} is not a hosted zone id"))
        })?),
        (_, None) => None,
    };
    let start = start_name.as_ref().map(by_name_key);
    let mut zones: Vec<(Vec<u8>, HostedZone, usize)> = state
        .service
        .zone_summaries()
        .await
        .into_iter()
        .map(|(zone, count)| (by_name_key(&zone.name), zone, count))
        .collect();
    zones.sort_by(|a, b| (&a.0, &a.1.id).cmp(&(&b.0, &b.1.id)));
    let from = zones.partition_point(|(key, zone, _)| match (&start, &start_id) {
        (Some(name), Some(id)) => (key, &zone.id) < (name, id),
        (Some(name), None) => key < name,
        (None, _) => false,
    });
    let mut page = Vec::new();
    let mut next = None;
    for (_, zone, count) in &zones[from..] {
        if page.len() == limit {
            next = Some(zone);
            break;
        }
        page.push(HostedZoneDto::new(zone, *count));
    }
    Ok(reply(
        StatusCode::OK,
        &ByNameResponse {
            hosted_zones: page,
            dns_name: params.dnsname,
            hosted_zone_id: params.hostedzoneid,
            is_truncated: next.is_some(),
            next_dns_name: next.map(|z| route53_name(&z.name)),
            next_hosted_zone_id: next.map(|z| z.id.to_string()),
            max_items: limit.to_string(),
        },
    ))
}

async fn remove(
    State(state): State<ApiState>,
    PathId(id): PathId,
) -> Result<impl IntoResponse, ApiError> {
    let id = zone_id(&id)?;
    let (_, change) = state.service.delete_hosted_zone(&id).await?;
    Ok(reply(StatusCode::OK, &ChangeInfoResponse::from(&change)))
}

async fn associate(
    State(state): State<ApiState>,
    PathId(id): PathId,
    JsonBody(request): JsonBody<VpcAssociationRequest>,
) -> Result<Response, ApiError> {
    set_association(state, &id, request, true).await
}

async fn disassociate(
    State(state): State<ApiState>,
    PathId(id): PathId,
    JsonBody(request): JsonBody<VpcAssociationRequest>,
) -> Result<Response, ApiError> {
    set_association(state, &id, request, false).await
}

async fn set_association(
    state: ApiState,
    id: &str,
    request: VpcAssociationRequest,
    associate: bool,
) -> Result<Response, ApiError> {
    let id = zone_id(id)?;
    let vpc = request.vpc.into_model()?;
    let mut change = state
        .service
        .set_vpc_association(&id, vpc, associate)
        .await?;
    change.comment = request.comment;
    Ok(reply(StatusCode::OK, &ChangeInfoResponse::from(&change)))
}

#[derive(Deserialize)]
struct ByVpcParams {
    vpcid: Option<String>,
    #[serde(default)]
    vpcregion: Option<String>,
    #[serde(default)]
    maxitems: Option<String>,
    #[serde(default)]
    nexttoken: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ZoneSummary {
    hosted_zone_id: String,
    name: String,
    owner: Owner,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Owner {
    owning_account: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ByVpcResponse {
    hosted_zone_summaries: Vec<ZoneSummary>,
    max_items: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_token: Option<String>,
}

/// ListHostedZonesByVPC: the private zones associated with a VPC, in id order; `nexttoken`
/// is the id to start from.
async fn by_vpc(
    State(state): State<ApiState>,
    Params(params): Params<ByVpcParams>,
) -> Result<Response, ApiError> {
    let vpc_id = params
        .vpcid
        .ok_or_else(|| ApiError::InvalidInput("The vpcid parameter is required".into()))?;
    check_vpc_id(&vpc_id)?;
    // r53 has no regions, but what the spec bounds is refused past its bound.
    if let Some(region) = &params.vpcregion {
        super::types::check_region(region, "vPCRegion")?;
    }
    if params.nexttoken.as_ref().is_some_and(|t| t.len() > 64) {
        return Err(ApiError::InvalidInput(
            "1 validation error detected: Value at 'nextToken' failed to satisfy constraint: Member must have length less than or equal to 64".into(),
        ));
    }
    // The tokens r53 hands out are zone ids; anything else was not one of them.
    if let Some(token) = &params.nexttoken {
        if HostedZoneId::parse(token).is_err() {
            return Err(ApiError::BadRequest(
                "InvalidPaginationToken",
                "The value that you specified to get the second or subsequent page of results is invalid.".into(),
            ));
        }
    }
    let limit = max_items(params.maxitems.as_deref(), 100)?;
    let zones = state.service.zones_by_vpc(&vpc_id).await;
    let mut summaries = Vec::new();
    let mut next_token = None;
    for zone in zones.iter().filter(|z| {
        params
            .nexttoken
            .as_deref()
            .is_none_or(|t| z.id.as_str() >= t)
    }) {
        if summaries.len() == limit {
            next_token = Some(zone.id.to_string());
            break;
        }
        summaries.push(ZoneSummary {
            hosted_zone_id: zone.id.to_string(),
            name: route53_name(&zone.name),
            owner: Owner {
                owning_account: "r53",
            },
        });
    }
    Ok(reply(
        StatusCode::OK,
        &ByVpcResponse {
            hosted_zone_summaries: summaries,
            max_items: limit.to_string(),
            next_token,
        },
    ))
}
