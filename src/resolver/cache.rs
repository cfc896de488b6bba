//! The resolver's cache: whole answers keyed by (name, type), with TTLs that count down, a
//! window past expiry in which they may still be served stale (RFC 8767), and a bound on the
//! number of entries enforced by evicting entries not used lately (CLOCK, an O(1)
//! approximation of least recently used).
//!
//! Pure data structure: it is handed the current time by its caller and does no IO, takes no
//! lock and reads no clock itself, which is what makes every rule here unit-testable. What goes
//! in (TTL caps, negative TTLs from the SOA) is decided by [`Entry::from_response`]; the locking
//! and the counting live in `resolver::Resolver`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::dnssec::rdata::DNSSECRData;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::Resolved;
use crate::model::WireName;

/// An upper bound on how long a positive answer is kept, whatever the upstream says. RFC 8767
/// §4 suggests capping TTLs at 7 days; a day (Unbound's `cache-max-ttl`) keeps a stack's
/// view of the outside world from going a week stale after a change.
pub const MAX_TTL: u32 = 86_400;
/// RFC 2308 §5: "Values of one to three hours have been found to work well and would make
/// sensible a default." Negative answers are kept at most three hours.
pub const MAX_NEGATIVE_TTL: u32 = 10_800;
/// RFC 8767 §5: "a default of between one and three days" for how long expired data is kept
/// to be served stale. One day.
pub const MAX_STALE: Duration = Duration::from_secs(86_400);
/// RFC 8767 §4: "... the TTL of each expired record in the message it is returning to 30
/// seconds". The same 30 s is the "failure recheck timer": after a failed refresh, the stale
/// answer is served without asking the upstreams again for that long.
pub const STALE_TTL: u32 = 30;

/// A cache key: the query name in wire form, lower-cased (RFC 4343: `WWW.Example` and
/// `www.example` share an entry) and fully qualified, then the query type (two bytes).
/// Hashing and comparing it is a pass over a few bytes, not over `Name` labels.
pub type Key = Box<[u8]>;

/// The most bytes a key takes: a name of at most 255 bytes in wire form, and the type.
const MAX_KEY: usize = 255 + 2;

/// A key built on the stack, for lookups that need no owned key.
pub struct KeyBuf {
    bytes: [u8; MAX_KEY],
    len: usize,
}

impl KeyBuf {
    pub fn new(name: &Name, qtype: RecordType) -> Self {
        let mut key = Self {
            bytes: [0; MAX_KEY],
            len: 0,
        };
        // A name is at most 255 bytes on the wire (hickory refuses longer ones), so `wire`
        // always exists; without it the key is the root's, which keeps a broken name from
        // panicking.
        let wire = WireName::new(name);
        let name = wire.as_ref().map_or(&[0u8][..], WireName::key);
        key.bytes[..name.len()].copy_from_slice(name);
        key.bytes[name.len()..name.len() + 2].copy_from_slice(&u16::from(qtype).to_be_bytes());
        key.len = name.len() + 2;
        key
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub fn to_key(&self) -> Key {
        self.as_bytes().into()
    }
}

/// The key for a question.
pub fn key(name: &Name, qtype: RecordType) -> Key {
    KeyBuf::new(name, qtype).to_key()
}

/// The (lower-cased, fully qualified) name a key is for.
pub fn key_name(key: &[u8]) -> Option<Name> {
    let mut labels = Vec::new();
    let mut at = 0;
    loop {
        let len = usize::from(*key.get(at)?);
        if len == 0 {
            break;
        }
        labels.push(key.get(at + 1..at + 1 + len)?);
        at += 1 + len;
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(true);
    Some(name)
}

/// RFC 2181 §8: a TTL with the most significant bit set "should be treated as if the entire
/// value received was zero".
fn sane_ttl(ttl: u32) -> u32 {
    if ttl & 0x8000_0000 != 0 {
        0
    } else {
        ttl
    }
}

/// Where an answer to `qname`/`qtype` stops short: the name its CNAME chain (followed from
/// `qname` through the answer section) ends at, when the answer has no record of `qtype` there
/// and is not a negative answer (no SOA: NODATA or NXDOMAIN after a chain is complete). A
/// recursive upstream follows every CNAME itself; an authoritative one stops where its zones
/// do. `None` for a complete answer, for a question of type CNAME or ANY (the CNAME is the
/// answer), and for a chain that loops within the answer.
pub fn dangling(qname: &Name, qtype: RecordType, resolved: &Resolved) -> Option<Name> {
    if resolved.rcode != ResponseCode::NoError
        || matches!(qtype, RecordType::CNAME | RecordType::ANY)
        || resolved
            .authorities
            .iter()
            .any(|r| r.record_type() == RecordType::SOA)
    {
        return None;
    }
    let mut at = qname;
    // Each step uses up a record of the answer: more steps than records is a loop.
    for _ in 0..=resolved.answers.len() {
        // `Name` equality ignores case.
        if resolved
            .answers
            .iter()
            .any(|r| r.name == *at && r.record_type() == qtype)
        {
            return None;
        }
        let next = resolved.answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == *at => Some(&target.0),
            _ => None,
        });
        match next {
            Some(next) => at = next,
            None => return (at != qname).then(|| at.clone()),
        }
    }
    None
}

