//! Name compression for the messages r53 composes (RFC 1035 §4.1.4), done as Knot DNS does it,
//! so that an answer comes out as big as Knot's and the same records fit in a datagram.
//!
//! hickory-proto's encoder compresses only a message's first 120 names (`COMPRESSED_NAME_LIMIT`)
//! and remembers only 64 suffixes (`COMPRESSION_CANDIDATE_LIMIT`); past that it writes names out
//! in full, so 200 MX records with their addresses came to 11.3 KB against Knot's 8.4 KB, and a
//! referral fitted less glue. Every name r53 compresses is written here instead; hickory writes
//! only the names it would not compress anyway (SRV, SVCB/HTTPS and NAPTR targets: RFC 3597 §4
//! forbids compressing names in the RDATA of types defined after RFC 1035, and RFC 2782 says
//! so for SRV) and the question, which comes first.
//!
//! The scheme, Knot's (libknot `compr.c`, `rrset-wire.c`; no table, no allocation per name):
//! - A name is compared with one earlier name, the *suffix*: the question at first, then the
//!   last name written with more than a pointer. The labels the two share at their ends become
//!   a pointer to the suffix's; the labels before are written out.
//! - An owner name equal to the suffix is a pointer to it. Any other owner is compressed against
//!   the question, not against the name before it.
//! - Every record of an RRset after the first has its owner point to the first's.
//! - The owner of an additional record points to the same name in the RDATA of one of the first
//!   15 records of an answer or authority RRset (a name server's glue to its NS record, a mail
//!   exchanger's address to its MX, an SRV target's), as Knot's per-record compression hints do.
//!
//! Names are compared byte for byte, so what a client decompresses is exactly what r53 wrote
//! (Knot compares without regard to case; r53 spells the names that end like the question as
//! the question does before writing them, see `message::spelt_like`, so the two agree).
//!
//! Every pointer this writes points back, below offset 0x3FFF, at the first label of a name or
//! of a name's tail that is already in the message. It must not be handed a buffer whose bytes
//! before the offset it writes at are not the message being composed.

use hickory_proto::rr::rdata::{CNAME, NS, PTR};
use hickory_proto::rr::{Name, RData};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_proto::ProtoError;

/// The largest offset a compression pointer can hold (14 bits).
const POINTER_REACH: usize = 0x3FFF;
/// How many records of an RRset leave a hint for the additional section (Knot keeps 16 hints
/// per RRset, the first for the owner).
const HINTED_RECORDS: usize = 15;
/// A name has at most 127 labels besides the root.
const MAX_LABELS: usize = 128;

/// The compression state of one message being composed.
pub(super) struct Names {
    /// Where the question's name is, when there is one; without it nothing is compressed.
    question: Option<u16>,
    /// Where the name that the next one is compared with starts.
    suffix: Option<u16>,
    /// Where the first RDATA name of each of the first records of the answer and authority
    /// RRsets went.
    hints: Vec<u16>,
}

/// The state to go back to when an RRset is taken out of the message again.
#[derive(Clone, Copy)]
pub(super) struct Mark {
    suffix: Option<u16>,
    hints: usize,
}

impl Names {
    /// For a message whose question's name starts at `question` (12), if it has one.
    pub(super) fn new(question: Option<usize>) -> Self {
        let question = question
            .filter(|&at| at < POINTER_REACH)
            .map(|at| at as u16);
        Self {
            question,
            suffix: question,
            hints: Vec::new(),
        }
    }

    pub(super) fn mark(&self) -> Mark {
        Mark {
            suffix: self.suffix,
            hints: self.hints.len(),
        }
    }

    /// Forgets everything learnt since `mark`, whose bytes the caller removes: nothing may
    /// point into them. (Knot keeps its suffix in that case, which can leave it pointing at
    /// bytes that are written over.)
    pub(super) fn rollback(&mut self, mark: Mark) {
        self.suffix = mark.suffix;
        self.hints.truncate(mark.hints);
    }

