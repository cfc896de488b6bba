//! Byte layout of keys and values in the store.
//!
//! Keys: `zones` tree: zone id bytes. `rrsets` tree: zone id, 0x00, owner name in lower-case
//! wire form, record type (u16 big-endian): one zone's sets are one contiguous key range.
//! Values start with a format byte so later formats can be told apart from this one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding, Restrict,
};

use super::StoreError;
use crate::model::{
    AliasTarget, ChangeInfo, Endpoint, EndpointAddress, EndpointKind, HostedZone, HostedZoneId,
    ResourceRecordSet, RrKey, Vpc, VpcAssociation,
};
use crate::resolver::ForwardingRule;

const ZONE_V1: u8 = 1;
/// With the private zone's VPC associations.
const ZONE_V2: u8 = 2;
const VPC_V1: u8 = 1;
const RULE_V1: u8 = 1;
const RRSET_V1: u8 = 1;
/// Owner in wire form, and the Alias target.
const RRSET_V2: u8 = 2;
/// Version 2, then the values as the API client entered them, one per record (see
/// [`push_texts`]). Written only for a set that has them, so a zone file's sets, and every
/// store written before values were kept as entered, stay in version 2.
const RRSET_V3: u8 = 3;
const ENDPOINT_V1: u8 = 1;
const CHANGE_V1: u8 = 1;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub fn zone_key(id: &HostedZoneId) -> Vec<u8> {
    id.as_str().as_bytes().to_vec()
}

pub fn rrset_prefix(id: &HostedZoneId) -> Vec<u8> {
    rrset_prefix_of(&zone_key(id))
}

/// [`rrset_prefix`] from the zone's key in the `zones` tree.
pub fn rrset_prefix_of(zone_key: &[u8]) -> Vec<u8> {
    let mut key = zone_key.to_vec();
    key.push(0);
    key
}

pub fn rrset_key(id: &HostedZoneId, key: &RrKey) -> Result<Vec<u8>, StoreError> {
    let mut out = rrset_prefix(id);
    let mut encoder = BinEncoder::new(&mut out);
    encoder.set_offset(id.as_str().len() + 1);
    encoder.set_name_encoding(NameEncoding::UncompressedLowercase);
    key.name.emit(&mut encoder).map_err(corrupt)?;
    out.extend_from_slice(&u16::from(key.rtype).to_be_bytes());
    Ok(out)
}

/// A little writer for length-prefixed fields.
struct Writer(Vec<u8>);

impl Writer {
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt("value ends early"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, StoreError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        let hi = self.u32()? as u64;
        let lo = self.u32()? as u64;
        Ok(hi << 32 | lo)
    }
    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn str(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes()?).map_err(corrupt)
    }
}

pub fn encode_zone(zone: &HostedZone) -> Vec<u8> {
    let mut w = Writer(vec![ZONE_V2]);
    w.str(zone.id.as_str());
    w.str(&zone.name.to_ascii());
    w.str(&zone.caller_reference);
    match &zone.comment {
        Some(c) => {
            w.0.push(1);
            w.str(c);
        }
        None => w.0.push(0),
    }
    w.0.push(u8::from(zone.private));
    put_time(&mut w.0, zone.created_at);
    w.0.extend_from_slice(&(zone.vpcs.len() as u32).to_be_bytes());
    for vpc in &zone.vpcs {
        w.str(&vpc.region);
        w.str(&vpc.vpc_id);
    }
    w.0
}

pub fn decode_zone(value: &[u8]) -> Result<HostedZone, StoreError> {
    let mut r = Reader(value);
    let format = r.u8()?;
    if format != ZONE_V1 && format != ZONE_V2 {
        return Err(corrupt("unknown hosted zone format"));
    }
    let id = HostedZoneId::parse(r.str()?).map_err(corrupt)?;
    let name = Name::from_ascii(r.str()?).map_err(corrupt)?;
    let caller_reference = r.str()?.to_owned();
    let comment = match r.u8()? {
        0 => None,
        _ => Some(r.str()?.to_owned()),
    };
    let private = r.u8()? != 0;
    let created_at = read_time(&mut r)?;
    let mut vpcs = Vec::new();
    if format == ZONE_V2 {
        for _ in 0..r.u32()? {
            vpcs.push(VpcAssociation {
                region: r.str()?.to_owned(),
                vpc_id: r.str()?.to_owned(),
            });
        }
    }
    Ok(HostedZone {
        id,
        name,
        caller_reference,
        comment,
        private,
        vpcs,
        created_at,
    })
}

