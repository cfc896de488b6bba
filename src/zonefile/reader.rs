//! Zone-file entries → record sets: directives, owner, TTL, class and type of each record,
//! merging records into RRsets, and the rules a zone as a whole must keep.
//!
//! The record data itself is `rdata`'s business. The zone rules checked here are the ones a
//! loaded zone cannot be served without: one SOA, at the apex; every name at or below the
//! apex; CNAME alone at its name (RFC 1034 §3.6.2, RFC 2181 §10.1).

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use super::lexer::{self, Entry, Token};
use super::presentation::{name_to_string, parse_decimal, parse_name};
use super::{rdata, Problem, SUPPORTED_TYPES};
use crate::model::{normalize_name, ResourceRecordSet, RrKey};

/// RFC 2181 §8: TTLs are 31-bit.
const MAX_TTL: u32 = i32::MAX as u32;

pub(super) fn read(text: &str, zone: &Name) -> Result<Vec<ResourceRecordSet>, Problem> {
    let mut reader = Reader {
        zone,
        origin: zone.clone(),
        default_ttl: None,
        last_ttl: None,
        owner: None,
        sets: BTreeMap::new(),
    };
    for entry in lexer::entries(text)? {
        reader.entry(&entry)?;
    }
    if !reader.sets.contains_key(&RrKey::new(zone, RecordType::SOA)) {
        return Err(Problem::new(1, "no SOA record at the zone apex"));
    }
    // Values were pushed one at a time: give back the room grown for more (a Vec grows to
    // four at its first push, and an RData is ~180 bytes), since the sets may be kept for good.
    Ok(reader
        .sets
        .into_values()
        .map(|mut set| {
            set.records.shrink_to_fit();
            set
        })
        .collect())
}

struct Reader<'z> {
    /// The zone being loaded: every owner must be at or below it.
    zone: &'z Name,
    /// `$ORIGIN`: what relative names are relative to.
    origin: Name,
    /// `$TTL` (RFC 2308 §4).
    default_ttl: Option<u32>,
    /// The last TTL given explicitly (RFC 1035 §5.1).
    last_ttl: Option<u32>,
    /// The last owner named, for entries that start with a blank.
    owner: Option<Name>,
    sets: BTreeMap<RrKey, ResourceRecordSet>,
}

