//! The serving snapshot: every hosted zone indexed for answering, and the answer algorithm.
//!
//! A [`Catalog`] is immutable. Writers build a new one and swap it in whole (see `service`),
//! so the DNS path reads a consistent snapshot without locks and never touches storage. The
//! answer algorithm follows RFC 1034 §4.3.2, with wildcards per RFC 4592 and negative answers
//! per RFC 2308; it decides *what* to answer, and `dns` decides how it goes on the wire.
//!
//! Every lookup is a handful of hash probes: finding the zone walks the query name toward the
//! root, and inside a zone empty non-terminals are indexed as nodes, so the closest encloser
//! of a missing name (for NXDOMAIN and wildcards) costs what a positive lookup does.

use std::borrow::Cow;
// FxHash, not SipHash: the keys are names from our own zones and the hot path hashes a few
// per query (the standard hasher showed up at ~7% of the instructions in callgrind).
use rustc_hash::FxHashMap as HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

use crate::model::{
    reversed_name, type_mnemonic, Endpoint, EndpointZones, HostedZone, RecordSets,
    ResourceRecordSet, RrKey, Vpc, WireName,
};

/// A CNAME chain longer than this is cut short. No RFC sets a figure, and servers differ:
/// Knot 3.2 answers at most 5 CNAMEs, NSD 4.6 follows a chain of 40 to its end.
const MAX_CNAME_CHAIN: usize = 16;
/// An Alias that targets an Alias that targets ... is followed this deep at most.
const MAX_ALIAS_DEPTH: usize = 8;

/// The number of labels in `name`, a leading `*` included. hickory's `Name::num_labels`
/// leaves a leading `*` out (it counts as RRSIG's Labels field does), while `Name::trim_to`
/// counts every label; walking names with the one and cutting them with the other skips the
/// parent of every wildcard owner.
fn label_count(name: &Name) -> usize {
    name.iter().len()
}

mod nodes;
mod order;

use nodes::{Nodes, Stored};

/// One RRset as answers carry it. An Alias RRset has `alias` and no records: what it answers
/// is computed at query time from its target.
pub type Rrset = ResourceRecordSet;

/// Route 53's listing order (ListResourceRecordSets: "sorts results first by DNS name with the
/// labels reversed, for example: com.example.www. ... When multiple records have the same DNS
/// name, ListResourceRecordSets sorts results by the record type", in ASCII order): the name
/// as [`reversed_name`] spells it, then the type's mnemonic. Type 0 (a start with no type)
/// sorts before every type.
fn listing_key(key: &[u8], rtype: RecordType) -> (Vec<u8>, Cow<'static, str>) {
    let mnemonic = if u16::from(rtype) == 0 {
        Cow::Borrowed("")
    } else {
        type_mnemonic(rtype)
    };
    (reversed_name(key), mnemonic)
}

/// The key of `name` (see [`WireName`]), or of the root for a name too long to exist.
fn key_of(name: &Name) -> Box<[u8]> {
    WireName::new(name).map_or_else(|| Box::new([0u8]) as Box<[u8]>, |w| w.key().into())
}

/// The key one label up; the root's parent is the root.
fn parent_key(key: &[u8]) -> &[u8] {
    match key.first() {
        Some(&len) if len > 0 => &key[1 + len as usize..],
        _ => key,
    }
}

/// `*.` and the key of `encloser`: where a wildcard for names below `encloser` lives.
fn wildcard_key<'b>(encloser: &[u8], out: &'b mut [u8; 258]) -> &'b [u8] {
    out[0] = 1;
    out[1] = b'*';
    out[2..2 + encloser.len()].copy_from_slice(encloser);
    &out[..2 + encloser.len()]
}

/// Whether the name whose key is `key` is at or below the one whose key is `apex`.
fn key_within(key: &[u8], apex: &[u8]) -> bool {
    let mut key = key;
    loop {
        if key == apex {
            return true;
        }
        let up = parent_key(key);
        if up.len() == key.len() {
            return false;
        }
        key = up;
    }
}

/// One hosted zone, indexed by owner name: the only in-memory copy of its record sets, which
/// DNS answers from and the service checks changes against and lists (see [`nodes`] for how
/// it is kept compact).
#[derive(Debug)]
pub struct ZoneIndex {
    pub zone: HostedZone,
    nodes: Nodes,
    /// Record sets held.
    count: usize,
    /// The record sets changed since the base was built (owner key and type) in Route 53's
    /// listing order, sorted when first asked for (only the API lists; DNS never needs the
    /// order). The base's own order is kept with the base.
    listing: OnceLock<Vec<(Box<[u8]>, RecordType)>>,
    /// The SOA as negative answers carry it, built once (see [`ZoneIndex::build`]).
    negative_soa: Option<Rrset>,
    apex_labels: usize,
}

impl ZoneIndex {
    pub fn build(
        zone: HostedZone,
        rrsets: impl IntoIterator<Item = Arc<ResourceRecordSet>>,
    ) -> Self {
        let apex = key_of(&zone.name);
        let sets = rrsets.into_iter().filter_map(|set| {
            if !zone.name.zone_of(&set.name) {
                return None;
            }
            // Packing fails only for records over 64 KiB, which no change or zone file lets in.
            let stored = Stored::pack(&set).ok()?;
            Some((key_of(&set.name), stored))
        });
        let (nodes, count) = Nodes::build(&apex, sets, 0);
        Self::with_nodes(zone, nodes, count)
    }

    /// An index of record sets as the store keeps them (most are kept in that form).
    pub fn from_encoded(
        zone: HostedZone,
        rrsets: &crate::store::EncodedSets,
    ) -> Result<Self, crate::store::StoreError> {
        let apex = key_of(&zone.name);
        let mut sets = Vec::with_capacity(rrsets.len());
        for value in rrsets.iter() {
            let (key, stored) = Stored::from_value(value)?;
            if key_within(&key, &apex) {
                sets.push((key, stored));
            }
        }
        let hint = sets.len();
        let (nodes, count) = Nodes::build(&apex, sets, hint);
        Ok(Self::with_nodes(zone, nodes, count))
    }

    fn with_nodes(zone: HostedZone, nodes: Nodes, count: usize) -> Self {
        let mut index = Self {
            apex_labels: label_count(&zone.name),
            nodes,
            count,
            listing: OnceLock::new(),
            negative_soa: None,
            zone,
        };
        index.refresh_soa();
        index
    }

    /// Every record set in the store's encoded form (the start-up snapshot).
    pub fn encoded(&self) -> Result<crate::store::EncodedSets, crate::store::StoreError> {
        let mut out = crate::store::EncodedSets::default();
        for (key, node) in self.nodes.iter() {
            for set in &node.sets {
                out.push(&set.to_value(key)?);
            }
        }
        Ok(out)
    }

    /// A new index with `delete` removed and `put` added or replaced; shares what is unchanged.
    pub fn patch(&self, delete: &[crate::model::RrKey], put: &[Arc<ResourceRecordSet>]) -> Self {
        let mut index = self.with_zone(self.zone.clone());
        for key in delete {
            index.remove(&key.name, key.rtype);
        }
        for set in put {
            index.put(set);
        }
        index.nodes.settle();
        index.refresh_soa();
        index
    }

    /// The same records under new zone metadata (a VPC association changed).
    pub fn with_zone(&self, zone: HostedZone) -> Self {
        Self {
            zone,
            nodes: self.nodes.clone(),
            count: self.count,
            listing: OnceLock::new(),
            negative_soa: self.negative_soa.clone(),
            apex_labels: self.apex_labels,
        }
    }

    /// How many record sets the zone holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The record set `key`, if the zone holds it.
    pub fn get(&self, key: &RrKey) -> Option<Arc<ResourceRecordSet>> {
        let wire = WireName::new(&key.name)?;
        let set = self.nodes.get(wire.key())?.get(key.rtype)?;
        Some(set.listed(wire.key()))
    }