fn put_time(out: &mut Vec<u8>, t: SystemTime) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    out.extend_from_slice(&since.as_secs().to_be_bytes());
    out.extend_from_slice(&since.subsec_nanos().to_be_bytes());
}

fn read_time(r: &mut Reader<'_>) -> Result<SystemTime, StoreError> {
    let secs = r.u64()?;
    let nanos = r.u32()?;
    Ok(UNIX_EPOCH + Duration::new(secs, nanos.min(999_999_999)))
}

pub fn encode_change(change: &ChangeInfo) -> Vec<u8> {
    let mut w = Writer(vec![CHANGE_V1]);
    w.str(&change.id);
    put_time(&mut w.0, change.submitted_at);
    match &change.comment {
        Some(c) => {
            w.0.push(1);
            w.str(c);
        }
        None => w.0.push(0),
    }
    w.0
}

pub fn decode_change(value: &[u8]) -> Result<ChangeInfo, StoreError> {
    let mut r = Reader(value);
    if r.u8()? != CHANGE_V1 {
        return Err(corrupt("unknown change format"));
    }
    let id = r.str()?.to_owned();
    let submitted_at = read_time(&mut r)?;
    let comment = match r.u8()? {
        0 => None,
        _ => Some(r.str()?.to_owned()),
    };
    Ok(ChangeInfo {
        id,
        submitted_at,
        comment,
    })
}

/// A name in uncompressed wire form, length-prefixed (no text escapes to get wrong).
fn put_name(out: &mut Vec<u8>, name: &Name) -> Result<(), StoreError> {
    let mut wire = Vec::new();
    let mut encoder = BinEncoder::new(&mut wire);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    name.emit(&mut encoder).map_err(corrupt)?;
    out.extend_from_slice(&(wire.len() as u16).to_be_bytes());
    out.extend_from_slice(&wire);
    Ok(())
}

fn read_name(r: &mut Reader<'_>) -> Result<Name, StoreError> {
    let len = r.u16()? as usize;
    let wire = r.take(len)?;
    let mut decoder = BinDecoder::new(wire);
    Name::read(&mut decoder).map_err(corrupt)
}

pub fn encode_rrset(set: &ResourceRecordSet) -> Result<Vec<u8>, StoreError> {
    let texts = set.texts.as_deref().filter(|_| set.alias.is_none());
    let mut out = vec![if texts.is_some() { RRSET_V3 } else { RRSET_V2 }];
    put_name(&mut out, &set.name)?;
    out.extend_from_slice(&u16::from(set.rtype).to_be_bytes());
    out.extend_from_slice(&set.ttl.to_be_bytes());
    out.extend_from_slice(&(set.records.len() as u32).to_be_bytes());
    for rdata in &set.records {
        push_rdata(&mut out, rdata)?;
    }
    match &set.alias {
        None => out.push(0),
        Some(alias) => {
            out.push(1);
            let mut w = Writer(Vec::new());
            w.str(&alias.hosted_zone_id);
            out.extend_from_slice(&w.0);
            put_name(&mut out, &alias.dns_name)?;
            out.push(u8::from(alias.evaluate_target_health));
        }
    }
    if let Some(texts) = texts {
        if texts.len() != set.records.len() {
            return Err(corrupt(
                "values as entered do not pair off with the records",
            ));
        }
        push_texts(&mut out, texts.iter().map(|t| &**t))?;
    }
    Ok(out)
}

/// The values as entered, one after another, each a u16 length then its UTF-8 bytes (Route 53
/// caps a value at 4000 characters, 16000 bytes at most).
pub fn push_texts<'t>(
    out: &mut Vec<u8>,
    texts: impl IntoIterator<Item = &'t str>,
) -> Result<(), StoreError> {
    for text in texts {
        let len = u16::try_from(text.len()).map_err(|_| corrupt("value over 65535 bytes"))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    Ok(())
}

/// The values [`push_texts`] wrote, which [`check_texts`] has found whole.
pub fn read_texts(texts: &[u8]) -> impl Iterator<Item = &str> + '_ {
    let mut r = Reader(texts);
    std::iter::from_fn(move || {
        let len = r.u16().ok()?;
        std::str::from_utf8(r.take(len as usize).ok()?).ok()
    })
}

