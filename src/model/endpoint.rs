//! Alias targets that are not record sets: load balancers and databases registered as
//! endpoints (by `r53 lb`, `r53 rds` or anyone through the API), with addresses, health and an
//! optional lease.

use std::net::IpAddr;
use std::time::SystemTime;

use hickory_proto::rr::{Name, RecordType};

use super::{normalize_name, HostedZoneId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EndpointKind {
    LoadBalancer,
    Database,
}

impl EndpointKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::LoadBalancer => "load-balancer",
            EndpointKind::Database => "database",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "load-balancer" => Some(EndpointKind::LoadBalancer),
            "database" => Some(EndpointKind::Database),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointAddress {
    pub address: IpAddr,
    pub healthy: bool,
}

/// A registered endpoint. `dns_name` is normalized and lies under its kind's suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub dns_name: Name,
    pub kind: EndpointKind,
    pub addresses: Vec<EndpointAddress>,
    pub ttl: u32,
    /// Past this instant the endpoint is gone: a registrant that stops renewing stops being
    /// answered.
    pub lease_expires_at: Option<SystemTime>,
}

impl Endpoint {
    pub fn is_live(&self, now: SystemTime) -> bool {
        self.lease_expires_at.is_none_or(|t| t > now)
    }

    /// Whether any address is healthy (what EvaluateTargetHealth asks).
    pub fn is_healthy(&self) -> bool {
        self.addresses.iter().any(|a| a.healthy)
    }

    /// The addresses to answer for `rtype` (A or AAAA): the healthy ones, or all of them when
    /// none is healthy, as Route 53 fails open.
    pub fn answer_addresses(&self, rtype: RecordType) -> Vec<IpAddr> {
        let of_type = |a: &&EndpointAddress| match rtype {
            RecordType::A => a.address.is_ipv4(),
            RecordType::AAAA => a.address.is_ipv6(),
            _ => false,
        };
        let healthy: Vec<IpAddr> = self
            .addresses
            .iter()
            .filter(of_type)
            .filter(|a| a.healthy)
            .map(|a| a.address)
            .collect();
        if !healthy.is_empty() {
            return healthy;
        }
        self.addresses
            .iter()
            .filter(of_type)
            .map(|a| a.address)
            .collect()
    }
}

/// Where endpoints of each kind live in the DNS, and the hosted zone id that names that zone
/// in an AliasTarget (as ELB's canonical hosted zone id does in AWS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointZones {
    pub load_balancers: Name,
    pub databases: Name,
}

impl Default for EndpointZones {
    fn default() -> Self {
        Self {
            load_balancers: Name::from_ascii("elb.r53.internal.").unwrap_or_else(|_| Name::root()),
            databases: Name::from_ascii("rds.r53.internal.").unwrap_or_else(|_| Name::root()),
        }
    }
}

impl EndpointZones {
    pub fn new(load_balancers: &Name, databases: &Name) -> Self {
        Self {
            load_balancers: normalize_name(load_balancers),
            databases: normalize_name(databases),
        }
    }

    pub fn suffix(&self, kind: EndpointKind) -> &Name {
        match kind {
            EndpointKind::LoadBalancer => &self.load_balancers,
            EndpointKind::Database => &self.databases,
        }
    }

    /// The hosted zone id an AliasTarget names for endpoints of `kind`.
    pub fn zone_id(kind: EndpointKind) -> HostedZoneId {
        let id = match kind {
            EndpointKind::LoadBalancer => "ZR53ELBENDPOINTS",
            EndpointKind::Database => "ZR53RDSENDPOINTS",
        };
        HostedZoneId::parse(id).unwrap_or_else(|_| HostedZoneId::generate())
    }

    /// The kind whose zone `id` names, if any.
    pub fn kind_of_zone(id: &str) -> Option<EndpointKind> {
        [EndpointKind::LoadBalancer, EndpointKind::Database]
            .into_iter()
            .find(|k| Self::zone_id(*k).as_str() == id.strip_prefix("/hostedzone/").unwrap_or(id))
    }

    /// The kind whose suffix `name` lies under, if any.
    pub fn kind_of_name(&self, name: &Name) -> Option<EndpointKind> {
        [EndpointKind::LoadBalancer, EndpointKind::Database]
            .into_iter()
            .find(|k| self.suffix(*k).zone_of(name) && self.suffix(*k) != name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(addresses: &[(&str, bool)]) -> Endpoint {
        Endpoint {
            dns_name: Name::from_ascii("web.elb.r53.internal.").unwrap(),
            kind: EndpointKind::LoadBalancer,
            addresses: addresses
                .iter()
                .map(|(a, h)| EndpointAddress {
                    address: a.parse().unwrap(),
                    healthy: *h,
                })
                .collect(),
            ttl: 60,
            lease_expires_at: None,
        }
    }

    #[test]
    fn only_healthy_addresses_are_answered() {
        let e = endpoint(&[
            ("192.0.2.1", true),
            ("192.0.2.2", false),
            ("2001:db8::1", true),
        ]);
        assert_eq!(
            e.answer_addresses(RecordType::A),
            ["192.0.2.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(e.answer_addresses(RecordType::AAAA).len(), 1);
        assert!(e.answer_addresses(RecordType::MX).is_empty());
    }

    #[test]
    fn no_healthy_address_fails_open() {
        let e = endpoint(&[("192.0.2.1", false), ("192.0.2.2", false)]);
        assert_eq!(e.answer_addresses(RecordType::A).len(), 2);
        assert!(!e.is_healthy());
    }

    #[test]
    fn leases_expire() {
        let mut e = endpoint(&[("192.0.2.1", true)]);
        let now = SystemTime::now();
        assert!(e.is_live(now));
        e.lease_expires_at = Some(now);
        assert!(!e.is_live(now));
    }

    #[test]
    fn zones_tell_kinds_apart() {
        let zones = EndpointZones::default();
        let lb = Name::from_ascii("web.elb.r53.internal.").unwrap();
        assert_eq!(zones.kind_of_name(&lb), Some(EndpointKind::LoadBalancer));
        assert_eq!(zones.kind_of_name(&zones.load_balancers.clone()), None);
        assert_eq!(
            EndpointZones::kind_of_zone("/hostedzone/ZR53RDSENDPOINTS"),
            Some(EndpointKind::Database)
        );
    }
}