    /// Every record set, in no particular order.
    pub fn values(&self) -> impl Iterator<Item = Arc<ResourceRecordSet>> + '_ {
        self.nodes
            .iter()
            .flat_map(|(key, node)| node.sets.iter().map(move |set| set.listed(key)))
    }

    /// Every record set in Route 53's listing order (names with their labels reversed, as
    /// ASCII, then types by mnemonic: see [`listing_key`]), from `start` on when given.
    pub fn listing(
        &self,
        start: Option<&RrKey>,
    ) -> impl Iterator<Item = Arc<ResourceRecordSet>> + '_ {
        // Sorted by a byte key made once per set: comparing hickory `Name`s a million times
        // over took seconds.
        let changed = self
            .listing
            .get_or_init(|| self.nodes.changed_sets(listing_key));
        let start = start.map(|start| listing_key(&key_of(&start.name), start.rtype));
        self.nodes
            .listing(changed, start.as_ref(), listing_key)
            .filter_map(|(key, rtype)| Some(self.nodes.get(key)?.get(rtype)?.listed(key)))
    }

    fn refresh_soa(&mut self) {
        let apex = key_of(self.apex());
        self.negative_soa = self
            .nodes
            .get(&apex)
            .and_then(|n| n.get(RecordType::SOA))
            .map(|soa| negative_soa(&soa.view(&apex)));
    }

    /// Makes `key` a node, with every ancestor up to the apex: they are empty non-terminals
    /// unless they own records themselves (RFC 4592 §2.2.2).
    fn ensure(&mut self, key: &[u8]) {
        if self.nodes.contains(key) {
            return;
        }
        let up = parent_key(key);
        if up.len() == key.len() {
            return; // the root, outside every zone but the root zone's, whose apex exists
        }
        self.ensure(up);
        self.nodes.update(up, |p| p.children += 1);
        self.nodes.insert(key, nodes::Node::default());
    }

    fn put(&mut self, set: &Arc<ResourceRecordSet>) {
        if !self.apex().zone_of(&set.name) {
            return;
        }
        let Ok(stored) = Stored::pack(set) else {
            return; // records over 64 KiB, which no change lets in
        };
        let key = key_of(&set.name);
        self.ensure(&key);
        let mut added = false;
        self.nodes.update(&key, |node| added = node.put(stored));
        self.count += usize::from(added);
    }

    /// Removes an RRset, then the name and any ancestor left with nothing (no RRsets and no
    /// names below): those no longer exist, and answer NXDOMAIN again.
    fn remove(&mut self, name: &Name, rtype: RecordType) {
        let key = key_of(name);
        let Some(node) = self.nodes.get(&key) else {
            return;
        };
        if node.get(rtype).is_none() {
            return;
        }
        self.nodes
            .update(&key, |node| node.sets.retain(|s| s.rtype() != rtype));
        self.count -= 1;
        let apex = key_of(self.apex());
        let mut key: &[u8] = &key;
        while key != &apex[..] {
            match self.nodes.get(key) {
                Some(node) if node.sets.is_empty() && node.children == 0 => {}
                _ => break,
            }
            self.nodes.remove(key);
            let up = parent_key(key);
            self.nodes
                .update(up, |p| p.children = p.children.saturating_sub(1));
            if up.len() == key.len() {
                break;
            }
            key = up;
        }
    }

    pub fn apex(&self) -> &Name {
        &self.zone.name
    }

    /// The record set `rtype` at `name`, if this zone holds one.
    fn set_at(&self, name: &Name, rtype: RecordType) -> Option<Cow<'_, Rrset>> {
        let wire = WireName::new(name)?;
        let key = wire.key();
        Some(self.nodes.get(key)?.get(rtype)?.view(key))
    }

    /// Looks `name` up inside this zone (`name` is at or below the apex).
    fn lookup(&self, name: &Name, qtype: RecordType) -> Lookup<'_> {
        let Some(wire) = WireName::new(name) else {
            return Lookup::NxDomain;
        };
        let labels = wire.labels();
        // Walk down from just below the apex; stop at a zone cut (a referral) or at the first
        // name that does not exist (everything below it is missing too, since ancestors of
        // every owner are indexed).
        let mut encloser = self.apex_labels;
        for depth in self.apex_labels + 1..=labels {
            let key = wire.ancestor(depth);
            let Some(node) = self.nodes.get(key) else {
                return self.missing(wire.ancestor(encloser), qtype);
            };
            if let Some(ns) = node.get(RecordType::NS) {
                // RFC 4035 §3.1.4.1: DS lives on the parent side of the cut.
                let ds_at_cut = depth == labels && qtype == RecordType::DS;
                if !ds_at_cut {
                    return Lookup::Referral { ns: ns.view(key) };
                }
            }
            encloser = depth;
        }
        match self.nodes.get(wire.key()) {
            Some(node) => Self::from_node(node, wire.key(), qtype),
            None => self.missing(wire.ancestor(encloser), qtype),
        }
    }

    fn from_node<'z>(node: &'z nodes::Node, key: &[u8], qtype: RecordType) -> Lookup<'z> {
        if qtype == RecordType::ANY {
            // RFC 8482 §4.2: answer with one RRset the name owns. One with records of its own
            // comes first: an Alias may have nothing to answer at the moment (its endpoint
            // gone), and NODATA would say the name owns nothing at all.
            let own = node.sets.iter().find(|s| !matches!(s, Stored::Alias(_)));
            return match own.or(node.sets.first()) {
                Some(set) => Lookup::Found { set: set.view(key) },
                None => Lookup::NoData,
            };
        }
        if let Some(set) = node.get(qtype) {
            return Lookup::Found { set: set.view(key) };
        }
        // RRSIG and NSEC may live beside a CNAME (RFC 2181 §10.1 as updated by RFC 4035
        // §2.5), so a question for them is the owner's own, like one for the CNAME: NODATA
        // here, as Knot answers, not the target's.
        if matches!(qtype, RecordType::RRSIG | RecordType::NSEC) {
            return Lookup::NoData;
        }
        if let Some(set) = node.get(RecordType::CNAME) {
            return Lookup::Cname { set: set.view(key) };
        }
        Lookup::NoData
    }

    /// The name does not exist: a wildcard at the closest encloser answers for it, if there is
    /// one (RFC 4592 §3.3.1), otherwise NXDOMAIN.
    fn missing(&self, encloser: &[u8], qtype: RecordType) -> Lookup<'_> {
        let mut buffer = [0u8; 258];
        let key = wildcard_key(encloser, &mut buffer);
        match self.nodes.get(key) {
            Some(node) => Self::from_node(node, key, qtype),
            None => Lookup::NxDomain,
        }
    }

    /// Address records of `target`, and its RRset of type `also` if given, when it is in this
    /// zone (glue included), and whether they are a wildcard's, answering for `target` by
    /// synthesis.
    ///
    /// A target that does not exist takes the addresses of the wildcard at its closest
    /// encloser (RFC 4592 §3.3.1), found as for an answer but without regard to zone cuts, as
    /// glue is: Knot and NSD give a referral to `x.wild` the addresses `*.wild` synthesizes
    /// (and Knot, other targets as well), and a resolver that is told nothing of them has to
    /// ask. Only a missing target pays for the walk.
    fn additional(&self, target: &Name, also: Option<RecordType>) -> (Vec<Cow<'_, Rrset>>, bool) {
        let Some(wire) = WireName::new(target) else {
            return (Vec::new(), false);
        };
        if let Some(node) = self.nodes.get(wire.key()) {
            return (sets_for_additional(node, wire.key(), also), false);
        }
        if wire.labels() <= self.apex_labels || !self.apex().zone_of(target) {
            return (Vec::new(), false);
        }
        let Some(encloser) = (self.apex_labels..wire.labels())
            .rev()
            .map(|depth| wire.ancestor(depth))
            .find(|key| self.nodes.contains(key))
        else {
            return (Vec::new(), false);
        };
        let mut buffer = [0u8; 258];
        let key = wildcard_key(encloser, &mut buffer);
        match self.nodes.get(key) {
            Some(node) => (sets_for_additional(node, key, also), true),
            None => (Vec::new(), false),
        }
    }
}

