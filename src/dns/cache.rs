//! A cache of composed responses for the UDP fast path.
//!
//! Most queries are one plain question, perhaps with an EDNS OPT and no options. For those the
//! response is fully determined by the catalog snapshot and a small key: the lower-cased name,
//! type and class, RD, the EDNS state (DO and the size limit it implies), whether the client
//! may recurse, and the client's view. A hit costs a header and question check, a hash probe
//! and a copy, with the message ID and the question's letter case patched in; everything else
//! goes the slow way (`message::respond`).
//!
//! Entries are valid for one catalog generation: a new snapshot (a change, an endpoint, a VPC)
//! empties the cache. Answers that depend on the clock (an Alias to an endpoint with a lease)
//! are never stored. One cache per thread: each UDP socket's thread has its own, and the TCP
//! connections on a tokio worker thread share that thread's: no locks.
//!
//! Answers from the resolver's cache are kept too, with a [`Countdown`]: where their TTLs are
//! in the message and how the resolver's entry ages. A hit writes the TTLs the resolver would
//! give at that moment, and stops being a hit when the resolver's entry stops being fresh;
//! those entries are also valid for one resolver generation only (a flush or a change of
//! forwarding rules starts a new one). Stale answers are never kept.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;
use tokio::time::Instant;

use super::message::{CD, PLAIN_UDP_LIMIT, SERVER_UDP_PAYLOAD};
use crate::catalog::View;
use crate::resolver::{Freshness, UseMark};

/// Entries kept before the cache starts over (bounds memory under random-name floods).
const MAX_ENTRIES: usize = 50_000;
const HEADER_LEN: usize = 12;
/// Views of more VPCs than this are not cached (their keys would not fit).
const MAX_VIEW: usize = 16;
/// Name, type, class, flags, EDNS size, and up to `MAX_VIEW` VPC indexes.
const MAX_KEY: usize = 255 + 7 + 4 * MAX_VIEW;

/// What a response depends on, besides the snapshot, as bytes built on the stack: the
/// question name in wire form, lower-cased; type; class; flags (RD, the client may recurse,
/// TCP, EDNS, DO); the size limit EDNS implies; the indexes of the VPCs in the client's view.
/// The name delimits itself and the rest has a fixed size but for the view, so two different
/// keys never have the same bytes.
#[derive(Clone)]
pub struct Key {
    bytes: [u8; MAX_KEY],
    len: usize,
}

impl Key {
    pub fn new() -> Self {
        Self {
            bytes: [0; MAX_KEY],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len + bytes.len();
        self.bytes.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }
}

impl Default for Key {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:02x?})", self.as_bytes())
    }
}

/// The parts of a plain query the fast path needs, or `None` for anything else.
pub struct PlainQuery {
    /// Where the question name ends in the request (and in a cached response).
    name_end: usize,
    qtype: u16,
    qclass: u16,
    recursion_desired: bool,
    edns: Option<(bool, u16)>,
}

impl PlainQuery {
    /// Reads a query with opcode QUERY, one uncompressed question, no answer or authority
    /// records, and at most an OPT (version 0, no options) as the only additional record,
    /// with nothing after it. Anything else is for the slow path. The lower-cased name is
    /// written to `key`, which [`finish_key`](Self::finish_key) completes: the key is built
    /// where it stays, not moved around (it is a few hundred bytes).
    pub fn read(request: &[u8], key: &mut Key) -> Option<Self> {
        if request.len() < HEADER_LEN + 5 {
            return None;
        }
        let flags = request[2];
        // QR clear, opcode 0 (QUERY).
        if flags & 0xf8 != 0 {
            return None;
        }
        let count = |i: usize| u16::from_be_bytes([request[i], request[i + 1]]);
        let (qd, an, ns, ar) = (count(4), count(6), count(8), count(10));
        if qd != 1 || an != 0 || ns != 0 || ar > 1 {
            return None;
        }
        key.len = 0;
        let mut at = HEADER_LEN;
        loop {
            let len = *request.get(at)? as usize;
            // Only plain labels: no compression pointer (0xc0) or reserved types in a question.
            if len > 63 || key.len + 1 + len > 255 {
                return None;
            }
            key.bytes[key.len] = len as u8;
            at += 1;
            let label = request.get(at..at + len)?;
            for (to, from) in key.bytes[key.len + 1..key.len + 1 + len]
                .iter_mut()
                .zip(label)
            {
                *to = from.to_ascii_lowercase();
            }
            key.len += 1 + len;
            at += len;
            if len == 0 {
                break;
            }
        }
        let name_end = at;
        let fixed = request.get(at..at + 4)?;
        let qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
        at += 4;
        let edns = if ar == 1 {
            // Root owner, TYPE 41, CLASS = payload size, TTL = ext-rcode, version, DO+Z,
            // RDLENGTH 0.
            let opt = request.get(at..at + 11)?;
            if opt[0] != 0 || opt[1..3] != [0, 41] || opt[6] != 0 || opt[9..11] != [0, 0] {
                return None;
            }
            at += 11;
            let payload = u16::from_be_bytes([opt[3], opt[4]]);
            let dnssec_ok = opt[7] & 0x80 != 0;
            Some((
                dnssec_ok,
                payload.clamp(PLAIN_UDP_LIMIT, SERVER_UDP_PAYLOAD),
            ))
        } else {
            None
        };
        if at != request.len() {
            return None;
        }
        Some(Self {
            name_end,
            qtype,
            qclass,
            recursion_desired: flags & 0x01 != 0,
            edns,
        })
    }

