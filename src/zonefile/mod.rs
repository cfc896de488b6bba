//! RFC 1035 master files: reading them into record sets and writing record sets back out.
//!
//! Knows text only; no IO beyond what the caller hands in (so `$INCLUDE` is refused rather than
//! read from disk, and `$GENERATE` is refused as well).
//!
//! ```text
//!   text ──lexer──► entries of tokens, each with its line
//!                     ──reader──► owner, TTL, class, type; directives; merging; zone rules
//!                                   └─ rdata (+ svcb): one record's data ──► hickory RData
//!   record sets ──writer──► text, one fully qualified record per line
//!   presentation: escapes, character-strings, names, hex, base64 (both directions)
//! ```
//!
//! hickory-proto's `serialize::txt::Parser` is deliberately not used, because of defects
//! found reading its 0.26.3 source: it reads `$INCLUDE` from the file system, reports no
//! line numbers, rejects `@` as record data, decodes `\DDD` as neither decimal nor octal inside
//! quotes and as octal in names, splits quoted strings at blanks inside parentheses, ignores
//! extra fields after A, AAAA, MX, NS, CNAME, PTR, SOA and SRV data, silently drops the last
//! digit of an odd-length DS digest, knows neither `$GENERATE` nor RFC 3597's `\#` form nor
//! SPF, and cannot parse SVCB parameters per RFC 9460. Record data is therefore parsed here
//! field by field and built with hickory's constructors, or, where those are private, encoded
//! to wire format and decoded with `RData::read` (CAA, SVCB/HTTPS and `\#` data), so hickory
//! still validates every value. Its `Display` impls are not faithful either (TXT without
//! quotes, octal escapes in names, trailing commas in SVCB lists), hence the own writer.
//!
//! Choices worth knowing:
//! - An RRset's TTL is its first record's; later records with another TTL join the set and
//!   take that TTL, as BIND does (RFC 2181 §5.2 says they must match; Knot 3.2 takes the
//!   last record's TTL instead, and NSD 4.6 the lowest).
//! - A record without a TTL takes `$TTL`, else the last TTL written out, else (SOA only) the
//!   SOA minimum, else it is an error.
//! - SPF (type 99) has no hickory type: it is held as `RData::Unknown` with code
//!   [`model::SPF`](crate::model::SPF) and the TXT wire format as its data, which is exactly
//!   what reading it off the wire gives, and what the model holds for it.

mod lexer;
mod presentation;
mod rdata;
mod reader;
mod svcb;
mod writer;

use hickory_proto::rr::{Name, RData, RecordType};

use crate::model::{normalize_name, ResourceRecordSet, SPF};

pub use rdata::CHARACTER_STRING_TOO_LONG;

/// The record types a zone file may hold, with their mnemonics.
const SUPPORTED_TYPES: [(&str, RecordType); 17] = [
    ("A", RecordType::A),
    ("AAAA", RecordType::AAAA),
    ("CAA", RecordType::CAA),
    ("CNAME", RecordType::CNAME),
    ("DS", RecordType::DS),
    ("HTTPS", RecordType::HTTPS),
    ("MX", RecordType::MX),
    ("NAPTR", RecordType::NAPTR),
    ("NS", RecordType::NS),
    ("PTR", RecordType::PTR),
    ("SOA", RecordType::SOA),
    ("SPF", SPF),
    ("SRV", RecordType::SRV),
    ("SSHFP", RecordType::SSHFP),
    ("SVCB", RecordType::SVCB),
    ("TLSA", RecordType::TLSA),
    ("TXT", RecordType::TXT),
];

/// The mnemonic of a supported type.
fn mnemonic(rtype: RecordType) -> Option<&'static str> {
    SUPPORTED_TYPES
        .iter()
        .find(|(_, t)| *t == rtype)
        .map(|(name, _)| *name)
}

/// A parsed zone file.
#[derive(Debug, Clone)]
pub struct ZoneFile {
    pub origin: Name,
    pub rrsets: Vec<ResourceRecordSet>,
}

/// Why a zone file could not be read: the file name and line say where.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ZoneFileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// An error at a line, before it is given the file's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Problem {
    line: usize,
    message: String,
}