/// The address RRsets of `node`, and its RRset of type `also` if given.
fn sets_for_additional<'z>(
    node: &'z nodes::Node,
    key: &[u8],
    also: Option<RecordType>,
) -> Vec<Cow<'z, Rrset>> {
    node.sets
        .iter()
        .filter(|s| {
            let rtype = s.rtype();
            matches!(rtype, RecordType::A | RecordType::AAAA) || Some(rtype) == also
        })
        .map(|s| s.view(key))
        .collect()
}

impl RecordSets for ZoneIndex {
    fn record_set(&self, key: &RrKey) -> Option<Cow<'_, ResourceRecordSet>> {
        self.set_at(&key.name, key.rtype)
    }
}

enum Lookup<'z> {
    Found {
        set: Cow<'z, Rrset>,
    },
    Cname {
        set: Cow<'z, Rrset>,
    },
    NoData,
    NxDomain,
    /// The NS set at the zone cut (its owner is the cut).
    Referral {
        ns: Cow<'z, Rrset>,
    },
}

/// An owner name and the RRset it owns in a response.
#[derive(Debug, Clone)]
pub struct Section<'a> {
    pub owner: Cow<'a, Name>,
    pub rrset: Cow<'a, Rrset>,
}

/// What to answer; `dns` turns it into a message.
#[derive(Debug)]
pub struct Answer<'a> {
    pub rcode: ResponseCode,
    pub authoritative: bool,
    pub answers: Vec<Section<'a>>,
    pub authorities: Vec<Section<'a>>,
    pub additionals: Vec<Section<'a>>,
    /// For a referral, the zone cut: additional records at or below it are in-domain glue,
    /// which a referral must carry whole (RFC 9471: a server "MUST include all available
    /// in-domain glue records" or set TC); other additional records that do not fit are left
    /// out without TC.
    pub glue_cut: Option<Name>,
    /// The answer depends on the moment, not only on the snapshot (an Alias to an endpoint
    /// whose lease runs out by the clock): it must not be reused from a response cache.
    pub volatile: bool,
}

impl Answer<'_> {
    pub fn new(rcode: ResponseCode, authoritative: bool) -> Self {
        Self {
            volatile: false,
            rcode,
            authoritative,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            glue_cut: None,
        }
    }
}

/// Registered endpoints as the DNS path sees them: the Alias targets that are not record
/// sets, and the zones under which they answer by their own names.
#[derive(Debug)]
pub struct Endpoints {
    by_name: HashMap<Name, Endpoint>,
    /// The SOA of both endpoint zones' negative answers, built once.
    soas: [(Name, Rrset); 2],
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::new(EndpointZones::default(), [])
    }
}

impl Endpoints {
    pub fn new(zones: EndpointZones, endpoints: impl IntoIterator<Item = Endpoint>) -> Self {
        let soa = |apex: &Name| {
            let soa = Name::from_ascii("ns")
                .and_then(|ns| ns.append_domain(apex))
                .unwrap_or_else(|_| apex.clone());
            let rname = Name::from_ascii("hostmaster")
                .and_then(|h| h.append_domain(apex))
                .unwrap_or_else(|_| apex.clone());
            // A short negative TTL: a name that is not registered yet soon can be.
            let data = hickory_proto::rr::rdata::SOA::new(soa, rname, 1, 60, 60, 86400, 5);
            (
                apex.clone(),
                Rrset::new(apex, RecordType::SOA, 5, vec![RData::SOA(data)]),
            )
        };
        let soas = [soa(&zones.load_balancers), soa(&zones.databases)];
        Self {
            by_name: endpoints
                .into_iter()
                .map(|mut e| {
                    // Answers send an endpoint's addresses in canonical order, as the zones'
                    // records (see `order`); an address's octets compare as the number does.
                    e.addresses.sort_by_key(|a| a.address);
                    (e.dns_name.clone(), e)
                })
                .collect(),
            soas,
        }
    }

    /// The endpoint `name`, if it is registered and its lease has not run out.
    fn live(&self, name: &Name) -> Option<&Endpoint> {
        self.by_name
            .get(name)
            .filter(|e| e.is_live(std::time::SystemTime::now()))
    }

    /// The endpoint zone `name` is in (apex and SOA), if any.
    fn zone_of(&self, name: &Name) -> Option<&(Name, Rrset)> {
        self.soas.iter().find(|(apex, _)| apex.zone_of(name))
    }

    /// The answer for `rtype` from an endpoint: its healthy addresses of that family (all of
    /// them when none is healthy) with its TTL; `None` when it has none of that family.
    fn rrset(endpoint: &Endpoint, rtype: RecordType) -> Option<Rrset> {
        let records: Vec<RData> = endpoint
            .answer_addresses(rtype)
            .into_iter()
            .map(|ip| match ip {
                std::net::IpAddr::V4(v4) => RData::A(v4.into()),
                std::net::IpAddr::V6(v6) => RData::AAAA(v6.into()),
            })
            .collect();
        (!records.is_empty()).then(|| Rrset::new(&endpoint.dns_name, rtype, endpoint.ttl, records))
    }
}

/// The private zones of one name, each with the VPCs (indexes into `Catalog::vpcs`) that see it.
type PrivateZones = Vec<(Arc<ZoneIndex>, Vec<usize>)>;

/// Which VPCs a client is in: what it may see of the private zones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct View(Vec<usize>);

impl View {
    /// Outside every VPC: public zones only.
    pub fn public() -> Self {
        Self(Vec::new())
    }

    pub fn is_public(&self) -> bool {
        self.0.is_empty()
    }

    /// The VPCs, as indexes into the catalog's list, in ascending order.
    pub fn vpc_indexes(&self) -> &[usize] {
        &self.0
    }

    fn sees(&self, vpcs: &[usize]) -> bool {
        vpcs.iter().any(|v| self.0.contains(v))
    }
}

/// Every served zone (public by apex name; private by apex name with their VPCs), the VPCs,
/// and the endpoint registry.
#[derive(Debug, Default, Clone)]
pub struct Catalog {
    /// Which publication this is, unique in the process (several servers may run in one
    /// process, as in tests); a response cache filled from another one is stale.
    pub generation: u64,
    zones: HashMap<Name, Arc<ZoneIndex>>,
    private: HashMap<Name, PrivateZones>,
    vpcs: Arc<Vec<Vpc>>,
    endpoints: Arc<Endpoints>,
}

impl Catalog {
    /// `zones` holds public and private zones alike; a private zone is seen from the VPCs
    /// it is associated with (by id, among `vpcs`).
    pub fn new(
        zones: impl IntoIterator<Item = Arc<ZoneIndex>>,
        vpcs: Arc<Vec<Vpc>>,
        endpoints: Arc<Endpoints>,
    ) -> Self {
        let mut public = HashMap::default();
        let mut private: HashMap<Name, PrivateZones> = HashMap::default();
        for zone in zones {
            if zone.zone.private {
                let seen_from: Vec<usize> = zone
                    .zone
                    .vpcs
                    .iter()
                    .filter_map(|a| vpcs.iter().position(|v| v.id == a.vpc_id))
                    .collect();
                private
                    .entry(zone.apex().clone())
                    .or_default()
                    .push((zone, seen_from));
            } else {
                public.insert(zone.apex().clone(), zone);
            }
        }
        Self {
            generation: next_generation(),
            zones: public,
            private,
            vpcs,
            endpoints,
        }
    }