    pub fn recursion_desired(&self) -> bool {
        self.recursion_desired
    }

    /// Where the question name ends in the request.
    pub fn name_end(&self) -> usize {
        self.name_end
    }

    /// Completes the cache key `read` began in `key` (`may_recurse`: the client is allowed to
    /// recurse, which sets RA and, with RD, sends questions to the resolver); `None` for a
    /// view of more VPCs than a key holds (not cached).
    pub fn finish_key(
        &self,
        key: &mut Key,
        may_recurse: bool,
        view: &View,
        tcp: bool,
    ) -> Option<()> {
        let (dnssec_ok, size) = self.edns.unwrap_or((false, 0));
        let flags = u8::from(self.recursion_desired)
            | u8::from(may_recurse) << 1
            | u8::from(tcp) << 2
            | u8::from(self.edns.is_some()) << 3
            | u8::from(dnssec_ok) << 4;
        let [t0, t1] = self.qtype.to_be_bytes();
        let [c0, c1] = self.qclass.to_be_bytes();
        let [s0, s1] = size.to_be_bytes();
        key.push(&[t0, t1, c0, c1, flags, s0, s1])?;
        let vpcs = view.vpc_indexes();
        if vpcs.len() > MAX_VIEW {
            return None;
        }
        for &vpc in vpcs {
            key.push(&u32::try_from(vpc).ok()?.to_be_bytes())?;
        }
        Some(())
    }
}

/// How the TTLs of a response made from the resolver's cache count down.
#[derive(Debug, Clone)]
pub struct Countdown {
    /// How the resolver's entry ages (when it was stored, when it expires).
    pub freshness: Freshness,
    /// Where each TTL that counts down is in the response, and its value at `stored`.
    pub ttls: Vec<(usize, u32)>,
}

/// A cached response and its key, in one allocation: `data` is the key, then the response,
/// then for an answer from the resolver when its entry there was stored and expires (as
/// nanoseconds from the cache's epoch, 8 bytes each) and where its TTLs are (6 bytes each:
/// offset, TTL at `stored`). Everything a hit reads but the table's own bucket is in that one
/// allocation.
struct Slot {
    hash: u64,
    data: Box<[u8]>,
    key_len: u16,
    response_len: u16,
    /// For an answer from the resolver: the whole second (since `stored`) in which this copy
    /// last marked the resolver's entry as used. Once a second is plenty for the eviction
    /// clock, and spares a read of a line that lives elsewhere on most hits.
    marked: u32,
    /// For an answer from the resolver: its entry's mark.
    used: Option<UseMark>,
}

impl Slot {
    fn key(&self) -> &[u8] {
        &self.data[..usize::from(self.key_len)]
    }

    fn response(&self) -> &[u8] {
        let start = usize::from(self.key_len);
        &self.data[start..start + usize::from(self.response_len)]
    }

    /// For an answer from the resolver: when its entry was stored and when it expires.
    fn times(&self) -> (i64, i64) {
        let nanos = |at: usize| {
            self.data
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(0, i64::from_be_bytes)
        };
        let start = usize::from(self.key_len) + usize::from(self.response_len);
        (nanos(start), nanos(start + 8))
    }

