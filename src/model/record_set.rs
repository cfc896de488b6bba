//! Resource record sets: a name, a type, a TTL and the record data.

use std::borrow::Cow;
use std::cmp::Ordering;

use hickory_proto::rr::{Name, RData, RecordType};

/// SPF (RFC 7208 §3.1, type 99): hickory-proto 0.26 has no variant for it, so it travels as
/// `RecordType::Unknown(99)` with TXT-shaped raw RDATA.
pub const SPF: RecordType = RecordType::Unknown(99);

/// The mnemonic of a type (`SPF` for type 99, `TYPE65280` for one without a name).
pub fn type_name(rtype: RecordType) -> String {
    type_mnemonic(rtype).into_owned()
}

/// [`type_name`] without an allocation for a type that has a name: what sorts and compares
/// mnemonics (ListResourceRecordSets' order) uses.
pub fn type_mnemonic(rtype: RecordType) -> Cow<'static, str> {
    match rtype {
        SPF => Cow::Borrowed("SPF"),
        RecordType::Unknown(code) => Cow::Owned(format!("TYPE{code}")),
        other => Cow::Borrowed(other.into()),
    }
}

/// Reads a type mnemonic as Route 53 and zone files write it.
pub fn parse_type(text: &str) -> Option<RecordType> {
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "SPF" => Some(SPF),
        _ => match upper.parse::<RecordType>() {
            Ok(RecordType::Unknown(_)) | Err(_) => None,
            Ok(t) => Some(t),
        },
    }
}

/// Lower-cases and fully qualifies a name: the one form names are stored and compared in.
pub fn normalize_name(name: &Name) -> Name {
    let mut name = name.to_lowercase();
    name.set_fqdn(true);
    name
}

/// The identity of a record set inside a zone, ordered names first, compared label by label
/// from the right (DNSSEC canonical order, RFC 4034 §6.1), then by type number. (Route 53's
/// listing order differs: see `catalog::listing_key`.)
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RrKey {
    pub name: Name,
    pub rtype: RecordType,
}

impl RrKey {
    pub fn new(name: &Name, rtype: RecordType) -> Self {
        Self {
            name: normalize_name(name),
            rtype,
        }
    }
}

impl Ord for RrKey {
    fn cmp(&self, other: &Self) -> Ordering {
        // hickory's Name ordering is the canonical one (case-insensitive, rightmost label first).
        self.name
            .cmp(&other.name)
            .then_with(|| u16::from(self.rtype).cmp(&u16::from(other.rtype)))
    }
}

impl PartialOrd for RrKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Read access to a zone's current record sets, as [`plan`](super::plan) checks a batch
/// against them.
pub trait RecordSets {
    /// Borrowed where the set is kept decoded, decoded on the spot otherwise.
    fn record_set(&self, key: &RrKey) -> Option<std::borrow::Cow<'_, ResourceRecordSet>>;
}

impl RecordSets for std::collections::BTreeMap<RrKey, ResourceRecordSet> {
    fn record_set(&self, key: &RrKey) -> Option<std::borrow::Cow<'_, ResourceRecordSet>> {
        self.get(key).map(std::borrow::Cow::Borrowed)
    }
}

/// Where an Alias record points: a registered endpoint (`hosted_zone_id` is its kind's
/// endpoint zone) or another record set of the same type in the same hosted zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasTarget {
    pub hosted_zone_id: String,
    /// Normalized.
    pub dns_name: Name,
    pub evaluate_target_health: bool,
}