    /// The VPCs `client` is in.
    pub fn view(&self, client: IpAddr) -> View {
        View(
            self.vpcs
                .iter()
                .enumerate()
                .filter(|(_, v)| v.contains(client))
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// Whether `client` is in any VPC.
    pub fn in_any_vpc(&self, client: IpAddr) -> bool {
        self.vpcs.iter().any(|v| v.contains(client))
    }

    /// The most specific zone containing `name` that `view` sees. At one name a private zone
    /// the view sees shadows a public one (Route 53's rule for private hosted zones).
    pub fn find_zone(&self, name: &Name, view: &View) -> Option<&ZoneIndex> {
        (0..=label_count(name)).rev().find_map(|labels| {
            let ancestor = name.trim_to(labels);
            if !view.is_public() {
                if let Some(list) = self.private.get(&ancestor) {
                    if let Some((zone, _)) = list.iter().find(|(_, vpcs)| view.sees(vpcs)) {
                        return Some(zone.as_ref());
                    }
                }
            }
            self.zones.get(&ancestor).map(Arc::as_ref)
        })
    }

    /// Whether `name` is in a zone r53 answers for from some view: a public zone, a private
    /// zone of any VPC, or an endpoint zone.
    pub fn serves(&self, name: &Name) -> bool {
        self.endpoints.zone_of(name).is_some()
            || (0..=label_count(name)).rev().any(|labels| {
                let ancestor = name.trim_to(labels);
                self.zones.contains_key(&ancestor) || self.private.contains_key(&ancestor)
            })
    }

    /// The zone that answers `qtype` at `name`: a DS query for a zone apex belongs to the
    /// parent zone when r53 serves that too (RFC 4035 §3.1.4.1).
    fn zone_for_query(&self, name: &Name, qtype: RecordType, view: &View) -> Option<&ZoneIndex> {
        let zone = self.find_zone(name, view)?;
        if qtype == RecordType::DS && zone.apex() == name && !name.is_root() {
            if let Some(parent) = self.find_zone(&name.base_name(), view) {
                return Some(parent);
            }
        }
        Some(zone)
    }

    /// Answers a query for `qname`/`qtype` (class IN).
    pub fn answer<'a>(&'a self, qname: &'a Name, qtype: RecordType, view: &View) -> Answer<'a> {
        let hosted = self.zone_for_query(qname, qtype, view);
        if let Some(endpoint_zone) = self.endpoints.zone_of(qname) {
            // The more specific of an endpoint zone and a hosted zone answers.
            if hosted.is_none_or(|z| label_count(z.apex()) <= label_count(&endpoint_zone.0)) {
                return self.answer_endpoint(qname, qtype, endpoint_zone);
            }
        }
        let Some(mut zone) = hosted else {
            // RFC 1034 §4.3.2 step 2 has no case for a name outside every zone served; an
            // authoritative-only server refuses it.
            return Answer::new(ResponseCode::Refused, false);
        };
        let mut answer = Answer::new(ResponseCode::NoError, true);
        let mut name: Cow<'a, Name> = Cow::Borrowed(qname);
        let mut visited: Vec<Name> = Vec::new();
        loop {
            match zone.lookup(&name, qtype) {
                Lookup::Found { set } => {
                    let Some(set) = self.resolve(zone, set, 0, &mut answer.volatile) else {
                        // An Alias whose target has nothing of this type: NODATA.
                        push_negative_soa(&mut answer, zone);
                        return answer;
                    };
                    let targets: Vec<Name> = set
                        .records
                        .iter()
                        .filter_map(additional_target)
                        .cloned()
                        .collect();
                    // RFC 9460 §4.1: "authoritative DNS servers SHOULD return A, AAAA, and
                    // SVCB records in the Additional section for any TargetNames that are in
                    // the zone" (of the type asked, SVCB or HTTPS, as Knot returns them).
                    let also = matches!(set.rtype, RecordType::SVCB | RecordType::HTTPS)
                        .then_some(set.rtype);
                    answer.answers.push(Section {
                        owner: name,
                        rrset: set,
                    });
                    for target in &targets {
                        add_additional(&mut answer, zone, target, also);
                    }
                    return answer;
                }
                Lookup::Cname { set } => {
                    let Some(set) = self.resolve(zone, set, 0, &mut answer.volatile) else {
                        push_negative_soa(&mut answer, zone);
                        return answer;
                    };
                    let target = match set.records.first() {
                        Some(RData::CNAME(c)) => c.0.clone(),
                        _ => return answer,
                    };
                    visited.push(name.as_ref().clone());
                    answer.answers.push(Section {
                        owner: name,
                        rrset: set,
                    });
                    // A loop, an overlong chain or a target outside r53's zones ends the
                    // chain here; the resolver completes it (RFC 1034 §3.6.2).
                    if visited.len() >= MAX_CNAME_CHAIN || visited.contains(&target) {
                        return answer;
                    }
                    // The target is looked up as the question was: a DS at a zone apex is
                    // the parent's (RFC 4035 §3.1.4.1), whichever zone the chain came from.
                    match self.zone_for_query(&target, qtype, view) {
                        Some(next) => zone = next,
                        None => return answer,
                    }
                    name = Cow::Owned(target);
                }
                Lookup::NoData => {
                    push_negative_soa(&mut answer, zone);
                    return answer;
                }
                Lookup::NxDomain => {
                    // RFC 6604 §2.1: the RCODE describes the last name in a CNAME chain.
                    answer.rcode = ResponseCode::NXDomain;
                    push_negative_soa(&mut answer, zone);
                    return answer;
                }
                Lookup::Referral { ns } => {
                    // RFC 1034 §4.3.2 step 3b: a referral is not authoritative, unless a CNAME
                    // from our own data led here.
                    if answer.answers.is_empty() {
                        answer.authoritative = false;
                    }
                    let cut = ns.name.clone();
                    let targets: Vec<Name> = ns
                        .records
                        .iter()
                        .filter_map(additional_target)
                        .cloned()
                        .collect();
                    answer.authorities.push(Section {
                        owner: Cow::Owned(cut.clone()),
                        rrset: ns,
                    });
                    // In-domain glue first, then the rest (sibling glue, addresses from
                    // elsewhere in the zone): RFC 9471 §3 has a referral carry all in-domain
                    // glue or set TC, and §3.2 lets sibling glue that does not fit go without
                    // TC. In the NS records' order, sibling glue could take the room that
                    // in-domain glue needed and set TC on a referral that fits whole.
                    for in_domain in [true, false] {
                        for target in targets.iter().filter(|t| cut.zone_of(t) == in_domain) {
                            add_additional(&mut answer, zone, target, None);
                        }
                    }
                    answer.glue_cut = Some(cut);
                    return answer;
                }
            }
        }
    }

    /// Whether the record set `name`/`rtype` of the zone that answers for `name` is healthy,
    /// as Route 53's EvaluateTargetHealth defines it (what routing policies choose by): a
    /// record set that is not an Alias, or an Alias without EvaluateTargetHealth, is healthy;
    /// an Alias with it is healthy when its target is: a live endpoint with at least one
    /// healthy address, or a target record set that exists and is healthy itself.
    pub fn is_healthy(&self, name: &Name, rtype: RecordType, view: &View) -> bool {
        let Some(zone) = self.find_zone(name, view) else {
            return false;
        };
        match zone.set_at(name, rtype) {
            Some(set) => self.set_healthy(zone, &set, 0),
            None => false,
        }
    }

    fn set_healthy(&self, zone: &ZoneIndex, set: &Rrset, depth: usize) -> bool {
        let Some(alias) = &set.alias else {
            return true;
        };
        if !alias.evaluate_target_health {
            return true;
        }
        if depth >= MAX_ALIAS_DEPTH {
            return false;
        }
        if let Some(kind) = EndpointZones::kind_of_zone(&alias.hosted_zone_id) {
            return self
                .endpoints
                .live(&alias.dns_name)
                .is_some_and(|e| e.kind == kind && e.is_healthy());
        }
        zone.set_at(&alias.dns_name, set.rtype)
            .is_some_and(|target| self.set_healthy(zone, &target, depth + 1))
    }

    /// What an RRset answers: itself, or for an Alias what its target holds at this moment
    /// (the endpoint's healthy addresses with the endpoint's TTL, or the target record set in
    /// the same zone with its TTL). `None` when the target is gone or has nothing of the type.
    /// Sets `volatile` when the answer consulted an endpoint, whose lease runs out by the clock;
    /// a record set of the zone changes only with the catalog, so an Alias to one is answered
    /// from the response cache like any record.
    fn resolve<'a>(
        &'a self,
        zone: &'a ZoneIndex,
        set: Cow<'a, Rrset>,
        depth: usize,
        volatile: &mut bool,
    ) -> Option<Cow<'a, Rrset>> {
        let Some(alias) = &set.alias else {
            return Some(set);
        };
        if depth >= MAX_ALIAS_DEPTH {
            return None;
        }
        if let Some(kind) = EndpointZones::kind_of_zone(&alias.hosted_zone_id) {
            *volatile = true;
            let endpoint = self
                .endpoints
                .live(&alias.dns_name)
                .filter(|e| e.kind == kind)?;
            return Endpoints::rrset(endpoint, set.rtype).map(Cow::Owned);
        }
        if alias.hosted_zone_id.trim_start_matches("/hostedzone/") != zone.zone.id.as_str() {
            return None;
        }
        let target = zone.set_at(&alias.dns_name, set.rtype)?;
        self.resolve(zone, target, depth + 1, volatile)
    }

