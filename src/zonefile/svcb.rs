//! SVCB and HTTPS record data in RFC 9460 presentation format, both directions.
//!
//! Reading builds the wire form (which hickory then decodes and checks) because hickory's own
//! text parser mishandles quoted and escaped values; writing is done here because hickory's
//! `Display` leaves trailing commas, writes `no-default-alpn=` and invents `unknownN` keys.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::svcb::{SvcParamKey, SvcParamValue, SVCB};
use hickory_proto::rr::{Name, RData};

use super::presentation::{
    decode_base64, decode_escapes, parse_decimal, write_base64, write_character_string, write_name,
};
use super::rdata::Fields;
use super::Problem;

/// Key numbers (RFC 9460 §14.3.2) and their presentation names.
const MANDATORY: u16 = 0;
const ALPN: u16 = 1;
const NO_DEFAULT_ALPN: u16 = 2;
const PORT: u16 = 3;
const IPV4HINT: u16 = 4;
const ECH: u16 = 5;
const IPV6HINT: u16 = 6;
const KEY_NAMES: [(&str, u16); 7] = [
    ("mandatory", MANDATORY),
    ("alpn", ALPN),
    ("no-default-alpn", NO_DEFAULT_ALPN),
    ("port", PORT),
    ("ipv4hint", IPV4HINT),
    ("ech", ECH),
    ("ipv6hint", IPV6HINT),
];

/// How a parameter key was written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyForm {
    /// `alpn`, `port`, …: the value is in the key's own presentation format.
    Named,
    /// `keyNNNNN`: the value is the wire format, as a character-string (RFC 9460 §2.1).
    Numbered,
}

/// `mandatory`, …, or `keyNNNNN` (RFC 9460 §2.1). Key 65535 is reserved as invalid.
fn parse_key(text: &str) -> Result<(u16, KeyForm), String> {
    if let Some((_, number)) = KEY_NAMES.iter().find(|(name, _)| *name == text) {
        return Ok((*number, KeyForm::Named));
    }
    let number = text
        .strip_prefix("key")
        .filter(|digits| !digits.starts_with('0') || *digits == "0")
        .ok_or_else(|| format!("unknown SVCB parameter {text:?}"))?;
    match parse_decimal::<u16>(number, "SVCB parameter key")? {
        65535 => Err("SVCB parameter key65535 is reserved".into()),
        key => Ok((key, KeyForm::Numbered)),
    }
}

fn key_name(key: u16) -> String {
    match KEY_NAMES.iter().find(|(_, number)| *number == key) {
        Some((name, _)) => (*name).to_owned(),
        None => format!("key{key}"),
    }
}

/// Splits a value-list (RFC 9460 §A.1): items separated by commas, `\` escaping the next byte.
fn value_list(value: &[u8], key: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut items = Vec::new();
    let mut item = Vec::new();
    let mut bytes = value.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b',' => items.push(std::mem::take(&mut item)),
            b'\\' => item.push(
                *bytes
                    .next()
                    .ok_or_else(|| format!("{key}: lone backslash at the end of the list"))?,
            ),
            _ => item.push(b),
        }
    }
    items.push(item);
    if items.iter().any(Vec::is_empty) {
        return Err(format!("{key}: empty item in the list"));
    }
    Ok(items)
}

fn utf8<'v>(item: &'v [u8], key: &str) -> Result<&'v str, String> {
    std::str::from_utf8(item).map_err(|_| format!("{key}: not text"))
}

/// The wire form of one parameter's value.
fn value_wire(key: u16, form: KeyForm, value: Option<&[u8]>) -> Result<Vec<u8>, String> {
    let name = key_name(key);
    let required = || value.ok_or_else(|| format!("{name} needs a value"));
    let mut wire = Vec::new();
    match (form, key) {
        (KeyForm::Named, MANDATORY) => {
            let mut keys = Vec::new();
            for item in value_list(required()?, &name)? {
                let (listed, _) = parse_key(utf8(&item, &name)?)?;
                if keys.contains(&listed) {
                    return Err(format!("mandatory lists {} twice", key_name(listed)));
                }
                keys.push(listed);
            }
            // RFC 9460 §8: the wire list is in strictly increasing order.
            keys.sort_unstable();
            for listed in keys {
                wire.extend(listed.to_be_bytes());
            }
        }
        (KeyForm::Named, ALPN) => {
            for item in value_list(required()?, &name)? {
                let len = u8::try_from(item.len())
                    .map_err(|_| format!("alpn id longer than 255 bytes: {}", item.len()))?;
                wire.push(len);
                wire.extend(item);
            }
        }
        (KeyForm::Named, NO_DEFAULT_ALPN) => {
            if value.is_some() {
                return Err("no-default-alpn takes no value".into());
            }
        }
        (KeyForm::Named, PORT) => {
            let port: u16 = parse_decimal(utf8(required()?, &name)?, "port")?;
            wire.extend(port.to_be_bytes());
        }
        (KeyForm::Named, IPV4HINT) => {
            for item in value_list(required()?, &name)? {
                let text = utf8(&item, &name)?;
                let address: Ipv4Addr = text
                    .parse()
                    .map_err(|_| format!("ipv4hint: bad IPv4 address {text:?}"))?;
                wire.extend(address.octets());
            }
        }
        (KeyForm::Named, IPV6HINT) => {
            for item in value_list(required()?, &name)? {
                let text = utf8(&item, &name)?;
                let address: Ipv6Addr = text
                    .parse()
                    .map_err(|_| format!("ipv6hint: bad IPv6 address {text:?}"))?;
                wire.extend(address.octets());
            }
        }
        (KeyForm::Named, ECH) => wire = decode_base64(utf8(required()?, &name)?)?,
        // RFC 9460 §2.1: a keyNNNNN value is the wire form, written as a character-string.
        _ => wire.extend(value.unwrap_or_default()),
    }
    Ok(wire)
}