    /// For an answer from the resolver: where its TTLs are, and their values when stored.
    fn ttls(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        let start = usize::from(self.key_len) + usize::from(self.response_len) + 16;
        let tail = self.data.get(start..).unwrap_or(&[]);
        tail.chunks_exact(6).map(|c| {
            (
                usize::from(u16::from_be_bytes([c[0], c[1]])),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
    }
}

/// A response from the cache.
pub struct Hit {
    /// It came from the resolver's cache (a copy of a fresh entry): it counts as a hit there.
    pub resolved: bool,
}

/// Composed responses for one catalog generation (and, for the resolver's answers, one
/// resolver generation).
#[derive(Default)]
pub struct ResponseCache {
    generation: u64,
    resolver_generation: u64,
    entries: HashTable<Slot>,
    /// What the times of the resolver's answers count from; set with the first of them.
    epoch: Option<Instant>,
}

/// `t` as signed nanoseconds from `epoch`.
fn nanos_since(epoch: Instant, t: Instant) -> i64 {
    let signed = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    if t >= epoch {
        signed(t - epoch)
    } else {
        -signed(epoch - t)
    }
}

fn hash(key: &[u8]) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    hasher.write(key);
    hasher.finish()
}

impl ResponseCache {
    /// Forgets everything when the catalog is not the one the entries were made from, or the
    /// resolver's cache has been flushed or its rules changed since (0: no resolver).
    pub fn sync(&mut self, generation: u64, resolver_generation: u64) {
        if generation != self.generation || resolver_generation != self.resolver_generation {
            self.entries.clear();
            self.generation = generation;
            self.resolver_generation = resolver_generation;
        }
    }

    /// The cached response for `key`, made fit for `request`, appended to `out` (the UDP
    /// path answers a whole batch into one buffer): its ID, for the resolver's answers the
    /// CD bit, and the question's letter case
    /// (RFC 1035 §7.3: the question is echoed; resolvers using 0x20 check it; answer owner
    /// names equal to the question are compression pointers to it, so they take the asker's
    /// case too), and for the resolver's answers the TTLs of the moment. An answer from the
    /// resolver whose entry expired is dropped: the resolver decides what comes next (a
    /// refresh, or serve-stale). `None` (and nothing appended) on a miss.
    pub fn answer_into(
        &mut self,
        key: &Key,
        name_end: usize,
        request: &[u8],
        out: &mut Vec<u8>,
    ) -> Option<Hit> {
        let key = key.as_bytes();
        let hash = hash(key);
        let eq = |slot: &Slot| slot.hash == hash && slot.key() == key;
        let slot = self.entries.find_mut(hash, eq)?;
        let name = HEADER_LEN..name_end;
        let cached = slot.response();
        if cached.len() < name_end || request.len() < name_end {
            return None;
        }
        let start = out.len();
        out.extend_from_slice(cached);
        let response = &mut out[start..];
        let resolved = slot.used.is_some();
        if let (Some(used), Some(epoch)) = (&slot.used, self.epoch) {
            let now = nanos_since(epoch, Instant::now());
            let (stored, expires) = slot.times();
            if now >= expires {
                out.truncate(start);
                self.remove(hash, key);
                return None;
            }
            // Whole seconds, as the resolver counts (`Entry::fresh`).
            let elapsed =
                u32::try_from(now.saturating_sub(stored) / 1_000_000_000).unwrap_or(u32::MAX);
            for (at, ttl) in slot.ttls() {
                if let Some(field) = response.get_mut(at..at + 4) {
                    field.copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
                }
            }
            if slot.marked != elapsed {
                // Uses of the copy keep the resolver's entry from eviction, as uses of it
                // would.
                used.mark();
                slot.marked = elapsed;
            }
        }
        response[0..2].copy_from_slice(&request[0..2]);
        response[name.clone()].copy_from_slice(&request[name]);
        if resolved {
            // A recursive answer copies the asker's CD (RFC 4035 §3.2.2), which the key
            // leaves out: the answer is the same either way.
            response[3] = (response[3] & !CD) | (request[3] & CD);
        }
        Some(Hit { resolved })
    }

    fn remove(&mut self, hash: u64, key: &[u8]) {
        if let Ok(entry) = self
            .entries
            .find_entry(hash, |s| s.hash == hash && s.key() == key)
        {
            entry.remove();
        }
    }

    /// Keeps a response: one that depends on nothing but the snapshot (`countdown` `None`),
    /// or one made from a fresh entry of the resolver's cache.
    pub fn insert(&mut self, key: &Key, response: &[u8], countdown: Option<Countdown>) {
        let key = key.as_bytes();
        let (Ok(key_len), Ok(response_len)) =
            (u16::try_from(key.len()), u16::try_from(response.len()))
        else {
            return;
        };
        let ttls = countdown.as_ref().map_or(&[][..], |c| &c.ttls[..]);
        let mut data = Vec::with_capacity(key.len() + response.len() + 16 + 6 * ttls.len());
        data.extend_from_slice(key);
        data.extend_from_slice(response);
        if let Some(countdown) = &countdown {
            let epoch = *self.epoch.get_or_insert_with(Instant::now);
            let freshness = &countdown.freshness;
            data.extend_from_slice(&nanos_since(epoch, freshness.stored).to_be_bytes());
            data.extend_from_slice(&nanos_since(epoch, freshness.expires).to_be_bytes());
        }
        for &(at, ttl) in ttls {
            let Ok(at) = u16::try_from(at) else {
                return;
            };
            data.extend_from_slice(&at.to_be_bytes());
            data.extend_from_slice(&ttl.to_be_bytes());
        }
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        let hash = hash(key);
        let slot = Slot {
            hash,
            data: data.into_boxed_slice(),
            key_len,
            response_len,
            marked: countdown.as_ref().map_or(0, |c| c.freshness.elapsed),
            used: countdown.map(|c| c.freshness.use_mark()),
        };
        match self
            .entries
            .entry(hash, |s| s.hash == hash && s.key() == key, |s| s.hash)
        {
            hashbrown::hash_table::Entry::Occupied(mut o) => *o.get_mut() = slot,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query read, with the key's name part.
    struct Parsed {
        query: PlainQuery,
        key: Key,
    }

    impl PlainQuery {
        fn parse(request: &[u8]) -> Option<Parsed> {
            let mut key = Key::new();
            let query = Self::read(request, &mut key)?;
            Some(Parsed { query, key })
        }
    }

    impl Parsed {
        fn into_key(mut self, may_recurse: bool, view: &View, tcp: bool) -> Option<Key> {
            self.query
                .finish_key(&mut self.key, may_recurse, view, tcp)?;
            Some(self.key)
        }

        fn name_end(&self) -> usize {
            self.query.name_end()
        }
    }

    impl ResponseCache {
        /// [`answer_into`](Self::answer_into) a buffer of its own: the response and whether it
        /// came from the resolver.
        fn answer(&mut self, key: &Key, name_end: usize, request: &[u8]) -> Option<Answered> {
            let mut response = Vec::new();
            let hit = self.answer_into(key, name_end, request, &mut response)?;
            Some(Answered {
                response,
                resolved: hit.resolved,
            })
        }
    }

    struct Answered {
        response: Vec<u8>,
        resolved: bool,
    }

    fn query(name: &[&str], qtype: u16, edns: bool) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)];
        for label in name {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        if edns {
            q.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 0, 0x80, 0, 0, 0]);
        }
        q
    }

