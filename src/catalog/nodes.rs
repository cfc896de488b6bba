//! A zone's names and the record sets they own, kept compact: a million record sets must fit
//! in the memory other servers use for them.
//!
//! A record set is kept as the store keeps it, its records in wire form (a few bytes for an
//! address, inline) but in the order answers send them (see [`order`]), and decoded when a
//! query or the API reads it; an Alias set, which
//! answering follows, stays decoded. The names live in a [`Base`] built in one go (all keys in
//! one buffer, a hash table of indexes into it) and an [`Overlay`] of what changed since,
//! which lookups consult first. The overlay is a persistent map: successive indexes of a zone
//! share it, so a change costs what it touches, not the zone's size. When the overlay has
//! grown to a fraction of the base, the two are merged into a new base.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::{Arc, OnceLock};

use hashbrown::HashTable;
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use rustc_hash::FxBuildHasher;
use smallvec::SmallVec;

use crate::model::ResourceRecordSet;
use crate::store::codec::{self, RawRrset};
use crate::store::StoreError;

use super::order;

/// Records of up to this many bytes (lengths included) are kept inline: an A record (6) and
/// an AAAA record (18) both fit.
const INLINE: usize = 24;

/// One record set as the index keeps it.
#[derive(Clone, Debug)]
pub(super) enum Stored {
    /// Its records as [`codec::push_rdata`] writes them (each a u16 length and the RDATA), in
    /// the order DNS answers send them ([`order`]: Knot's, canonical).
    ///
    /// Two things a listing needs may follow them in the same buffer, each behind a flag in
    /// padding, so a set without them costs not a byte more: `entered`, the order the records
    /// were entered in when it is not that one (a u16 per record, in the order entered: where
    /// that record is among the records), and `texts`, the values as an API client entered
    /// them, in that order, as [`codec::push_texts`] writes them (a set entered otherwise whose
    /// names answers lower-case keeps its records' presentation form there instead, so that
    /// it lists as before). With either, `data` is the records' length (u32), the records, the
    /// order, then the values.
    Wire {
        rtype: u16,
        texts: bool,
        entered: bool,
        ttl: u32,
        data: SmallVec<[u8; INLINE]>,
    },
    /// An Alias record set, which has no records; answering follows its target.
    Alias(Arc<ResourceRecordSet>),
}

/// A wire set's buffer taken apart (see [`Stored::Wire`]).
struct Parts<'a> {
    /// In the order answers send them.
    records: &'a [u8],
    /// Per record entered, its index in `records`, as u16s; `None`: in the order entered.
    entered: Option<&'a [u8]>,
    texts: Option<&'a [u8]>,
}

impl Stored {
    pub(super) fn pack(set: &Arc<ResourceRecordSet>) -> Result<Self, StoreError> {
        if set.alias.is_some() {
            return Ok(Self::Alias(set.clone()));
        }
        let mut records = Vec::new();
        for rdata in &set.records {
            codec::push_rdata(&mut records, rdata)?;
        }
        let mut texts = None;
        if let Some(entered) = set.texts.as_deref() {
            let mut section = Vec::new();
            codec::push_texts(&mut section, entered.iter().map(|t| &**t))?;
            texts = Some(section);
        }
        Ok(Self::wire(
            set.rtype.into(),
            set.ttl,
            &records,
            texts.as_deref(),
        ))
    }