/// Whether `texts` is exactly `count` values as [`push_texts`] writes them.
fn check_texts(texts: &[u8], count: u32) -> Result<(), StoreError> {
    let mut r = Reader(texts);
    for _ in 0..count {
        let len = r.u16()?;
        std::str::from_utf8(r.take(len as usize)?).map_err(corrupt)?;
    }
    if !r.0.is_empty() {
        return Err(corrupt("record set with trailing bytes"));
    }
    Ok(())
}

/// A record set's stored form taken apart without decoding its records: what the zone index
/// keeps (see `catalog`).
pub struct RawRrset<'a> {
    /// The owner in wire form, as written (names are stored normalized: lower case).
    pub name: &'a [u8],
    pub rtype: u16,
    pub ttl: u32,
    /// Each record as a u16 length then its RDATA, names uncompressed.
    pub records: &'a [u8],
    /// The values as entered, as [`push_texts`] writes them (one per record), when the set was
    /// entered through the API.
    pub texts: Option<&'a [u8]>,
}

/// `value` taken apart, when it is a plain record set in the current format: `None` for an
/// Alias or an older format, which [`decode_rrset`] reads.
pub fn raw_rrset(value: &[u8]) -> Result<Option<RawRrset<'_>>, StoreError> {
    let mut r = Reader(value);
    let format = r.u8()?;
    if format != RRSET_V2 && format != RRSET_V3 {
        return Ok(None);
    }
    let name_len = r.u16()? as usize;
    let name = r.take(name_len)?;
    let rtype = r.u16()?;
    let ttl = r.u32()?;
    let (count, records) = take_records(&mut r)?;
    let texts = match (format, r.0) {
        (RRSET_V2, [0]) => None,
        (RRSET_V3, [0, texts @ ..]) => {
            check_texts(texts, count)?;
            Some(texts)
        }
        (_, [1, ..]) => return Ok(None),
        _ => return Err(corrupt("record set with trailing bytes")),
    };
    Ok(Some(RawRrset {
        name,
        rtype,
        ttl,
        records,
        texts,
    }))
}

/// A record count, then that many records as [`push_rdata`] writes them: the count and the
/// records' bytes.
fn take_records<'a>(r: &mut Reader<'a>) -> Result<(u32, &'a [u8]), StoreError> {
    let count = r.u32()?;
    let start = r.0;
    for _ in 0..count {
        let len = r.u16()?;
        r.take(len as usize)?;
    }
    Ok((count, &start[..start.len() - r.0.len()]))
}

/// The stored form of a plain record set from its parts (the inverse of [`raw_rrset`]).
pub fn encode_raw_rrset(raw: &RawRrset<'_>) -> Vec<u8> {
    let mut count = 0u32;
    let mut rest = raw.records;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        rest = tail
            .get(u16::from_be_bytes(*len) as usize..)
            .unwrap_or_default();
        count += 1;
    }
    let texts = raw.texts.unwrap_or_default();
    let mut out = Vec::with_capacity(16 + raw.name.len() + raw.records.len() + texts.len());
    out.push(if raw.texts.is_some() {
        RRSET_V3
    } else {
        RRSET_V2
    });
    out.extend_from_slice(&(raw.name.len() as u16).to_be_bytes());
    out.extend_from_slice(raw.name);
    out.extend_from_slice(&raw.rtype.to_be_bytes());
    out.extend_from_slice(&raw.ttl.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(raw.records);
    out.push(0);
    out.extend_from_slice(texts);
    out
}

/// `rdata` as a record set's stored form keeps it: a u16 length, then the RDATA with names
/// uncompressed.
pub fn push_rdata(out: &mut Vec<u8>, rdata: &RData) -> Result<(), StoreError> {
    let mut wire = Vec::new();
    let mut encoder = BinEncoder::new(&mut wire);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut encoder).map_err(corrupt)?;
    let len = u16::try_from(wire.len()).map_err(|_| corrupt("record data over 65535 bytes"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&wire);
    Ok(())
}

