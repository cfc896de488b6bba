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
//! are never stored. One cache per worker thread, shared by the UDP and TCP paths that run on
//! it: no locks.
//!
//! Answers from the resolver's cache are kept too, with a [`Countdown`]: where their TTLs are
//! in the message and how the resolver's entry ages. A hit writes the TTLs the resolver would
//! give at that moment, and stops being a hit when the resolver's entry stops being fresh;
//! those entries are also valid for one resolver generation only (a flush or a change of
//! forwarding rules starts a new one). Stale answers are never kept.

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::message::{PLAIN_UDP_LIMIT, SERVER_UDP_PAYLOAD};
use crate::catalog::View;
use crate::resolver::Freshness;

/// Entries kept before the cache starts over (bounds memory under random-name floods).
const MAX_ENTRIES: usize = 50_000;
const HEADER_LEN: usize = 12;

/// What a response depends on, besides the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// The question name in wire form, lower-cased.
    name: Vec<u8>,
    qtype: u16,
    qclass: u16,
    recursion_desired: bool,
    /// `None` without EDNS; else the DO bit and the size limit the payload size implies.
    edns: Option<(bool, u16)>,
    recursive_client: bool,
    view: View,
    /// TCP answers are never truncated; UDP ones may be.
    tcp: bool,
}

/// The parts of a plain query the fast path needs, or `None` for anything else.
pub struct PlainQuery {
    /// Where the question name ends in the request (and in a cached response).
    name_end: usize,
    qname_lower: Vec<u8>,
    qtype: u16,
    qclass: u16,
    recursion_desired: bool,
    edns: Option<(bool, u16)>,
}

impl PlainQuery {
    /// Reads a query with opcode QUERY, one uncompressed question, no answer or authority
    /// records, and at most an OPT (version 0, no options) as the only additional record,
    /// with nothing after it. Anything else is for the slow path.
    pub fn parse(request: &[u8]) -> Option<Self> {
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
        let mut at = HEADER_LEN;
        let mut qname_lower = Vec::with_capacity(32);
        loop {
            let len = *request.get(at)? as usize;
            // Only plain labels: no compression pointer (0xc0) or reserved types in a question.
            if len > 63 {
                return None;
            }
            qname_lower.push(len as u8);
            at += 1;
            if len == 0 {
                break;
            }
            let label = request.get(at..at + len)?;
            qname_lower.extend(label.iter().map(u8::to_ascii_lowercase));
            at += len;
            if qname_lower.len() > 255 {
                return None;
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
            qname_lower,
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

    /// The cache key, taking the lower-cased name along (no copy per query).
    pub fn into_key(self, recursive_client: bool, view: View, tcp: bool) -> Key {
        Key {
            tcp,
            name: self.qname_lower,
            qtype: self.qtype,
            qclass: self.qclass,
            recursion_desired: self.recursion_desired,
            edns: self.edns,
            recursive_client,
            view,
        }
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

impl Countdown {
    /// Writes the TTLs as the resolver would give them at `now`; `false` (and nothing
    /// written) once the entry is no longer fresh.
    fn apply(&self, response: &mut [u8], now: Instant) -> bool {
        if now >= self.freshness.expires {
            return false;
        }
        // Whole seconds, as the resolver counts (`Entry::fresh`).
        let elapsed = u32::try_from(
            now.saturating_duration_since(self.freshness.stored)
                .as_secs(),
        )
        .unwrap_or(u32::MAX);
        for &(at, ttl) in &self.ttls {
            if let Some(field) = response.get_mut(at..at + 4) {
                field.copy_from_slice(&ttl.saturating_sub(elapsed).to_be_bytes());
            }
        }
        // Uses of the copy keep the resolver's entry from eviction, as uses of it would.
        self.freshness.mark_used();
        true
    }
}

struct Cached {
    response: Vec<u8>,
    countdown: Option<Countdown>,
}

/// A response from the cache.
pub struct Hit {
    pub response: Vec<u8>,
    /// It came from the resolver's cache (a copy of a fresh entry): it counts as a hit there.
    pub resolved: bool,
}

/// Composed responses for one catalog generation (and, for the resolver's answers, one
/// resolver generation).
#[derive(Default)]
pub struct ResponseCache {
    generation: u64,
    resolver_generation: u64,
    entries: FxHashMap<Key, Cached>,
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

    /// The cached response for `key`, made fit for `request`: its ID and the question's
    /// letter case (RFC 1035 §7.3: the question is echoed; resolvers using 0x20 check it;
    /// answer owner names equal to the question are compression pointers to it, so they take
    /// the asker's case too), and for the resolver's answers the TTLs of the moment. An
    /// answer from the resolver whose entry expired is dropped: the resolver decides what
    /// comes next (a refresh, or serve-stale).
    pub fn answer(&mut self, key: &Key, name_end: usize, request: &[u8]) -> Option<Hit> {
        let cached = self.entries.get(key)?;
        let mut response = cached.response.clone();
        if let Some(countdown) = &cached.countdown {
            if !countdown.apply(&mut response, Instant::now()) {
                self.entries.remove(key);
                return None;
            }
        }
        response[0..2].copy_from_slice(&request[0..2]);
        let name = HEADER_LEN..name_end;
        if response.get(name.clone())?.len() == request[name.clone()].len() {
            response[name.clone()].copy_from_slice(&request[name]);
        }
        Some(Hit {
            resolved: cached.countdown.is_some(),
            response,
        })
    }

    /// Keeps a response: one that depends on nothing but the snapshot (`countdown` `None`),
    /// or one made from a fresh entry of the resolver's cache.
    pub fn insert(&mut self, key: Key, response: &[u8], countdown: Option<Countdown>) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(
            key,
            Cached {
                response: response.to_vec(),
                countdown,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            upper.into_key(false, View::public(), false),
            lower.into_key(false, View::public(), false)
        );
        let upper = PlainQuery::parse(&query(&["WWW", "Example", "com"], 1, true)).unwrap();
        assert_eq!(upper.edns, Some((true, SERVER_UDP_PAYLOAD)));
        assert!(upper.recursion_desired);
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
            .into_key(true, View::public(), false);
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
        cache.insert(key.clone(), &response, Some(countdown));
        tokio::time::advance(Duration::from_millis(20_900)).await;
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
        cache.insert(key.clone(), &response, None);
        cache.sync(1, 10);
        assert!(cache.answer(&key, end, &request).is_none());
    }

    #[test]
    fn hits_carry_the_askers_id_and_case_and_generations_expire() {
        let first = query(&["www", "example", "com"], 1, false);
        let parsed = PlainQuery::parse(&first).unwrap();
        let key = parsed.into_key(false, View::public(), false);
        let mut cache = ResponseCache::default();
        cache.sync(7, 0);
        let mut response = first.clone();
        response[2] |= 0x80;
        cache.insert(key.clone(), &response, None);
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