    /// Writes a record's owner. `first` is where the RRset's first owner is, once written: the
    /// owner of every later record is a pointer to it. `additional`: the record is in the
    /// additional section, where an owner may point to a name in earlier RDATA.
    pub(super) fn emit_owner(
        &mut self,
        encoder: &mut BinEncoder<'_>,
        owner: &Name,
        first: &mut Option<u16>,
        additional: bool,
    ) -> Result<(), ProtoError> {
        if let Some(at) = *first {
            return encoder.emit_u16(0xC000 | at);
        }
        // The root is one byte, shorter than any pointer.
        if owner.is_root() || self.question.is_none() {
            return owner.emit(encoder);
        }
        let earlier = {
            let wire = written(encoder);
            let hint = if additional {
                self.hints
                    .iter()
                    .find(|&&at| same_name(wire, usize::from(at), owner))
                    .map(|&at| pointed_to(wire, at))
            } else {
                None
            };
            hint.or_else(|| {
                self.suffix
                    .filter(|&at| same_name(wire, usize::from(at), owner))
            })
        };
        if let Some(at) = earlier {
            *first = Some(at);
            return encoder.emit_u16(0xC000 | at);
        }
        self.suffix = self.question;
        let start = encoder.offset();
        self.emit_name(encoder, owner)?;
        if encoder.offset() < POINTER_REACH {
            *first = Some(pointed_to(written(encoder), start as u16));
        }
        Ok(())
    }

    /// Writes `name` compressed against the suffix, and makes it the suffix when it took more
    /// than a pointer.
    pub(super) fn emit_name(
        &mut self,
        encoder: &mut BinEncoder<'_>,
        name: &Name,
    ) -> Result<(), ProtoError> {
        let start = encoder.offset();
        let labels = name.iter().len();
        let (spelt, pointer) = match self.suffix {
            Some(suffix) if labels > 0 => shared_end(written(encoder), suffix, name),
            _ => (labels, None),
        };
        for label in name.iter().take(spelt) {
            // A label is at most 63 bytes (`Name` holds no longer one).
            encoder.emit(label.len() as u8)?;
            encoder.emit_vec(label)?;
        }
        match pointer {
            Some(at) => encoder.emit_u16(0xC000 | at)?,
            None => encoder.emit(0)?,
        }
        let end = encoder.offset();
        if end - start > 2 && end < POINTER_REACH {
            self.suffix = Some(start as u16);
        }
        Ok(())
    }

    /// Writes a record's RDATA: the names of NS, CNAME, PTR, MX, SOA and MINFO compressed (RFC
    /// 3597 §4 lists them with MD, MF, MB, MG and MR; Knot 3.2 compresses these six and writes
    /// the other five in full, as it writes every later type), everything else as hickory
    /// writes it, names in full. `hint`: the record is one of the first of an answer
    /// or authority RRset, and its first name is noted for the additional section's owners.
    pub(super) fn emit_rdata(
        &mut self,
        encoder: &mut BinEncoder<'_>,
        rdata: &RData,
        hint: bool,
    ) -> Result<(), ProtoError> {
        let start = encoder.offset();
        let named = match rdata {
            RData::NS(NS(name)) | RData::CNAME(CNAME(name)) | RData::PTR(PTR(name)) => {
                self.emit_name(encoder, name)?;
                Some(start)
            }
            RData::MX(mx) => {
                encoder.emit_u16(mx.preference)?;
                self.emit_name(encoder, &mx.exchange)?;
                Some(start + 2)
            }
            RData::SOA(soa) => {
                self.emit_name(encoder, &soa.mname)?;
                self.emit_name(encoder, &soa.rname)?;
                encoder.emit_u32(soa.serial)?;
                encoder.emit_i32(soa.refresh)?;
                encoder.emit_i32(soa.retry)?;
                encoder.emit_i32(soa.expire)?;
                encoder.emit_u32(soa.minimum)?;
                Some(start)
            }
            // Priority, weight and port, then the target. (An SVCB or HTTPS TargetName is no
            // hint: Knot 3.2 writes the owners of their additional records compressed against
            // the question.)
            RData::SRV(_) => {
                rdata.emit(encoder)?;
                Some(start + 6)
            }
            // hickory does not know MINFO: its two names come as the bytes of an unknown
            // type, compressed when they are two whole names uncompressed. (A MINFO whose names
            // an upstream compressed holds pointers into the upstream's message, which hickory
            // keeps as bytes: written as they came, as before.) Knot hints no additional
            // record with them.
            RData::Unknown { code, rdata } if u16::from(*code) == MINFO => {
                match two_names(&rdata.anything) {
                    Some((rmailbx, emailbx)) => {
                        self.emit_name(encoder, &rmailbx)?;
                        self.emit_name(encoder, &emailbx)?;
                    }
                    None => rdata.emit(encoder)?,
                }
                None
            }
            _ => {
                rdata.emit(encoder)?;
                None
            }
        };
        if let (true, Some(at)) = (hint, named) {
            // As Knot: only a name that ends within a pointer's reach.
            let ends_in_reach = name_end(written(encoder), at).is_some_and(|e| e < POINTER_REACH);
            if ends_in_reach {
                self.hints.push(at as u16);
            }
        }
        Ok(())
    }
}