/// Whether `r` is an RRSIG over records of type `covered`.
fn signs(r: &Record, covered: RecordType) -> bool {
    matches!(&r.data, RData::DNSSEC(DNSSECRData::RRSIG(sig)) if sig.input().type_covered == covered)
}

/// Whether `r` belongs to a DNSSEC proof of nonexistence: an NSEC or NSEC3 record, or an
/// RRSIG over one.
fn is_proof(r: &Record) -> bool {
    matches!(r.record_type(), RecordType::NSEC | RecordType::NSEC3)
        || signs(r, RecordType::NSEC)
        || signs(r, RecordType::NSEC3)
}

/// One cached answer: the sections the client gets, with TTLs as they were when stored.
#[derive(Debug, Clone)]
pub struct Entry {
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    /// How long, from `stored`, the entry is fresh (whole seconds).
    ttl: u32,
    stored: Instant,
    /// Set when a refresh failed and the stale answer was served: until then the stale answer
    /// is served without asking the upstreams again (RFC 8767 §4, failure recheck timer).
    recheck_after: Option<Instant>,
}

impl Entry {
    /// Turns an upstream response into what the client gets and, when it may be cached, the
    /// entry to cache. `rcode` is NOERROR or NXDOMAIN (anything else never gets here).
    ///
    /// Positive: the answer section holds a record of the type asked for (a CNAME chain
    /// leading to it included, cached whole as the answer to this question; a chain the
    /// upstream left unfollowed is completed by the resolver before it gets here, see
    /// [`dangling`]). Its TTL is the least TTL in the answer section. Of the authority
    /// section only a wildcard answer's NSEC/NSEC3 proof is kept (and its TTLs count in the
    /// least), for clients that set DO.
    ///
    /// Negative (NXDOMAIN, or NOERROR without the type: NODATA, possibly after a CNAME chain):
    /// RFC 2308 §5, "the TTL of this record is set from the minimum of the MINIMUM field of
    /// the SOA record and the TTL of the SOA itself", and the SOA in the authority section is
    /// served with that TTL (§3). The SOA's RRSIG and the NSEC and NSEC3 records that prove
    /// the denial, with theirs, are kept with it, their TTLs bounded by the same figure, for
    /// clients that set DO (RFC 4035 §3.1.3; the DNS path leaves them out for the others);
    /// NS records are left out. "Negative responses without SOA records SHOULD
    /// NOT be cached as there is no way to prevent the negative responses looping forever
    /// between a pair of servers even with a TTL of zero" (§5): those are passed on and not
    /// cached.
    ///
    /// Only the answer to this question is kept, never records elsewhere in the response as
    /// answers to other questions, so an upstream cannot fill the cache for names it was not
    /// asked about.
    pub fn from_response(
        qtype: RecordType,
        rcode: ResponseCode,
        answers: Vec<Record>,
        authorities: Vec<Record>,
        now: Instant,
    ) -> (Resolved, Option<Entry>) {
        let mut answers: Vec<Record> = answers
            .into_iter()
            .map(|mut r| {
                r.ttl = sane_ttl(r.ttl);
                r
            })
            .collect();
        let positive = rcode == ResponseCode::NoError
            && answers
                .iter()
                .any(|r| r.record_type() == qtype || (qtype == RecordType::ANY));
        let answers_ttl = answers.iter().map(|r| r.ttl).min();
        let (authorities, ttl) = if positive {
            for r in &mut answers {
                r.ttl = r.ttl.min(MAX_TTL);
            }
            // RFC 4035 §3.1.3.3: an answer made from a wildcard comes with the NSEC or NSEC3
            // records proving that no closer name exists; they bound the entry's life too,
            // so that none is served past its own TTL.
            let mut proof: Vec<Record> = authorities.into_iter().filter(is_proof).collect();
            for r in &mut proof {
                r.ttl = sane_ttl(r.ttl).min(MAX_TTL);
            }
            let ttl = answers_ttl.map(|t| proof.iter().fold(t.min(MAX_TTL), |t, r| t.min(r.ttl)));
            (proof, ttl)
        } else {
            let mut denial: Vec<Record> = authorities
                .into_iter()
                .filter(|r| {
                    r.record_type() == RecordType::SOA || signs(r, RecordType::SOA) || is_proof(r)
                })
                .collect();
            let negative_ttl = denial.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(sane_ttl(r.ttl).min(soa.minimum).min(MAX_NEGATIVE_TTL)),
                _ => None,
            });
            if let Some(ttl) = negative_ttl {
                // The SOA's own TTL is never below `ttl`, so it gets exactly `ttl` (§3).
                for r in &mut denial {
                    r.ttl = sane_ttl(r.ttl).min(ttl);
                }
                for r in &mut answers {
                    r.ttl = r.ttl.min(MAX_NEGATIVE_TTL);
                }
            }
            let ttl = negative_ttl.map(|t| answers_ttl.map_or(t, |a| a.min(t)));
            (denial, ttl)
        };
        let resolved = Resolved {
            rcode,
            answers,
            authorities,
            stale: false,
        };
        // RFC 1035 §3.2.1: a zero TTL means the record "can only be used for the transaction
        // in progress, and should not be cached".
        let entry = ttl.filter(|&t| t > 0).map(|ttl| Entry {
            rcode,
            answers: resolved.answers.clone(),
            authorities: resolved.authorities.clone(),
            ttl,
            stored: now,
            recheck_after: None,
        });
        (resolved, entry)
    }

    fn expires(&self) -> Instant {
        self.stored + Duration::from_secs(u64::from(self.ttl))
    }

    fn is_fresh(&self, now: Instant) -> bool {
        now < self.expires()
    }

    /// The answer with every TTL reduced by the whole seconds since it was stored, so that a
    /// client caching it does not keep it past the upstream's TTL.
    fn fresh(&self, now: Instant) -> (Resolved, u32) {
        let elapsed =
            u32::try_from(now.saturating_duration_since(self.stored).as_secs()).unwrap_or(u32::MAX);
        let count_down = |records: &[Record]| {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.ttl = r.ttl.saturating_sub(elapsed);
                    r
                })
                .collect()
        };
        let resolved = Resolved {
            rcode: self.rcode,
            answers: count_down(&self.answers),
            authorities: count_down(&self.authorities),
            stale: false,
        };
        (resolved, elapsed)
    }

    /// The expired answer as RFC 8767 §4 serves it: every TTL 30 s, marked stale.
    fn stale(&self) -> Resolved {
        let at_stale_ttl = |records: &[Record]| {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.ttl = STALE_TTL;
                    r
                })
                .collect()
        };
        Resolved {
            rcode: self.rcode,
            answers: at_stale_ttl(&self.answers),
            authorities: at_stale_ttl(&self.authorities),
            stale: true,
        }
    }
}

