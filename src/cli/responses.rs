//! The API's answers as the client reads them: only the fields it shows or needs, every one
//! optional where Route 53 may leave it out, so a newer server's extra fields do no harm.
//!
//! These are deliberately not `api::types`: those are the server's encoding, and the client
//! must keep reading what a server of another version sends.

use serde::Deserialize;
use serde_json::Value;

use super::CliError;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostedZone {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub caller_reference: String,
    #[serde(default)]
    pub config: Option<HostedZoneConfig>,
    #[serde(default)]
    pub resource_record_set_count: Option<u64>,
}

impl HostedZone {
    /// The id without Route 53's `/hostedzone/` prefix.
    pub fn bare_id(&self) -> &str {
        self.id.strip_prefix("/hostedzone/").unwrap_or(&self.id)
    }

    pub fn comment(&self) -> &str {
        self.config
            .as_ref()
            .and_then(|c| c.comment.as_deref())
            .unwrap_or_default()
    }

    pub fn private(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.private_zone)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostedZoneConfig {
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub private_zone: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeInfo {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub submitted_at: String,
    #[serde(default)]
    pub comment: Option<String>,
}

impl ChangeInfo {
    pub fn bare_id(&self) -> &str {
        self.id.strip_prefix("/change/").unwrap_or(&self.id)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DelegationSet {
    #[serde(default)]
    pub name_servers: Vec<String>,
}

/// CreateHostedZone and GetHostedZone.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZoneReply {
    pub hosted_zone: HostedZone,
    #[serde(default)]
    pub change_info: Option<ChangeInfo>,
    #[serde(default)]
    pub delegation_set: Option<DelegationSet>,
}

/// Every answer that carries only a ChangeInfo.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeReply {
    pub change_info: ChangeInfo,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostedZonePage {
    pub hosted_zones: Vec<Value>,
    #[serde(default)]
    pub is_truncated: bool,
    #[serde(default)]
    pub next_marker: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordSetPage {
    pub resource_record_sets: Vec<Value>,
    #[serde(default)]
    pub is_truncated: bool,
    #[serde(default)]
    pub next_record_name: Option<String>,
    #[serde(default)]
    pub next_record_type: Option<String>,
    #[serde(default)]
    pub next_record_identifier: Option<String>,
}

/// A record set as listed. Alias sets have no `ResourceRecords`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordSet {
    pub name: String,
    #[serde(rename = "Type")]
    pub rtype: String,
    #[serde(default, rename = "TTL")]
    pub ttl: Option<i64>,
    #[serde(default)]
    pub resource_records: Vec<ResourceRecord>,
    #[serde(default)]
    pub alias_target: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceRecord {
    pub value: String,
}

/// Reads an answer into its shape, or says which operation answered what.
pub fn decode<T: serde::de::DeserializeOwned>(
    operation: &str,
    value: &Value,
) -> Result<T, CliError> {
    T::deserialize(value).map_err(|e| {
        CliError::Unexpected(format!(
            "the answer to {operation} is not what this client expects: {e}"
        ))
    })
}
