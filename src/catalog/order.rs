//! The order DNS answers send an RRset's records in: Knot DNS's, which is RFC 4034 §6.3's
//! canonical order, so that an answer is Knot's byte for byte (names compress against the
//! last name written, so the order decides the size, and which optional records fit).
//!
//! What Knot 3.2 does, read in its sources and checked against knotd:
//! - RDATA compare as left-justified unsigned octet sequences; where one is a prefix of the
//!   other, the shorter comes first (`knot_rdata_cmp`: `"ab"` before `"abc" "d"`).
//! - The zone loader lower-cases the names in the RDATA of the types RFC 4034 §6.2 lists
//!   (`knot_rrset_rr_to_canonical`), so they compare lower-cased: `NS0.example.` sorts as
//!   `ns0.example.`. Of those types r53 holds NS, CNAME, PTR, MX, SRV, SOA and NAPTR; the
//!   names of SVCB and HTTPS, which the list leaves out, compare as written.
//! - Records equal after that are one record (`knot_rdataset_add` keeps one); r53's model
//!   drops them already (`ResourceRecordSet::push`), names compared without regard to case.
//!
//! This module only orders records in the store's form (each a u16 length then the RDATA,
//! names uncompressed, see `codec::push_rdata`); the zone index keeps a set's records in this
//! order and remembers the order they were entered in for the API (see `nodes::Stored`).

use std::borrow::Cow;
use std::cmp::Ordering;

use hickory_proto::rr::RecordType;

/// A set's records as answers send them: in canonical order, and the names in the RDATA of
/// the types Knot lower-cases lower-cased, as Knot stores them (so that a name compresses to
/// the same name elsewhere in the message, an additional record's owner to it above all).
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Canonical {
    /// In the store's form.
    pub(super) records: Vec<u8>,
    /// `entered[i]` is where the `i`th record given went; `None` when each stayed in place.
    pub(super) entered: Option<Vec<u16>>,
    /// Whether a name was lower-cased.
    pub(super) lowered: bool,
}

/// The records in `records` (the store's form) as answers send them; `None` when that is
/// the form they came in (every set of one record in lower case), which is most sets. Records
/// that compare equal keep the order they came in.
pub(super) fn canonical(rtype: u16, records: &[u8]) -> Option<Canonical> {
    let rdatas = split(records)?;
    let keys: Vec<Cow<'_, [u8]>> = rdatas.iter().map(|r| key(rtype, r)).collect();
    let lowered = keys.iter().any(|k| matches!(k, Cow::Owned(_)));
    let in_order = keys
        .windows(2)
        .all(|w| compare(&w[0], &w[1]) != Ordering::Greater);
    if in_order && !lowered {
        return None;
    }
    // At most 65535 bytes of records make fewer than 32768 records: the indexes fit a u16.
    let mut sorted: Vec<u16> = (0..keys.len() as u16).collect();
    if !in_order {
        sorted.sort_by(|&a, &b| compare(&keys[usize::from(a)], &keys[usize::from(b)]));
    }
    let mut out = Vec::with_capacity(records.len());
    let mut entered = vec![0u16; keys.len()];
    for (position, &index) in sorted.iter().enumerate() {
        let rdata = &keys[usize::from(index)];
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
        entered[usize::from(index)] = position as u16;
    }
    Some(Canonical {
        records: out,
        entered: (!in_order).then_some(entered),
        lowered,
    })
}

/// Each record's RDATA; `None` when the bytes are not whole records (never so in a set the
/// store or the model made), which are then left in the order they are.
pub(super) fn split(records: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = records;
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len));
        out.push(tail.get(..len)?);
        rest = &tail[len..];
    }
    rest.is_empty().then_some(out)
}

/// RFC 4034 §6.3 with Knot's tie rule: octet by octet, then the shorter first.
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    // Slices compare lexicographically, a prefix before what it is a prefix of.
    a.cmp(b)
}

/// The RDATA as Knot stores and compares it: the names of the RFC 4034 §6.2 types
/// lower-cased.
fn key(rtype: u16, rdata: &[u8]) -> Cow<'_, [u8]> {
    let Some(names) = names_from(RecordType::from(rtype), rdata) else {
        return Cow::Borrowed(rdata);
    };
    let end = match RecordType::from(rtype) {
        // MNAME and RNAME, then five numbers that must not change.
        RecordType::SOA => name_end(rdata, names).and_then(|e| name_end(rdata, e)),
        _ => Some(rdata.len()),
    };
    let Some(end) = end else {
        return Cow::Borrowed(rdata);
    };
    if !rdata[names..end].iter().any(u8::is_ascii_uppercase) {
        return Cow::Borrowed(rdata);
    }
    // Length bytes are at most 63, below 'A': lower-casing the whole span touches only the
    // labels' letters.
    let mut owned = rdata.to_vec();
    owned[names..end].make_ascii_lowercase();
    Cow::Owned(owned)
}

/// Where the names of a type whose names Knot lower-cases start in its RDATA; they run to
/// its end but for SOA's.
fn names_from(rtype: RecordType, rdata: &[u8]) -> Option<usize> {
    match rtype {
        RecordType::NS | RecordType::CNAME | RecordType::PTR | RecordType::SOA => Some(0),
        // Preference; priority, weight and port.
        RecordType::MX => Some(2),
        RecordType::SRV => Some(6),
        // Order and preference, then flags, services and regexp as <character-string>s.
        RecordType::NAPTR => {
            let mut at = 4;
            for _ in 0..3 {
                at += 1 + usize::from(*rdata.get(at)?);
            }
            (at <= rdata.len()).then_some(at)
        }
        _ => None,
    }
}

