//! Record data in presentation format → hickory `RData`, one supported type at a time, plus
//! RFC 3597's generic `\# length hex` form for any of them.
//!
//! Every field is checked and nothing may follow the last one. Errors carry the line of the
//! field at fault. Owner, TTL and class are the reader's business, not this file's.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::dnssec::rdata::DS;
use hickory_proto::dnssec::{Algorithm, DigestType};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR};
use hickory_proto::rr::rdata::{MX, NAPTR, NULL, SOA, SRV, SSHFP, TLSA, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecoder, Restrict};
use hickory_proto::serialize::txt::parse_ttl;

use super::lexer::Token;
use super::presentation::{decode_escapes, decode_hex, parse_decimal, parse_name};
use super::{svcb, Problem};
use crate::model::SPF;

/// What a too-long <character-string>'s problem says, so that the API can report it as
/// Route 53 does (CharacterStringTooLong).
pub const CHARACTER_STRING_TOO_LONG: &str = "a character-string holds at most 255";

/// The record-data fields of one entry, read front to back.
pub(super) struct Fields<'a> {
    tokens: &'a [Token],
    next: usize,
    /// The line of the last field taken (at first, the line of the type).
    line: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn new(tokens: &'a [Token], line: usize) -> Self {
        Self {
            tokens,
            next: 0,
            line,
        }
    }

    pub(super) fn problem(&self, message: impl Into<String>) -> Problem {
        Problem::new(self.line, message)
    }

    pub(super) fn next_token(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.next)?;
        self.next += 1;
        self.line = token.line;
        Some(token)
    }

    pub(super) fn take(&mut self, what: &str) -> Result<&'a Token, Problem> {
        let line = self.line;
        self.next_token()
            .ok_or_else(|| Problem::new(line, format!("missing {what}")))
    }

    pub(super) fn decimal<T: TryFrom<u64>>(&mut self, what: &str) -> Result<T, Problem> {
        let token = self.take(what)?;
        parse_decimal(&token.text, what).map_err(|m| self.problem(m))
    }

    /// A domain name; an unquoted `@` is the current origin (RFC 1035 §5.1).
    pub(super) fn name(&mut self, what: &str, origin: &Name) -> Result<Name, Problem> {
        let token = self.take(what)?;
        if token.text == "@" && !token.quoted {
            return Ok(origin.clone());
        }
        parse_name(&token.text, origin).map_err(|m| self.problem(format!("{what}: {m}")))
    }

    /// The bytes of one field, escapes decoded.
    pub(super) fn bytes(&mut self, what: &str) -> Result<Vec<u8>, Problem> {
        let token = self.take(what)?;
        decode_escapes(&token.text).map_err(|m| self.problem(m))
    }

    /// A <character-string>: at most 255 bytes (RFC 1035 §3.3).
    fn character_string(&mut self, what: &str) -> Result<Vec<u8>, Problem> {
        let bytes = self.bytes(what)?;
        if bytes.len() > 255 {
            return Err(self.problem(format!(
                "{what} is {} bytes long; {CHARACTER_STRING_TOO_LONG}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    /// Hex in the remaining fields, which may be split by blanks; at least one field.
    fn hex_rest(&mut self, what: &str) -> Result<Vec<u8>, Problem> {
        let mut hex = self.take(what)?.text.clone();
        while let Some(token) = self.next_token() {
            hex.push_str(&token.text);
        }
        decode_hex(&hex).map_err(|m| self.problem(format!("{what}: {m}")))
    }

    fn at_end(&self) -> bool {
        self.next == self.tokens.len()
    }

    /// Fails when fields are left over.
    pub(super) fn finish(&mut self, rtype: &str) -> Result<(), Problem> {
        match self.next_token() {
            None => Ok(()),
            Some(extra) => Err(self.problem(format!(
                "unexpected {:?} after the {rtype} data",
                extra.text
            ))),
        }
    }
}

/// Parses the record data of a record of type `rtype`; relative names take `origin`.
pub(super) fn parse(
    rtype: RecordType,
    mnemonic: &str,
    tokens: &[Token],
    type_line: usize,
    origin: &Name,
) -> Result<RData, Problem> {
    let mut fields = Fields::new(tokens, type_line);
    if tokens.first().is_some_and(|t| t.text == r"\#" && !t.quoted) {
        fields.next_token();
        return generic(rtype, mnemonic, fields);
    }
    let rdata = match rtype {
        RecordType::A => {
            let text = &fields.take("IPv4 address")?.text;
            let address: Ipv4Addr = text
                .parse()
                .map_err(|_| fields.problem(format!("bad IPv4 address {text:?}")))?;
            RData::A(A(address))
        }
        RecordType::AAAA => {
            let text = &fields.take("IPv6 address")?.text;
            let address: Ipv6Addr = text
                .parse()
                .map_err(|_| fields.problem(format!("bad IPv6 address {text:?}")))?;
            RData::AAAA(AAAA(address))
        }
        RecordType::CNAME => RData::CNAME(CNAME(fields.name("CNAME target", origin)?)),
        RecordType::NS => RData::NS(NS(fields.name("name server", origin)?)),
        RecordType::PTR => RData::PTR(PTR(fields.name("PTR target", origin)?)),
        RecordType::MX => {
            let preference = fields.decimal("MX preference")?;
            RData::MX(MX::new(preference, fields.name("mail exchange", origin)?))
        }
        RecordType::SOA => soa(&mut fields, origin)?,
        RecordType::SRV => {
            let priority = fields.decimal("SRV priority")?;
            let weight = fields.decimal("SRV weight")?;
            let port = fields.decimal("SRV port")?;
            RData::SRV(SRV::new(
                priority,
                weight,
                port,
                fields.name("SRV target", origin)?,
            ))
        }
        RecordType::NAPTR => naptr(&mut fields, origin)?,
        RecordType::TXT => RData::TXT(TXT::from_bytes(
            character_strings(&mut fields)?
                .iter()
                .map(Vec::as_slice)
                .collect(),
        )),
        RecordType::CAA => {
            let wire = caa_wire(&mut fields)?;
            decode_wire(rtype, &wire).map_err(|m| fields.problem(m))?
        }
        RecordType::DS => ds(&mut fields)?,
        RecordType::SSHFP => {
            let algorithm = fields.decimal::<u8>("SSHFP algorithm")?;
            let fingerprint_type = fields.decimal::<u8>("SSHFP fingerprint type")?;
            RData::SSHFP(SSHFP::new(
                algorithm.into(),
                fingerprint_type.into(),
                fields.hex_rest("SSHFP fingerprint")?,
            ))
        }
        RecordType::TLSA => {
            let usage = fields.decimal::<u8>("TLSA certificate usage")?;
            let selector = fields.decimal::<u8>("TLSA selector")?;
            let matching = fields.decimal::<u8>("TLSA matching type")?;
            RData::TLSA(TLSA::new(
                usage.into(),
                selector.into(),
                matching.into(),
                fields.hex_rest("TLSA certificate data")?,
            ))
        }
        RecordType::SVCB | RecordType::HTTPS => {
            let wire = svcb::parse_wire(&mut fields, origin)?;
            let rdata = decode_wire(rtype, &wire).map_err(|m| fields.problem(m))?;
            svcb::check(&rdata).map_err(|m| fields.problem(m))?;
            rdata
        }
        SPF => {
            let strings = character_strings(&mut fields)?;
            let mut wire = Vec::new();
            for s in strings {
                // character_strings() holds each to 255 bytes.
                wire.push(s.len() as u8);
                wire.extend(s);
            }
            RData::Unknown {
                code: SPF,
                rdata: NULL::with(wire),
            }
        }
        _ => return Err(fields.problem(format!("unsupported record type {mnemonic}"))),
    };
    fields.finish(mnemonic)?;
    Ok(rdata)
}

/// One or more <character-string>s: the rest of the fields.
fn character_strings(fields: &mut Fields<'_>) -> Result<Vec<Vec<u8>>, Problem> {
    let mut strings = vec![fields.character_string("text")?];
    while !fields.at_end() {
        strings.push(fields.character_string("text")?);
    }
    Ok(strings)
}

fn soa(fields: &mut Fields<'_>, origin: &Name) -> Result<RData, Problem> {
    let mname = fields.name("SOA primary name server", origin)?;
    let rname = fields.name("SOA mailbox", origin)?;
    let serial = fields.decimal("SOA serial")?;
    // RFC 1035 §3.3.13 gives these as 32-bit counts of seconds; hickory holds refresh, retry
    // and expire as i32, and BIND also reads unit suffixes (1h, 2w).
    let mut interval = |what: &str| -> Result<u32, Problem> {
        let text = &fields.take(what)?.text;
        parse_ttl(text).map_err(|_| fields.problem(format!("bad {what} {text:?}")))
    };
    let signed = |value: u32, what: &str| {
        i32::try_from(value).map_err(|_| format!("{what} {value} is above 2147483647"))
    };
    let refresh = interval("SOA refresh")?;
    let retry = interval("SOA retry")?;
    let expire = interval("SOA expire")?;
    let minimum = interval("SOA minimum")?;
    Ok(RData::SOA(SOA::new(
        mname,
        rname,
        serial,
        signed(refresh, "SOA refresh").map_err(|m| fields.problem(m))?,
        signed(retry, "SOA retry").map_err(|m| fields.problem(m))?,
        signed(expire, "SOA expire").map_err(|m| fields.problem(m))?,
        minimum,
    )))
}

fn naptr(fields: &mut Fields<'_>, origin: &Name) -> Result<RData, Problem> {
    let order = fields.decimal("NAPTR order")?;
    let preference = fields.decimal("NAPTR preference")?;
    let flags = fields.character_string("NAPTR flags")?;
    // RFC 3403 §4.1: flags are single characters from A-Z and 0-9.
    if !flags.iter().all(u8::is_ascii_alphanumeric) {
        return Err(fields.problem("NAPTR flags must be letters and digits"));
    }
    let services = fields.character_string("NAPTR services")?;
    let regexp = fields.character_string("NAPTR regexp")?;
    let replacement = fields.name("NAPTR replacement", origin)?;
    Ok(RData::NAPTR(NAPTR::new(
        order,
        preference,
        flags.into(),
        services.into(),
        regexp.into(),
        replacement,
    )))
}

/// CAA (RFC 8659 §4.1) in wire form: hickory's constructor is private to it.
fn caa_wire(fields: &mut Fields<'_>) -> Result<Vec<u8>, Problem> {
    let flags: u8 = fields.decimal("CAA flags")?;
    let tag = fields.bytes("CAA tag")?;
    if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
        return Err(fields.problem("CAA tag must be 1 to 15 letters and digits"));
    }
    let value = fields.bytes("CAA value")?;
    let mut wire = vec![flags, tag.len() as u8];
    wire.extend(tag);
    wire.extend(value);
    Ok(wire)
}

fn ds(fields: &mut Fields<'_>) -> Result<RData, Problem> {
    let key_tag = fields.decimal("DS key tag")?;
    let algorithm = {
        let text = &fields.take("DS algorithm")?.text;
        // RFC 4034 §A.1 allows mnemonics as well as numbers.
        let number = match text.to_ascii_uppercase().as_str() {
            "RSAMD5" => 1,
            "DH" => 2,
            "DSA" => 3,
            "RSASHA1" => 5,
            "DSA-NSEC3-SHA1" => 6,
            "RSASHA1-NSEC3-SHA1" => 7,
            "RSASHA256" => 8,
            "RSASHA512" => 10,
            "ECC-GOST" => 12,
            "ECDSAP256SHA256" => 13,
            "ECDSAP384SHA384" => 14,
            "ED25519" => 15,
            "ED448" => 16,
            "INDIRECT" => 252,
            "PRIVATEDNS" => 253,
            "PRIVATEOID" => 254,
            _ => parse_decimal::<u8>(text, "DS algorithm").map_err(|m| fields.problem(m))?,
        };
        Algorithm::from_u8(number)
    };
    let digest_type = DigestType::from(fields.decimal::<u8>("DS digest type")?);
    let digest = fields.hex_rest("DS digest")?;
    Ok(RData::DNSSEC(
        hickory_proto::dnssec::rdata::DNSSECRData::DS(DS::new(
            key_tag,
            algorithm,
            digest_type,
            digest,
        )),
    ))
}

/// RFC 3597 §5: `\# length hex…`, decoded as the wire form of the named type.
fn generic(rtype: RecordType, mnemonic: &str, mut fields: Fields<'_>) -> Result<RData, Problem> {
    let length: u16 = fields.decimal("length of the \\# data")?;
    let wire = if length == 0 {
        Vec::new()
    } else {
        fields.hex_rest("\\# data")?
    };
    fields.finish(mnemonic)?;
    if wire.len() != usize::from(length) {
        return Err(fields.problem(format!(
            "\\# data is {} bytes long, not the {length} announced",
            wire.len()
        )));
    }
    let rdata = decode_wire(rtype, &wire)
        .map_err(|m| fields.problem(format!("{mnemonic} \\# data: {m}")))?;
    if matches!(rtype, RecordType::SVCB | RecordType::HTTPS) {
        svcb::check(&rdata).map_err(|m| fields.problem(m))?;
    }
    Ok(rdata)
}

/// Decodes wire-format record data, as received in a message. TXT and SPF need at least one
/// character-string (RFC 1035 §3.3.14), which hickory does not check.
fn decode_wire(rtype: RecordType, wire: &[u8]) -> Result<RData, String> {
    if matches!(rtype, RecordType::TXT) || rtype == SPF {
        let mut rest = wire;
        while let Some((&len, tail)) = rest.split_first() {
            rest = tail
                .get(usize::from(len)..)
                .ok_or("a character-string runs past the end of the data")?;
        }
        if wire.is_empty() {
            return Err("TXT data needs at least one character-string".into());
        }
        if rtype == SPF {
            return Ok(RData::Unknown {
                code: SPF,
                rdata: NULL::with(wire.to_vec()),
            });
        }
    }
    // The length came from a usize that held at most a u16's worth of hex or fields.
    let length = u16::try_from(wire.len()).map_err(|_| "record data above 65535 bytes")?;
    let mut decoder = BinDecoder::new(wire);
    RData::read(&mut decoder, rtype, Restrict::new(length)).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zonefile::lexer::entries;
    use std::str::FromStr;

    fn origin() -> Name {
        Name::from_str("example.com.").unwrap()
    }

    /// Parses `rdata` (which may span lines in parentheses) as data of `mnemonic`.
    fn rdata(mnemonic: &str, text: &str) -> Result<RData, Problem> {
        let rtype = super::super::SUPPORTED_TYPES
            .iter()
            .find(|(m, _)| *m == mnemonic)
            .map(|(_, t)| *t)
            .unwrap();
        let entry = entries(&format!("x {mnemonic} {text}")).unwrap().remove(0);
        parse(rtype, mnemonic, &entry.tokens[2..], 1, &origin())
    }

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    #[test]
    fn at_sign_as_data_is_the_origin() {
        assert_eq!(rdata("CNAME", "@").unwrap(), RData::CNAME(CNAME(origin())));
        assert_eq!(
            rdata("MX", "10 @").unwrap(),
            RData::MX(MX::new(10, origin()))
        );
        // Quoted, it is a label like any other.
        assert_eq!(
            rdata("CNAME", "\"@\"").unwrap(),
            RData::CNAME(CNAME(
                Name::from_labels(vec![b"@".to_vec(), b"example".to_vec(), b"com".to_vec()])
                    .unwrap()
            ))
        );
    }

    #[test]
    fn relative_names_in_data_take_the_origin() {
        assert_eq!(
            rdata("SRV", "0 5 5060 sip").unwrap(),
            RData::SRV(SRV::new(0, 5, 5060, name("sip.example.com.")))
        );
        assert_eq!(
            rdata("NS", "ns1.example.net.").unwrap(),
            RData::NS(NS(name("ns1.example.net.")))
        );
    }

    #[test]
    fn txt_decodes_decimal_escapes_inside_quotes() {
        assert_eq!(
            rdata("TXT", r#""a\065\255\"b" plain"#).unwrap(),
            RData::TXT(TXT::from_bytes(vec![b"aA\xff\"b", b"plain"]))
        );
    }

    #[test]
    fn txt_strings_longer_than_255_bytes_are_errors() {
        let long = format!("\"{}\"", "x".repeat(256));
        let err = rdata("TXT", &long).unwrap_err();
        assert!(err.message.contains("256 bytes"), "{}", err.message);
        assert!(rdata("TXT", &format!("\"{}\"", "x".repeat(255))).is_ok());
    }

    #[test]
    fn extra_fields_are_errors() {
        for (mnemonic, text) in [
            ("A", "192.0.2.1 192.0.2.2"),
            ("CNAME", "a b"),
            ("MX", "10 a b"),
            ("SOA", "ns host 1 2 3 4 5 6"),
            ("SRV", "1 2 3 a b"),
            ("NAPTR", "1 2 \"s\" \"\" \"\" . x"),
            ("CAA", "0 issue \"ca.example\" extra"),
        ] {
            let err = rdata(mnemonic, text).unwrap_err();
            assert!(
                err.message.starts_with("unexpected"),
                "{mnemonic}: {}",
                err.message
            );
        }
    }

    #[test]
    fn missing_fields_are_errors() {
        for (mnemonic, text) in [
            ("A", ""),
            ("MX", "10"),
            ("SOA", "ns host 1 2 3 4"),
            ("DS", "1 13 2"),
            ("TXT", ""),
        ] {
            let err = rdata(mnemonic, text).unwrap_err();
            assert!(
                err.message.starts_with("missing"),
                "{mnemonic}: {}",
                err.message
            );
        }
    }

    #[test]
    fn errors_point_at_the_line_of_the_bad_field() {
        let entry = entries("x SOA ns host (\n 1\n 2\n oops\n 4 5 )")
            .unwrap()
            .remove(0);
        let err = parse(RecordType::SOA, "SOA", &entry.tokens[2..], 1, &origin()).unwrap_err();
        assert_eq!(err.line, 4);
        assert_eq!(err.message, "bad SOA retry \"oops\"");
    }

    #[test]
    fn soa_intervals_accept_unit_suffixes() {
        match rdata("SOA", "ns host 2026112501 2h 15m 2w 300").unwrap() {
            RData::SOA(soa) => {
                assert_eq!(soa.serial, 2026112501);
                assert_eq!((soa.refresh, soa.retry, soa.expire), (7200, 900, 1209600));
                assert_eq!(soa.minimum, 300);
                assert_eq!(soa.rname, name("host.example.com."));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hex_fields_may_be_split_by_blanks_but_not_odd() {
        let RData::DNSSEC(_) = rdata("DS", "12345 ECDSAP256SHA256 2 ( 0123 4567\n89ab )").unwrap()
        else {
            panic!("not DS");
        };
        let err = rdata("DS", "12345 13 2 0123456").unwrap_err();
        assert!(err.message.contains("odd"), "{}", err.message);
        match rdata("TLSA", "3 1 1 ab CD").unwrap() {
            RData::TLSA(tlsa) => assert_eq!(tlsa.cert_data, [0xab, 0xcd]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn caa_keeps_any_value_bytes_and_checks_the_tag() {
        match rdata("CAA", r#"128 tbs "a\"b\000""#).unwrap() {
            RData::CAA(caa) => {
                assert!(caa.issuer_critical);
                assert_eq!(caa.tag, "tbs");
                assert_eq!(caa.value, b"a\"b\0");
            }
            other => panic!("{other:?}"),
        }
        assert!(rdata("CAA", "0 is-sue \"x\"").is_err());
    }

    #[test]
    fn naptr_strings_are_character_strings() {
        match rdata("NAPTR", r#"100 50 "s" "SIP+D2U" "!^(.*)$!\\1!" _sip._udp"#).unwrap() {
            RData::NAPTR(naptr) => {
                assert_eq!(&*naptr.regexp, br"!^(.*)$!\1!");
                assert_eq!(naptr.replacement, name("_sip._udp.example.com."));
            }
            other => panic!("{other:?}"),
        }
        assert!(rdata("NAPTR", r#"1 2 "s-" "" "" ."#).is_err());
    }

    #[test]
    fn spf_is_held_as_txt_wire_data_under_type_99() {
        assert_eq!(
            rdata("SPF", r#""v=spf1" "-all""#).unwrap(),
            RData::Unknown {
                code: SPF,
                rdata: NULL::with(b"\x06v=spf1\x04-all".to_vec())
            }
        );
    }

    #[test]
    fn generic_data_decodes_as_the_named_type() {
        assert_eq!(
            rdata("A", r"\# 4 C0000201").unwrap(),
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(
            rdata("TXT", r"\# 4 ( 03 616263 )").unwrap(),
            RData::TXT(TXT::from_bytes(vec![b"abc"]))
        );
        assert_eq!(
            rdata("SPF", r"\# 2 0161").unwrap(),
            rdata("SPF", "a").unwrap()
        );
    }

    #[test]
    fn generic_data_with_the_wrong_length_or_shape_is_an_error() {
        assert!(rdata("A", r"\# 5 C0000201").is_err());
        assert!(rdata("A", r"\# 3 C00002").is_err());
        assert!(rdata("TXT", r"\# 0").is_err());
        assert!(rdata("TXT", r"\# 2 0561").is_err());
        assert!(rdata("CAA", r"\# 3 000100").is_err());
        // A quoted \# is text.
        assert_eq!(
            rdata("TXT", r#""\#""#).unwrap(),
            RData::TXT(TXT::from_bytes(vec![b"#"]))
        );
    }
}
