//! Wire shapes of the API (Route 53's field names) and their conversion to and from the model.
//!
//! Encoding lives here and in `extract.rs`, apart from the handlers, so that Route 53's XML can
//! be added as another codec of the same types.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::error::ApiError;
use crate::model::{
    self, parse_name, parse_type, route53_name, type_name, Action, AliasTarget, Change,
    ChangeBatch, ChangeInfo, Endpoint, EndpointAddress, EndpointKind, EndpointZones, HostedZone,
    ResourceRecordSet, VpcAssociation,
};

/// Route 53 caps the values of one record set at 400.
pub const MAX_VALUES_PER_RRSET: usize = 400;

// ---- requests ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateHostedZoneRequest {
    pub name: String,
    pub caller_reference: String,
    #[serde(default, deserialize_with = "present")]
    pub hosted_zone_config: Option<HostedZoneConfigDto>,
    #[serde(default, deserialize_with = "present", rename = "VPC")]
    pub vpc: Option<VpcDto>,
    #[serde(default, deserialize_with = "present")]
    pub delegation_set_id: Option<String>,
}

/// A VPC as Route 53 names it in a zone association.
#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct VpcDto {
    #[serde(rename = "VPCRegion", default = "default_region")]
    pub region: String,
    #[serde(rename = "VPCId")]
    pub vpc_id: String,
}

/// For an optional request field: absent is `None`, but `null` is refused (naming the field)
/// rather than read as absent. The spec documents no nullable field, and Route 53's XML has no
/// null, so a client sending one has made a mistake worth telling it about.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// r53 has no regions; associations keep what the client sent, us-east-1 when it sent none.
fn default_region() -> String {
    "us-east-1".to_owned()
}

/// The region is stored with the association, so it is bounded as Route 53's is (1 to 64
/// characters) rather than kept at whatever size a client sends.
pub fn check_region(region: &str, field: &str) -> Result<(), ApiError> {
    if (1..=64).contains(&region.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::InvalidInput(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length between 1 and 64"
        )))
    }
}

/// Route 53 holds a comment (a ResourceDescription) to 256 characters.
pub const MAX_COMMENT_CHARS: usize = 256;

/// InvalidInput for a comment longer than Route 53 keeps, in its validation wording;
/// `field` is where the comment is (`changeBatch.comment`).
pub fn check_comment(comment: Option<&str>, field: &str) -> Result<(), ApiError> {
    match comment {
        Some(c) if c.chars().count() > MAX_COMMENT_CHARS => Err(ApiError::InvalidInput(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {MAX_COMMENT_CHARS}"
        ))),
        _ => Ok(()),
    }
}

/// A VPC id as the API takes it: InvalidVPCId when malformed.
pub fn check_vpc_id(id: &str) -> Result<(), ApiError> {
    model::check_vpc_id(id).map_err(|e| ApiError::InvalidVpcId(e.0))
}

impl VpcDto {
    pub fn into_model(self) -> Result<VpcAssociation, ApiError> {
        check_vpc_id(&self.vpc_id)?;
        check_region(&self.region, "vPC.vPCRegion")?;
        Ok(VpcAssociation {
            region: self.region,
            vpc_id: self.vpc_id,
        })
    }