/// Where the uncompressed name at `at` ends.
fn name_end(rdata: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *rdata.get(at)? {
            0 => return Some(at + 1),
            len @ 1..=63 => at += 1 + usize::from(len),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::codec;
    use hickory_proto::rr::RData;
    use std::str::FromStr;

    fn records(rtype: RecordType, values: &[&str]) -> Vec<u8> {
        let origin = hickory_proto::rr::Name::from_str("example.com.").unwrap();
        let mut out = Vec::new();
        for v in values {
            let rdata: RData = crate::zonefile::parse_rdata(rtype, v, &origin).unwrap();
            codec::push_rdata(&mut out, &rdata).unwrap();
        }
        out
    }

    /// The values in the order `canonical` puts them, as text.
    fn ordered(rtype: RecordType, values: &[&str]) -> Vec<String> {
        let given = records(rtype, values);
        let Some(Canonical {
            records: sorted,
            entered: Some(entered),
            ..
        }) = canonical(rtype.into(), &given)
        else {
            return values.iter().map(|v| v.to_string()).collect();
        };
        // `entered` maps each value given to where it went.
        let mut out = vec![String::new(); values.len()];
        for (i, &at) in entered.iter().enumerate() {
            out[usize::from(at)] = values[i].to_string();
        }
        let decoded: Vec<String> = codec::read_rdata(&sorted, rtype)
            .map(|r| crate::zonefile::rdata_text(&r.unwrap()))
            .collect();
        let expected: Vec<String> = out
            .iter()
            .map(|v| {
                crate::zonefile::rdata_text(
                    &crate::zonefile::parse_rdata(
                        rtype,
                        v,
                        &hickory_proto::rr::Name::from_str("example.com.").unwrap(),
                    )
                    .unwrap(),
                )
            })
            .collect();
        // Names compare without regard to case; the lower-casing is checked on its own.
        assert!(
            decoded
                .iter()
                .zip(&expected)
                .all(|(d, e)| d.eq_ignore_ascii_case(e)),
            "the records follow `entered`: {decoded:?} against {expected:?}"
        );
        out
    }

    #[test]
    fn addresses_sort_as_numbers() {
        assert_eq!(
            ordered(RecordType::A, &["192.0.2.9", "192.0.2.10", "10.0.0.1"]),
            ["10.0.0.1", "192.0.2.9", "192.0.2.10"]
        );
        assert_eq!(
            ordered(RecordType::AAAA, &["2001:db8::10", "2001:db8::9", "::1"]),
            ["::1", "2001:db8::9", "2001:db8::10"]
        );
    }

    #[test]
    fn a_prefix_sorts_before_what_it_begins() {
        assert_eq!(
            ordered(
                RecordType::TXT,
                &["\"abcd\"", "\"ab\"", "\"abc\" \"d\"", "\"b\""]
            ),
            ["\"b\"", "\"ab\"", "\"abc\" \"d\"", "\"abcd\""]
        );
    }

    #[test]
    fn names_in_rdata_compare_lower_cased() {
        // As wire bytes `NS0` (0x4E) comes before `ns.` (0x6E) and `ns1`; lower-cased, after.
        assert_eq!(
            ordered(
                RecordType::NS,
                &["ns1.example.com.", "NS0.EXAMPLE.COM.", "ns.outside.test."]
            ),
            ["ns.outside.test.", "NS0.EXAMPLE.COM.", "ns1.example.com."]
        );
        assert_eq!(
            ordered(
                RecordType::MX,
                &[
                    "20 a.example.com.",
                    "10 b.example.com.",
                    "10 A.example.com."
                ]
            ),
            [
                "10 A.example.com.",
                "10 b.example.com.",
                "20 a.example.com."
            ]
        );
        assert_eq!(
            ordered(
                RecordType::SRV,
                &["0 0 5060 b.example.com.", "0 0 5060 A.example.com."]
            ),
            ["0 0 5060 A.example.com.", "0 0 5060 b.example.com."]
        );
    }

    #[test]
    fn names_outside_the_rfc_4034_list_compare_as_written() {
        // SVCB is not on RFC 4034 §6.2's list: Knot leaves its TargetName's case alone.
        assert_eq!(
            ordered(RecordType::SVCB, &["1 b.example.com.", "1 B.example.com."]),
            ["1 B.example.com.", "1 b.example.com."]
        );
    }

    #[test]
    fn names_are_lower_cased_as_knot_stores_them() {
        let given = records(RecordType::MX, &["10 Mail.Example.COM."]);
        let lowered = records(RecordType::MX, &["10 mail.example.com."]);
        assert_eq!(
            canonical(RecordType::MX.into(), &given),
            Some(Canonical {
                records: lowered,
                entered: None,
                lowered: true,
            })
        );
        // SOA: both names, not the numbers after them (a serial byte may be an upper-case
        // letter's code).
        let given = records(
            RecordType::SOA,
            &["NS1.Example.com. H.Example.com. 65 66 67 68 69"],
        );
        let lowered = records(
            RecordType::SOA,
            &["ns1.example.com. h.example.com. 65 66 67 68 69"],
        );
        assert_eq!(
            canonical(RecordType::SOA.into(), &given).unwrap().records,
            lowered
        );
        // TXT is data, not names.
        let txt = records(RecordType::TXT, &["\"ABC\""]);
        assert_eq!(canonical(RecordType::TXT.into(), &txt), None);
    }

    #[test]
    fn sets_in_order_need_nothing_kept() {
        let one = records(RecordType::A, &["192.0.2.1"]);
        assert_eq!(canonical(RecordType::A.into(), &one), None);
        let two = records(RecordType::A, &["192.0.2.1", "192.0.2.2"]);
        assert_eq!(canonical(RecordType::A.into(), &two), None);
    }
}
