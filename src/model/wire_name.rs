//! Names in lower-cased wire form, the byte keys of the lookup-heavy maps, and the reversed
//! form Route 53 sorts names by.

use hickory_proto::rr::Name;
use smallvec::SmallVec;

/// A name in wire form, lower-cased (length-prefixed labels, then the root's zero byte), on
/// the stack: the form names are keyed by where they are looked up often (the zone index,
/// the resolver's cache), since such keys hash and compare as plain bytes (hickory's `Name`
/// compares label by label, folding case byte by byte). An ancestor's form is a suffix of its
/// descendant's, so walking a name's ancestors slices one buffer.
pub struct WireName {
    bytes: [u8; 256],
    len: usize,
    /// Where each label starts, leftmost first.
    starts: [u8; 128],
    labels: usize,
}

impl WireName {
    /// `None` for a name longer than DNS allows (hickory makes none).
    pub fn new(name: &Name) -> Option<Self> {
        let mut wire = Self {
            bytes: [0; 256],
            len: 0,
            starts: [0; 128],
            labels: 0,
        };
        for label in name.iter() {
            if wire.labels == wire.starts.len() || wire.len + 1 + label.len() >= wire.bytes.len() {
                return None;
            }
            wire.starts[wire.labels] = wire.len as u8;
            wire.labels += 1;
            wire.bytes[wire.len] = label.len() as u8;
            let out = &mut wire.bytes[wire.len + 1..wire.len + 1 + label.len()];
            out.copy_from_slice(label);
            out.make_ascii_lowercase();
            wire.len += 1 + label.len();
        }
        wire.len += 1; // the root label
        Some(wire)
    }

    /// The whole name.
    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// How many labels the name has (a leading `*` counts).
    pub fn labels(&self) -> usize {
        self.labels
    }

    /// The key of the ancestor with `depth` labels (0 is the root).
    pub fn ancestor(&self, depth: usize) -> &[u8] {
        match self.labels.checked_sub(depth) {
            Some(skip) if skip < self.labels => &self.bytes[self.starts[skip] as usize..self.len],
            _ => &self.bytes[self.len - 1..self.len],
        }
    }
}

/// A name's labels from the right, each followed by a dot, letters lower-cased, from its key
/// (see [`WireName`]): `www.example.com.` is `com.example.www.`. This is the form Route 53 sorts
/// names by, as ASCII (ListResourceRecordSets, ListHostedZonesByName). Compared as bytes it is
/// not DNSSEC's canonical order: the dot after a label sorts after `-`, `*` and the other
/// characters below `.`, so `a-b.example.com.` comes before `a.example.com.` (Route 53 notes
/// this); escapes are compared as the bytes they stand for.
pub fn reversed_name(key: &[u8]) -> Vec<u8> {
    let mut labels: SmallVec<[&[u8]; 8]> = SmallVec::new();
    let mut rest = key;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 || tail.len() < len as usize {
            break;
        }
        let (label, tail) = tail.split_at(len as usize);
        labels.push(label);
        rest = tail;
    }
    let mut out = Vec::with_capacity(key.len());
    for label in labels.iter().rev() {
        out.extend(label.iter().map(u8::to_ascii_lowercase));
        out.push(b'.');
    }
    out
}