    /// A set from its records and values in the order they were entered.
    fn wire(rtype: u16, ttl: u32, records: &[u8], texts: Option<&[u8]>) -> Self {
        let canonical = order::canonical(rtype, records);
        // A set that lists in presentation form (it has no values as entered) keeps the form
        // it listed in before its names were lower-cased for answers: the values, as text.
        let presented = match (&canonical, texts) {
            (Some(c), None) if c.lowered => Self::presentation(rtype, records),
            _ => None,
        };
        let texts = texts.or(presented.as_deref());
        let (records, entered) = match &canonical {
            Some(c) => (&c.records[..], c.entered.as_deref()),
            None => (records, None),
        };
        // Inline whenever the bytes fit, whatever capacity a Vec grew to.
        let data = match (entered, texts) {
            (None, None) => SmallVec::from_slice(records),
            _ => {
                let order = entered.map_or(0, |e| 2 * e.len());
                let texts = texts.unwrap_or_default();
                let mut data = SmallVec::with_capacity(4 + records.len() + order + texts.len());
                data.extend_from_slice(&(records.len() as u32).to_be_bytes());
                data.extend_from_slice(records);
                for index in entered.unwrap_or_default() {
                    data.extend_from_slice(&index.to_be_bytes());
                }
                data.extend_from_slice(texts);
                data
            }
        };
        Self::Wire {
            rtype,
            texts: texts.is_some(),
            entered: entered.is_some(),
            ttl,
            data,
        }
    }

    /// `records` in presentation form, as [`codec::push_texts`] writes values; `None` when
    /// one does not decode.
    fn presentation(rtype: u16, records: &[u8]) -> Option<Vec<u8>> {
        let texts = codec::read_rdata(records, RecordType::from(rtype))
            .map(|r| r.ok().map(|rdata| crate::zonefile::rdata_text(&rdata)))
            .collect::<Option<Vec<String>>>()?;
        let mut out = Vec::new();
        codec::push_texts(&mut out, texts.iter().map(|t| &**t)).ok()?;
        Some(out)
    }