/// How a fresh answer ages: what a copy of it kept elsewhere (the DNS path's response cache)
/// needs in order to count its TTLs down exactly as this cache would, to stop serving it when
/// this cache would, and to keep the entry from being evicted while the copy is used.
#[derive(Debug, Clone)]
pub struct Freshness {
    /// When the entry was stored: TTLs count down in whole seconds from here.
    pub stored: Instant,
    /// When the entry stops being fresh.
    pub expires: Instant,
    /// The whole seconds already taken off the TTLs of the answer it came with.
    pub elapsed: u32,
    used: Arc<AtomicBool>,
}

impl Freshness {
    /// Freshness tied to no cache entry (marking it used keeps nothing): for tests of code
    /// that serves copies.
    pub fn detached(stored: Instant, expires: Instant, elapsed: u32) -> Self {
        Self {
            stored,
            expires,
            elapsed,
            used: Arc::default(),
        }
    }

    /// Marks the entry as used, as a lookup does (it survives the next turn of the eviction
    /// clock). Cheap when already marked: a read, no write to the shared line.
    pub fn mark_used(&self) {
        mark(&self.used);
    }

    /// The entry's mark alone, for a copy that keeps the times in its own form.
    pub fn use_mark(&self) -> UseMark {
        UseMark(self.used.clone())
    }
}