/// One RRset as Route 53 manages it. Names are normalized (lower case, fully qualified);
/// `records` holds no duplicates and every entry is of type `rtype`. An Alias record set has
/// `alias` and no records; its TTL is its target's at query time (`ttl` is unused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRecordSet {
    pub name: Name,
    pub rtype: RecordType,
    pub ttl: u32,
    pub records: Vec<RData>,
    /// Boxed: most record sets are not Aliases, and a million of them should not each carry
    /// room for one.
    pub alias: Option<Box<AliasTarget>>,
    /// The values as an API client entered them, one per record in `records`' order: Route 53
    /// lists a value as it was sent (`foo.example.com` stays without its dot, `2001:DB8:0::1`
    /// as written), while DNS answers from `records`. `None` for a set never entered as API
    /// text (a zone file's, a new zone's SOA and NS, an Alias), which lists in presentation
    /// form. See [`ResourceRecordSet::with_texts`].
    pub texts: Option<Box<[Box<str>]>>,
}

impl ResourceRecordSet {
    pub fn new(name: &Name, rtype: RecordType, ttl: u32, records: Vec<RData>) -> Self {
        let mut set = Self {
            name: normalize_name(name),
            rtype,
            ttl,
            records: Vec::with_capacity(records.len()),
            alias: None,
            texts: None,
        };
        for rdata in records {
            set.push(rdata);
        }
        set
    }

    /// An Alias record set.
    pub fn alias(name: &Name, rtype: RecordType, target: AliasTarget) -> Self {
        Self {
            name: normalize_name(name),
            rtype,
            ttl: 0,
            records: Vec::new(),
            alias: Some(Box::new(target)),
            texts: None,
        }
    }

    /// The set with `texts` as the values its records were entered as, one per record in
    /// order. Texts that do not pair off with the records one to one (a value repeated, which
    /// `new` dropped) are not kept: the set then lists in presentation form.
    pub fn with_texts(mut self, texts: Vec<String>) -> Self {
        self.texts = (self.alias.is_none() && texts.len() == self.records.len())
            .then(|| texts.into_iter().map(String::into_boxed_str).collect());
        self
    }

    /// Each record's value as Route 53 lists it: the text it was entered as, else the record
    /// in presentation form.
    pub fn listed_values(&self) -> impl Iterator<Item = Cow<'_, str>> + '_ {
        self.records.iter().enumerate().map(|(i, rdata)| {
            match self.texts.as_deref().and_then(|t| t.get(i)) {
                Some(text) => Cow::Borrowed(&**text),
                None => Cow::Owned(crate::zonefile::rdata_text(rdata)),
            }
        })
    }

    /// Adds a value unless an equal one is already present (an RRset is a set, RFC 2181 §5).
    /// A value added so was not entered as text: the set no longer has its values as entered.
    pub fn push(&mut self, rdata: RData) {
        if !self.records.contains(&rdata) {
            self.records.push(rdata);
            self.texts = None;
        }
    }

    pub fn key(&self) -> RrKey {
        RrKey {
            name: self.name.clone(),
            rtype: self.rtype,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn key(name: &str, rtype: RecordType) -> RrKey {
        RrKey::new(&Name::from_str(name).unwrap(), rtype)
    }

    #[test]
    fn keys_sort_label_by_label_from_the_right() {
        let mut keys = [
            key("b.example.com.", RecordType::A),
            key("example.com.", RecordType::SOA),
            key("a.b.example.com.", RecordType::A),
            key("example.com.", RecordType::NS),
            key("Z.example.com.", RecordType::A),
            key("b.example.com.", RecordType::AAAA),
        ];
        keys.sort();
        let listed: Vec<String> = keys
            .iter()
            .map(|k| format!("{} {}", k.name, k.rtype))
            .collect();
        assert_eq!(
            listed,
            [
                "example.com. NS",
                "example.com. SOA",
                "b.example.com. A",
                "b.example.com. AAAA",
                "a.b.example.com. A",
                "z.example.com. A",
            ]
        );
    }

    #[test]
    fn record_sets_drop_duplicate_values() {
        let a = RData::A("192.0.2.1".parse().unwrap());
        let set = ResourceRecordSet::new(
            &Name::from_str("WWW.example.com").unwrap(),
            RecordType::A,
            300,
            vec![a.clone(), a],
        );
        assert_eq!(set.records.len(), 1);
        assert_eq!(set.name.to_string(), "www.example.com.");
    }
}