/// The records [`push_rdata`] wrote, decoded as `rtype`.
pub fn read_rdata(
    records: &[u8],
    rtype: RecordType,
) -> impl Iterator<Item = Result<RData, StoreError>> + '_ {
    let mut r = Reader(records);
    std::iter::from_fn(move || {
        if r.0.is_empty() {
            return None;
        }
        Some((|| {
            let len = r.u16()?;
            let wire = r.take(len as usize)?;
            let mut decoder = BinDecoder::new(wire);
            RData::read(&mut decoder, rtype, Restrict::new(len)).map_err(corrupt)
        })())
    })
}

pub fn decode_rrset(value: &[u8]) -> Result<ResourceRecordSet, StoreError> {
    let mut r = Reader(value);
    let format = r.u8()?;
    let name = match format {
        // Version 1 kept the owner as text.
        RRSET_V1 => {
            let name_len = r.u16()? as usize;
            let name = std::str::from_utf8(r.take(name_len)?).map_err(corrupt)?;
            Name::from_ascii(name).map_err(corrupt)?
        }
        RRSET_V2 | RRSET_V3 => read_name(&mut r)?,
        _ => return Err(corrupt("unknown record set format")),
    };
    let rtype = RecordType::from(r.u16()?);
    let ttl = r.u32()?;
    let (count, records) = take_records(&mut r)?;
    let records = read_rdata(records, rtype).collect::<Result<Vec<_>, _>>()?;
    let alias = match (format, r.0.is_empty()) {
        (RRSET_V1, _) => None,
        _ => match r.u8()? {
            0 => None,
            _ => Some(AliasTarget {
                hosted_zone_id: r.str()?.to_owned(),
                dns_name: read_name(&mut r)?,
                evaluate_target_health: r.u8()? != 0,
            }),
        },
    };
    let texts = match format {
        RRSET_V3 => {
            check_texts(r.0, count)?;
            Some(read_texts(r.0).map(Box::from).collect())
        }
        _ => None,
    };
    Ok(ResourceRecordSet {
        name,
        rtype,
        ttl,
        records,
        alias: alias.map(Box::new),
        texts,
    })
}

pub fn encode_vpc(vpc: &Vpc) -> Vec<u8> {
    let mut w = Writer(vec![VPC_V1]);
    w.str(&vpc.id);
    w.0.extend_from_slice(&(vpc.cidrs.len() as u32).to_be_bytes());
    for net in &vpc.cidrs {
        w.str(&net.to_string());
    }
    w.0
}

pub fn decode_vpc(value: &[u8]) -> Result<Vpc, StoreError> {
    let mut r = Reader(value);
    if r.u8()? != VPC_V1 {
        return Err(corrupt("unknown VPC format"));
    }
    let id = r.str()?.to_owned();
    let mut cidrs = Vec::new();
    for _ in 0..r.u32()? {
        cidrs.push(r.str()?.parse().map_err(corrupt)?);
    }
    Ok(Vpc { id, cidrs })
}

pub fn encode_rule(rule: &ForwardingRule) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![RULE_V1];
    put_name(&mut out, &rule.domain)?;
    let mut w = Writer(Vec::new());
    w.0.extend_from_slice(&(rule.upstreams.len() as u32).to_be_bytes());
    for upstream in &rule.upstreams {
        w.str(&upstream.to_string());
    }
    out.extend_from_slice(&w.0);
    Ok(out)
}

pub fn decode_rule(value: &[u8]) -> Result<ForwardingRule, StoreError> {
    let mut r = Reader(value);
    if r.u8()? != RULE_V1 {
        return Err(corrupt("unknown rule format"));
    }
    let domain = read_name(&mut r)?;
    let mut upstreams = Vec::new();
    for _ in 0..r.u32()? {
        upstreams.push(r.str()?.parse().map_err(corrupt)?);
    }
    Ok(ForwardingRule { domain, upstreams })
}

/// The key of a value stored by DNS name (endpoints, forwarding rules): the name in lower
/// case, as text.
pub fn name_key(name: &Name) -> Vec<u8> {
    name.to_lowercase().to_ascii().into_bytes()
}