/// Marks a cache entry as used (see [`Freshness::mark_used`]).
#[derive(Debug, Clone)]
pub struct UseMark(Arc<AtomicBool>);

impl UseMark {
    pub fn mark(&self) {
        mark(&self.0);
    }
}

fn mark(used: &AtomicBool) {
    if !used.load(Ordering::Relaxed) {
        used.store(true, Ordering::Relaxed);
    }
}

/// What the cache has for a question.
#[derive(Debug)]
pub enum Lookup {
    /// A fresh entry, TTLs counted down, and how it ages.
    Fresh(Resolved, Freshness),
    /// An expired entry within its failure recheck timer: serve it stale, ask no upstream.
    Stale(Resolved),
    Miss,
}

struct Slot {
    key: Key,
    entry: Entry,
    /// The CLOCK reference bit: set by every use, cleared as the hand passes. Shared with
    /// the copies handed out in [`Freshness`], so that answers served from those count as
    /// uses too.
    used: Arc<AtomicBool>,
}

/// The bounded cache. Eviction is CLOCK (second chance), an O(1) approximation of least
/// recently used: a use sets the entry's reference bit (no reordering, so a hit does not
/// write any shared structure but that bit); when the cache is full, a hand sweeps the slots,
/// clearing set bits, and evicts the first entry whose bit is already clear, i.e. one not
/// used since the hand last passed it.
pub struct Cache {
    capacity: usize,
    /// Whether expired entries are kept (up to [`MAX_STALE`]) to be served stale.
    keep_stale: bool,
    index: FxHashMap<Key, usize>,
    /// At most `capacity` slots; `None` where an entry was removed (listed in `free`).
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// The clock hand: the next slot the sweep looks at.
    hand: usize,
}