    /// A wire set's records, the order they were entered in and the values as entered.
    fn parts(texts: bool, entered: bool, data: &[u8]) -> Parts<'_> {
        if !texts && !entered {
            return Parts {
                records: data,
                entered: None,
                texts: None,
            };
        }
        // `wire` wrote what is read here; a short buffer cannot occur, but reads as no records.
        let Some((len, rest)) = data.split_first_chunk::<4>() else {
            return Parts {
                records: &[],
                entered: None,
                texts: None,
            };
        };
        let len = (u32::from_be_bytes(*len) as usize).min(rest.len());
        let (records, mut rest) = rest.split_at(len);
        let mut order = None;
        if entered {
            let count = order::split(records).map_or(0, |r| r.len());
            let (o, after) = rest.split_at((2 * count).min(rest.len()));
            order = Some(o);
            rest = after;
        }
        Parts {
            records,
            entered: order,
            texts: texts.then_some(rest),
        }
    }

    /// The records in the order they were entered, as [`codec::push_rdata`] writes them.
    fn records_as_entered<'a>(parts: &Parts<'a>) -> Cow<'a, [u8]> {
        let Some(entered) = parts.entered else {
            return Cow::Borrowed(parts.records);
        };
        let Some(records) = order::split(parts.records) else {
            return Cow::Borrowed(parts.records);
        };
        let mut out = Vec::with_capacity(parts.records.len());
        for index in entered.chunks_exact(2) {
            let index = usize::from(u16::from_be_bytes([index[0], index[1]]));
            // `wire` wrote an index per record, each below their count.
            let Some(rdata) = records.get(index) else {
                return Cow::Borrowed(parts.records);
            };
            out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            out.extend_from_slice(rdata);
        }
        Cow::Owned(out)
    }

    /// The set a stored value holds, with its owner's key.
    pub(super) fn from_value(value: &[u8]) -> Result<(Box<[u8]>, Self), StoreError> {
        if let Some(raw) = codec::raw_rrset(value)? {
            if !is_wire_name(raw.name) {
                return Err(StoreError::Corrupt("record set owner name".into()));
            }
            let mut key: Box<[u8]> = raw.name.into();
            key.make_ascii_lowercase();
            let stored = Self::wire(raw.rtype, raw.ttl, raw.records, raw.texts);
            return Ok((key, stored));
        }
        let set = Arc::new(codec::decode_rrset(value)?);
        Ok((super::key_of(&set.name), Self::pack(&set)?))
    }

    /// The stored form of this set, owned by `key` (the inverse of [`from_value`]): its
    /// records in the order they were entered, as the store keeps them.
    pub(super) fn to_value(&self, key: &[u8]) -> Result<Vec<u8>, StoreError> {
        match self {
            Self::Wire {
                rtype,
                texts,
                entered,
                ttl,
                data,
            } => {
                let parts = Self::parts(*texts, *entered, data);
                Ok(codec::encode_raw_rrset(&RawRrset {
                    name: key,
                    rtype: *rtype,
                    ttl: *ttl,
                    records: &Self::records_as_entered(&parts),
                    texts: parts.texts,
                }))
            }
            Self::Alias(set) => codec::encode_rrset(set),
        }
    }

    pub(super) fn rtype(&self) -> RecordType {
        match self {
            Self::Wire { rtype, .. } => RecordType::from(*rtype),
            Self::Alias(set) => set.rtype,
        }
    }

    /// The record set, owned by `key`'s name, as DNS answers it: decoded, its records in the
    /// order answers send them, or borrowed when it is kept decoded. Records that do not decode
    /// (never written so by r53) are left out, and so are the values as entered, which only a
    /// listing shows (see [`listed`](Self::listed)).
    pub(super) fn view(&self, key: &[u8]) -> Cow<'_, ResourceRecordSet> {
        match self {
            Self::Alias(set) => Cow::Borrowed(set),
            Self::Wire {
                rtype,
                texts,
                entered,
                ttl,
                data,
            } => {
                let rtype = RecordType::from(*rtype);
                let records = Self::parts(*texts, *entered, data).records;
                Cow::Owned(Self::decoded(key, rtype, *ttl, records).0)
            }
        }
    }

    /// The set with the records that decode, and whether every record did.
    fn decoded(
        key: &[u8],
        rtype: RecordType,
        ttl: u32,
        records: &[u8],
    ) -> (ResourceRecordSet, bool) {
        let mut whole = true;
        let records = codec::read_rdata(records, rtype)
            .filter_map(|r| {
                whole &= r.is_ok();
                r.ok()
            })
            .collect();
        let set = ResourceRecordSet {
            name: name_of(key),
            rtype,
            ttl,
            records,
            alias: None,
            texts: None,
        };
        (set, whole)
    }

    /// The record set as the API lists it: its records in the order they were entered, with
    /// the values as they were entered, when they were.
    pub(super) fn listed(&self, key: &[u8]) -> Arc<ResourceRecordSet> {
        match self {
            Self::Alias(set) => set.clone(),
            Self::Wire {
                rtype,
                texts,
                entered,
                ttl,
                data,
            } => {
                let rtype = RecordType::from(*rtype);
                let parts = Self::parts(*texts, *entered, data);
                let records = Self::records_as_entered(&parts);
                let (mut set, whole) = Self::decoded(key, rtype, *ttl, &records);
                if let Some(texts) = parts.texts {
                    let texts: Box<[Box<str>]> = codec::read_texts(texts).map(Box::from).collect();
                    // A record that did not decode was left out of the set: its value would
                    // no longer pair off with its record, so the set lists as decoded.
                    if whole && texts.len() == set.records.len() {
                        set.texts = Some(texts);
                    }
                }
                Arc::new(set)
            }
        }
    }
}

/// Whether `bytes` is one name in uncompressed wire form: labels of 1 to 63 bytes, then the
/// root's zero byte and nothing after it, 255 bytes at most. Keys are walked label by label
/// (`parent_key`), which trusts this.
fn is_wire_name(bytes: &[u8]) -> bool {
    if bytes.len() > 255 {
        return false;
    }
    let mut rest = bytes;
    while let Some((&len, tail)) = rest.split_first() {
        if len == 0 {
            return tail.is_empty();
        }
        if len > 63 || tail.len() < usize::from(len) {
            return false;
        }
        rest = &tail[usize::from(len)..];
    }
    false
}

