//! VPCs: r53's stand-in for an AWS VPC, a named set of CIDRs. A client whose source address
//! lies in a VPC's CIDRs is "in" that VPC and sees the private zones associated with it.

use std::net::IpAddr;

use ipnet::IpNet;

use super::InvalidInput;

/// Most CIDRs one VPC may list.
pub const MAX_CIDRS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vpc {
    pub id: String,
    pub cidrs: Vec<IpNet>,
}

impl Vpc {
    /// A VPC from its id and CIDR texts, checked.
    pub fn new(id: &str, cidrs: &[String]) -> Result<Self, InvalidInput> {
        check_vpc_id(id)?;
        if cidrs.is_empty() || cidrs.len() > MAX_CIDRS {
            return Err(InvalidInput(format!(
                "A VPC needs between 1 and {MAX_CIDRS} Cidrs"
            )));
        }
        let mut parsed = Vec::with_capacity(cidrs.len());
        for text in cidrs {
            let net: IpNet = text.parse().map_err(|_| {
                InvalidInput(format!(
                    "Invalid CIDR '{text}': expected an address/prefix such as 172.20.0.0/16"
                ))
            })?;
            // Store the network itself (172.20.1.2/16 means 172.20.0.0/16).
            parsed.push(net.trunc());
        }
        Ok(Self {
            id: id.to_owned(),
            cidrs: parsed,
        })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        // A v4-mapped IPv6 source (::ffff:a.b.c.d, from a dual-stack socket) is the v4 client.
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.cidrs.iter().any(|net| net.contains(&address))
    }
}

/// VPC ids as AWS writes them (`vpc-0a1b2c3d`), or any short name of letters, digits, `-`
/// and `_` (compose network names).
pub fn check_vpc_id(id: &str) -> Result<(), InvalidInput> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(InvalidInput(format!(
            "Invalid VPC id '{id}': use 1 to 64 letters, digits, '-' or '_'"
        )))
    }
}

/// A private hosted zone's association with a VPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcAssociation {
    pub region: String,
    pub vpc_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_inside_the_cidrs_are_in_the_vpc() {
        let vpc = Vpc::new("vpc-1", &["172.20.0.0/16".into(), "fd00::/64".into()]).unwrap();
        assert!(vpc.contains("172.20.3.4".parse().unwrap()));
        assert!(vpc.contains("::ffff:172.20.3.4".parse().unwrap()));
        assert!(vpc.contains("fd00::1".parse().unwrap()));
        assert!(!vpc.contains("172.21.0.1".parse().unwrap()));
    }

    #[test]
    fn bad_ids_and_cidrs_are_invalid() {
        assert!(Vpc::new("vpc 1", &["10.0.0.0/8".into()]).is_err());
        assert!(Vpc::new("vpc-1", &["10.0.0.0/33".into()]).is_err());
        assert!(Vpc::new("vpc-1", &[]).is_err());
        assert_eq!(
            Vpc::new("vpc-1", &["10.1.2.3/8".into()]).unwrap().cidrs[0].to_string(),
            "10.0.0.0/8"
        );
    }
}
