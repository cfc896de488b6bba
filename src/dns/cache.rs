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

use rustc_hash::FxHashMap;

use super::message::{PLAIN_UDP_LIMIT, SERVER_UDP_PAYLOAD};
use crate::catalog::View;

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

/// Composed responses for one catalog generation.
#[derive(Default)]
pub struct ResponseCache {
    generation: u64,
    entries: FxHashMap<Key, Vec<u8>>,
}

impl ResponseCache {
    /// Forgets everything when the catalog is not the one the entries were made from.
    pub fn sync(&mut self, generation: u64) {
        if generation != self.generation {
            self.entries.clear();
            self.generation = generation;
        }
    }

    /// The cached response for `key`, made fit for `request`: its ID and the question's
    /// letter case (RFC 1035 §7.3: the question is echoed; resolvers using 0x20 check it).
    pub fn answer(&self, key: &Key, name_end: usize, request: &[u8]) -> Option<Vec<u8>> {
        let cached = self.entries.get(key)?;
        let mut response = cached.clone();
        response[0..2].copy_from_slice(&request[0..2]);
        let name = HEADER_LEN..name_end;
        if response.get(name.clone())?.len() == request[name.clone()].len() {
            response[name.clone()].copy_from_slice(&request[name]);
        }
        Some(response)
    }

    pub fn insert(&mut self, key: Key, response: &[u8]) {
        if self.entries.len() >= MAX_ENTRIES {
            self.entries.clear();
        }
        self.entries.insert(key, response.to_vec());
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

    #[test]
    fn hits_carry_the_askers_id_and_case_and_generations_expire() {
        let first = query(&["www", "example", "com"], 1, false);
        let parsed = PlainQuery::parse(&first).unwrap();
        let key = parsed.into_key(false, View::public(), false);
        let mut cache = ResponseCache::default();
        cache.sync(7);
        let mut response = first.clone();
        response[2] |= 0x80;
        cache.insert(key.clone(), &response);
        let mut second = query(&["WwW", "EXAMPLE", "com"], 1, false);
        second[0] = 0xab;
        second[1] = 0xcd;
        let end = PlainQuery::parse(&second).unwrap().name_end();
        let hit = cache.answer(&key, end, &second).unwrap();
        assert_eq!(&hit[0..2], &[0xab, 0xcd]);
        assert_eq!(&hit[12..end], &second[12..end]);
        cache.sync(8);
        assert!(cache.answer(&key, end, &second).is_none());
    }
}