/// RFC 1035 §3.3.7's MINFO, which hickory reads as an unknown type.
const MINFO: u16 = 14;

/// The two names that make up `rdata`, each whole and uncompressed, and nothing after them.
fn two_names(rdata: &[u8]) -> Option<(Name, Name)> {
    let uncompressed_end = |at: usize| -> Option<usize> {
        let mut at = at;
        loop {
            match *rdata.get(at)? {
                0 => return Some(at + 1),
                len @ 1..=63 => at += 1 + usize::from(len),
                _ => return None,
            }
        }
    };
    let middle = uncompressed_end(0)?;
    let end = uncompressed_end(middle)?;
    let read = |bytes: &[u8]| Name::read(&mut BinDecoder::new(bytes)).ok();
    (end == rdata.len()).then_some(())?;
    Some((read(&rdata[..middle])?, read(&rdata[middle..])?))
}

/// Whether the `index`th record of an RRset leaves a hint.
pub(super) fn hinted(index: usize) -> bool {
    index < HINTED_RECORDS
}

/// The message as written so far.
fn written<'e>(encoder: &'e BinEncoder<'_>) -> &'e [u8] {
    encoder.slice_of(0, encoder.offset())
}

/// How many labels of `name` to write out, and where the rest of it is: the labels it shares,
/// counted from the end, with the name at `suffix`.
fn shared_end(wire: &[u8], suffix: u16, name: &Name) -> (usize, Option<u16>) {
    let labels = name.iter().len();
    let mut starts = [0u16; MAX_LABELS];
    let Some(count) = label_starts(wire, usize::from(suffix), &mut starts) else {
        return (labels, None);
    };
    let shared = name
        .iter()
        .rev()
        .zip(starts[..count].iter().rev())
        .take_while(|(label, &at)| label_at(wire, at) == *label)
        .count();
    match shared {
        0 => (labels, None),
        _ => (labels - shared, Some(starts[count - shared])),
    }
}

/// Whether the name at `at` is `name`, byte for byte.
fn same_name(wire: &[u8], at: usize, name: &Name) -> bool {
    let mut starts = [0u16; MAX_LABELS];
    match label_starts(wire, at, &mut starts) {
        Some(count) => {
            count == name.iter().len()
                && name
                    .iter()
                    .zip(&starts[..count])
                    .all(|(label, &at)| label_at(wire, at) == label)
        }
        None => false,
    }
}