    /// An answer from an endpoint zone: the endpoint's addresses at its own name, NODATA for
    /// other types, NXDOMAIN for names that are not registered (or whose lease ran out).
    fn answer_endpoint<'a>(
        &'a self,
        qname: &'a Name,
        qtype: RecordType,
        zone: &'a (Name, Rrset),
    ) -> Answer<'a> {
        let mut answer = Answer::new(ResponseCode::NoError, true);
        answer.volatile = true;
        let (apex, soa) = zone;
        if qname == apex && matches!(qtype, RecordType::SOA | RecordType::ANY) {
            answer.answers.push(Section {
                owner: Cow::Borrowed(qname),
                rrset: Cow::Borrowed(soa),
            });
            return answer;
        }
        match self.endpoints.live(qname) {
            Some(endpoint) => {
                let rtype = if qtype == RecordType::ANY {
                    RecordType::A
                } else {
                    qtype
                };
                if let Some(set) = Endpoints::rrset(endpoint, rtype) {
                    answer.answers.push(Section {
                        owner: Cow::Borrowed(qname),
                        rrset: Cow::Owned(set),
                    });
                    return answer;
                }
            }
            // The apex exists (NODATA); other names that are not registered do not.
            None if qname != apex => answer.rcode = ResponseCode::NXDomain,
            None => {}
        }
        answer.authorities.push(Section {
            owner: Cow::Borrowed(apex),
            rrset: Cow::Borrowed(soa),
        });
        answer
    }
}

/// The SOA as a negative answer carries it: RFC 2308 §3, "the TTL of this record is set from
/// the minimum of the MINIMUM field of the SOA record and the TTL of the SOA itself".
fn negative_soa(soa: &Rrset) -> Rrset {
    let minimum = match soa.records.first() {
        Some(RData::SOA(s)) => s.minimum,
        _ => soa.ttl,
    };
    Rrset {
        ttl: soa.ttl.min(minimum),
        ..soa.clone()
    }
}

fn push_negative_soa<'a>(answer: &mut Answer<'a>, zone: &'a ZoneIndex) {
    if let Some(soa) = &zone.negative_soa {
        answer.authorities.push(Section {
            owner: Cow::Borrowed(zone.apex()),
            rrset: Cow::Borrowed(soa),
        });
    }
}

/// The name whose addresses belong in the additional section: RFC 1035 §3.3.9 (MX) and
/// §3.3.11 (NS), RFC 2782 (SRV), and RFC 9460 §4.1 for SVCB and HTTPS (with the target's own
/// SVCB or HTTPS RRset). A TargetName of "." names no host to add (RFC 9460 §2.5), and the
/// root has no addresses in any zone.
fn additional_target(rdata: &RData) -> Option<&Name> {
    let target = match rdata {
        RData::NS(ns) => &ns.0,
        RData::MX(mx) => &mx.exchange,
        RData::SRV(srv) => &srv.target,
        RData::SVCB(svcb) => &svcb.target_name,
        RData::HTTPS(https) => &https.0.target_name,
        _ => return None,
    };
    (!target.is_root()).then_some(target)
}

/// Adds to the additional section the address RRsets of `target`, and its RRset of type
/// `also` if given, unless a section already holds them.
fn add_additional<'a>(
    answer: &mut Answer<'a>,
    zone: &'a ZoneIndex,
    target: &Name,
    also: Option<RecordType>,
) {
    let (sets, synthesized) = zone.additional(target, also);
    for set in sets {
        // A wildcard's records answer for the target (RFC 4592 §3.3.1), as in the answer.
        let owner = if synthesized { target } else { &set.name };
        let dup = |s: &Section<'_>| s.owner.as_ref() == owner && s.rrset.rtype == set.rtype;
        if answer.additionals.iter().any(dup) || answer.answers.iter().any(dup) {
            continue;
        }
        answer.additionals.push(Section {
            owner: Cow::Owned(owner.clone()),
            rrset: set,
        });
    }
}