impl Problem {
    fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Parses zone-file text. `origin` is the zone's name (from the file name); `file` names the
/// file in errors. Record sets come back in canonical order (`RrKey`).
pub fn parse(text: &str, origin: &Name, file: &str) -> Result<ZoneFile, ZoneFileError> {
    let origin = normalize_name(origin);
    match reader::read(text, &origin) {
        Ok(rrsets) => Ok(ZoneFile { origin, rrsets }),
        Err(problem) => Err(ZoneFileError {
            file: file.to_owned(),
            line: problem.line,
            message: problem.message,
        }),
    }
}

/// Writes record sets as zone-file text, SOA first, then the apex NS, then the rest in
/// canonical order; one record per line with fully qualified names.
pub fn emit(origin: &Name, rrsets: &[ResourceRecordSet]) -> String {
    writer::write(&normalize_name(origin), rrsets)
}

/// One record's data in presentation format, as the writer writes it: the form Route 53 uses
/// for `ResourceRecords` values.
pub fn rdata_text(rdata: &RData) -> String {
    let mut out = String::new();
    if let Err(e) = writer::write_rdata(&mut out, rdata) {
        // Only record data that cannot be encoded at all gets here.
        out = format!("; unwritable record data: {e}");
    }
    out
}

/// Reads a domain name in presentation format (`\DDD` is decimal, RFC 1035 §5.1); a name
/// without a final dot is relative to `origin`.
pub fn parse_name(text: &str, origin: &Name) -> Result<Name, String> {
    presentation::parse_name(text, origin)
}

/// Reads one record's data in presentation format (a Route 53 value); relative names in it
/// take `origin`.
pub fn parse_rdata(rtype: RecordType, text: &str, origin: &Name) -> Result<RData, String> {
    let mnemonic = mnemonic(rtype).ok_or_else(|| format!("unsupported record type {rtype}"))?;
    let entries = lexer::entries(text).map_err(|p| p.message)?;
    let tokens = match entries.as_slice() {
        [] => &[][..],
        [one] => one.tokens.as_slice(),
        _ => return Err("a value must be one line".into()),
    };
    rdata::parse(rtype, mnemonic, tokens, 1, origin).map_err(|p| p.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::str::FromStr;

    use hickory_proto::rr::RData;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn fixture(file: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(file)
    }

    /// Every zone file the tests know, with its origin.
    fn fixtures() -> Vec<(PathBuf, Name)> {
        vec![
            (fixture("zones/example.com.zone"), name("example.com.")),
            (
                fixture("tests/data/zonefile/every-type.example.zone"),
                name("every-type.example."),
            ),
            (
                fixture("tests/data/zonefile/awkward-txt.example.zone"),
                name("awkward-txt.example."),
            ),
        ]
    }

    fn parse_fixture(path: &Path, origin: &Name) -> ZoneFile {
        let text = std::fs::read_to_string(path).unwrap();
        parse(&text, origin, &path.display().to_string()).unwrap()
    }

    #[test]
    fn every_fixture_survives_emit_and_parse_unchanged() {
        for (path, origin) in fixtures() {
            let first = parse_fixture(&path, &origin);
            let text = emit(&origin, &first.rrsets);
            let second = parse(&text, &origin, "emitted").unwrap_or_else(|e| {
                panic!("{}: re-reading the export: {e}\n{text}", path.display())
            });
            assert_eq!(second.rrsets, first.rrsets, "{}", path.display());
            // And the export is a fixed point.
            assert_eq!(emit(&origin, &second.rrsets), text, "{}", path.display());
        }
    }

    #[test]
    fn the_every_type_fixture_has_every_supported_type() {
        let (path, origin) = &fixtures()[1];
        let zone = parse_fixture(path, origin);
        for (mnemonic, rtype) in SUPPORTED_TYPES {
            assert!(
                zone.rrsets.iter().any(|set| set.rtype == rtype),
                "no {mnemonic} in {}",
                path.display()
            );
        }
    }

    #[test]
    fn awkward_txt_strings_keep_their_bytes() {
        let (path, origin) = &fixtures()[2];
        let zone = parse_fixture(path, origin);
        let strings = |owner: &str| -> Vec<Vec<u8>> {
            let set = zone
                .rrsets
                .iter()
                .find(|s| s.name == name(owner) && s.rtype == RecordType::TXT)
                .unwrap_or_else(|| panic!("no TXT at {owner}"));
            match &set.records[0] {
                RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            strings("several.awkward-txt.example."),
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
        assert_eq!(
            strings("quotes.awkward-txt.example."),
            [br#"say "hi""#.to_vec()]
        );
        assert_eq!(
            strings("backslash.awkward-txt.example."),
            [br"C:\path\".to_vec()]
        );
        assert_eq!(
            strings("semicolon.awkward-txt.example."),
            [b"a; b; (c)".to_vec()]
        );
        assert_eq!(
            strings("bytes.awkward-txt.example."),
            [vec![0, 7, b'A', 127, 200, 255]]
        );
        assert_eq!(strings("empty.awkward-txt.example."), [Vec::<u8>::new()]);
        assert_eq!(
            strings("long.awkward-txt.example."),
            [vec![b'x'; 255], vec![b'y'; 255]]
        );
        assert_eq!(
            strings("multiline.awkward-txt.example."),
            [b"v=DKIM1; k=rsa; ".to_vec(), b"p=MIGf".to_vec()]
        );
    }

    #[test]
    fn example_zone_has_the_records_the_server_tests_rely_on() {
        let (path, origin) = &fixtures()[0];
        let zone = parse_fixture(path, origin);
        let has = |owner: &str, rtype: RecordType| {
            zone.rrsets
                .iter()
                .any(|s| s.name == name(owner) && s.rtype == rtype)
        };
        for (owner, rtype) in [
            ("example.com.", RecordType::SOA),
            ("example.com.", RecordType::NS),
            ("example.com.", RecordType::MX),
            ("example.com.", RecordType::TXT),
            ("example.com.", RecordType::CAA),
            ("ns1.example.com.", RecordType::A),
            ("ns1.example.com.", RecordType::AAAA),
            ("www.example.com.", RecordType::A),
            ("www.example.com.", RecordType::AAAA),
            ("blog.example.com.", RecordType::CNAME),
            ("docs.example.com.", RecordType::CNAME),
            ("_sip._tcp.example.com.", RecordType::SRV),
            ("*.apps.example.com.", RecordType::A),
            ("*.apps.example.com.", RecordType::TXT),
            ("host.dept.corp.example.com.", RecordType::A),
            ("sub.example.com.", RecordType::NS),
            ("ns1.sub.example.com.", RecordType::A),
            ("ns1.sub.example.com.", RecordType::AAAA),
        ] {
            assert!(has(owner, rtype), "no {rtype} at {owner}");
        }
        assert!(!has("dept.corp.example.com.", RecordType::A));
        let soa = zone
            .rrsets
            .iter()
            .find(|s| s.rtype == RecordType::SOA)
            .unwrap();
        match &soa.records[0] {
            RData::SOA(soa_data) => {
                assert_eq!(soa_data.serial, 2026112501);
                assert_eq!(soa_data.minimum, 300);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(soa.ttl, 3600);
    }

    /// Writes the export of every fixture into `dir` as `<origin>zone`, with its origin.
    fn export_fixtures(dir: &Path) -> Vec<(PathBuf, Name)> {
        fixtures()
            .into_iter()
            .map(|(path, origin)| {
                let zone = parse_fixture(&path, &origin);
                let exported = dir.join(format!("{origin}zone"));
                std::fs::write(&exported, emit(&origin, &zone.rrsets)).unwrap();
                (exported, origin)
            })
            .collect()
    }

    fn assert_success(output: &std::process::Output, what: &str) {
        assert!(
            output.status.success(),
            "{what}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    /// BIND is a reference reader: `named-checkzone -i local` must load every export. The
    /// test says so and passes when BIND is not installed.
    #[test]
    fn exports_load_in_named_checkzone() {
        let checker = Path::new("/usr/bin/named-checkzone");
        if !checker.exists() {
            eprintln!("named-checkzone is not installed; skipping the BIND check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for (exported, origin) in export_fixtures(dir.path()) {
            let output = Command::new(checker)
                .args(["-i", "local"])
                .arg(origin.to_string())
                .arg(&exported)
                .output()
                .unwrap();
            assert_success(&output, &format!("named-checkzone rejected {origin}"));
        }
    }

    /// Knot is the other reference reader: `knotc zone-check` loads zones without a running
    /// server. Passes, saying so, when Knot is not installed.
    #[test]
    fn exports_load_in_knot() {
        let knotc = Path::new("/usr/sbin/knotc");
        if !knotc.exists() {
            eprintln!("knotc is not installed; skipping the Knot check");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let exports = export_fixtures(dir.path());
        let database = dir.path().join("db");
        std::fs::create_dir(&database).unwrap();
        let mut config = format!(
            "database:\n  storage: \"{}\"\ntemplate:\n  - id: default\n    storage: \"{}\"\n    \
             file: \"%s.zone\"\n    semantic-checks: on\nzone:\n",
            database.display(),
            dir.path().display()
        );
        for (_, origin) in &exports {
            config.push_str(&format!("  - domain: \"{origin}\"\n"));
        }
        let config_path = dir.path().join("knot.conf");
        std::fs::write(&config_path, config).unwrap();
        // -f: semantic-check warnings fail too.
        let output = Command::new(knotc)
            .arg("-c")
            .arg(&config_path)
            .args(["-f", "zone-check"])
            .output()
            .unwrap();
        assert_success(&output, "knotc zone-check rejected an export");
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let text = "@ 3600 SOA ns1 host 1 2 3 4 5\n@ 300 NS ns1\nbad 300 A 192.0.2.300\n";
        let err = parse(text, &name("example.com."), "zones/example.com.zone").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(
            err.to_string().starts_with("zones/example.com.zone:3: "),
            "{err}"
        );
    }

    #[test]
    fn emit_puts_soa_then_apex_ns_first() {
        let text = "$ORIGIN example.com.\n\
                    a 300 A 192.0.2.1\n\
                    @ 300 MX 10 a\n\
                    @ 300 NS ns1\n\
                    @ 3600 SOA ns1 host 1 2 3 4 5\n";
        let zone = parse(text, &name("example.com."), "t").unwrap();
        let emitted = emit(&zone.origin, &zone.rrsets);
        let types: Vec<&str> = emitted
            .lines()
            .skip(1)
            .map(|l| l.split(' ').nth(3).unwrap())
            .collect();
        assert_eq!(types, ["SOA", "NS", "MX", "A"]);
        assert!(emitted.starts_with("$ORIGIN example.com.\n"));
    }
}