impl Cache {
    pub fn new(capacity: usize, keep_stale: bool) -> Self {
        Self {
            capacity,
            keep_stale,
            index: FxHashMap::default(),
            slots: Vec::new(),
            free: Vec::new(),
            hand: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, key: &[u8]) -> Option<&Slot> {
        let i = *self.index.get(key)?;
        self.slots[i].as_ref()
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(i) = self.index.remove(key) {
            self.slots[i] = None;
            self.free.push(i);
        }
    }

    /// Whether an expired entry may still be served stale at `now`.
    fn servable_stale(&self, entry: &Entry, now: Instant) -> bool {
        self.keep_stale && now < entry.expires() + MAX_STALE
    }

    /// Looks a question up (`key` as [`KeyBuf`] or [`Key`] bytes). An entry that can no
    /// longer be served at all is dropped here (lazily: the bound keeps the total in check
    /// meanwhile).
    pub fn lookup(&mut self, key: &[u8], now: Instant) -> Lookup {
        let Some(slot) = self.slot(key) else {
            return Lookup::Miss;
        };
        let entry = &slot.entry;
        let found = if entry.is_fresh(now) {
            let (resolved, elapsed) = entry.fresh(now);
            let freshness = Freshness {
                stored: entry.stored,
                expires: entry.expires(),
                elapsed,
                used: slot.used.clone(),
            };
            Lookup::Fresh(resolved, freshness)
        } else if !self.servable_stale(entry, now) {
            self.remove(key);
            return Lookup::Miss;
        } else if entry.recheck_after.is_some_and(|t| now < t) {
            Lookup::Stale(entry.stale())
        } else {
            // Expired but kept for serve-stale: the caller refreshes it from upstream.
            return Lookup::Miss;
        };
        mark(&slot.used);
        found
    }

    /// The expired answer for a question whose refresh just failed, if it may be served
    /// stale; starts the failure recheck timer.
    pub fn stale_after_failure(&mut self, key: &[u8], now: Instant) -> Option<Resolved> {
        let i = *self.index.get(key)?;
        let keep_stale = self.keep_stale;
        let slot = self.slots[i].as_mut()?;
        if !(keep_stale && now < slot.entry.expires() + MAX_STALE) {
            return None;
        }
        slot.entry.recheck_after = Some(now + Duration::from_secs(u64::from(STALE_TTL)));
        mark(&slot.used);
        Some(slot.entry.stale())
    }

    /// Stores an entry, replacing any for the same key; returns how many entries were
    /// evicted to stay within the bound (0 or 1).
    pub fn insert(&mut self, key: Key, entry: Entry) -> u64 {
        if self.capacity == 0 {
            return 0;
        }
        if let Some(&i) = self.index.get(&key) {
            if let Some(slot) = self.slots[i].as_mut() {
                slot.entry = entry;
                slot.used = Arc::default();
                return 0;
            }
        }
        let mut evicted = 0;
        let i = if let Some(i) = self.free.pop() {
            i
        } else if self.slots.len() < self.capacity {
            self.slots.push(None);
            self.slots.len() - 1
        } else {
            evicted = 1;
            self.evict()
        };
        self.index.insert(key.clone(), i);
        self.slots[i] = Some(Slot {
            key,
            entry,
            used: Arc::default(),
        });
        evicted
    }

    /// Turns the clock until it finds an entry not used since the hand last passed it,
    /// removes that entry and returns its slot. Only called with every slot full, so it ends
    /// within two turns.
    fn evict(&mut self) -> usize {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let i = self.hand;
            self.hand += 1;
            match &self.slots[i] {
                Some(slot) if slot.used.swap(false, Ordering::Relaxed) => {}
                Some(slot) => {
                    self.index.remove(&slot.key);
                    self.slots[i] = None;
                    return i;
                }
                // Not reached while `free` is empty; a vacant slot is as good as evicted.
                None => {
                    self.free.retain(|&f| f != i);
                    return i;
                }
            }
        }
    }

    /// Removes every entry whose name `keep` rejects.
    pub fn retain_names(&mut self, mut keep: impl FnMut(&Name) -> bool) {
        let doomed: Vec<Key> = self
            .index
            .keys()
            .filter(|key| key_name(key).is_some_and(|name| !keep(&name)))
            .cloned()
            .collect();
        for key in &doomed {
            self.remove(key);
        }
    }

