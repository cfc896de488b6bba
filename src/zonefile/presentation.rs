//! Presentation-format primitives shared by the reader and the writer: `\X` and `\DDD` escapes,
//! character-strings, domain names, hex, base64 and decimal fields (RFC 1035 §5.1).
//!
//! Works on one field at a time; it knows nothing of records, lines or zones. hickory's own
//! text routines are not used here because they read and write `\DDD` as octal.

use std::fmt::Write as _;

use hickory_proto::rr::Name;

/// Undoes master-file escapes: `\DDD` is the octet with that decimal value, `\X` is X itself.
/// Other characters stand for their UTF-8 bytes.
pub(super) fn decode_escapes(raw: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(&mut out, c);
            continue;
        }
        let escaped = chars
            .next()
            .ok_or_else(|| format!("{raw:?} ends in a lone backslash"))?;
        match escaped.to_digit(10) {
            Some(first) => {
                let mut value = first;
                for _ in 0..2 {
                    let digit = chars.next().and_then(|d| d.to_digit(10)).ok_or_else(|| {
                        format!("bad escape in {raw:?}: \\DDD needs three digits")
                    })?;
                    value = value * 10 + digit;
                }
                let byte = u8::try_from(value)
                    .map_err(|_| format!("bad escape in {raw:?}: \\{value} is above 255"))?;
                out.push(byte);
            }
            None => push_char(&mut out, escaped),
        }
    }
    Ok(out)
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// Writes bytes as a quoted character-string: `"` and `\` backslash-escaped, bytes outside
/// printable ASCII as `\DDD`.
pub(super) fn write_character_string(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => push_decimal_escape(out, b),
        }
    }
    out.push('"');
}

fn push_decimal_escape(out: &mut String, b: u8) {
    // Writing to a String cannot fail.
    let _ = write!(out, "\\{b:03}");
}

/// Parses a domain name in presentation form. A name not ending in an unescaped dot is relative
/// to `origin`. (`@` is the caller's business: only an unquoted `@` means the origin.)
pub(super) fn parse_name(raw: &str, origin: &Name) -> Result<Name, String> {
    match raw {
        "" => return Err("empty name".into()),
        "." => return Ok(Name::root()),
        _ => {}
    }
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut absolute = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if label.is_empty() {
                    return Err(format!("bad name {raw:?}: empty label"));
                }
                labels.push(std::mem::take(&mut label));
                absolute = chars.peek().is_none();
            }
            '\\' => {
                // Reuse the escape decoder on just this escape sequence.
                let mut escape = String::from('\\');
                if let Some(next) = chars.next() {
                    escape.push(next);
                    if next.is_ascii_digit() {
                        escape.extend(chars.by_ref().take(2));
                    }
                }
                label.extend(decode_escapes(&escape).map_err(|e| format!("bad name: {e}"))?);
            }
            c => push_char(&mut label, c),
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    let name = Name::from_labels(labels).map_err(|e| format!("bad name {raw:?}: {e}"))?;
    if absolute {
        Ok(name)
    } else {
        let mut relative = name;
        relative.set_fqdn(false);
        relative
            .append_domain(origin)
            .map_err(|e| format!("bad name {raw:?}: {e}"))
    }
}

/// Writes a name fully qualified, escaping what would otherwise be read differently:
/// `.` `;` `\` `"` `(` `)` `@` `$` with a backslash, bytes outside `!`..`~` as `\DDD`.
pub(super) fn write_name(out: &mut String, name: &Name) {
    if name.is_root() {
        out.push('.');
        return;
    }
    for label in name.iter() {
        for &b in label {
            match b {
                b'.' | b';' | b'\\' | b'"' | b'(' | b')' | b'@' | b'$' => {
                    out.push('\\');
                    out.push(char::from(b));
                }
                0x21..=0x7e => out.push(char::from(b)),
                _ => push_decimal_escape(out, b),
            }
        }
        out.push('.');
    }
}

/// A name in the form `write_name` gives it.
pub(super) fn name_to_string(name: &Name) -> String {
    let mut out = String::new();
    write_name(&mut out, name);
    out
}

/// Parses an unsigned decimal number: digits only (no sign, no spaces), in range for `T`.
pub(super) fn parse_decimal<T: TryFrom<u64>>(s: &str, what: &str) -> Result<T, String> {
    let bad = || format!("bad {what} {s:?}: expected a decimal number");
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let value: u64 = s.parse().map_err(|_| bad())?;
    T::try_from(value).map_err(|_| format!("bad {what} {s:?}: out of range"))
}