pub fn encode_endpoint(endpoint: &Endpoint) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![ENDPOINT_V1];
    put_name(&mut out, &endpoint.dns_name)?;
    out.push(match endpoint.kind {
        EndpointKind::LoadBalancer => 0,
        EndpointKind::Database => 1,
    });
    out.extend_from_slice(&endpoint.ttl.to_be_bytes());
    out.extend_from_slice(&(endpoint.addresses.len() as u32).to_be_bytes());
    for a in &endpoint.addresses {
        let mut w = Writer(Vec::new());
        w.str(&a.address.to_string());
        out.extend_from_slice(&w.0);
        out.push(u8::from(a.healthy));
    }
    match endpoint.lease_expires_at {
        None => out.push(0),
        Some(t) => {
            out.push(1);
            put_time(&mut out, t);
        }
    }
    Ok(out)
}

pub fn decode_endpoint(value: &[u8]) -> Result<Endpoint, StoreError> {
    let mut r = Reader(value);
    if r.u8()? != ENDPOINT_V1 {
        return Err(corrupt("unknown endpoint format"));
    }
    let dns_name = read_name(&mut r)?;
    let kind = match r.u8()? {
        0 => EndpointKind::LoadBalancer,
        _ => EndpointKind::Database,
    };
    let ttl = r.u32()?;
    let count = r.u32()? as usize;
    let mut addresses = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let address = r.str()?.parse().map_err(corrupt)?;
        let healthy = r.u8()? != 0;
        addresses.push(EndpointAddress { address, healthy });
    }
    let lease_expires_at = match r.u8()? {
        0 => None,
        _ => Some(read_time(&mut r)?),
    };
    Ok(Endpoint {
        dns_name,
        kind,
        addresses,
        ttl,
        lease_expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn zones_round_trip() {
        let mut zone = HostedZone::new(
            &Name::from_str("Example.COM").unwrap(),
            "ref-1",
            Some("a comment".into()),
        );
        zone.private = true;
        assert_eq!(decode_zone(&encode_zone(&zone)).unwrap(), zone);
        zone.comment = None;
        assert_eq!(decode_zone(&encode_zone(&zone)).unwrap(), zone);
        zone.vpcs = vec![VpcAssociation {
            region: "us-east-1".into(),
            vpc_id: "vpc-1".into(),
        }];
        assert_eq!(decode_zone(&encode_zone(&zone)).unwrap(), zone);
        let vpc = Vpc::new("vpc-1", &["10.0.0.0/8".into(), "fd00::/64".into()]).unwrap();
        assert_eq!(decode_vpc(&encode_vpc(&vpc)).unwrap(), vpc);
    }

    #[test]
    fn changes_round_trip() {
        let change = ChangeInfo::new(Some("why".into()));
        assert_eq!(decode_change(&encode_change(&change)).unwrap(), change);
    }

    #[test]
    fn rrsets_round_trip_with_names_in_rdata() {
        let set = ResourceRecordSet::new(
            &Name::from_str("example.com.").unwrap(),
            RecordType::MX,
            3600,
            vec![
                RData::try_from_str(RecordType::MX, "10 Mail.example.com.").unwrap(),
                RData::try_from_str(RecordType::MX, "20 mail2.example.net.").unwrap(),
            ],
        );
        assert_eq!(decode_rrset(&encode_rrset(&set).unwrap()).unwrap(), set);
    }

    #[test]
    fn alias_sets_and_endpoints_round_trip() {
        let set = ResourceRecordSet::alias(
            &Name::from_str("example.com.").unwrap(),
            RecordType::A,
            AliasTarget {
                hosted_zone_id: "ZR53ELBENDPOINTS".into(),
                dns_name: Name::from_str("web.elb.r53.internal.").unwrap(),
                evaluate_target_health: true,
            },
        );
        assert_eq!(decode_rrset(&encode_rrset(&set).unwrap()).unwrap(), set);
        let endpoint = Endpoint {
            dns_name: Name::from_str("web.elb.r53.internal.").unwrap(),
            kind: EndpointKind::Database,
            addresses: vec![
                EndpointAddress {
                    address: "192.0.2.1".parse().unwrap(),
                    healthy: true,
                },
                EndpointAddress {
                    address: "2001:db8::1".parse().unwrap(),
                    healthy: false,
                },
            ],
            ttl: 5,
            lease_expires_at: Some(SystemTime::now()),
        };
        assert_eq!(
            decode_endpoint(&encode_endpoint(&endpoint).unwrap()).unwrap(),
            endpoint
        );
    }

    #[test]
    fn truncated_values_are_corrupt_not_panics() {
        let set = ResourceRecordSet::new(
            &Name::from_str("a.example.com.").unwrap(),
            RecordType::TXT,
            60,
            vec![RData::try_from_str(RecordType::TXT, "\"hello\" \"world\"").unwrap()],
        );
        let entered = set.clone().with_texts(vec!["\"hello\"  \"world\"".into()]);
        for set in [set, entered] {
            let bytes = encode_rrset(&set).unwrap();
            for cut in 0..bytes.len() {
                assert!(decode_rrset(&bytes[..cut]).is_err());
                // The zone index's reading of it: an error or, cut inside an Alias, not a
                // plain set; never a panic, and never the values as entered cut short.
                assert!(
                    !matches!(raw_rrset(&bytes[..cut]), Ok(Some(_))),
                    "cut at {cut}"
                );
            }
        }
    }

    fn entered_mx() -> ResourceRecordSet {
        ResourceRecordSet::new(
            &Name::from_str("example.com.").unwrap(),
            RecordType::MX,
            300,
            vec![
                RData::try_from_str(RecordType::MX, "10 mail.example.com.").unwrap(),
                RData::try_from_str(RecordType::MX, "20 mail2.example.net.").unwrap(),
            ],
        )
        .with_texts(vec![
            "10 Mail.example.com".into(),
            "020 mail2.example.net.".into(),
        ])
    }

    #[test]
    fn values_as_entered_round_trip() {
        let set = entered_mx();
        let bytes = encode_rrset(&set).unwrap();
        assert_eq!(bytes[0], RRSET_V3);
        let back = decode_rrset(&bytes).unwrap();
        assert_eq!(back, set);
        let listed: Vec<_> = back.listed_values().collect();
        assert_eq!(listed, ["10 Mail.example.com", "020 mail2.example.net."]);
        // And taken apart and put together again as the zone index does (the snapshot).
        let raw = raw_rrset(&bytes).unwrap().unwrap();
        let texts: Vec<_> = read_texts(raw.texts.unwrap()).collect();
        assert_eq!(texts, ["10 Mail.example.com", "020 mail2.example.net."]);
        assert_eq!(encode_raw_rrset(&raw), bytes);
    }

    /// What r53 wrote before it kept values as entered (and still writes for a zone file's
    /// sets), spelt out byte by byte: it reads as it did, with no values as entered.
    #[test]
    fn version_2_record_sets_read_as_before() {
        let mut old = vec![2u8];
        let owner = b"\x07example\x03com\x00";
        old.extend_from_slice(&(owner.len() as u16).to_be_bytes());
        old.extend_from_slice(owner);
        old.extend_from_slice(&15u16.to_be_bytes()); // MX
        old.extend_from_slice(&300u32.to_be_bytes());
        old.extend_from_slice(&1u32.to_be_bytes());
        let rdata = b"\x00\x0a\x04Mail\x07example\x03com\x00";
        old.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        old.extend_from_slice(rdata);
        old.push(0); // no Alias
        let set = decode_rrset(&old).unwrap();
        assert_eq!(set.texts, None);
        let listed: Vec<_> = set.listed_values().collect();
        assert_eq!(listed, ["10 Mail.example.com."]);
        let raw = raw_rrset(&old).unwrap().unwrap();
        assert_eq!(raw.texts, None);
        assert_eq!(encode_raw_rrset(&raw), old);
        // A set without values as entered is still written so.
        assert_eq!(encode_rrset(&set).unwrap(), old);
    }

    #[test]
    fn values_as_entered_that_do_not_pair_off_are_corrupt() {
        let mut bytes = encode_rrset(&entered_mx()).unwrap();
        bytes.extend_from_slice(&[0, 1, b'x']); // a third value for two records
        assert!(decode_rrset(&bytes).is_err());
        assert!(raw_rrset(&bytes).is_err());
        let mut bytes = encode_rrset(&entered_mx()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] = 0xff; // not UTF-8
        assert!(decode_rrset(&bytes).is_err());
        assert!(raw_rrset(&bytes).is_err());
    }
}