    #[test]
    fn plain_queries_are_read_and_keys_ignore_case() {
        let upper = PlainQuery::parse(&query(&["WWW", "Example", "com"], 1, true)).unwrap();
        let lower = PlainQuery::parse(&query(&["www", "example", "com"], 1, true)).unwrap();
        assert_eq!(
            upper.into_key(false, &View::public(), false),
            lower.into_key(false, &View::public(), false)
        );
        let upper = PlainQuery::parse(&query(&["WWW", "Example", "com"], 1, true)).unwrap();
        assert_eq!(upper.query.edns, Some((true, SERVER_UDP_PAYLOAD)));
        assert!(upper.query.recursion_desired);
    }

    #[test]
    fn keys_tell_apart_what_the_response_depends_on() {
        let key = |name: &[&str], qtype, edns, recursive, tcp| {
            PlainQuery::parse(&query(name, qtype, edns))
                .unwrap()
                .into_key(recursive, &View::public(), tcp)
                .unwrap()
        };
        let base = key(&["a", "example"], 1, true, false, false);
        assert_eq!(base, key(&["A", "EXAMPLE"], 1, true, false, false));
        assert_ne!(base, key(&["a", "example"], 28, true, false, false));
        assert_ne!(base, key(&["a", "example"], 1, false, false, false));
        assert_ne!(base, key(&["a", "example"], 1, true, true, false));
        assert_ne!(base, key(&["a", "example"], 1, true, false, true));
        assert_ne!(base, key(&["ab", "example"], 1, true, false, false));
        // "a.b" and "ab" differ in their length bytes.
        assert_ne!(
            key(&["a", "b"], 1, false, false, false),
            key(&["ab"], 1, false, false, false)
        );
        let mut no_rd = query(&["a", "example"], 1, true);
        no_rd[2] = 0;
        let no_rd = PlainQuery::parse(&no_rd)
            .unwrap()
            .into_key(false, &View::public(), false)
            .unwrap();
        assert_ne!(base, no_rd);
    }