impl Reader<'_> {
    fn entry(&mut self, entry: &Entry) -> Result<(), Problem> {
        let mut tokens = entry.tokens.iter();
        let owner = if entry.inherits_owner {
            self.owner.clone().ok_or_else(|| {
                Problem::new(
                    entry.line,
                    "record has no owner name and none came before it",
                )
            })?
        } else {
            let Some(first) = tokens.next() else {
                return Ok(());
            };
            if first.text.starts_with('$') && !first.quoted {
                return self.directive(first, tokens.as_slice());
            }
            let owner = if first.text == "@" && !first.quoted {
                self.origin.clone()
            } else {
                parse_name(&first.text, &self.origin)
                    .map_err(|m| Problem::new(first.line, format!("owner: {m}")))?
            };
            let owner = normalize_name(&owner);
            if !self.zone.zone_of(&owner) {
                return Err(Problem::new(
                    first.line,
                    format!(
                        "{} is outside the zone {}",
                        name_to_string(&owner),
                        name_to_string(self.zone)
                    ),
                ));
            }
            self.owner = Some(owner.clone());
            owner
        };

        // [TTL] [class] type, or [class] [TTL] type (RFC 1035 §5.1).
        let mut ttl = None;
        let mut class_seen = false;
        let mut line = entry.line;
        let (rtype, mnemonic) = loop {
            let token = tokens
                .next()
                .ok_or_else(|| Problem::new(line, "missing record type"))?;
            line = token.line;
            let upper = token.text.to_ascii_uppercase();
            if upper.starts_with(|c: char| c.is_ascii_digit()) && ttl.is_none() {
                ttl = Some(ttl_value(token)?);
            } else if is_class(&upper) && !class_seen {
                if upper != "IN" && upper != "CLASS1" {
                    return Err(Problem::new(
                        line,
                        format!("class {} is not supported: only IN", token.text),
                    ));
                }
                class_seen = true;
            } else {
                break record_type(&upper).map_err(|m| Problem::new(line, m))?;
            }
        };

        let rdata = rdata::parse(rtype, mnemonic, tokens.as_slice(), line, &self.origin)?;
        let ttl = match ttl {
            Some(ttl) => {
                self.last_ttl = Some(ttl);
                ttl
            }
            None => match (self.default_ttl.or(self.last_ttl), &rdata) {
                (Some(ttl), _) => ttl,
                // As BIND does: a first SOA without a TTL takes its minimum.
                (None, RData::SOA(soa)) => soa.minimum,
                (None, _) => {
                    return Err(Problem::new(
                        entry.line,
                        "record has no TTL, and no $TTL or earlier TTL to default to",
                    ))
                }
            },
        };
        self.insert(owner, rtype, ttl, rdata, entry.line)
    }

    fn directive(&mut self, directive: &Token, args: &[Token]) -> Result<(), Problem> {
        let line = directive.line;
        let one_argument = || match args {
            [arg] => Ok(arg),
            _ => Err(Problem::new(
                line,
                format!("{} takes exactly one argument", directive.text),
            )),
        };
        match directive.text.to_ascii_uppercase().as_str() {
            "$ORIGIN" => {
                let arg = one_argument()?;
                let origin = parse_name(&arg.text, &self.origin)
                    .map_err(|m| Problem::new(arg.line, format!("$ORIGIN: {m}")))?;
                self.origin = normalize_name(&origin);
            }
            "$TTL" => self.default_ttl = Some(ttl_value(one_argument()?)?),
            "$INCLUDE" => {
                return Err(Problem::new(
                    line,
                    "$INCLUDE is not supported: a zone file must be self-contained",
                ))
            }
            "$GENERATE" => {
                return Err(Problem::new(
                    line,
                    "$GENERATE is not supported: write the records out",
                ))
            }
            _ => {
                return Err(Problem::new(
                    line,
                    format!("unknown directive {}", directive.text),
                ))
            }
        }
        Ok(())
    }

    fn insert(
        &mut self,
        owner: Name,
        rtype: RecordType,
        ttl: u32,
        rdata: RData,
        line: usize,
    ) -> Result<(), Problem> {
        let owner_text = name_to_string(&owner);
        let key = RrKey::new(&owner, rtype);
        if rtype == RecordType::SOA {
            if owner != *self.zone {
                return Err(Problem::new(
                    line,
                    format!(
                        "SOA record at {owner_text}: the SOA belongs at the zone apex {}",
                        name_to_string(self.zone)
                    ),
                ));
            }
            if self.sets.contains_key(&key) {
                return Err(Problem::new(
                    line,
                    "second SOA record: a zone has exactly one",
                ));
            }
        }
        let at_owner = RrKey::new(&owner, RecordType::from(0))
            ..=RrKey::new(&owner, RecordType::from(u16::MAX));
        let cname = RecordType::CNAME;
        for (existing, set) in self.sets.range(at_owner) {
            if (rtype == cname) != (existing.rtype == cname) {
                return Err(Problem::new(
                    line,
                    format!("{owner_text} has a CNAME and other data (RFC 1034 §3.6.2)"),
                ));
            }
            if rtype == cname && existing.rtype == cname && !set.records.contains(&rdata) {
                return Err(Problem::new(
                    line,
                    format!("{owner_text} has more than one CNAME (RFC 2181 §10.1)"),
                ));
            }
        }
        self.sets
            .entry(key)
            .or_insert_with(|| ResourceRecordSet::new(&owner, rtype, ttl, Vec::new()))
            .push(rdata);
        Ok(())
    }
}

fn ttl_value(token: &Token) -> Result<u32, Problem> {
    let ttl = parse_ttl(&token.text)
        .map_err(|_| Problem::new(token.line, format!("bad TTL {:?}", token.text)))?;
    if ttl > MAX_TTL {
        return Err(Problem::new(
            token.line,
            format!("TTL {ttl} is above {MAX_TTL} (RFC 2181 §8)"),
        ));
    }
    Ok(ttl)
}

/// Class mnemonics (RFC 1035 §3.2.4, RFC 3597 §5), upper case.
fn is_class(upper: &str) -> bool {
    matches!(upper, "IN" | "CH" | "CS" | "HS" | "NONE" | "ANY")
        || upper
            .strip_prefix("CLASS")
            .is_some_and(|n| parse_decimal::<u16>(n, "class").is_ok())
}