/// The name whose key (lower-cased wire form) `key` is.
pub(super) fn name_of(key: &[u8]) -> Name {
    Name::read(&mut BinDecoder::new(key)).unwrap_or_else(|_| Name::root())
}

/// A name in a zone: the record sets it owns, by type (empty for an empty non-terminal), and
/// how many names one label below it exist, so that removing the last set of a leaf removes
/// the name (and any ancestor left empty) while an empty non-terminal stays.
#[derive(Debug, Default, Clone)]
pub(super) struct Node {
    pub(super) sets: SmallVec<[Stored; 1]>,
    pub(super) children: u32,
}

impl Node {
    pub(super) fn get(&self, rtype: RecordType) -> Option<&Stored> {
        self.sets.iter().find(|s| s.rtype() == rtype)
    }

    /// Adds `set`, replacing one of its type; whether the node had none.
    pub(super) fn put(&mut self, set: Stored) -> bool {
        let rtype = set.rtype();
        match self.sets.iter_mut().find(|s| s.rtype() == rtype) {
            Some(old) => {
                *old = set;
                false
            }
            None => {
                self.sets.push(set);
                self.sets.sort_by_key(|s| u16::from(s.rtype()));
                true
            }
        }
    }
}

/// Names as they were when the base was built.
#[derive(Debug, Default)]
struct Base {
    /// Every name's key, one after another.
    keys: Vec<u8>,
    /// Where each name's key starts in `keys` (it ends where the next starts), and its node.
    nodes: Vec<(u32, Node)>,
    /// Indexes into `nodes`, by the hash of the key.
    table: HashTable<u32>,
    /// Every record set (its node's index and its type) in Route 53's listing order, sorted
    /// the first time the API lists (see [`Nodes::listing`]).
    listing: OnceLock<Vec<(u32, RecordType)>>,
}

/// Name `index`'s key: it starts where its node says and ends where the next node's starts.
fn key_at<'k>(keys: &'k [u8], nodes: &[(u32, Node)], index: usize) -> &'k [u8] {
    let start = nodes[index].0 as usize;
    let end = nodes.get(index + 1).map_or(keys.len(), |n| n.0 as usize);
    &keys[start..end]
}

fn hash(key: &[u8]) -> u64 {
    FxBuildHasher.hash_one(key)
}

impl Base {
    fn with_capacity(names: usize) -> Self {
        Self {
            keys: Vec::with_capacity(names * 20),
            nodes: Vec::with_capacity(names),
            table: HashTable::with_capacity(names),
            listing: OnceLock::new(),
        }
    }

    fn key(&self, index: usize) -> &[u8] {
        key_at(&self.keys, &self.nodes, index)
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        self.table
            .find(hash(key), |&i| self.key(i as usize) == key)
            .map(|&i| i as usize)
    }

    fn get(&self, key: &[u8]) -> Option<&Node> {
        self.find(key).map(|i| &self.nodes[i].1)
    }

    /// Adds a name not yet present; its index.
    fn push(&mut self, key: &[u8], node: Node) -> usize {
        let index = self.nodes.len();
        self.nodes.push((self.keys.len() as u32, node));
        self.keys.extend_from_slice(key);
        let Self {
            keys, nodes, table, ..
        } = self;
        // The table may grow and rehash here, while `table` is borrowed apart from the keys.
        let rehash = |&i: &u32| hash(key_at(keys, nodes, i as usize));
        table.insert_unique(hash(key), index as u32, rehash);
        index
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        (0..self.nodes.len()).map(|i| (self.key(i), &self.nodes[i].1))
    }

    /// Gives back the buffers' spare room. The table keeps its size: rehashing a million
    /// names to save a few megabytes costs a tenth of a second at start-up.
    fn shrink(&mut self) {
        self.keys.shrink_to_fit();
        self.nodes.shrink_to_fit();
    }
}