    pub fn clear(&mut self) {
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.hand = 0;
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{A, CNAME, SOA};

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn a(owner: &str, ttl: u32, last: u8) -> Record {
        Record::from_rdata(
            name(owner),
            ttl,
            RData::A(A(Ipv4Addr::new(192, 0, 2, last))),
        )
    }

    fn soa(ttl: u32, minimum: u32) -> Record {
        let soa = SOA::new(
            name("ns.example."),
            name("host.example."),
            1,
            3600,
            600,
            86400,
            minimum,
        );
        Record::from_rdata(name("example."), ttl, RData::SOA(soa))
    }

    fn positive(ttl: u32, now: Instant) -> Entry {
        let (_, entry) = Entry::from_response(
            RecordType::A,
            ResponseCode::NoError,
            vec![a("www.example.", ttl, 1)],
            vec![],
            now,
        );
        entry.unwrap()
    }

    #[test]
    fn keys_ignore_case() {
        let k = key(&name("WWW.Example.COM."), RecordType::A);
        assert_eq!(k, key(&name("www.example.com"), RecordType::A));
        assert_eq!(&k[..], b"\x03www\x07example\x03com\x00\x00\x01");
        assert_eq!(key_name(&k).unwrap().to_string(), "www.example.com.");
        assert_eq!(
            key_name(&key(&Name::root(), RecordType::NS)),
            Some(Name::root())
        );
        assert_ne!(
            key(&name("a."), RecordType::A),
            key(&name("a."), RecordType::AAAA)
        );
    }

    #[test]
    fn positive_ttl_is_the_least_in_the_answer_and_counts_down() {
        let t0 = Instant::now();
        let cname = Record::from_rdata(
            name("alias.example."),
            3600,
            RData::CNAME(CNAME(name("www.example."))),
        );
        let (resolved, entry) = Entry::from_response(
            RecordType::A,
            ResponseCode::NoError,
            vec![cname, a("www.example.", 60, 1)],
            vec![soa(3600, 300)],
            t0,
        );
        assert!(
            resolved.authorities.is_empty(),
            "authority of a positive answer is dropped"
        );
        let entry = entry.unwrap();
        assert_eq!(entry.ttl, 60);
        let mut cache = Cache::new(10, false);
        let k = key(&name("alias.example."), RecordType::A);
        cache.insert(k.clone(), entry);
        let Lookup::Fresh(r, freshness) = cache.lookup(&k, t0 + Duration::from_millis(20_500))
        else {
            panic!("fresh within the TTL");
        };
        assert_eq!(freshness.elapsed, 20);
        assert_eq!(freshness.stored, t0);
        assert_eq!(freshness.expires, t0 + Duration::from_secs(60));
        assert_eq!(r.answers[0].ttl, 3580);
        assert_eq!(r.answers[1].ttl, 40);
        assert!(matches!(
            cache.lookup(&k, t0 + Duration::from_secs(60)),
            Lookup::Miss
        ));
        assert_eq!(cache.len(), 0, "expired without serve-stale: dropped");
    }

    #[test]
    fn negative_ttl_is_the_soa_minimum_or_its_ttl() {
        let t0 = Instant::now();
        for (soa_ttl, minimum, want) in [(3600, 60, 60), (30, 900, 30), (99_999, 99_999, 10_800)] {
            let (resolved, entry) = Entry::from_response(
                RecordType::A,
                ResponseCode::NXDomain,
                vec![],
                vec![soa(soa_ttl, minimum)],
                t0,
            );
            assert_eq!(entry.unwrap().ttl, want);
            assert_eq!(resolved.authorities[0].ttl, want, "the SOA carries the TTL");
        }
    }

    #[test]
    fn nodata_is_negative_even_after_a_cname() {
        let t0 = Instant::now();
        let cname = Record::from_rdata(
            name("alias.example."),
            3600,
            RData::CNAME(CNAME(name("www.example."))),
        );
        let (_, entry) = Entry::from_response(
            RecordType::AAAA,
            ResponseCode::NoError,
            vec![cname],
            vec![soa(3600, 120)],
            t0,
        );
        assert_eq!(entry.unwrap().ttl, 120);
    }

    #[test]
    fn negative_without_soa_and_zero_ttls_are_not_cached() {
        let t0 = Instant::now();
        let (resolved, entry) =
            Entry::from_response(RecordType::A, ResponseCode::NXDomain, vec![], vec![], t0);
        assert!(entry.is_none());
        assert_eq!(resolved.rcode, ResponseCode::NXDomain);
        let (_, entry) = Entry::from_response(
            RecordType::A,
            ResponseCode::NoError,
            vec![a("www.example.", 0, 1)],
            vec![],
            t0,
        );
        assert!(entry.is_none());
        let (resolved, entry) = Entry::from_response(
            RecordType::A,
            ResponseCode::NoError,
            vec![a("www.example.", 0x8000_0001, 1)],
            vec![],
            t0,
        );
        assert!(
            entry.is_none(),
            "RFC 2181 §8: a TTL with the top bit set is zero"
        );
        assert_eq!(resolved.answers[0].ttl, 0);
    }

    #[test]
    fn a_chain_the_upstream_did_not_follow_dangles_at_its_last_target() {
        let cname = |owner: &str, target: &str| {
            Record::from_rdata(name(owner), 300, RData::CNAME(CNAME(name(target))))
        };
        let answer = |rcode, answers, authorities| Resolved {
            rcode,
            answers,
            authorities,
            stale: false,
        };
        let q = name("A.example.");
        // Out of order, as upstreams may send them; names compare without case.
        let chain = vec![
            cname("b.example.", "c.example.net."),
            cname("a.example.", "B.example."),
        ];
        let r = answer(ResponseCode::NoError, chain.clone(), vec![]);
        assert_eq!(
            dangling(&q, RecordType::A, &r),
            Some(name("c.example.net."))
        );
        // Complete, negative, the CNAME asked for, or no chain at all: nothing to follow.
        let mut complete = chain.clone();
        complete.push(a("C.example.net.", 60, 1));
        let r = answer(ResponseCode::NoError, complete, vec![]);
        assert_eq!(dangling(&q, RecordType::A, &r), None);
        let r = answer(ResponseCode::NoError, chain.clone(), vec![soa(60, 60)]);
        assert_eq!(
            dangling(&q, RecordType::A, &r),
            None,
            "NODATA after the chain"
        );
        let r = answer(ResponseCode::NXDomain, chain.clone(), vec![]);
        assert_eq!(dangling(&q, RecordType::A, &r), None);
        let r = answer(ResponseCode::NoError, chain.clone(), vec![]);
        assert_eq!(dangling(&q, RecordType::CNAME, &r), None);
        assert_eq!(dangling(&q, RecordType::ANY, &r), None);
        let r = answer(ResponseCode::NoError, vec![], vec![]);
        assert_eq!(dangling(&q, RecordType::A, &r), None);
        // A loop inside the answer ends nowhere.
        let looped = vec![
            cname("a.example.", "b.example."),
            cname("b.example.", "a.example."),
        ];
        let r = answer(ResponseCode::NoError, looped, vec![]);
        assert_eq!(dangling(&q, RecordType::A, &r), None);
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let t0 = Instant::now();
        let mut cache = Cache::new(2, false);
        let k = |s: &str| key(&name(s), RecordType::A);
        assert_eq!(cache.insert(k("a."), positive(60, t0)), 0);
        assert_eq!(cache.insert(k("b."), positive(60, t0)), 0);
        assert!(matches!(cache.lookup(&k("a."), t0), Lookup::Fresh(..)));
        assert_eq!(cache.insert(k("c."), positive(60, t0)), 1);
        assert!(matches!(cache.lookup(&k("b."), t0), Lookup::Miss));
        assert!(matches!(cache.lookup(&k("a."), t0), Lookup::Fresh(..)));
        assert_eq!(
            cache.insert(k("a."), positive(60, t0)),
            0,
            "replacing is no eviction"
        );
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.slots.len(), 2);
    }