/// A number no catalog in this process has had before.
fn next_generation() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The catalog as the DNS path sees it: a pointer swapped whole by writers.
pub type SharedCatalog = Arc<arc_swap::ArcSwap<Catalog>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(zones: &[(&str, &str)]) -> Catalog {
        Catalog::new(
            zones.iter().map(|(apex, text)| {
                let apex = Name::from_ascii(apex).expect("apex");
                let parsed = crate::zonefile::parse(text, &apex, "test").expect("zone parses");
                Arc::new(ZoneIndex::build(
                    HostedZone::new(&apex, "test", None),
                    parsed.rrsets.into_iter().map(Arc::new),
                ))
            }),
            Arc::default(),
            Arc::default(),
        )
    }

    const ZONE: &str = "$ORIGIN example.com.\n$TTL 3600\n\
        @ SOA ns hostmaster 1 7200 3600 1209600 300\n\
        @ NS ns\n\
        ns A 192.0.2.53\n\
        *.only A 192.0.2.1\n\
        svc SVCB 1 ns\n\
        deleg NS ns.deleg\n\
        ns.deleg A 192.0.2.2\n";

    fn lines(sections: &[Section<'_>]) -> Vec<String> {
        sections
            .iter()
            .flat_map(|s| {
                s.rrset
                    .records
                    .iter()
                    .map(move |r| format!("{} {} {r}", s.owner, s.rrset.ttl))
            })
            .collect()
    }

    fn ask<'a>(c: &'a Catalog, name: &'a Name, qtype: RecordType) -> Answer<'a> {
        c.answer(name, qtype, &View::public())
    }

    /// What an index holds, comparable: every node with its RRsets and child count.
    fn shape(index: &ZoneIndex) -> Vec<String> {
        let mut out: Vec<String> = index
            .nodes
            .iter()
            .map(|(key, node)| {
                let sets: Vec<String> = node
                    .sets
                    .iter()
                    .map(|s| {
                        let s = s.view(key);
                        format!("{} {} {:?}", s.rtype, s.ttl, s.records)
                    })
                    .collect();
                format!("{key:?} children={} {sets:?}", node.children)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn evaluate_target_health_follows_the_endpoint() {
        use crate::model::{AliasTarget, EndpointAddress, EndpointKind};
        let apex = Name::from_ascii("example.com.").unwrap();
        let zone = HostedZone::new(&apex, "t", None);
        let alias = |name: &str, eth: bool| {
            ResourceRecordSet::alias(
                &Name::from_ascii(name).unwrap(),
                RecordType::A,
                AliasTarget {
                    hosted_zone_id: "ZR53ELBENDPOINTS".into(),
                    dns_name: Name::from_ascii("web.elb.r53.internal.").unwrap(),
                    evaluate_target_health: eth,
                },
            )
        };
        let index = Arc::new(ZoneIndex::build(
            zone,
            [
                alias("checked.example.com.", true),
                alias("unchecked.example.com.", false),
            ]
            .map(Arc::new),
        ));
        let endpoints = |healthy: bool| {
            Arc::new(Endpoints::new(
                EndpointZones::default(),
                [crate::model::Endpoint {
                    dns_name: Name::from_ascii("web.elb.r53.internal.").unwrap(),
                    kind: EndpointKind::LoadBalancer,
                    addresses: vec![EndpointAddress {
                        address: "192.0.2.1".parse().unwrap(),
                        healthy,
                    }],
                    ttl: 60,
                    lease_expires_at: None,
                }],
            ))
        };
        let view = View::public();
        let checked = Name::from_ascii("checked.example.com.").unwrap();
        let unchecked = Name::from_ascii("unchecked.example.com.").unwrap();
        let up = Catalog::new([index.clone()], Arc::default(), endpoints(true));
        assert!(up.is_healthy(&checked, RecordType::A, &view));
        let down = Catalog::new([index.clone()], Arc::default(), endpoints(false));
        assert!(!down.is_healthy(&checked, RecordType::A, &view));
        assert!(down.is_healthy(&unchecked, RecordType::A, &view));
        let gone = Catalog::new([index], Arc::default(), Arc::default());
        assert!(!gone.is_healthy(&checked, RecordType::A, &view));
    }

    /// Only an answer that consulted an endpoint depends on the clock (its lease); an Alias to
    /// a record set of the zone, directly or through another Alias, changes only with the
    /// catalog, and so may be kept in the response cache.
    #[test]
    fn only_aliases_to_endpoints_are_volatile() {
        use crate::model::AliasTarget;
        let apex = Name::from_ascii("example.com.").unwrap();
        let zone = HostedZone::new(&apex, "t", None);
        let alias = |name: &str, zone_id: &str, target: &str| {
            ResourceRecordSet::alias(
                &Name::from_ascii(name).unwrap(),
                RecordType::A,
                AliasTarget {
                    hosted_zone_id: zone_id.into(),
                    dns_name: Name::from_ascii(target).unwrap(),
                    evaluate_target_health: false,
                },
            )
        };
        let id = zone.id.as_str().to_owned();
        let www = ResourceRecordSet::new(
            &Name::from_ascii("www.example.com.").unwrap(),
            RecordType::A,
            300,
            vec![RData::try_from_str(RecordType::A, "192.0.2.10").unwrap()],
        );
        let index = ZoneIndex::build(
            zone,
            [
                www,
                alias("a.example.com.", &id, "www.example.com."),
                alias("b.example.com.", &id, "a.example.com."),
                alias(
                    "lb.example.com.",
                    "ZR53ELBENDPOINTS",
                    "web.elb.r53.internal.",
                ),
                alias("c.example.com.", &id, "lb.example.com."),
            ]
            .map(Arc::new),
        );
        let c = Catalog::new([Arc::new(index)], Arc::default(), Arc::default());
        for (name, volatile) in [
            ("www.example.com.", false),
            ("a.example.com.", false),
            ("b.example.com.", false),
            ("lb.example.com.", true),
            ("c.example.com.", true),
        ] {
            let qname = Name::from_ascii(name).unwrap();
            let a = ask(&c, &qname, RecordType::A);
            assert_eq!(a.volatile, volatile, "{name}");
            if !volatile {
                assert_eq!(lines(&a.answers), [format!("{name} 300 192.0.2.10")]);
            }
        }
    }

    /// RFC 8482 lets ANY be answered with any one RRset the name owns, but not with NODATA
    /// when it owns some: an Alias at the apex whose endpoint is gone has nothing to answer,
    /// the apex's NS and SOA have.
    #[test]
    fn any_at_an_alias_name_answers_a_set_with_records() {
        use crate::model::AliasTarget;
        let apex = Name::from_ascii("example.com.").unwrap();
        let mut sets = crate::zonefile::parse(ZONE, &apex, "test").unwrap().rrsets;
        sets.push(ResourceRecordSet::alias(
            &apex,
            RecordType::A,
            AliasTarget {
                hosted_zone_id: "ZR53ELBENDPOINTS".into(),
                dns_name: Name::from_ascii("web.elb.r53.internal.").unwrap(),
                evaluate_target_health: false,
            },
        ));
        let zone = HostedZone::new(&apex, "t", None);
        let index = ZoneIndex::build(zone, sets.into_iter().map(Arc::new));
        let c = Catalog::new([Arc::new(index)], Arc::default(), Arc::default());
        assert!(ask(&c, &apex, RecordType::A).answers.is_empty());
        let any = ask(&c, &apex, RecordType::ANY);
        assert_eq!(any.rcode, ResponseCode::NoError);
        assert_eq!(lines(&any.answers), ["example.com. 3600 ns.example.com."]);
    }

    #[test]
    fn patching_an_index_equals_building_it_afresh() {
        // A small deterministic random walk of puts and deletes over names that nest (so that
        // empty non-terminals appear and disappear) and a wildcard.
        let apex = Name::from_ascii("example.com.").unwrap();
        let names = [
            "example.com.",
            "a.example.com.",
            "b.a.example.com.",
            "c.b.a.example.com.",
            "*.a.example.com.",
            "x.example.com.",
            "y.x.example.com.",
            "*.example.com.",
        ];
        let zone = HostedZone::new(&apex, "t", None);
        let mut current: std::collections::BTreeMap<crate::model::RrKey, ResourceRecordSet> =
            Default::default();
        let soa = ResourceRecordSet::new(
            &apex,
            RecordType::SOA,
            300,
            vec![
                RData::try_from_str(RecordType::SOA, "ns.example.com. h.example.com. 1 2 3 4 5")
                    .unwrap(),
            ],
        );
        current.insert(soa.key(), soa);
        let mut index = ZoneIndex::build(zone.clone(), current.values().cloned().map(Arc::new));
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for step in 0..2000 {
            let name = Name::from_ascii(names[(next() % names.len() as u64) as usize]).unwrap();
            let rtype = [RecordType::A, RecordType::TXT, RecordType::AAAA][(next() % 3) as usize];
            let key = crate::model::RrKey::new(&name, rtype);
            let (delete, put) = if current.contains_key(&key) && next() % 2 == 0 {
                current.remove(&key);
                (vec![key], vec![])
            } else {
                let value = match rtype {
                    RecordType::A => format!("192.0.2.{}", next() % 250),
                    RecordType::AAAA => format!("2001:db8::{}", next() % 250),
                    _ => format!("\"v{}\"", next() % 250),
                };
                let set = ResourceRecordSet::new(
                    &name,
                    rtype,
                    60,
                    vec![RData::try_from_str(rtype, &value).unwrap()],
                );
                current.insert(set.key(), set.clone());
                (vec![], vec![Arc::new(set)])
            };
            index = index.patch(&delete, &put);
            let fresh = ZoneIndex::build(zone.clone(), current.values().cloned().map(Arc::new));
            assert_eq!(shape(&index), shape(&fresh), "after step {step}");
        }
    }

    #[test]
    fn an_index_that_settled_many_changes_equals_one_built_afresh() {
        // Enough changes for the overlay to be merged into the base more than once, names
        // nesting three deep (empty non-terminals), then half of them deleted again.
        let apex = Name::from_ascii("example.com.").unwrap();
        let zone = HostedZone::new(&apex, "t", None);
        let mut current: std::collections::BTreeMap<crate::model::RrKey, ResourceRecordSet> =
            Default::default();
        let mut index = ZoneIndex::build(zone.clone(), []);
        let set = |i: usize| {
            let name = Name::from_ascii(format!("h{i}.g{}.example.com.", i % 97)).unwrap();
            ResourceRecordSet::new(
                &name,
                RecordType::A,
                60,
                vec![RData::try_from_str(RecordType::A, &format!("192.0.2.{}", i % 250)).unwrap()],
            )
        };
        for i in 0..12_000 {
            let set = set(i);
            current.insert(set.key(), set.clone());
            index = index.patch(&[], &[Arc::new(set)]);
        }
        for i in (0..12_000).step_by(2) {
            let key = set(i).key();
            current.remove(&key);
            index = index.patch(&[key], &[]);
        }
        let fresh = ZoneIndex::build(zone.clone(), current.values().cloned().map(Arc::new));
        assert_eq!(index.len(), current.len());
        assert_eq!(shape(&index), shape(&fresh));
        let c = Catalog::new([Arc::new(index)], Arc::default(), Arc::default());
        let kept = Name::from_ascii("h1.g1.example.com.").unwrap();
        assert_eq!(
            lines(&ask(&c, &kept, RecordType::A).answers),
            ["h1.g1.example.com. 60 192.0.2.1"]
        );
        let gone = Name::from_ascii("h0.g0.example.com.").unwrap();
        assert_eq!(ask(&c, &gone, RecordType::A).rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn a_patched_index_lists_as_one_built_afresh() {
        let apex = Name::from_ascii("example.com.").unwrap();
        let zone = HostedZone::new(&apex, "t", None);
        let set = |name: &str, rtype: RecordType, value: &str| {
            ResourceRecordSet::new(
                &Name::from_ascii(name).unwrap(),
                rtype,
                60,
                vec![RData::try_from_str(rtype, value).unwrap()],
            )
        };
        let mut current: std::collections::BTreeMap<crate::model::RrKey, ResourceRecordSet> =
            Default::default();
        for i in 0..40 {
            let a = set(&format!("h{i}.example.com."), RecordType::A, "192.0.2.1");
            current.insert(a.key(), a);
        }
        let txt = set("h7.example.com.", RecordType::TXT, "\"t\"");
        current.insert(txt.key(), txt);
        let built = ZoneIndex::build(zone.clone(), current.values().cloned().map(Arc::new));
        // The base's order is sorted now, before the changes.
        assert_eq!(built.listing(None).count(), current.len());
        let put = [
            set("a.example.com.", RecordType::A, "192.0.2.2"),
            set("h3.example.com.", RecordType::AAAA, "2001:db8::3"),
            set("h5.example.com.", RecordType::A, "192.0.2.5"),
            set("zz.example.com.", RecordType::MX, "10 h1.example.com."),
        ];
        let delete = [
            crate::model::RrKey::new(&Name::from_ascii("h7.example.com.").unwrap(), RecordType::A),
            crate::model::RrKey::new(&Name::from_ascii("h9.example.com.").unwrap(), RecordType::A),
        ];
        for key in &delete {
            current.remove(key);
        }
        for s in &put {
            current.insert(s.key(), s.clone());
        }
        let puts: Vec<_> = put.iter().cloned().map(Arc::new).collect();
        let patched = built.patch(&delete, &puts);
        let fresh = ZoneIndex::build(zone, current.values().cloned().map(Arc::new));
        let list = |index: &ZoneIndex, start: Option<&crate::model::RrKey>| {
            index
                .listing(start)
                .map(|s| (s.name.to_string(), s.rtype, format!("{:?}", s.records)))
                .collect::<Vec<_>>()
        };
        assert_eq!(list(&patched, None), list(&fresh, None));
        assert_eq!(list(&patched, None).len(), current.len());
        for key in current.keys().chain(&delete) {
            assert_eq!(
                list(&patched, Some(key)),
                list(&fresh, Some(key)),
                "from {key:?}"
            );
        }
    }

    #[test]
    fn an_index_read_back_from_its_stored_form_is_the_same() {
        let apex = Name::from_ascii("example.com.").unwrap();
        let mut sets = crate::zonefile::parse(ZONE, &apex, "test").unwrap().rrsets;
        let alias = ResourceRecordSet::alias(
            &Name::from_ascii("alias.example.com.").unwrap(),
            RecordType::A,
            crate::model::AliasTarget {
                hosted_zone_id: "t".into(),
                dns_name: Name::from_ascii("www.example.com.").unwrap(),
                evaluate_target_health: true,
            },
        );
        sets.push(alias);
        let zone = HostedZone::new(&Name::from_ascii("example.com.").unwrap(), "t", None);
        let index = ZoneIndex::build(zone.clone(), sets.iter().cloned().map(Arc::new));
        let again = ZoneIndex::from_encoded(zone, &index.encoded().unwrap()).unwrap();
        assert_eq!(again.len(), sets.len());
        assert_eq!(shape(&again), shape(&index));
        let mut read: Vec<_> = again.values().map(Arc::unwrap_or_clone).collect();
        read.sort_by_key(|s| s.key());
        sets.sort_by_key(|s| s.key());
        assert_eq!(read, sets);
    }

    #[test]
    fn values_as_entered_are_listed_and_kept_in_the_stored_form() {
        let zone = HostedZone::new(&Name::from_ascii("example.com.").unwrap(), "t", None);
        let name = |n: &str| Name::from_ascii(n).unwrap();
        let cname = |owner: &str| {
            ResourceRecordSet::new(
                &name(owner),
                RecordType::CNAME,
                60,
                vec![RData::CNAME(hickory_proto::rr::rdata::CNAME(name(
                    "Target.Example.org.",
                )))],
            )
        };
        // One set as r53 stored it before values were kept as entered, one entered since.
        let old = cname("old.example.com.");
        let entered = cname("new.example.com.").with_texts(vec!["Target.Example.org".into()]);
        let mut stored = crate::store::EncodedSets::default();
        for set in [&old, &entered] {
            stored.push(&crate::store::codec::encode_rrset(set).unwrap());
        }
        let index = ZoneIndex::from_encoded(zone.clone(), &stored).unwrap();
        let listed = |index: &ZoneIndex| -> Vec<String> {
            index
                .listing(None)
                .map(|s| format!("{} {:?}", s.name, s.listed_values().collect::<Vec<_>>()))
                .collect()
        };
        let expected = [
            r#"new.example.com. ["Target.Example.org"]"#,
            r#"old.example.com. ["Target.Example.org."]"#,
        ];
        assert_eq!(listed(&index), expected);
        // DNS reads the records alone.
        let key = RrKey::new(&name("new.example.com."), RecordType::CNAME);
        assert_eq!(index.record_set(&key).unwrap().texts, None);
        // The snapshot (`encoded`) carries them, and so does an index patched by a change.
        let again = ZoneIndex::from_encoded(zone.clone(), &index.encoded().unwrap()).unwrap();
        assert_eq!(listed(&again), expected);
        let upserted = old.clone().with_texts(vec!["target.example.org.".into()]);
        let patched = again.patch(&[], &[Arc::new(upserted)]);
        assert_eq!(
            listed(&patched),
            [expected[0], r#"old.example.com. ["target.example.org."]"#]
        );
        let built = ZoneIndex::build(zone, patched.values());
        assert_eq!(listed(&built), listed(&patched));
    }

    #[test]
    fn wildcard_whose_parent_owns_nothing_answers() {
        // `only.example.com` exists only as the parent of `*.only`: hickory's `num_labels`
        // does not count a leading `*`, which once left the parent unindexed (NXDOMAIN).
        let c = catalog(&[("example.com", ZONE)]);
        let name = Name::from_ascii("x.only.example.com.").unwrap();
        let a = ask(&c, &name, RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(lines(&a.answers), ["x.only.example.com. 3600 192.0.2.1"]);
        let parent = Name::from_ascii("only.example.com.").unwrap();
        let nodata = ask(&c, &parent, RecordType::A);
        assert_eq!(
            nodata.rcode,
            ResponseCode::NoError,
            "an empty non-terminal exists"
        );
        assert!(nodata.answers.is_empty());
    }

    #[test]
    fn listing_keys_sort_as_route53_lists() {
        let names = [
            "example.com.",
            "*.example.com.",
            "a-b.example.com.",
            "a.example.com.",
            "x.a.example.com.",
            "A0.example.com.",
            "b.example.com.",
        ];
        let mut keys: Vec<_> = names
            .iter()
            .map(|n| listing_key(&key_of(&Name::from_ascii(n).unwrap()), RecordType::A))
            .collect();
        keys.sort();
        let listed: Vec<String> = keys
            .iter()
            .map(|(name, _)| String::from_utf8(name.clone()).unwrap())
            .collect();
        assert_eq!(
            listed,
            [
                "com.example.",
                "com.example.*.",
                "com.example.a-b.",
                "com.example.a.",
                "com.example.a.x.",
                "com.example.a0.",
                "com.example.b.",
            ]
        );
        // Types by mnemonic; no type before any.
        let apex = key_of(&Name::from_ascii("example.com.").unwrap());
        let mut types = [
            RecordType::TXT,
            RecordType::SOA,
            RecordType::NS,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::A,
            RecordType::from(0u16),
        ];
        types.sort_by_cached_key(|t| listing_key(&apex, *t));
        assert_eq!(
            types,
            [
                RecordType::from(0u16),
                RecordType::A,
                RecordType::AAAA,
                RecordType::MX,
                RecordType::NS,
                RecordType::SOA,
                RecordType::TXT,
            ]
        );
    }

    #[test]
    fn wire_keys_fold_case_and_ancestors_are_suffixes() {
        let name = Name::from_ascii("WWW.Example.COM.").unwrap();
        let wire = WireName::new(&name).unwrap();
        assert_eq!(wire.key(), b"\x03www\x07example\x03com\x00");
        assert_eq!(wire.labels(), 3);
        assert_eq!(wire.ancestor(3), wire.key());
        assert_eq!(wire.ancestor(2), b"\x07example\x03com\x00");
        assert_eq!(wire.ancestor(1), b"\x03com\x00");
        assert_eq!(wire.ancestor(0), b"\x00");
        assert_eq!(parent_key(wire.ancestor(1)), wire.ancestor(0));
        assert_eq!(parent_key(wire.ancestor(0)), wire.ancestor(0));
        let mut buffer = [0u8; 258];
        assert_eq!(
            wildcard_key(wire.ancestor(2), &mut buffer),
            b"\x01*\x07example\x03com\x00"
        );
        // The longest name DNS allows (255 octets in wire form) fits; its wildcard too.
        let long_label = "a".repeat(63);
        let longest = format!("{long_label}.{long_label}.{long_label}.{}.", "b".repeat(61));
        let wire = WireName::new(&Name::from_ascii(&longest).unwrap()).unwrap();
        assert_eq!(wire.key().len(), 255);
        assert_eq!(wildcard_key(wire.key(), &mut buffer).len(), 257);
    }

    #[test]
    fn a_wildcard_below_a_cut_is_referred() {
        let c = catalog(&[("example.com", ZONE)]);
        let name = Name::from_ascii("*.deleg.example.com.").unwrap();
        let a = ask(&c, &name, RecordType::DS);
        assert!(!a.authoritative);
        assert_eq!(
            lines(&a.authorities),
            ["deleg.example.com. 3600 ns.deleg.example.com."]
        );
        assert_eq!(
            a.glue_cut.as_ref().map(Name::to_string).as_deref(),
            Some("deleg.example.com.")
        );
    }

    #[test]
    fn negative_answers_share_one_soa_at_the_negative_ttl() {
        let c = catalog(&[("example.com", ZONE)]);
        let name = Name::from_ascii("missing.example.com.").unwrap();
        let a = ask(&c, &name, RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NXDomain);
        assert_eq!(a.authorities.len(), 1);
        assert_eq!(a.authorities[0].rrset.ttl, 300);
        assert!(
            matches!(a.authorities[0].rrset, Cow::Borrowed(_)),
            "no copy per answer"
        );
    }

    #[test]
    fn targets_only_a_wildcard_covers_get_its_addresses_under_their_own_name() {
        let zone = "$ORIGIN example.com.\n$TTL 3600\n\
            @ SOA ns hostmaster 1 7200 3600 1209600 300\n\
            @ NS ns\n\
            ns A 192.0.2.53\n\
            *.wild A 192.0.2.100\n\
            *.wild TXT \"no address\"\n\
            mx MX 10 x.wild\n\
            mx MX 20 nothing\n\
            deleg NS x.wild\n\
            deleg NS ns.deleg\n\
            *.deleg A 192.0.2.2\n";
        let c = catalog(&[("example.com", zone)]);
        let mx = Name::from_ascii("mx.example.com.").unwrap();
        let a = ask(&c, &mx, RecordType::MX);
        assert_eq!(
            lines(&a.additionals),
            ["x.wild.example.com. 3600 192.0.2.100"]
        );
        // Glue, even from a wildcard below the cut, as Knot and NSD give it.
        let below = Name::from_ascii("host.deleg.example.com.").unwrap();
        let a = ask(&c, &below, RecordType::A);
        assert!(!a.authoritative);
        let mut glue = lines(&a.additionals);
        glue.sort();
        assert_eq!(
            glue,
            [
                "ns.deleg.example.com. 3600 192.0.2.2",
                "x.wild.example.com. 3600 192.0.2.100"
            ]
        );
    }

    #[test]
    fn a_cname_to_a_child_zones_apex_takes_the_ds_from_the_parent() {
        let parent = "$ORIGIN example.com.\n$TTL 3600\n\
            @ SOA ns hostmaster 1 7200 3600 1209600 300\n\
            @ NS ns\n\
            ns A 192.0.2.53\n\
            child NS ns.child\n\
            child DS 1 13 2 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
            to-child CNAME child\n";
        let child = "$ORIGIN child.example.com.\n$TTL 3600\n\
            @ SOA ns hostmaster 1 7200 3600 1209600 300\n\
            @ NS ns\n\
            ns A 192.0.2.54\n";
        let c = catalog(&[("example.com", parent), ("child.example.com", child)]);
        let name = Name::from_ascii("to-child.example.com.").unwrap();
        let a = ask(&c, &name, RecordType::DS);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(
            a.answers
                .iter()
                .map(|s| (s.owner.to_string(), s.rrset.rtype))
                .collect::<Vec<_>>(),
            [
                ("to-child.example.com.".to_owned(), RecordType::CNAME),
                ("child.example.com.".to_owned(), RecordType::DS)
            ]
        );
        assert!(a.authorities.is_empty());
    }

    #[test]
    fn an_svcb_targets_own_svcb_rrset_is_additional() {
        let zone = "$ORIGIN example.com.\n$TTL 3600\n\
            @ SOA ns hostmaster 1 7200 3600 1209600 300\n\
            @ NS ns\n\
            ns A 192.0.2.53\n\
            alias HTTPS 0 pool\n\
            pool HTTPS 1 . alpn=h3\n\
            pool SVCB 1 .\n\
            pool A 192.0.2.1\n\
            self HTTPS 1 self\n";
        let c = catalog(&[("example.com", zone)]);
        let alias = Name::from_ascii("alias.example.com.").unwrap();
        let a = ask(&c, &alias, RecordType::HTTPS);
        let kinds: Vec<_> = a
            .additionals
            .iter()
            .map(|s| (s.owner.to_string(), s.rrset.rtype))
            .collect();
        assert_eq!(
            kinds,
            [
                ("pool.example.com.".to_owned(), RecordType::A),
                ("pool.example.com.".to_owned(), RecordType::HTTPS)
            ]
        );
        // An RRset already in the answer is not repeated.
        let own = Name::from_ascii("self.example.com.").unwrap();
        assert!(ask(&c, &own, RecordType::HTTPS).additionals.is_empty());
    }

    #[test]
    fn svcb_target_addresses_are_additional() {
        let c = catalog(&[("example.com", ZONE)]);
        let name = Name::from_ascii("svc.example.com.").unwrap();
        let a = ask(&c, &name, RecordType::SVCB);
        assert_eq!(lines(&a.additionals), ["ns.example.com. 3600 192.0.2.53"]);
    }
}