/// What changed since the base was built: a name's new node, or `None` where a name of the
/// base no longer exists.
type Overlay = imbl::GenericHashMap<
    Box<[u8]>,
    Option<Arc<Node>>,
    FxBuildHasher,
    imbl::shared_ptr::DefaultSharedPtr,
>;

/// A zone's names (see the module's documentation).
#[derive(Debug, Clone, Default)]
pub(super) struct Nodes {
    base: Arc<Base>,
    overlay: Overlay,
}

impl Nodes {
    /// Indexes the record sets of a zone whose apex is `apex`: every owner's ancestors up to
    /// the apex exist (empty non-terminals where they own nothing), and each node counts the
    /// names one label below it. `sets` must all be at or below the apex. Returns the nodes and
    /// how many record sets they hold.
    pub(super) fn build(
        apex: &[u8],
        sets: impl IntoIterator<Item = (Box<[u8]>, Stored)>,
        size_hint: usize,
    ) -> (Self, usize) {
        let mut base = Base::with_capacity(size_hint + 1);
        base.push(apex, Node::default());
        let mut count = 0;
        for (key, set) in sets {
            let index = match base.find(&key) {
                Some(i) => i,
                None => base.push(&key, Node::default()),
            };
            count += usize::from(base.nodes[index].1.put(set));
        }
        let owners = base.nodes.len();
        let mut buffer = [0u8; 256];
        for owner in 1..owners {
            let key = base.key(owner);
            let len = key.len().min(buffer.len());
            buffer[..len].copy_from_slice(&key[..len]);
            let mut key = &buffer[..len];
            loop {
                let up = super::parent_key(key);
                if up.len() == key.len() {
                    break;
                }
                if let Some(parent) = base.find(up) {
                    base.nodes[parent].1.children += 1;
                    break;
                }
                base.push(
                    up,
                    Node {
                        sets: SmallVec::new(),
                        children: 1,
                    },
                );
                key = up;
            }
        }
        base.shrink();
        let nodes = Self {
            base: Arc::new(base),
            overlay: Overlay::default(),
        };
        (nodes, count)
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<&Node> {
        if !self.overlay.is_empty() {
            if let Some(changed) = self.overlay.get(key) {
                return changed.as_deref();
            }
        }
        self.base.get(key)
    }

    pub(super) fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`'s node.
    pub(super) fn insert(&mut self, key: &[u8], node: Node) {
        self.overlay.insert(key.into(), Some(Arc::new(node)));
    }

    /// Removes `key`'s node.
    pub(super) fn remove(&mut self, key: &[u8]) {
        if self.base.find(key).is_some() {
            self.overlay.insert(key.into(), None);
        } else {
            self.overlay.remove(key);
        }
    }

    /// Changes `key`'s node with `edit`, when it exists.
    pub(super) fn update(&mut self, key: &[u8], edit: impl FnOnce(&mut Node)) {
        if let Some(Some(node)) = self.overlay.get_mut(key) {
            edit(Arc::make_mut(node));
            return;
        }
        if let Some(node) = self.get(key) {
            let mut node = node.clone();
            edit(&mut node);
            self.insert(key, node);
        }
    }

    /// Every name and its node, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &Node)> {
        let overlay = &self.overlay;
        let unchanged = self
            .base
            .iter()
            .filter(move |(key, _)| overlay.is_empty() || !overlay.contains_key(*key));
        let changed = overlay
            .iter()
            .filter_map(|(key, node)| Some((&key[..], &**node.as_ref()?)));
        unchanged.chain(changed)
    }

    /// Every record set's owner key and type in Route 53's listing order (`order` gives a
    /// set's sort key), from `start` (a sort key) on. The base's order is sorted once per base
    /// and shared by every index built on it; `changed` is the overlay's sets in that order
    /// (sorted per index, and small). So after a change, listing a page costs the page and
    /// the overlay, not the zone.
    pub(super) fn listing<'a, K: Ord>(
        &'a self,
        changed: &'a [(Box<[u8]>, RecordType)],
        start: Option<&K>,
        order: impl Fn(&[u8], RecordType) -> K + Copy + 'a,
    ) -> impl Iterator<Item = (&'a [u8], RecordType)> + 'a {
        let base = &*self.base;
        let sorted = base.listing.get_or_init(|| {
            let mut sets: Vec<(u32, RecordType)> = (0..base.nodes.len())
                .flat_map(|i| {
                    base.nodes[i]
                        .1
                        .sets
                        .iter()
                        .map(move |s| (i as u32, s.rtype()))
                })
                .collect();
            sets.sort_by_cached_key(|&(i, rtype)| order(base.key(i as usize), rtype));
            sets
        });
        let from_base = start.map_or(0, |start| {
            sorted.partition_point(|&(i, t)| order(base.key(i as usize), t) < *start)
        });
        let from_changed = start.map_or(0, |start| {
            changed.partition_point(|(key, t)| order(key, *t) < *start)
        });
        let overlay = &self.overlay;
        let mut unchanged = sorted[from_base..]
            .iter()
            .map(move |&(i, t)| (base.key(i as usize), t))
            .filter(move |(key, _)| overlay.is_empty() || !overlay.contains_key(*key))
            .peekable();
        let mut changed = changed[from_changed..]
            .iter()
            .map(|(key, t)| (&key[..], *t))
            .peekable();
        std::iter::from_fn(move || match (unchanged.peek(), changed.peek()) {
            (Some(&(a, at)), Some(&(b, bt))) => {
                if order(a, at) <= order(b, bt) {
                    unchanged.next()
                } else {
                    changed.next()
                }
            }
            (Some(_), None) => unchanged.next(),
            (None, _) => changed.next(),
        })
    }

    /// The overlay's record sets (owner key, type) in the order `order` gives.
    pub(super) fn changed_sets<K: Ord>(
        &self,
        order: impl Fn(&[u8], RecordType) -> K,
    ) -> Vec<(Box<[u8]>, RecordType)> {
        let mut sets: Vec<(Box<[u8]>, RecordType)> = self
            .overlay
            .iter()
            .filter_map(|(key, node)| Some((key, node.as_ref()?)))
            .flat_map(|(key, node)| node.sets.iter().map(move |s| (key.clone(), s.rtype())))
            .collect();
        sets.sort_by_cached_key(|(key, rtype)| order(key, *rtype));
        sets
    }

    /// Merges the overlay into a new base once it has grown to an eighth of the base (and past
    /// a few thousand names): lookups of changed names then cost one probe again, and the
    /// merge, which costs the zone's size, comes once in many changes.
    pub(super) fn settle(&mut self) {
        if self.overlay.len() < 4096 || self.overlay.len() < self.base.nodes.len() / 8 {
            return;
        }
        let mut base = Base::with_capacity(self.base.nodes.len() + self.overlay.len());
        for (key, node) in self.iter() {
            base.push(key, node.clone());
        }
        base.shrink();
        *self = Self {
            base: Arc::new(base),
            overlay: Overlay::default(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_wire_names_are_keys() {
        assert!(is_wire_name(b"\x03www\x07example\x03com\x00"));
        assert!(is_wire_name(b"\x00"));
        assert!(!is_wire_name(b""));
        assert!(!is_wire_name(b"\x03www"), "no root label");
        assert!(
            !is_wire_name(b"\x09www\x00"),
            "a label longer than what follows"
        );
        assert!(!is_wire_name(b"\x03www\x00\x00"), "bytes after the root");
        assert!(
            !is_wire_name(&[&[64u8][..], &[b'a'; 64], &[0]].concat()),
            "a 64-byte label"
        );
    }

    /// Keeping the values as entered costs a set that has none (every zone file's) nothing:
    /// the flag sits in padding. 40 bytes on 64-bit targets, as before.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_stored_set_is_40_bytes() {
        assert_eq!(std::mem::size_of::<Stored>(), 40);
    }
}
