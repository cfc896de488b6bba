//! Record names and values as Route 53 accepts them, with its InvalidInput wording.
//!
//! Values come in zone-file presentation format, one record per value (`10 mail.example.com.`,
//! `"v=spf1 -all"`). They are checked for the shape Route 53 insists on (with its wording) and
//! then read by the zone-file reader, so the API and zone files accept the same data.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::{Name, RData, RecordType};

use super::{normalize_name, SPF};
use crate::zonefile;

/// Route 53 caps a single value at 4000 characters.
pub const MAX_VALUE_CHARS: usize = 4000;

/// A name or value Route 53 would refuse; the message is the one to show. Inside a change
/// batch Route 53 refuses it as InvalidChangeBatch, elsewhere (a listing's start name) as
/// InvalidInput: the caller chooses the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// A value Route 53's record reader refuses:
/// `Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid
/// IPv4 address) encountered with '192.0.2.256''`.
fn fatal(problem: &str, explanation: &str, value: &str) -> InvalidInput {
    in_record(fatal_name(problem, explanation, value))
}

/// A name Route 53's reader refuses, which it reports without the record wrapper:
/// `FATAL problem: DomainLabelEmpty (Domain label is empty) encountered with 'a..example.com'`.
fn fatal_name(problem: &str, explanation: &str, value: &str) -> InvalidInput {
    InvalidInput(format!(
        "FATAL problem: {problem} ({explanation}) encountered with '{value}'"
    ))
}

/// A problem found in a record's value, worded as Route 53 reports it.
fn in_record(e: InvalidInput) -> InvalidInput {
    InvalidInput(format!("Invalid Resource Record: '{}'", e.0))
}

