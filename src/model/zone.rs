//! A hosted zone and its identifier.

use std::fmt;
use std::time::SystemTime;

use hickory_proto::rr::Name;
use rand::Rng;

/// A hosted zone id as Route 53 writes it: `Z` followed by upper-case letters and digits
/// (13 to 21 of them in AWS; r53 mints 14).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostedZoneId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("not a hosted zone id: {0:?}")]
    BadZoneId(String),
}

impl HostedZoneId {
    const ALPHABET: &'static [u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    /// A fresh random id.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut id = String::with_capacity(15);
        id.push('Z');
        for _ in 0..14 {
            id.push(Self::ALPHABET[rng.random_range(0..Self::ALPHABET.len())] as char);
        }
        Self(id)
    }

    /// Parses `Z…`, also accepting Route 53's `/hostedzone/Z…` form.
    pub fn parse(s: &str) -> Result<Self, SchemaError> {
        let bare = s.strip_prefix("/hostedzone/").unwrap_or(s);
        let ok = bare.len() >= 2
            && bare.len() <= 32
            && bare.starts_with('Z')
            && bare
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(bare.to_owned()))
        } else {
            Err(SchemaError::BadZoneId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostedZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A hosted zone: its identity and settings. The record sets live beside it, keyed by zone id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedZone {
    pub id: HostedZoneId,
    /// Fully qualified and lower case.
    pub name: Name,
    pub caller_reference: String,
    pub comment: Option<String>,
    pub private: bool,
    /// For a private zone, the VPCs whose clients see it (at least one).
    pub vpcs: Vec<super::VpcAssociation>,
    pub created_at: SystemTime,
}

impl HostedZone {
    pub fn new(name: &Name, caller_reference: impl Into<String>, comment: Option<String>) -> Self {
        Self {
            id: HostedZoneId::generate(),
            name: super::normalize_name(name),
            caller_reference: caller_reference.into(),
            comment,
            private: false,
            vpcs: Vec::new(),
            created_at: SystemTime::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = HostedZoneId::generate();
        assert_eq!(id.as_str().len(), 15);
        assert_eq!(HostedZoneId::parse(id.as_str()).unwrap(), id);
        let long = format!("/hostedzone/{id}");
        assert_eq!(HostedZoneId::parse(&long).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in ["", "Z", "z123", "ZABC-1", "XABCDEF"] {
            assert!(HostedZoneId::parse(bad).is_err(), "{bad}");
        }
    }
}