    pub fn from_model(a: &VpcAssociation) -> Self {
        Self {
            region: a.region.clone(),
            vpc_id: a.vpc_id.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Serialize, Default, Clone)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct HostedZoneConfigDto {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub comment: Option<String>,
    #[serde(default)]
    pub private_zone: bool,
}

/// UpdateHostedZoneComment: no Comment removes the zone's comment.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateHostedZoneCommentRequest {
    #[serde(default, deserialize_with = "present")]
    pub comment: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChangeResourceRecordSetsRequest {
    pub change_batch: ChangeBatchDto,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChangeBatchDto {
    #[serde(default, deserialize_with = "present")]
    pub comment: Option<String>,
    pub changes: Vec<ChangeDto>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ChangeDto {
    pub action: ActionDto,
    pub resource_record_set: ResourceRecordSetDto,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
pub enum ActionDto {
    Create,
    Delete,
    Upsert,
}

/// A record set as Route 53 writes it, in and out.
#[derive(Debug, Deserialize, Serialize, Clone, Default)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ResourceRecordSetDto {
    pub name: String,
    #[serde(rename = "Type")]
    pub rtype: String,
    #[serde(
        default,
        deserialize_with = "present",
        rename = "TTL",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl: Option<i64>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub resource_records: Option<Vec<ResourceRecordDto>>,
    // Fields of later features: accepted in the shape Route 53 has, refused with a clear
    // message until r53 implements them.
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub alias_target: Option<AliasTargetDto>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub set_identifier: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub weight: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub region: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub geo_location: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub failover: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub multi_value_answer: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub health_check_id: Option<serde_json::Value>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub traffic_policy_instance_id: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AliasTargetDto {
    pub hosted_zone_id: String,
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    pub evaluate_target_health: bool,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ResourceRecordDto {
    pub value: String,
}

impl ChangeBatchDto {
    /// Validates the batch's shape and values (InvalidInput) into a model batch; the rules
    /// that depend on the zone's contents are the service's (InvalidChangeBatch).
    pub fn into_model(self) -> Result<ChangeBatch, ApiError> {
        check_comment(self.comment.as_deref(), "changeBatch.comment")?;
        if self.changes.is_empty() {
            return Err(ApiError::InvalidInput(
                "1 validation error detected: Value '[]' at 'changeBatch.changes' failed to satisfy constraint: Member must have length greater than or equal to 1".into(),
            ));
        }
        let mut changes = Vec::with_capacity(self.changes.len());
        for (i, change) in self.changes.into_iter().enumerate() {
            let action = match change.action {
                ActionDto::Create => Action::Create,
                ActionDto::Delete => Action::Delete,
                ActionDto::Upsert => Action::Upsert,
            };
            let (rrset, value_chars) = change.resource_record_set.into_model(i + 1, action)?;
            changes.push(Change {
                action,
                rrset,
                value_chars,
            });
        }
        Ok(ChangeBatch {
            comment: self.comment,
            changes,
        })
    }
}

impl ResourceRecordSetDto {
    /// `index` is the 1-based position of the change, as Route 53 reports it.
    fn into_model(
        self,
        index: usize,
        action: Action,
    ) -> Result<(ResourceRecordSet, usize), ApiError> {
        let unsupported = [
            ("SetIdentifier", self.set_identifier.is_some()),
            ("Weight", self.weight.is_some()),
            ("Region", self.region.is_some()),
            ("GeoLocation", self.geo_location.is_some()),
            ("Failover", self.failover.is_some()),
            ("MultiValueAnswer", self.multi_value_answer.is_some()),
            ("HealthCheckId", self.health_check_id.is_some()),
            (
                "TrafficPolicyInstanceId",
                self.traffic_policy_instance_id.is_some(),
            ),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, present)| *present) {
            return Err(ApiError::InvalidInput(format!(
                "{field} is not supported by this r53 yet (change {index})"
            )));
        }
        let name = parse_name(&self.name).map_err(in_batch)?;
        let rtype = parse_type(&self.rtype).ok_or_else(|| {
            ApiError::InvalidInput(format!(
                "1 validation error detected: Value '{}' at 'changeBatch.changes.{index}.member.resourceRecordSet.type' failed to satisfy constraint: Member must satisfy enum value set: [SOA, A, TXT, NS, CNAME, MX, NAPTR, PTR, SRV, SPF, AAAA, CAA, DS, TLSA, SSHFP, SVCB, HTTPS]",
                self.rtype
            ))
        })?;
        if let Some(alias) = self.alias_target {
            if self.ttl.is_some() || self.resource_records.is_some() {
                return Err(ApiError::InvalidInput(format!(
                    "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found more than one in Change with [Action={}, Name={}, Type={}, SetIdentifier=null]",
                    action.as_str(),
                    self.name,
                    self.rtype
                )));
            }
            let target = AliasTarget {
                hosted_zone_id: alias
                    .hosted_zone_id
                    .trim_start_matches("/hostedzone/")
                    .to_owned(),
                dns_name: parse_name(&alias.dns_name).map_err(in_batch)?,
                evaluate_target_health: alias.evaluate_target_health,
            };
            return Ok((ResourceRecordSet::alias(&name, rtype, target), 0));
        }
        let (Some(ttl), Some(records)) = (self.ttl, self.resource_records) else {
            return Err(ApiError::InvalidInput(format!(
                "Invalid request: Expected exactly one of [AliasTarget, all of [TTL, and ResourceRecords], or TrafficPolicyInstanceId], but found none in Change with [Action={}, Name={}, Type={}, SetIdentifier=null]",
                action.as_str(),
                self.name,
                self.rtype
            )));
        };
        if !(0..=i64::from(i32::MAX)).contains(&ttl) {
            let bound = if ttl < 0 {
                "greater than or equal to 0"
            } else {
                "less than or equal to 2147483647"
            };
            return Err(ApiError::InvalidInput(format!(
                "1 validation error detected: Value '{ttl}' at 'changeBatch.changes.{index}.member.resourceRecordSet.tTL' failed to satisfy constraint: Member must have value {bound}"
            )));
        }
        if records.is_empty() {
            return Err(ApiError::InvalidInput(format!(
                "1 validation error detected: Value '[]' at 'changeBatch.changes.{index}.member.resourceRecordSet.resourceRecords' failed to satisfy constraint: Member must have length greater than or equal to 1"
            )));
        }
        if records.len() > MAX_VALUES_PER_RRSET {
            return Err(ApiError::InvalidInput(format!(
                "1 validation error detected: Value at 'changeBatch.changes.{index}.member.resourceRecordSet.resourceRecords' failed to satisfy constraint: Member must have length less than or equal to {MAX_VALUES_PER_RRSET}"
            )));
        }
        let mut value_chars = 0;
        let mut rdatas = Vec::with_capacity(records.len());
        for record in &records {
            value_chars += record.value.chars().count();
            let rdata = model::parse_value(rtype, &record.value).map_err(in_batch)?;
            if rdatas.contains(&rdata) {
                return Err(ApiError::InvalidChangeBatch(vec![format!(
                    "Duplicate Resource Record: '{}'",
                    record.value
                )]));
            }
            rdatas.push(rdata);
        }
        if matches!(
            rtype,
            hickory_proto::rr::RecordType::CNAME | hickory_proto::rr::RecordType::SOA
        ) && rdatas.len() > 1
        {
            return Err(ApiError::InvalidChangeBatch(vec![format!(
                "RRSet of type {} with DNS name {} has more than one resource record, which is not permitted",
                type_name(rtype),
                route53_name(&name)
            )]));
        }
        // Route 53 lists each value as it was sent; DNS answers from the records.
        let texts = records.into_iter().map(|r| r.value).collect();
        Ok((
            ResourceRecordSet::new(&name, rtype, ttl as u32, rdatas).with_texts(texts),
            value_chars,
        ))
    }

    pub fn from_model(set: &ResourceRecordSet) -> Self {
        if let Some(alias) = &set.alias {
            // Route 53 lists an Alias without TTL or records, its target echoed.
            return Self {
                name: route53_name(&set.name),
                rtype: type_name(set.rtype),
                alias_target: Some(AliasTargetDto {
                    hosted_zone_id: alias.hosted_zone_id.clone(),
                    dns_name: route53_name(&alias.dns_name),
                    evaluate_target_health: alias.evaluate_target_health,
                }),
                ..Default::default()
            };
        }
        Self {
            name: route53_name(&set.name),
            rtype: type_name(set.rtype),
            ttl: Some(i64::from(set.ttl)),
            resource_records: Some(
                set.listed_values()
                    .map(|value| ResourceRecordDto {
                        value: value.into_owned(),
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }
}

/// A name or value Route 53 cannot read inside a change batch is InvalidChangeBatch, not
/// InvalidInput (`[Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address ...']`).
fn in_batch(e: model::InvalidInput) -> ApiError {
    ApiError::InvalidChangeBatch(vec![e.0])
}

// ---- responses ----

pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostedZoneDto {
    pub id: String,
    pub name: String,
    pub caller_reference: String,
    pub config: HostedZoneConfigDto,
    pub resource_record_set_count: usize,
}

impl HostedZoneDto {
    pub fn new(zone: &HostedZone, rrset_count: usize) -> Self {
        Self {
            id: format!("/hostedzone/{}", zone.id),
            name: route53_name(&zone.name),
            caller_reference: zone.caller_reference.clone(),
            config: HostedZoneConfigDto {
                comment: zone.comment.clone(),
                private_zone: zone.private,
            },
            resource_record_set_count: rrset_count,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeInfoDto {
    pub id: String,
    pub status: &'static str,
    pub submitted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

impl From<&ChangeInfo> for ChangeInfoDto {
    fn from(c: &ChangeInfo) -> Self {
        Self {
            id: format!("/change/{}", c.id),
            // r53 acknowledges a change only once it is durable and served.
            status: "INSYNC",
            submitted_at: timestamp(c.submitted_at),
            comment: c.comment.clone(),
        }
    }
}

/// `{"ChangeInfo": …}`: what ChangeResourceRecordSets, GetChange and the VPC associations
/// answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeInfoResponse {
    pub change_info: ChangeInfoDto,
}

impl From<&ChangeInfo> for ChangeInfoResponse {
    fn from(c: &ChangeInfo) -> Self {
        Self {
            change_info: ChangeInfoDto::from(c),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DelegationSetDto {
    pub name_servers: Vec<String>,
}

// ---- endpoints (r53's own API) ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutEndpointRequest {
    pub kind: String,
    pub addresses: Vec<EndpointAddressDto>,
    #[serde(default, deserialize_with = "present", rename = "TTL")]
    pub ttl: Option<i64>,
    #[serde(default, deserialize_with = "present")]
    pub lease_seconds: Option<i64>,
}

#[derive(Debug, Deserialize, Serialize, Clone)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct EndpointAddressDto {
    pub address: String,
    #[serde(default = "healthy_by_default")]
    pub healthy: bool,
}

fn healthy_by_default() -> bool {
    true
}

/// Route 53 gives load balancers a TTL of 60.
pub const DEFAULT_ENDPOINT_TTL: u32 = 60;
/// Addresses one endpoint may carry.
pub const MAX_ENDPOINT_ADDRESSES: usize = 64;

impl PutEndpointRequest {
    pub fn into_model(self, name: &str) -> Result<Endpoint, ApiError> {
        let dns_name = parse_name(name)?;
        let kind = EndpointKind::parse(&self.kind).ok_or_else(|| {
            ApiError::InvalidInput(format!(
                "Invalid Kind '{}': expected load-balancer or database",
                self.kind
            ))
        })?;
        if self.addresses.is_empty() || self.addresses.len() > MAX_ENDPOINT_ADDRESSES {
            return Err(ApiError::InvalidInput(format!(
                "An endpoint needs between 1 and {MAX_ENDPOINT_ADDRESSES} Addresses"
            )));
        }
        let mut addresses = Vec::with_capacity(self.addresses.len());
        for a in &self.addresses {
            let address = a.address.parse().map_err(|_| {
                ApiError::InvalidInput(format!(
                    "Invalid Address '{}': not an IPv4 or IPv6 address",
                    a.address
                ))
            })?;
            if addresses
                .iter()
                .any(|e: &EndpointAddress| e.address == address)
            {
                return Err(ApiError::InvalidInput(format!(
                    "Duplicate Address '{}'",
                    a.address
                )));
            }
            addresses.push(EndpointAddress {
                address,
                healthy: a.healthy,
            });
        }
        let ttl = match self.ttl {
            None => DEFAULT_ENDPOINT_TTL,
            Some(t) if (0..=i64::from(i32::MAX)).contains(&t) => t as u32,
            Some(t) => {
                return Err(ApiError::InvalidInput(format!(
                    "Invalid TTL {t}: must be from 0 to 2147483647"
                )))
            }
        };
        let lease_expires_at = match self.lease_seconds {
            None => None,
            Some(s) if (1..=86_400 * 365).contains(&s) => {
                Some(SystemTime::now() + std::time::Duration::from_secs(s as u64))
            }
            Some(s) => {
                return Err(ApiError::InvalidInput(format!(
                    "Invalid LeaseSeconds {s}: must be from 1 to 31536000"
                )))
            }
        };
        Ok(Endpoint {
            dns_name,
            kind,
            addresses,
            ttl,
            lease_expires_at,
        })
    }
}

/// An endpoint as listed; `HostedZoneId` and `DNSName` are what an AliasTarget names.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointDto {
    #[serde(rename = "DNSName")]
    pub dns_name: String,
    pub hosted_zone_id: String,
    pub kind: &'static str,
    pub addresses: Vec<EndpointAddressDto>,
    #[serde(rename = "TTL")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_expires_at: Option<String>,
}

impl From<&Endpoint> for EndpointDto {
    fn from(e: &Endpoint) -> Self {
        Self {
            dns_name: e.dns_name.to_ascii(),
            hosted_zone_id: EndpointZones::zone_id(e.kind).to_string(),
            kind: e.kind.as_str(),
            addresses: e
                .addresses
                .iter()
                .map(|a| EndpointAddressDto {
                    address: a.address.to_string(),
                    healthy: a.healthy,
                })
                .collect(),
            ttl: e.ttl,
            lease_expires_at: e.lease_expires_at.map(timestamp),
        }
    }
}

// ---- VPCs (r53's own API) ----

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutVpcRequest {
    pub cidrs: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct VpcInfoDto {
    #[serde(rename = "VPCId")]
    pub vpc_id: String,
    #[serde(rename = "Cidrs")]
    pub cidrs: Vec<String>,
}

impl From<&model::Vpc> for VpcInfoDto {
    fn from(v: &model::Vpc) -> Self {
        Self {
            vpc_id: v.id.clone(),
            cidrs: v.cidrs.iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcAssociationRequest {
    #[serde(rename = "VPC")]
    pub vpc: VpcDto,
    #[serde(rename = "Comment", default, deserialize_with = "present")]
    pub comment: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by tests/api-fuzz: `"VPC": null` created a public zone, and a region of any size
    /// was stored with the association.
    #[test]
    fn null_optional_fields_and_oversized_regions_are_refused() {
        let null_vpc = r#"{"Name": "a.test", "CallerReference": "r", "VPC": null}"#;
        let err = serde_json::from_str::<CreateHostedZoneRequest>(null_vpc).unwrap_err();
        assert!(err.to_string().contains("null"), "{err}");
        let absent = r#"{"Name": "a.test", "CallerReference": "r"}"#;
        let ok: CreateHostedZoneRequest = serde_json::from_str(absent).unwrap();
        assert!(ok.vpc.is_none() && ok.hosted_zone_config.is_none());
        let null_ttl = r#"{"Kind": "load-balancer", "Addresses": [], "TTL": null}"#;
        assert!(serde_json::from_str::<PutEndpointRequest>(null_ttl).is_err());

        let vpc = |region: &str| VpcDto {
            region: region.to_owned(),
            vpc_id: "vpc-a".to_owned(),
        };
        assert!(vpc("us-east-1").into_model().is_ok());
        assert!(vpc(&"x".repeat(64)).into_model().is_ok());
        for bad in ["", &"x".repeat(65)] {
            match vpc(bad).into_model() {
                Err(ApiError::InvalidInput(m)) => assert!(m.contains("vPCRegion"), "{m}"),
                other => panic!("region {bad:?}: {other:?}"),
            }
        }
    }
}
