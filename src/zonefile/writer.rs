//! Record sets → zone-file text that BIND, Knot and this module's reader all load.
//!
//! One record per line, `owner TTL IN TYPE rdata`, owners fully qualified; SOA first, then the
//! apex NS, then the rest in canonical order. Data a type's presentation format cannot carry
//! faithfully (a TXT with no strings, an empty DS digest, …) is written in RFC 3597's generic
//! `\# length hex` form instead, so nothing is lost or altered.

use std::fmt::Write as _;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::presentation::{write_character_string, write_hex, write_name};
use super::{mnemonic, svcb};
use crate::model::{ResourceRecordSet, SPF};

pub(super) fn write(origin: &Name, rrsets: &[ResourceRecordSet]) -> String {
    let mut out = String::from("$ORIGIN ");
    write_name(&mut out, origin);
    out.push('\n');

    let rank = |set: &ResourceRecordSet| match set.rtype {
        RecordType::SOA if set.name == *origin => 0,
        RecordType::NS if set.name == *origin => 1,
        _ => 2,
    };
    let mut sets: Vec<&ResourceRecordSet> = rrsets.iter().collect();
    sets.sort_by_cached_key(|set| (rank(set), set.key()));
    for set in sets {
        if let Some(alias) = &set.alias {
            // A zone file has no way to say "Alias": note it, so an export shows everything
            // the zone holds. (Re-importing the file does not recreate it.)
            let mut line = String::from("; alias ");
            write_name(&mut line, &set.name);
            let _ = write!(line, " {} -> ", mnemonic(set.rtype).unwrap_or("TYPE"));
            write_name(&mut line, &alias.dns_name);
            let _ = writeln!(
                line,
                " (HostedZoneId {}, EvaluateTargetHealth {})",
                alias.hosted_zone_id, alias.evaluate_target_health
            );
            out.push_str(&line);
        }
        for rdata in &set.records {
            write_record(&mut out, set, rdata);
        }
    }
    out
}

fn write_record(out: &mut String, set: &ResourceRecordSet, rdata: &RData) {
    let mut line = String::new();
    write_name(&mut line, &set.name);
    let _ = write!(line, " {} IN ", set.ttl);
    let type_name = match mnemonic(set.rtype) {
        Some(name) => name.to_owned(),
        None => format!("TYPE{}", u16::from(set.rtype)),
    };
    line.push_str(&type_name);
    line.push(' ');
    if let Err(e) = write_rdata(&mut line, rdata) {
        // Nothing in a valid record set gets here; say so in the file rather than write
        // something that reads back differently.
        let _ = writeln!(
            out,
            "; cannot write a {type_name} record of {}: {e}",
            set.name
        );
        return;
    }
    out.push_str(&line);
    out.push('\n');
}

/// Writes `rdata` in its type's presentation format, or in RFC 3597's `\# len hex` form
/// where that format would not carry it faithfully.
pub(super) fn write_rdata(out: &mut String, rdata: &RData) -> Result<(), String> {
    if present(out, rdata) {
        return Ok(());
    }
    let mut wire = Vec::new();
    let mut encoder = BinEncoder::new(&mut wire);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut encoder).map_err(|e| e.to_string())?;
    let _ = write!(out, "\\# {}", wire.len());
    if !wire.is_empty() {
        out.push(' ');
        write_hex(out, &wire);
    }
    Ok(())
}