    #[test]
    fn anything_unusual_goes_the_slow_way() {
        let good = query(&["a", "example"], 1, false);
        assert!(PlainQuery::parse(&good).is_some());
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(PlainQuery::parse(&trailing).is_none());
        let mut response = good.clone();
        response[2] |= 0x80;
        assert!(PlainQuery::parse(&response).is_none());
        let mut notify = good.clone();
        notify[2] = 4 << 3;
        assert!(PlainQuery::parse(&notify).is_none());
        let mut two = good.clone();
        two[5] = 2;
        assert!(PlainQuery::parse(&two).is_none());
        let mut pointer = good.clone();
        pointer[12] = 0xc0;
        assert!(PlainQuery::parse(&pointer).is_none());
        let mut options = query(&["a", "example"], 1, true);
        let last = options.len() - 1;
        options[last] = 4;
        assert!(PlainQuery::parse(&options).is_none(), "OPT with options");
        let mut version = query(&["a", "example"], 1, true);
        let at = version.len() - 5;
        version[at] = 1;
        assert!(PlainQuery::parse(&version).is_none(), "EDNS version 1");
        assert!(PlainQuery::parse(&good[..good.len() - 1]).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn resolver_answers_count_down_and_expire_with_their_entry() {
        use std::time::Duration;

        let request = query(&["www", "example", "com"], 1, false);
        let end = PlainQuery::parse(&request).unwrap().name_end();
        let key = PlainQuery::parse(&request)
            .unwrap()
            .into_key(true, &View::public(), false)
            .unwrap();
        // A response with one TTL field at 30..34, composed 5 s after the resolver stored the
        // entry (TTL 60 then, 55 in the bytes).
        let t0 = Instant::now();
        let mut response = request.clone();
        response[2] |= 0x80;
        response.resize(40, 0);
        response[30..34].copy_from_slice(&55u32.to_be_bytes());
        let freshness = Freshness::detached(t0, t0 + Duration::from_secs(60), 5);
        let countdown = Countdown {
            ttls: vec![(30, 55 + freshness.elapsed)],
            freshness,
        };
        let mut cache = ResponseCache::default();
        cache.sync(1, 9);
        // Kept 5 s after the entry was stored: the cache's epoch is later than `stored`.
        tokio::time::advance(Duration::from_secs(5)).await;
        cache.insert(&key, &response, Some(countdown));
        tokio::time::advance(Duration::from_millis(15_900)).await;
        let hit = cache.answer(&key, end, &request).unwrap();
        assert!(hit.resolved);
        assert_eq!(&hit.response[30..34], &40u32.to_be_bytes());
        tokio::time::advance(Duration::from_millis(39_099)).await;
        let hit = cache.answer(&key, end, &request).unwrap();
        assert_eq!(&hit.response[30..34], &1u32.to_be_bytes());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(cache.answer(&key, end, &request).is_none(), "expired");
        assert!(cache.entries.is_empty(), "and dropped");
        // A new resolver generation (a flush) empties the cache.
        cache.insert(&key, &response, None);
        cache.sync(1, 10);
        assert!(cache.answer(&key, end, &request).is_none());
    }

    #[test]
    fn hits_carry_the_askers_id_and_case_and_generations_expire() {
        let first = query(&["www", "example", "com"], 1, false);
        let parsed = PlainQuery::parse(&first).unwrap();
        let key = parsed.into_key(false, &View::public(), false).unwrap();
        let mut cache = ResponseCache::default();
        cache.sync(7, 0);
        let mut response = first.clone();
        response[2] |= 0x80;
        cache.insert(&key, &response, None);
        let mut second = query(&["WwW", "EXAMPLE", "com"], 1, false);
        second[0] = 0xab;
        second[1] = 0xcd;
        let end = PlainQuery::parse(&second).unwrap().name_end();
        let hit = cache.answer(&key, end, &second).unwrap();
        assert!(!hit.resolved);
        let hit = hit.response;
        assert_eq!(&hit[0..2], &[0xab, 0xcd]);
        assert_eq!(&hit[12..end], &second[12..end]);
        cache.sync(8, 0);
        assert!(cache.answer(&key, end, &second).is_none());
    }
}