    #[test]
    fn a_use_through_a_copy_keeps_an_entry() {
        let t0 = Instant::now();
        let mut cache = Cache::new(2, false);
        let k = |s: &str| key(&name(s), RecordType::A);
        cache.insert(k("a."), positive(60, t0));
        cache.insert(k("b."), positive(60, t0));
        let Lookup::Fresh(_, freshness) = cache.lookup(&k("a."), t0) else {
            panic!("fresh");
        };
        assert_eq!(cache.insert(k("c."), positive(60, t0)), 1);
        assert!(matches!(cache.lookup(&k("b."), t0), Lookup::Miss));
        // The sweep cleared a's mark; a copy of its answer served elsewhere sets it again.
        freshness.mark_used();
        assert_eq!(cache.insert(k("d."), positive(60, t0)), 1);
        assert!(matches!(cache.lookup(&k("c."), t0), Lookup::Miss));
        assert!(matches!(cache.lookup(&k("a."), t0), Lookup::Fresh(..)));
        // Unused since the hand passed: the next to go.
        cache.insert(k("e."), positive(60, t0));
        assert!(matches!(cache.lookup(&k("d."), t0), Lookup::Miss));
        assert!(matches!(cache.lookup(&k("a."), t0), Lookup::Fresh(..)));
    }