/// Where a name at `at` that is only a pointer points; `at` for any other.
fn pointed_to(wire: &[u8], at: u16) -> u16 {
    let at = usize::from(at);
    match wire.get(at..at + 2) {
        Some(&[high, low]) if high >= 0xC0 => u16::from_be_bytes([high & 0x3F, low]),
        _ => at as u16,
    }
}

/// Where the bytes of the name at `at` end (after its root label or its pointer).
fn name_end(wire: &[u8], mut at: usize) -> Option<usize> {
    loop {
        match *wire.get(at)? {
            0 => return Some(at + 1),
            len @ 1..=63 => at += 1 + usize::from(len),
            0xC0..=0xFF => return Some(at + 2),
            _ => return None,
        }
    }
}

/// The label whose length byte is at `at` (one [`label_starts`] found whole).
fn label_at(wire: &[u8], at: u16) -> &[u8] {
    let at = usize::from(at);
    let len = usize::from(wire[at]);
    &wire[at + 1..at + 1 + len]
}

/// Notes in `starts` where each label of the name at `at` begins, following pointers, and says
/// how many there are; `None` when the bytes there are not a whole name that only points back.
fn label_starts(wire: &[u8], mut at: usize, starts: &mut [u16; MAX_LABELS]) -> Option<usize> {
    let mut count = 0;
    loop {
        let len = *wire.get(at)?;
        match len {
            0 => return Some(count),
            1..=63 => {
                let next = at + 1 + usize::from(len);
                if count == MAX_LABELS || next > wire.len() {
                    return None;
                }
                starts[count] = at as u16;
                count += 1;
                at = next;
            }
            0xC0..=0xFF => {
                let target = usize::from(u16::from_be_bytes([len & 0x3F, *wire.get(at + 1)?]));
                // Only backwards: with the label count bounded, the walk ends.
                if target >= at {
                    return None;
                }
                at = target;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::MX;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    /// A message of a header and the question `q`, then `write` run with its `Names`.
    fn compose(q: &str, write: impl FnOnce(&mut Names, &mut BinEncoder<'_>)) -> Vec<u8> {
        let mut buf = Vec::new();
        {
            let mut encoder = BinEncoder::new(&mut buf);
            encoder.emit_vec(&[0; 12]).unwrap();
            name(q).emit(&mut encoder).unwrap();
            let mut names = Names::new(Some(12));
            write(&mut names, &mut encoder);
        }
        buf
    }

    /// Reads the name at `at` back, following pointers, as hickory does.
    fn read(wire: &[u8], at: usize) -> Name {
        let mut decoder = hickory_proto::serialize::binary::BinDecoder::new(wire);
        decoder.read_slice(at).unwrap();
        hickory_proto::serialize::binary::BinDecodable::read(&mut decoder).unwrap()
    }

    #[test]
    fn a_name_shares_its_end_with_the_last_one_written() {
        let q = "mx.example.com.";
        let mut at = Vec::new();
        let wire = compose(q, |names, e| {
            for n in [
                "h1.example.com.",
                "h2.example.com.",
                "a.b.example.net.",
                "c.b.example.net.",
            ] {
                at.push(e.offset());
                names.emit_name(e, &name(n)).unwrap();
            }
        });
        // "h1" and a pointer to the question's example.com; "h2" and a pointer to the same.
        assert_eq!(&wire[at[0]..at[1]], b"\x02h1\xc0\x0f");
        assert_eq!(&wire[at[1]..at[2]], b"\x02h2\xc0\x0f");
        // Nothing shared with h2.example.com: written out; then c.b.example.net points into it.
        assert_eq!(&wire[at[2]..at[3]], b"\x01a\x01b\x07example\x03net\x00");
        assert_eq!(
            &wire[at[3]..],
            [&b"\x01c\xc0"[..], &[at[2] as u8 + 2]].concat()
        );
        for (i, n) in [
            "h1.example.com.",
            "h2.example.com.",
            "a.b.example.net.",
            "c.b.example.net.",
        ]
        .into_iter()
        .enumerate()
        {
            assert_eq!(read(&wire, at[i]), name(n));
        }
    }

    #[test]
    fn owners_point_to_the_suffix_the_first_owner_and_rdata_names() {
        let q = "example.com.";
        let mut at = Vec::new();
        let wire = compose(q, |names, e| {
            // An MX RRset at the question, two records; then the address of its exchange.
            let mut first = None;
            for pref in [10, 20] {
                at.push(e.offset());
                names.emit_owner(e, &name(q), &mut first, false).unwrap();
                at.push(e.offset());
                let mx = RData::MX(MX::new(pref, name(&format!("mx{pref}.example.com."))));
                names.emit_rdata(e, &mx, true).unwrap();
            }
            let mut first = None;
            at.push(e.offset());
            names
                .emit_owner(e, &name("mx20.example.com."), &mut first, true)
                .unwrap();
            at.push(e.offset());
            names
                .emit_owner(e, &name("other.example.com."), &mut None, true)
                .unwrap();
        });
        assert_eq!(&wire[at[0]..at[1]], b"\xc0\x0c");
        assert_eq!(&wire[at[2]..at[3]], b"\xc0\x0c");
        // The address's owner points to the second MX's exchange, after its preference.
        let exchange = (at[3] + 2) as u8;
        assert_eq!(&wire[at[4]..at[5]], [0xc0, exchange]);
        assert_eq!(read(&wire, at[4]), name("mx20.example.com."));
        // Another owner is compressed against the question.
        assert_eq!(&wire[at[5]..], b"\x05other\xc0\x0c");
    }

    /// Knot 3.2.6 (knotd, checked by hand) answers `minfo.t.test MINFO` with both names
    /// compressed against the question and `mb.t.test MB` with the name in full; MD, MF, MG
    /// and MR as MB.
    #[test]
    fn minfo_names_are_compressed_and_mb_names_are_not() {
        let unknown = |code: u16, names: &[&str]| {
            let mut bytes = Vec::new();
            for n in names {
                bytes.extend(name(n).to_bytes().unwrap());
            }
            RData::Unknown {
                code: code.into(),
                rdata: hickory_proto::rr::rdata::NULL::with(bytes),
            }
        };
        let minfo = unknown(MINFO, &["rmail.t.test.", "email.t.test."]);
        let wire = compose("minfo.t.test.", |names, e| {
            names.emit_rdata(e, &minfo, true).unwrap();
        });
        assert_eq!(&wire[26..], b"\x05rmail\xc0\x12\x05email\xc0\x12");
        assert_eq!(read(&wire, 26), name("rmail.t.test."));
        assert_eq!(read(&wire, 34), name("email.t.test."));
        let mb = unknown(7, &["mail.t.test."]);
        let wire = compose("mb.t.test.", |names, e| {
            names.emit_rdata(e, &mb, true).unwrap();
        });
        assert_eq!(&wire[23..], b"\x04mail\x01t\x04test\x00");
        // Bytes that are not two whole names stay as they came.
        let odd = RData::Unknown {
            code: MINFO.into(),
            rdata: hickory_proto::rr::rdata::NULL::with(b"\x01a\xc0\x0c".to_vec()),
        };
        let wire = compose("minfo.t.test.", |names, e| {
            names.emit_rdata(e, &odd, true).unwrap();
        });
        assert_eq!(&wire[26..], b"\x01a\xc0\x0c");
    }

    #[test]
    fn a_rolled_back_name_is_never_pointed_to() {
        let wire = compose("example.com.", |names, e| {
            let mark = names.mark();
            let start = e.offset();
            names.emit_name(e, &name("gone.example.com.")).unwrap();
            names.rollback(mark);
            e.set_offset(start);
            e.trim();
            names.emit_name(e, &name("gone.example.com.")).unwrap();
        });
        assert_eq!(&wire[25..], b"\x04gone\xc0\x0c");
    }
}