/// Parses a DNS name as Route 53 takes it (its "DNS domain name format"): names are fully
/// qualified whether or not they end in a dot, letters are folded to lower case, and a
/// backslash escape is three octal digits (`\052` is `*`, `ex\344mple` is `exämple`) or
/// stands for the character after it (`\.`). `*` may only be the whole leftmost label.
///
/// Octal, not RFC 1035's decimal: Route 53 writes names so in its listings (see
/// [`route53_name`]), and what it lists must read back as the same name.
pub fn parse_name(text: &str) -> Result<Name, InvalidInput> {
    if text.is_empty() {
        // Route 53, for an empty AliasTarget DNSName: "[FATAL problem: DomainNameEmpty
        // (Domain name is empty) encountered with '']".
        return Err(fatal_name("DomainNameEmpty", "Domain name is empty", text));
    }
    let bad_escape = || {
        InvalidInput(format!(
            "Invalid DNS name '{text}': a backslash must be followed by three octal digits or by the character it escapes"
        ))
    };
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut chars = text.chars().peekable();
    let mut ends_with_dot = false;
    while let Some(c) = chars.next() {
        ends_with_dot = false;
        match c {
            '.' => {
                labels.push(std::mem::take(&mut label));
                ends_with_dot = true;
            }
            '\\' => match chars.next() {
                Some(d) if d.is_ascii_digit() => {
                    let mut code = d.to_digit(8).ok_or_else(bad_escape)?;
                    for _ in 0..2 {
                        let digit = chars.next().and_then(|d| d.to_digit(8));
                        code = code * 8 + digit.ok_or_else(bad_escape)?;
                    }
                    label.push(u8::try_from(code).map_err(|_| bad_escape())?);
                }
                Some(other) => {
                    let mut buf = [0; 4];
                    label.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                }
                None => return Err(bad_escape()),
            },
            other => {
                let mut buf = [0; 4];
                label.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    if !ends_with_dot {
        labels.push(label);
    }
    // "." alone is the root.
    if labels.len() == 1 && labels[0].is_empty() && text == "." {
        labels.clear();
    }
    check_labels(text, labels.iter().map(Vec::as_slice))?;
    let name = Name::from_labels(labels)
        .map_err(|e| InvalidInput(format!("Invalid DNS name '{text}': {e}")))?;
    Ok(normalize_name(&name))
}

/// Route 53's checks of a name's `labels` (leftmost first; none for the root), worded as it
/// words them for `text`: at most 255 bytes in wire form, no empty label, none over 63 bytes,
/// and `*` only as the whole leftmost label.
fn check_labels<'a>(
    text: &str,
    labels: impl Iterator<Item = &'a [u8]> + Clone,
) -> Result<(), InvalidInput> {
    // Wire length: one length octet per label plus the labels, plus the root.
    if labels.clone().map(|l| l.len() + 1).sum::<usize>() + 1 > 255 {
        return Err(fatal_name(
            "DomainNameTooLong",
            "Domain name is too long",
            text,
        ));
    }
    for (i, label) in labels.enumerate() {
        if label.is_empty() {
            return Err(fatal_name(
                "DomainLabelEmpty",
                "Domain label is empty",
                text,
            ));
        }
        if label.len() > 63 {
            return Err(fatal_name(
                "DomainLabelTooLong",
                "Domain label is too long",
                text,
            ));
        }
        if label.contains(&b'*') && (i != 0 || label != b"*") {
            return Err(InvalidInput(format!(
                "Invalid DNS name '{text}': an asterisk is only permitted as the whole leftmost label"
            )));
        }
    }
    Ok(())
}

/// A name as Route 53 writes it: fully qualified, and every character other than `a`-`z`,
/// `0`-`9`, `-` and `_` as a backslash and three octal digits, so `*.example.com.` is
/// `\052.example.com.` ("Route 53 API actions return the characters as escape codes in the
/// format \three-digit octal code"). [`parse_name`] reads it back.
pub fn route53_name(name: &Name) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    for label in name.iter() {
        for &byte in label {
            match byte.to_ascii_lowercase() {
                b @ (b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_') => out.push(b as char),
                b => out.push_str(&format!("\\{b:03o}")),
            }
        }
        out.push('.');
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// Reads a name inside a value (a CNAME's target, an MX's exchange) as the zone-file reader
/// does, with RFC 1035's decimal escapes, and checks it as a record name is checked.
fn parse_value_name(text: &str) -> Result<Name, InvalidInput> {
    let unescaped = text.replace("\\052", "*");
    if unescaped.is_empty() {
        return Err(InvalidInput("DNS name must not be empty".into()));
    }
    let body = unescaped.strip_suffix('.').unwrap_or(&unescaped);
    // A pre-check on the text's labels (an escaped dot splits one here, the reader below
    // reads it right), so that a bad name gets Route 53's words rather than the reader's.
    let labels = (!body.is_empty()).then(|| body.split('.').map(str::as_bytes));
    check_labels(text, labels.into_iter().flatten())?;
    // hickory's `Name::from_ascii` reads `\DDD` as octal; the zone-file reader reads it as
    // RFC 1035 §5.1 says, in decimal.
    let name = zonefile::parse_name(&unescaped, &Name::root())
        .map_err(|e| InvalidInput(format!("Invalid DNS name '{text}': {e}")))?;
    Ok(normalize_name(&name))
}

/// Parses one value of a record set of type `rtype`.
pub fn parse_value(rtype: RecordType, value: &str) -> Result<RData, InvalidInput> {
    if value.chars().count() > MAX_VALUE_CHARS {
        return Err(fatal(
            "ValueTooLong",
            "Value is longer than 4000 characters",
            value,
        ));
    }
    let fields: Vec<&str> = value.split_whitespace().collect();
    let expect_fields = |n: usize, problem: &str, what: &str, value: &str| {
        if fields.len() == n {
            Ok(())
        } else {
            Err(fatal(problem, what, value))
        }
    };
    match rtype {
        RecordType::A => {
            if fields.len() > 1 {
                return Err(fatal(
                    "ARRDATANotSingleField",
                    "Value contains spaces",
                    value,
                ));
            }
            return value
                .parse::<Ipv4Addr>()
                .map(|a| RData::A(a.into()))
                .map_err(|_| {
                    fatal(
                        "ARRDATAIllegalIPv4Address",
                        "Value is not a valid IPv4 address",
                        value,
                    )
                });
        }
        RecordType::AAAA => {
            return value
                .parse::<Ipv6Addr>()
                .map(|a| RData::AAAA(a.into()))
                .map_err(|_| {
                    fatal(
                        "AAAARRDATAIllegalIPv6Address",
                        "Value is not a valid IPv6 address",
                        value,
                    )
                });
        }
        // Route 53 wants every character-string quoted; the zone-file reader also takes bare
        // words.
        RecordType::TXT | SPF if !all_quoted(value) => {
            return Err(fatal(
                "InvalidCharacterString",
                "Value should be enclosed in quotation marks",
                value,
            ));
        }
        RecordType::MX => {
            expect_fields(
                2,
                "MXRRDataNotTwoFields",
                "MX data must be a priority and a mail server name",
                value,
            )?;
            u16_field(
                fields[0],
                "InvalidMXPriority",
                "Priority must be an integer from 0 to 65535",
                value,
            )?;
        }
        RecordType::SRV => {
            expect_fields(
                4,
                "SRVRRDataNotFourFields",
                "SRV data must be priority, weight, port and target",
                value,
            )?;
            for f in &fields[..3] {
                u16_field(
                    f,
                    "InvalidSRVField",
                    "Priority, weight and port must be integers from 0 to 65535",
                    value,
                )?;
            }
        }
        RecordType::CAA => {
            if fields.len() < 3 {
                return Err(fatal(
                    "CAARRDataNotThreeFields",
                    "CAA data must be flags, a tag and a quoted value",
                    value,
                ));
            }
            if fields[0].parse::<u8>().is_err() {
                return Err(fatal(
                    "InvalidCAAFlags",
                    "Flags must be an integer from 0 to 255",
                    value,
                ));
            }
            if !fields[1].bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(fatal(
                    "InvalidCAATag",
                    "The tag must be letters and digits",
                    value,
                ));
            }
            let rest = value.trim_start()[fields[0].len()..].trim_start()[fields[1].len()..].trim();
            if rest.is_empty() || !all_quoted(rest) {
                return Err(fatal(
                    "InvalidCharacterString",
                    "Value should be enclosed in quotation marks",
                    value,
                ));
            }
        }
        RecordType::CNAME | RecordType::NS | RecordType::PTR => {
            expect_fields(
                1,
                "InvalidDomainName",
                "Value must be one domain name",
                value,
            )?;
            parse_value_name(fields[0]).map_err(in_record)?;
        }
        RecordType::SOA => {
            expect_fields(
                7,
                "SOARRDataNotSevenFields",
                "SOA data must be seven fields",
                value,
            )?;
        }
        _ => {}
    }
    // Names in values are fully qualified whether or not they end in a dot, as in Route 53.
    zonefile::parse_rdata(rtype, value, &Name::root()).map_err(|e| {
        if matches!(rtype, RecordType::TXT | SPF)
            && e.contains(zonefile::CHARACTER_STRING_TOO_LONG)
        {
            return fatal("CharacterStringTooLong", "Value is too long", value);
        }
        InvalidInput(format!(
            "Invalid Resource Record: 'FATAL problem: InvalidRData ({e}) encountered with '{value}''"
        ))
    })
}

/// Whether `value` is one or more quoted strings, separated by blanks, and nothing else: a
/// quote inside a string must be escaped (`"a \"b\""`). `"x="y""` is two strings with a bare
/// word between them, which Route 53 refuses as InvalidCharacterString.
fn all_quoted(value: &str) -> bool {
    let mut chars = value.trim().chars();
    let mut strings = 0;
    loop {
        match chars.next() {
            None => return strings > 0,
            Some(c) if c.is_whitespace() => continue,
            Some('"') => {}
            Some(_) => return false,
        }
        // Inside a string: up to the closing quote, escapes skipped.
        loop {
            match chars.next() {
                None => return false,
                Some('\\') => {
                    if chars.next().is_none() {
                        return false;
                    }
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        strings += 1;
        // A string ends at a blank or the end of the value.
        match chars.clone().next() {
            None => {}
            Some(c) if c.is_whitespace() => {}
            Some(_) => return false,
        }
    }
}

fn u16_field(field: &str, problem: &str, what: &str, value: &str) -> Result<u16, InvalidInput> {
    field
        .parse::<u16>()
        .map_err(|_| fatal(problem, what, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_qualified_and_lower_cased() {
        assert_eq!(
            parse_name("WWW.Example.com").unwrap().to_string(),
            "www.example.com."
        );
        assert_eq!(
            parse_name("\\052.example.com.").unwrap().to_string(),
            "*.example.com."
        );
    }

    #[test]
    fn escapes_are_octal_and_names_are_written_back_so() {
        let name = parse_name("ex\\344mple.\\101\\.b.com").unwrap();
        let labels: Vec<&[u8]> = name.iter().collect();
        assert_eq!(labels, [&b"ex\xe4mple"[..], b"a.b", b"com"]);
        assert_eq!(route53_name(&name), "ex\\344mple.a\\056b.com.");
        assert_eq!(parse_name(&route53_name(&name)).unwrap(), name);
        let wildcard = parse_name("*.Example.com").unwrap();
        assert_eq!(route53_name(&wildcard), "\\052.example.com.");
        assert_eq!(parse_name("\\052.example.com.").unwrap(), wildcard);
        assert_eq!(route53_name(&parse_name(".").unwrap()), ".");
        for bad in ["a\\09.com", "a\\400.com", "a\\1", "a\\"] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn misplaced_asterisks_and_long_labels_are_invalid() {
        assert!(parse_name("a.*.example.com.").is_err());
        assert!(parse_name("a*.example.com.").is_err());
        assert!(parse_name(&format!("{}.example.com.", "a".repeat(64))).is_err());
        let long = format!("{}example.com.", "abcdefghi.".repeat(25));
        assert!(parse_name(&long).is_err());
    }

    /// Route 53's problem names and wording, as its InvalidChangeBatch messages have them.
    #[test]
    fn bad_values_are_worded_as_route53_words_them() {
        let e = parse_value(RecordType::A, "192.0.2.256").unwrap_err();
        assert_eq!(e.0, "Invalid Resource Record: 'FATAL problem: ARRDATAIllegalIPv4Address (Value is not a valid IPv4 address) encountered with '192.0.2.256''");
        let e = parse_value(RecordType::A, "192.0.2.1, 192.0.2.2").unwrap_err();
        assert_eq!(e.0, "Invalid Resource Record: 'FATAL problem: ARRDATANotSingleField (Value contains spaces) encountered with '192.0.2.1, 192.0.2.2''");
        let e = parse_value(RecordType::AAAA, "2001:db8::g").unwrap_err();
        assert_eq!(e.0, "Invalid Resource Record: 'FATAL problem: AAAARRDATAIllegalIPv6Address (Value is not a valid IPv6 address) encountered with '2001:db8::g''");
        assert!(parse_value(RecordType::A, "2001:db8::1").is_err());
        let long = format!("\"{}\"", "x".repeat(256));
        let e = parse_value(RecordType::TXT, &long).unwrap_err();
        assert_eq!(
            e.0,
            format!("Invalid Resource Record: 'FATAL problem: CharacterStringTooLong (Value is too long) encountered with '{long}''")
        );
        let e = parse_value(RecordType::CNAME, "a..example.com").unwrap_err();
        assert_eq!(e.0, "Invalid Resource Record: 'FATAL problem: DomainLabelEmpty (Domain label is empty) encountered with 'a..example.com''");
        // A name on its own is reported without the record wrapper.
        let e = parse_name("a..example.com").unwrap_err();
        assert_eq!(e.0, "FATAL problem: DomainLabelEmpty (Domain label is empty) encountered with 'a..example.com'");
    }

    #[test]
    fn txt_must_be_quoted_and_escapes_decode() {
        assert!(parse_value(RecordType::TXT, "hello").is_err());
        let RData::TXT(txt) = parse_value(RecordType::TXT, r#""a\"b" "c\\d" "\065\066""#).unwrap()
        else {
            panic!("not TXT");
        };
        let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| &s[..]).collect();
        assert_eq!(strings, [&b"a\"b"[..], b"c\\d", b"AB"]);
    }

    #[test]
    fn every_character_string_must_be_quoted() {
        for good in [
            r#""a""#,
            r#""""#,
            r#""a" "b""#,
            r#"  "a b"   "c"  "#,
            r#""a \"b\" c""#,
            r#""a\\""#,
        ] {
            assert!(all_quoted(good), "{good}");
            assert!(parse_value(RecordType::TXT, good).is_ok(), "{good}");
        }
        // The first as external-dns once sent it: inner quotes not escaped.
        for bad in [
            r#""heritage=external-dns,external-dns/owner="zone",x=y""#,
            r#""a" b"#,
            r#"a "b""#,
            r#""a"b"#,
            r#""a"#,
            r#""a\""#,
            "",
        ] {
            assert!(!all_quoted(bad), "{bad}");
            let e = parse_value(RecordType::TXT, bad).unwrap_err();
            assert!(e.0.contains("InvalidCharacterString"), "{bad}: {e}");
        }
        assert!(parse_value(RecordType::CAA, r#"0 issue "ca.example" x"#).is_err());
    }

    #[test]
    fn mx_srv_caa_shapes_are_checked() {
        assert!(parse_value(RecordType::MX, "mail.example.com.").is_err());
        assert!(parse_value(RecordType::MX, "10 mail.example.com.").is_ok());
        assert!(parse_value(RecordType::SRV, "1 2 mail.example.com.").is_err());
        assert!(parse_value(RecordType::SRV, "1 2 70000 sip.example.com.").is_err());
        assert!(parse_value(RecordType::SRV, "1 2 5060 sip.example.com.").is_ok());
        assert!(parse_value(RecordType::CAA, "0 issue letsencrypt.org").is_err());
        assert!(parse_value(RecordType::CAA, "0 issue \"letsencrypt.org\"").is_ok());
    }
}