    #[test]
    fn entries_in_use_survive_a_stream_of_one_off_names() {
        let t0 = Instant::now();
        let mut cache = Cache::new(100, false);
        let k = |s: &str| key(&name(s), RecordType::A);
        let hot: Vec<String> = (0..10).map(|i| format!("hot{i}.")).collect();
        for h in &hot {
            cache.insert(k(h), positive(60, t0));
        }
        let mut evicted = 0;
        for round in 0..100 {
            for h in &hot {
                assert!(
                    matches!(cache.lookup(&k(h), t0), Lookup::Fresh(..)),
                    "{h} in round {round}"
                );
            }
            for i in 0..10 {
                evicted += cache.insert(k(&format!("cold{round}-{i}.")), positive(60, t0));
            }
            assert!(cache.len() <= 100);
        }
        assert_eq!(cache.len(), 100);
        assert_eq!(evicted, 1010 - 100);
        // Removed entries leave slots that are reused before anything is evicted.
        cache.retain_names(|n| !n.to_string().starts_with("cold99-"));
        assert_eq!(cache.len(), 90);
        for i in 0..10 {
            assert_eq!(cache.insert(k(&format!("new{i}.")), positive(60, t0)), 0);
        }
        assert_eq!(cache.insert(k("one.more."), positive(60, t0)), 1);
        assert_eq!(cache.slots.len(), 100);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let t0 = Instant::now();
        let mut cache = Cache::new(0, true);
        let k = key(&name("a."), RecordType::A);
        assert_eq!(cache.insert(k.clone(), positive(60, t0)), 0);
        assert!(matches!(cache.lookup(&k, t0), Lookup::Miss));
    }

    #[test]
    fn stale_answers_within_the_window_with_a_recheck_timer() {
        let t0 = Instant::now();
        let mut cache = Cache::new(10, true);
        let k = key(&name("www.example."), RecordType::A);
        cache.insert(k.clone(), positive(60, t0));
        let expired = t0 + Duration::from_secs(61);
        assert!(matches!(cache.lookup(&k, expired), Lookup::Miss));
        let stale = cache.stale_after_failure(&k, expired).unwrap();
        assert!(stale.stale);
        assert_eq!(stale.answers[0].ttl, STALE_TTL);
        assert!(matches!(
            cache.lookup(&k, expired + Duration::from_secs(29)),
            Lookup::Stale(_)
        ));
        assert!(matches!(
            cache.lookup(&k, expired + Duration::from_secs(30)),
            Lookup::Miss
        ));
        let too_late = t0 + Duration::from_secs(60) + MAX_STALE;
        assert!(cache.stale_after_failure(&k, too_late).is_none());
        assert!(matches!(cache.lookup(&k, too_late), Lookup::Miss));
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn retain_names_removes_every_type() {
        let t0 = Instant::now();
        let mut cache = Cache::new(10, false);
        cache.insert(key(&name("a."), RecordType::A), positive(60, t0));
        cache.insert(key(&name("a."), RecordType::AAAA), positive(60, t0));
        cache.insert(key(&name("b."), RecordType::A), positive(60, t0));
        let a = name("a.");
        cache.retain_names(|n| n != &a);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.free.len(), 2);
    }
}