/// Reads `SvcPriority TargetName SvcParams…` and returns the wire form.
pub(super) fn parse_wire(fields: &mut Fields<'_>, origin: &Name) -> Result<Vec<u8>, Problem> {
    let priority: u16 = fields.decimal("SvcPriority")?;
    let target = fields.name("TargetName", origin)?;
    let mut params: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
    while let Some(token) = fields.next_token() {
        let (key_text, value) = match token.text.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (token.text.as_str(), None),
        };
        let (key, form) = parse_key(key_text).map_err(|m| fields.problem(m))?;
        let value = value
            .map(decode_escapes)
            .transpose()
            .map_err(|m| fields.problem(m))?;
        let wire = value_wire(key, form, value.as_deref()).map_err(|m| fields.problem(m))?;
        if params.insert(key, wire).is_some() {
            return Err(fields.problem(format!("{} appears twice", key_name(key))));
        }
    }

    let mut wire = priority.to_be_bytes().to_vec();
    for label in target.iter() {
        // Labels are at most 63 bytes.
        wire.push(label.len() as u8);
        wire.extend(label);
    }
    wire.push(0);
    for (key, value) in params {
        let len = u16::try_from(value.len())
            .map_err(|_| fields.problem(format!("{} value is too long", key_name(key))))?;
        wire.extend(key.to_be_bytes());
        wire.extend(len.to_be_bytes());
        wire.extend(value);
    }
    Ok(wire)
}

fn svcb_of(rdata: &RData) -> Option<&SVCB> {
    match rdata {
        RData::SVCB(svcb) => Some(svcb),
        RData::HTTPS(https) => Some(&https.0),
        _ => None,
    }
}

/// The rules RFC 9460 sets across parameters, which hickory does not check.
pub(super) fn check(rdata: &RData) -> Result<(), String> {
    let Some(svcb) = svcb_of(rdata) else {
        return Ok(());
    };
    let present = |key: SvcParamKey| svcb.svc_params.iter().any(|(k, _)| *k == key);
    for (_, value) in &svcb.svc_params {
        if let SvcParamValue::Mandatory(mandatory) = value {
            for key in &mandatory.0 {
                // RFC 9460 §8: "mandatory" must not list itself, and every key it lists must
                // be present.
                if *key == SvcParamKey::Mandatory {
                    return Err("mandatory must not list mandatory".into());
                }
                if !present(*key) {
                    return Err(format!(
                        "mandatory lists {}, which the record does not have",
                        key_name(u16::from(*key))
                    ));
                }
            }
        }
    }
    // RFC 9460 §7.1.1: no-default-alpn without alpn is not self-consistent.
    if present(SvcParamKey::NoDefaultAlpn) && !present(SvcParamKey::Alpn) {
        return Err("no-default-alpn needs alpn".into());
    }
    Ok(())
}

/// Escapes one value-list item: `,` and `\` get a backslash (RFC 9460 §A.1).
fn push_list_item(out: &mut Vec<u8>, item: &[u8]) {
    for &b in item {
        if b == b',' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{item}");
    }
    out
}