/// Writes `rdata` in its type's presentation format, or returns false if that would not carry
/// it faithfully.
fn present(out: &mut String, rdata: &RData) -> bool {
    match rdata {
        RData::A(a) => {
            let _ = write!(out, "{}", a.0);
        }
        RData::AAAA(aaaa) => {
            let _ = write!(out, "{}", aaaa.0);
        }
        RData::CNAME(name) => write_name(out, &name.0),
        RData::NS(name) => write_name(out, &name.0),
        RData::PTR(name) => write_name(out, &name.0),
        RData::MX(mx) => {
            let _ = write!(out, "{} ", mx.preference);
            write_name(out, &mx.exchange);
        }
        RData::SOA(soa) => {
            write_name(out, &soa.mname);
            out.push(' ');
            write_name(out, &soa.rname);
            // The wire fields are unsigned 32-bit (RFC 1035 §3.3.13); hickory holds three of
            // them as i32, so write their bits as u32.
            let _ = write!(
                out,
                " {} {} {} {} {}",
                soa.serial,
                u32::from_be_bytes(soa.refresh.to_be_bytes()),
                u32::from_be_bytes(soa.retry.to_be_bytes()),
                u32::from_be_bytes(soa.expire.to_be_bytes()),
                soa.minimum
            );
        }
        RData::SRV(srv) => {
            let _ = write!(out, "{} {} {} ", srv.priority, srv.weight, srv.port);
            write_name(out, &srv.target);
        }
        RData::NAPTR(naptr) => {
            let _ = write!(out, "{} {} ", naptr.order, naptr.preference);
            for text in [&naptr.flags, &naptr.services, &naptr.regexp] {
                write_character_string(out, text);
                out.push(' ');
            }
            write_name(out, &naptr.replacement);
        }
        RData::CAA(caa) => {
            let tag_ok = !caa.tag.is_empty()
                && caa.tag.len() <= 15
                && caa.tag.bytes().all(|b| b.is_ascii_alphanumeric());
            if !tag_ok {
                return false;
            }
            let _ = write!(out, "{} {} ", caa.flags(), caa.tag);
            write_character_string(out, &caa.value);
        }
        RData::TXT(txt) => {
            let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
            return write_character_strings(out, &strings);
        }
        RData::Unknown { code, rdata } if *code == SPF => {
            let Some(strings) = split_character_strings(&rdata.anything) else {
                return false;
            };
            return write_character_strings(out, &strings);
        }
        RData::DNSSEC(DNSSECRData::DS(ds)) => {
            if ds.digest().is_empty() {
                return false;
            }
            let _ = write!(
                out,
                "{} {} {} ",
                ds.key_tag(),
                u8::from(ds.algorithm()),
                u8::from(ds.digest_type())
            );
            write_hex(out, ds.digest());
        }
        RData::SSHFP(sshfp) => {
            if sshfp.fingerprint.is_empty() {
                return false;
            }
            let _ = write!(
                out,
                "{} {} ",
                u8::from(sshfp.algorithm),
                u8::from(sshfp.fingerprint_type)
            );
            write_hex(out, &sshfp.fingerprint);
        }
        RData::TLSA(tlsa) => {
            if tlsa.cert_data.is_empty() {
                return false;
            }
            let _ = write!(
                out,
                "{} {} {} ",
                u8::from(tlsa.cert_usage),
                u8::from(tlsa.selector),
                u8::from(tlsa.matching)
            );
            write_hex(out, &tlsa.cert_data);
        }
        RData::SVCB(svcb) => svcb::present(out, svcb),
        RData::HTTPS(https) => svcb::present(out, &https.0),
        _ => return false,
    }
    true
}

/// TXT-style data: one or more quoted strings of at most 255 bytes each.
fn write_character_strings(out: &mut String, strings: &[&[u8]]) -> bool {
    if strings.is_empty() || strings.iter().any(|s| s.len() > 255) {
        return false;
    }
    for (i, s) in strings.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_character_string(out, s);
    }
    true
}

/// The character-strings of TXT wire data, if it is well formed.
fn split_character_strings(mut wire: &[u8]) -> Option<Vec<&[u8]>> {
    let mut strings = Vec::new();
    while let Some((&len, rest)) = wire.split_first() {
        let len = usize::from(len);
        strings.push(rest.get(..len)?);
        wire = &rest[len..];
    }
    Some(strings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{caa::CAA, NULL, TXT};
    use std::str::FromStr;

    fn line_for(rtype: RecordType, rdata: RData) -> String {
        let set = ResourceRecordSet::new(
            &Name::from_str("t.example.com.").unwrap(),
            rtype,
            300,
            vec![rdata],
        );
        let text = write(&Name::from_str("example.com.").unwrap(), &[set]);
        text.lines().nth(1).unwrap().to_owned()
    }

    #[test]
    fn txt_is_quoted_and_escaped() {
        let txt = TXT::from_bytes(vec![b"say \"hi\" \\ ;", b"", b"\x00\xff"]);
        assert_eq!(
            line_for(RecordType::TXT, RData::TXT(txt)),
            r#"t.example.com. 300 IN TXT "say \"hi\" \\ ;" "" "\000\255""#
        );
    }

    #[test]
    fn txt_without_strings_falls_back_to_the_generic_form() {
        assert_eq!(
            line_for(RecordType::TXT, RData::TXT(TXT::from_bytes(vec![]))),
            r"t.example.com. 300 IN TXT \# 0"
        );
    }

    #[test]
    fn spf_is_written_like_txt() {
        let spf = RData::Unknown {
            code: SPF,
            rdata: NULL::with(b"\x06v=spf1\x04-all".to_vec()),
        };
        assert_eq!(
            line_for(SPF, spf),
            r#"t.example.com. 300 IN SPF "v=spf1" "-all""#
        );
        let broken = RData::Unknown {
            code: SPF,
            rdata: NULL::with(b"\x09v=spf1".to_vec()),
        };
        assert_eq!(
            line_for(SPF, broken),
            r"t.example.com. 300 IN SPF \# 7 09763D73706631"
        );
    }

    #[test]
    fn caa_values_are_quoted() {
        let caa = CAA::new_issue(
            false,
            Some(Name::from_str("ca.example.net").unwrap()),
            vec![],
        );
        assert_eq!(
            line_for(RecordType::CAA, RData::CAA(caa)),
            r#"t.example.com. 300 IN CAA 0 issue "ca.example.net""#
        );
    }

    #[test]
    fn types_without_a_mnemonic_use_the_generic_form() {
        let rdata = RData::Unknown {
            code: RecordType::Unknown(65280),
            rdata: NULL::with(vec![1, 2]),
        };
        assert_eq!(
            line_for(RecordType::Unknown(65280), rdata),
            r"t.example.com. 300 IN TYPE65280 \# 2 0102"
        );
    }
}