/// A supported type from its mnemonic or RFC 3597 `TYPEnnn`, with the mnemonic for messages.
fn record_type(upper: &str) -> Result<(RecordType, &'static str), String> {
    let by_name = SUPPORTED_TYPES.iter().find(|(name, _)| *name == upper);
    let by_number = upper
        .strip_prefix("TYPE")
        .and_then(|n| parse_decimal::<u16>(n, "type").ok())
        .and_then(|n| {
            SUPPORTED_TYPES
                .iter()
                .find(|(_, rtype)| u16::from(*rtype) == n)
        });
    by_name
        .or(by_number)
        .map(|(name, rtype)| (*rtype, *name))
        .ok_or_else(|| format!("unsupported record type {upper}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, MX, TXT};
    use std::str::FromStr;

    const SOA: &str = "@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 300\n";

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn zone() -> Name {
        name("example.com.")
    }

    fn read_zone(body: &str) -> Result<Vec<ResourceRecordSet>, Problem> {
        read(&format!("{SOA}{body}"), &zone())
    }

    fn set<'a>(
        sets: &'a [ResourceRecordSet],
        owner: &str,
        rtype: RecordType,
    ) -> &'a ResourceRecordSet {
        sets.iter()
            .find(|s| s.name == name(owner) && s.rtype == rtype)
            .unwrap_or_else(|| panic!("no {rtype} at {owner}"))
    }

    fn error(body: &str) -> Problem {
        read_zone(body).unwrap_err()
    }

    #[test]
    fn records_with_the_same_owner_and_type_merge_and_keep_the_first_ttl() {
        let sets = read_zone("www 300 A 192.0.2.1\nWWW 600 A 192.0.2.2\n  A 192.0.2.1\n").unwrap();
        let www = set(&sets, "www.example.com.", RecordType::A);
        assert_eq!(www.ttl, 300);
        assert_eq!(
            www.records,
            [
                RData::A(A::new(192, 0, 2, 1)),
                RData::A(A::new(192, 0, 2, 2))
            ]
        );
    }

    #[test]
    fn record_sets_come_back_in_canonical_order() {
        let sets = read_zone("b 300 A 192.0.2.1\na 300 A 192.0.2.1\n@ 300 NS ns1\n").unwrap();
        let keys: Vec<String> = sets
            .iter()
            .map(|s| format!("{} {}", s.name, s.rtype))
            .collect();
        assert_eq!(
            keys,
            [
                "example.com. NS",
                "example.com. SOA",
                "a.example.com. A",
                "b.example.com. A"
            ]
        );
    }

    #[test]
    fn at_sign_as_record_data_is_the_origin() {
        let sets = read_zone("www 300 IN CNAME @\n@ 300 MX 10 @\n").unwrap();
        assert_eq!(
            set(&sets, "www.example.com.", RecordType::CNAME).records,
            [RData::CNAME(CNAME(zone()))]
        );
        assert_eq!(
            set(&sets, "example.com.", RecordType::MX).records,
            [RData::MX(MX::new(10, zone()))]
        );
    }

    #[test]
    fn txt_decimal_escapes_inside_quotes_are_bytes() {
        let sets = read_zone("t 300 TXT \"caf\\195\\169 \\034q\\034\"\n").unwrap();
        assert_eq!(
            set(&sets, "t.example.com.", RecordType::TXT).records,
            [RData::TXT(TXT::from_bytes(vec!["café \"q\"".as_bytes()]))]
        );
    }

    #[test]
    fn origin_and_ttl_directives_apply_to_what_follows() {
        let sets = read_zone(
            "$TTL 1h\n$ORIGIN sub\nwww A 192.0.2.1\n$ORIGIN example.com.\nmail 60 A 192.0.2.2\nnext A 192.0.2.3\n",
        )
        .unwrap();
        assert_eq!(set(&sets, "www.sub.example.com.", RecordType::A).ttl, 3600);
        assert_eq!(set(&sets, "mail.example.com.", RecordType::A).ttl, 60);
        // $TTL wins over the last explicit TTL.
        assert_eq!(set(&sets, "next.example.com.", RecordType::A).ttl, 3600);
    }

    #[test]
    fn without_ttl_directive_the_last_ttl_carries_on() {
        let sets = read_zone("a 120 A 192.0.2.1\nb A 192.0.2.2\n").unwrap();
        assert_eq!(set(&sets, "b.example.com.", RecordType::A).ttl, 120);
    }

    #[test]
    fn a_first_soa_without_ttl_takes_its_minimum() {
        let sets = read("@ IN SOA ns1 host 1 2 3 4 300\n@ 60 NS ns1\n", &zone()).unwrap();
        assert_eq!(set(&sets, "example.com.", RecordType::SOA).ttl, 300);
    }

    #[test]
    fn a_record_with_no_ttl_to_take_is_an_error() {
        let err = read("@ NS ns1\n", &zone()).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("no TTL"), "{}", err.message);
    }

    #[test]
    fn ttl_and_class_come_in_either_order_and_types_in_any_case() {
        let sets = read_zone("a IN 300 a 192.0.2.1\nb 300 in TYPE1 192.0.2.2\n").unwrap();
        assert_eq!(set(&sets, "a.example.com.", RecordType::A).ttl, 300);
        set(&sets, "b.example.com.", RecordType::A);
    }

    #[test]
    fn classes_other_than_in_are_errors_with_their_line() {
        let err = error("a 300 A 192.0.2.1\nb 300 CH TXT x\n");
        assert_eq!(err.line, 3);
        assert_eq!(err.message, "class CH is not supported: only IN");
    }

    #[test]
    fn unsupported_types_are_named_with_their_line() {
        let err = error("\n\na 300 IN HINFO cpu os\n");
        assert_eq!(
            (err.line, err.message.as_str()),
            (4, "unsupported record type HINFO")
        );
        let err = error("a 300 IN TYPE65280 \\# 0\n");
        assert_eq!(err.message, "unsupported record type TYPE65280");
    }

    #[test]
    fn names_outside_the_zone_are_errors() {
        let err = error("www.example.org. 300 A 192.0.2.1\n");
        assert_eq!(err.line, 2);
        assert_eq!(
            err.message,
            "www.example.org. is outside the zone example.com."
        );
        assert!(read_zone("$ORIGIN example.net.\nwww 300 A 192.0.2.1\n").is_err());
    }

    #[test]
    fn a_zone_without_soa_is_an_error() {
        let err = read("@ 300 NS ns1\n", &zone()).unwrap_err();
        assert_eq!(err.message, "no SOA record at the zone apex");
    }

    #[test]
    fn a_second_soa_or_one_below_the_apex_is_an_error() {
        assert_eq!(error("@ 3600 SOA ns1 host 2 2 3 4 5\n").line, 2);
        let err = error("sub 3600 SOA ns1 host 2 2 3 4 5\n");
        assert!(err.message.contains("zone apex"), "{}", err.message);
    }

    #[test]
    fn cname_must_stand_alone() {
        let err = error("www 300 CNAME a\nwww 300 A 192.0.2.1\n");
        assert_eq!(err.line, 3);
        assert!(
            err.message.contains("CNAME and other data"),
            "{}",
            err.message
        );
        assert!(read_zone("www 300 A 192.0.2.1\nwww 300 CNAME a\n").is_err());
        assert!(read_zone("www 300 CNAME a\nwww 300 CNAME b\n").is_err());
        assert!(read_zone("@ 300 CNAME a\n").is_err());
        // The same CNAME twice is one record (RFC 2181 §5).
        assert!(read_zone("www 300 CNAME a\nwww 300 CNAME a\n").is_ok());
    }

    #[test]
    fn generate_and_include_are_refused_clearly() {
        let err = error("$GENERATE 1-10 host$ A 192.0.2.$\n");
        assert_eq!(
            (err.line, err.message.as_str()),
            (2, "$GENERATE is not supported: write the records out")
        );
        let err = error("$INCLUDE other.zone\n");
        assert!(
            err.message.starts_with("$INCLUDE is not supported"),
            "{}",
            err.message
        );
        assert!(error("$FOO bar\n").message.contains("unknown directive"));
    }

    #[test]
    fn a_blank_first_record_has_no_owner() {
        let err = read(" 300 A 192.0.2.1\n", &zone()).unwrap_err();
        assert!(err.message.contains("no owner"), "{}", err.message);
    }

    #[test]
    fn bad_ttls_are_errors() {
        assert!(error("a 2147483648 A 192.0.2.1\n")
            .message
            .contains("RFC 2181"));
        assert!(error("a 5x A 192.0.2.1\n").message.contains("bad TTL"));
        assert!(error("$TTL\n").message.contains("exactly one argument"));
    }

    #[test]
    fn errors_in_multi_line_records_name_the_line_of_the_field() {
        let err = read(
            "@ 3600 IN SOA ns1 hostmaster (\n  1 ; serial\n  7200\n  x900 ; retry\n  1209600 300 )\n",
            &zone(),
        )
        .unwrap_err();
        assert_eq!(err.line, 4);
    }

    #[test]
    fn wildcards_and_underscores_are_owners_like_any_other() {
        let sets = read_zone("*.apps 300 A 192.0.2.1\n_sip._tcp 300 SRV 0 5 5060 sip\n").unwrap();
        assert!(set(&sets, "*.apps.example.com.", RecordType::A)
            .name
            .is_wildcard());
        set(&sets, "_sip._tcp.example.com.", RecordType::SRV);
    }
}