pub(super) fn decode_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {s:?}"));
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                // Two hex digits are at most 255.
                (Some(hi), Some(lo)) => Ok((hi * 16 + lo) as u8),
                _ => Err(format!("not hexadecimal: {s:?}")),
            }
        })
        .collect()
}

pub(super) fn write_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// RFC 4648 §4 base64 with padding (the form RFC 9460 uses for `ech`).
pub(super) fn write_base64(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

pub(super) fn decode_base64(s: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("not base64: {s:?}");
    if !s.len().is_multiple_of(4) {
        return Err(bad());
    }
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in body.bytes() {
        let value = BASE64.iter().position(|&b| b == c).ok_or_else(bad)?;
        acc = (acc << 6) | value as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding, or the text was not canonical base64.
    if acc != 0 {
        return Err(bad());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn origin() -> Name {
        Name::from_str("example.com.").unwrap()
    }

    #[test]
    fn decimal_escapes_are_decimal_not_octal() {
        assert_eq!(decode_escapes(r"\065\255\000").unwrap(), [65, 255, 0]);
        assert_eq!(decode_escapes(r#"a\"b\\c\;"#).unwrap(), br#"a"b\c;"#);
    }

    #[test]
    fn bad_escapes_are_errors() {
        assert!(decode_escapes(r"\256").is_err());
        assert!(decode_escapes(r"\12").is_err());
        assert!(decode_escapes("abc\\").is_err());
    }

    #[test]
    fn character_strings_escape_quotes_backslashes_and_unprintables() {
        let mut out = String::new();
        write_character_string(&mut out, b"a \"b\" \\ ;\x00\x7f\xff");
        assert_eq!(out, r#""a \"b\" \\ ;\000\127\255""#);
        assert_eq!(
            decode_escapes(&out[1..out.len() - 1]).unwrap(),
            b"a \"b\" \\ ;\x00\x7f\xff"
        );
    }

    #[test]
    fn relative_names_take_the_origin() {
        assert_eq!(
            parse_name("www", &origin()).unwrap(),
            Name::from_str("www.example.com.").unwrap()
        );
        assert_eq!(
            parse_name("www.example.org.", &origin()).unwrap(),
            Name::from_str("www.example.org.").unwrap()
        );
        assert_eq!(parse_name(".", &origin()).unwrap(), Name::root());
    }

    #[test]
    fn escaped_dots_and_bytes_stay_inside_labels() {
        let name = parse_name(r"a\.b\032c.example.com.", &origin()).unwrap();
        let labels: Vec<&[u8]> = name.iter().collect();
        assert_eq!(labels[0], b"a.b c");
        assert_eq!(name.num_labels(), 3);
        assert_eq!(name_to_string(&name), r"a\.b\032c.example.com.");
    }

    #[test]
    fn names_with_empty_labels_or_long_labels_are_errors() {
        assert!(parse_name("a..b", &origin()).is_err());
        assert!(parse_name(".a", &origin()).is_err());
        assert!(parse_name(&"x".repeat(64), &origin()).is_err());
    }

    #[test]
    fn written_names_read_back_the_same() {
        let name = Name::from_labels(vec![
            b"*".to_vec(),
            b"_s@;\"()$\\".to_vec(),
            vec![0, 200, b'-'],
        ])
        .unwrap();
        let text = name_to_string(&name);
        assert_eq!(text, r#"*._s\@\;\"\(\)\$\\.\000\200-."#);
        let back = parse_name(&text, &origin()).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            name.iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn decimals_reject_signs_and_overflow() {
        assert_eq!(parse_decimal::<u16>("443", "port"), Ok(443));
        assert!(parse_decimal::<u16>("+443", "port").is_err());
        assert!(parse_decimal::<u16>("65536", "port").is_err());
        assert!(parse_decimal::<u8>("", "flags").is_err());
    }

    #[test]
    fn hex_round_trips_and_rejects_odd_lengths() {
        let mut out = String::new();
        write_hex(&mut out, &[0, 0xab, 0xff]);
        assert_eq!(out, "00ABFF");
        assert_eq!(decode_hex("00abFF").unwrap(), [0, 0xab, 0xff]);
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let vectors: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (bytes, text) in vectors {
            let mut out = String::new();
            write_base64(&mut out, bytes);
            assert_eq!(out, text);
            assert_eq!(decode_base64(text).unwrap(), bytes);
        }
        assert!(decode_base64("Zm9").is_err());
        assert!(decode_base64("Zh==").is_err());
        assert!(decode_base64("Z===").is_err());
        assert!(decode_base64("Zm9v!A==").is_err());
    }
}