/// Writes SVCB data in RFC 9460 presentation format.
pub(super) fn present(out: &mut String, svcb: &SVCB) {
    let _ = write!(out, "{} ", svcb.svc_priority);
    write_name(out, &svcb.target_name);
    for (key, value) in &svcb.svc_params {
        out.push(' ');
        out.push_str(&key_name(u16::from(*key)));
        match value {
            SvcParamValue::Mandatory(keys) => {
                let names: Vec<String> = keys.0.iter().map(|k| key_name(u16::from(*k))).collect();
                let _ = write!(out, "={}", names.join(","));
            }
            SvcParamValue::Alpn(alpn) => {
                let mut list = Vec::new();
                for (i, id) in alpn.0.iter().enumerate() {
                    if i > 0 {
                        list.push(b',');
                    }
                    push_list_item(&mut list, id.as_bytes());
                }
                out.push('=');
                write_character_string(out, &list);
            }
            SvcParamValue::NoDefaultAlpn => {}
            SvcParamValue::Port(port) => {
                let _ = write!(out, "={port}");
            }
            SvcParamValue::Ipv4Hint(hints) => {
                let addresses: Vec<Ipv4Addr> = hints.0.iter().map(|a| a.0).collect();
                let _ = write!(out, "={}", join(&addresses));
            }
            SvcParamValue::Ipv6Hint(hints) => {
                let addresses: Vec<Ipv6Addr> = hints.0.iter().map(|a| a.0).collect();
                let _ = write!(out, "={}", join(&addresses));
            }
            SvcParamValue::EchConfigList(ech) => {
                out.push('=');
                write_base64(out, &ech.0);
            }
            SvcParamValue::Unknown(unknown) => {
                if !unknown.0.is_empty() {
                    out.push('=');
                    write_character_string(out, &unknown.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile::lexer::entries;
    use hickory_proto::rr::RecordType;
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    use std::str::FromStr;

    fn parse(text: &str) -> Result<SVCB, Problem> {
        let entry = entries(&format!("x SVCB {text}")).unwrap().remove(0);
        let mut fields = Fields::new(&entry.tokens[2..], 1);
        let wire = parse_wire(&mut fields, &Name::from_str("example.com.").unwrap())?;
        let rdata = RData::read(
            &mut BinDecoder::new(&wire),
            RecordType::SVCB,
            Restrict::new(wire.len() as u16),
        )
        .map_err(|e| Problem::new(0, e.to_string()))?;
        check(&rdata).map_err(|m| Problem::new(0, m))?;
        match rdata {
            RData::SVCB(svcb) => Ok(svcb),
            other => panic!("{other:?}"),
        }
    }

    fn round_trip(text: &str) -> String {
        let svcb = parse(text).unwrap();
        let mut out = String::new();
        present(&mut out, &svcb);
        assert_eq!(parse(&out).unwrap(), svcb, "{out}");
        out
    }

    #[test]
    fn parameters_are_written_in_key_order_without_trailing_commas() {
        assert_eq!(
            round_trip(
                r#"1 . port=8443 alpn="h2,h3" ipv6hint=2001:db8::1,2001:db8::2 ipv4hint=192.0.2.1,192.0.2.2 mandatory=port,alpn"#
            ),
            r#"1 . mandatory=alpn,port alpn="h2,h3" port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1,2001:db8::2"#
        );
    }

    #[test]
    fn alpn_ids_with_commas_and_backslashes_survive() {
        let svcb = parse(r#"1 svc alpn="h2,a\\,b,c\\\\d""#).unwrap();
        match &svcb.svc_params[0].1 {
            SvcParamValue::Alpn(alpn) => assert_eq!(alpn.0, ["h2", "a,b", r"c\d"]),
            other => panic!("{other:?}"),
        }
        assert_eq!(svcb.target_name.to_string(), "svc.example.com.");
        assert_eq!(
            round_trip(r#"1 svc alpn="h2,a\\,b,c\\\\d""#),
            r#"1 svc.example.com. alpn="h2,a\\,b,c\\\\d""#
        );
    }

    #[test]
    fn no_default_alpn_ech_and_unknown_keys_round_trip() {
        assert_eq!(
            round_trip(
                r#"1 . alpn=h3 no-default-alpn ech="AEj+DQBE" key65000="a\"b\000" key65001"#
            ),
            r#"1 . alpn="h3" no-default-alpn ech=AEj+DQBE key65000="a\"b\000" key65001"#
        );
    }

    #[test]
    fn known_keys_written_as_key_numbers_take_wire_values() {
        let svcb = parse(r#"1 . key3="\001\187""#).unwrap();
        assert_eq!(
            svcb.svc_params,
            [(SvcParamKey::Port, SvcParamValue::Port(443))]
        );
    }

    #[test]
    fn alias_mode_has_just_a_target() {
        assert_eq!(round_trip("0 pool.svc.example."), "0 pool.svc.example.");
    }

    #[test]
    fn inconsistent_parameters_are_errors() {
        for text in [
            "1 . alpn=h2 alpn=h3",
            "1 . mandatory=port",
            "1 . mandatory=mandatory",
            "1 . no-default-alpn",
            "1 . no-default-alpn=x alpn=h2",
            "1 . alpn",
            "1 . alpn=h2,,h3",
            "1 . port=99999",
            "1 . ipv4hint=2001:db8::1",
            "1 . ech=***",
            "1 . key65535=x",
            "1 . key01=x",
            "1 . color=blue",
        ] {
            assert!(parse(text).is_err(), "{text} was accepted");
        }
    }
}
