//! Response-rate limiting (RRL) for UDP, after Knot DNS's `rrl` module and NSD's RRL.
//!
//! Why: UDP source addresses can be forged, so an authoritative server is a ready amplifier
//! (a 40-byte query buys a 1232-byte answer sent to the victim). RRL caps the responses per
//! second that go to one client network for one kind of answer. Over the cap, Knot's rule
//! decides: "slip: As attacks using DNS/UDP are usually based on a forged source address, an
//! attacker could deny services to the victim's netblock if all responses would be completely
//! blocked. The idea behind SLIP mechanism is to send each N-th response as truncated, thus
//! allowing client to reconnect via TCP for at least some degree of service." So every
//! `slip`-th limited response goes out truncated (TC=1, the question only, smaller than the
//! query's own answer) and the rest are dropped; `slip` 0 drops them all, 1 truncates them all.
//! TCP is never limited: a TCP client has proven its address with the handshake.
//!
//! The key is (client prefix, response class): IPv4 /24 and IPv6 /56 as Knot's defaults
//! (`ipv4-prefix-length: 24`, `ipv6-prefix-length: 56`), and the class of the response
//! (positive, NODATA or referral, NXDOMAIN, other error, ANY). Knot also folds the query name
//! (or the zone, for NXDOMAIN and wildcards) into the key; r53 keys on the class alone, which
//! is stricter (a random-name flood from one prefix shares one budget) and needs nothing but
//! the response header. A legitimate client that asks more than the rate is told to use TCP.
//!
//! Memory is a fixed table of buckets sized at start (`table_size`, rounded up to a power of
//! two) and never grows, whatever the number of clients: a key hashes (with a per-process
//! random seed, so collisions cannot be aimed) to one bucket; a bucket holding another key is
//! taken over and starts afresh, as Knot does on a collision. Each bucket is a token bucket
//! holding at most one second's worth (`rate`) of responses, refilled continuously.

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Knot's defaults for the client network a bucket covers.
const IPV4_PREFIX: u32 = 24;
const IPV6_PREFIX: u32 = 56;
/// Tokens are counted in thousandths so the refill can be continuous at any rate.
const MILLI: u64 = 1000;
/// The table never exceeds this many buckets, whatever is asked (about 160 MiB).
const MAX_TABLE: usize = 1 << 22;
const HEADER_LEN: usize = 12;

/// How RRL is set up. `rate` 0 turns it off (the default, as in Knot and NSD, where the
/// module or option must be enabled: a rate that suits one deployment starves another).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlConfig {
    /// Responses per second per (client prefix, response class); 0: no limit.
    pub rate: u32,
    /// Every `slip`-th limited response is sent truncated; 0: drop them all.
    pub slip: u32,
    /// Buckets in the table (rounded up to a power of two).
    pub table_size: usize,
}

impl Default for RrlConfig {
    fn default() -> Self {
        Self {
            rate: 0,
            // Knot's default (`slip: 1`) truncates every limited answer; NSD's `rrl-slip`
            // defaults to 2. Two halves the reflected packets and still lets a real client in
            // on its first or second retry.
            slip: 2,
            table_size: 65_536,
        }
    }
}

impl RrlConfig {
    pub fn enabled(&self) -> bool {
        self.rate > 0
    }
}

/// What kind of answer a response is; each kind has its own budget, so a flood of NXDOMAIN
/// answers does not use up a client's positive answers (Knot's classes, simplified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseClass {
    /// NOERROR with answers.
    Positive,
    /// NOERROR without answers: NODATA and referrals.
    Empty,
    NxDomain,
    /// Any other RCODE (FORMERR, SERVFAIL, REFUSED, NOTIMP, …).
    Error,
    /// A QTYPE=ANY question, the classic amplification query.
    Any,
}

impl ResponseClass {
    /// Reads the class from a response on the wire; `None` when it is too short to be one.
    pub fn of(response: &[u8]) -> Option<Self> {
        if response.len() < HEADER_LEN {
            return None;
        }
        let rcode = response[3] & 0x0f;
        let ancount = u16::from_be_bytes([response[6], response[7]]);
        let qdcount = u16::from_be_bytes([response[4], response[5]]);
        if qdcount == 1 {
            if let Some(end) = question_end(response) {
                let qtype = u16::from_be_bytes([response[end - 4], response[end - 3]]);
                if qtype == 255 {
                    return Some(Self::Any);
                }
            }
        }
        Some(match (rcode, ancount) {
            (0, 0) => Self::Empty,
            (0, _) => Self::Positive,
            (3, _) => Self::NxDomain,
            _ => Self::Error,
        })
    }

    fn index(self) -> u64 {
        self as u64
    }
}

/// The offset just past the first question (name, type, class), when it reads cleanly. The
/// first name of a message cannot be compressed (a pointer could only point into the header),
/// so a pointer here means a malformed message.
fn question_end(message: &[u8]) -> Option<usize> {
    let mut at = HEADER_LEN;
    loop {
        let len = *message.get(at)? as usize;
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        at += 1 + len;
    }
    let end = at + 4;
    (end <= message.len()).then_some(end)
}

/// What to do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: send it as it is.
    Send,
    /// Limited, and this one slips: send this truncated form instead.
    Slip(Vec<u8>),
    /// Limited: send nothing.
    Drop,
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The key this bucket counts for (0: never used; keys are forced non-zero).
    key: u64,
    /// Milliseconds since the limiter started, when the tokens were last counted.
    stamp_ms: u64,
    /// Responses left, in thousandths.
    tokens: u64,
    /// Limited responses so far, for the slip count.
    limited: u64,
}

/// The limiter, shared by every UDP socket.
pub struct Rrl {
    config: RrlConfig,
    buckets: Box<[Mutex<Bucket>]>,
    mask: usize,
    seed: u64,
    epoch: Instant,
}

impl std::fmt::Debug for Rrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rrl")
            .field("config", &self.config)
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

impl Rrl {
    /// A limiter, or `None` when `config` turns RRL off.
    pub fn new(config: RrlConfig) -> Option<Self> {
        Self::with_epoch(config, Instant::now())
    }

    /// As [`Rrl::new`], counting time from `epoch` (tests pass their own clock).
    pub fn with_epoch(config: RrlConfig, epoch: Instant) -> Option<Self> {
        if !config.enabled() {
            return None;
        }
        let size = table_len_for(config.table_size);
        let buckets = (0..size).map(|_| Mutex::new(Bucket::default())).collect();
        Some(Self {
            config,
            buckets,
            mask: size - 1,
            seed: rand::random::<u64>(),
            epoch,
        })
    }

    /// Buckets in the table (its memory is fixed at start).
    pub fn table_len(&self) -> usize {
        self.buckets.len()
    }

    /// Decides about `response`, about to be sent over UDP to `client` at `now`.
    pub fn check(&self, client: IpAddr, response: &[u8], now: Instant) -> Verdict {
        let Some(class) = ResponseClass::of(response) else {
            return Verdict::Send;
        };
        match self.count(client, class, now) {
            None => Verdict::Send,
            Some(limited) => {
                let slip = u64::from(self.config.slip);
                if slip > 0 && limited % slip == 0 {
                    match truncated(response) {
                        Some(bytes) => Verdict::Slip(bytes),
                        None => Verdict::Drop,
                    }
                } else {
                    Verdict::Drop
                }
            }
        }
    }

    /// Takes a token for (client's prefix, class). `None`: within the rate; `Some(n)`: this
    /// is the n-th limited response of the bucket (from 1).
    fn count(&self, client: IpAddr, class: ResponseClass, now: Instant) -> Option<u64> {
        let key = self.key(client, class);
        let now_ms = now.saturating_duration_since(self.epoch).as_millis() as u64;
        let capacity = u64::from(self.config.rate) * MILLI;
        let index = (key as usize) & self.mask;
        // A poisoned lock only means another socket task panicked mid-update of plain
        // numbers; the bucket is still usable.
        let mut bucket = self.buckets[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if bucket.key != key {
            *bucket = Bucket {
                key,
                stamp_ms: now_ms,
                tokens: capacity,
                limited: 0,
            };
        } else {
            let elapsed = now_ms.saturating_sub(bucket.stamp_ms);
            // rate per second = rate thousandths per millisecond.
            let refill = elapsed.saturating_mul(u64::from(self.config.rate));
            bucket.tokens = bucket.tokens.saturating_add(refill).min(capacity);
            bucket.stamp_ms = bucket.stamp_ms.max(now_ms);
        }
        if bucket.tokens >= MILLI {
            bucket.tokens -= MILLI;
            None
        } else {
            bucket.limited = bucket.limited.wrapping_add(1);
            Some(bucket.limited)
        }
    }

    fn key(&self, client: IpAddr, class: ResponseClass) -> u64 {
        let prefix: u128 = match client {
            IpAddr::V4(v4) => {
                let bits = u32::from(v4) & (u32::MAX << (32 - IPV4_PREFIX));
                u128::from(bits) | (4u128 << 120)
            }
            IpAddr::V6(v6) => {
                // An IPv4-mapped address is an IPv4 client.
                if let Some(v4) = v6.to_ipv4_mapped() {
                    return self.key(IpAddr::V4(v4), class);
                }
                u128::from(v6) & (u128::MAX << (128 - IPV6_PREFIX))
            }
        };
        let mut h = mix(self.seed ^ class.index());
        h = mix(h ^ (prefix as u64));
        h = mix(h ^ ((prefix >> 64) as u64));
        h.max(1)
    }
}

/// The buckets a table asked to hold `wanted` gets: a power of two, 1 to [`MAX_TABLE`].
fn table_len_for(wanted: usize) -> usize {
    wanted.clamp(1, MAX_TABLE).next_power_of_two()
}

/// SplitMix64's finalizer: a cheap, well-spread 64-bit mix.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The slip form of a response: its header with TC set and no records, and its question
/// (RFC 2181 §9: a client that sees TC retries over TCP). No OPT either, so it is never larger
/// than the query that caused it. `None` when the question does not read cleanly.
pub fn truncated(response: &[u8]) -> Option<Vec<u8>> {
    let qdcount = u16::from_be_bytes([*response.get(4)?, *response.get(5)?]);
    let end = match qdcount {
        0 => HEADER_LEN,
        1 => question_end(response)?,
        _ => return None,
    };
    let mut out = response[..end].to_vec();
    out[2] |= 0x02; // TC
    out[6..12].fill(0); // ANCOUNT, NSCOUNT, ARCOUNT
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RData, Record, RecordType};
    use std::time::Duration;

    fn response(rcode: ResponseCode, answers: usize, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::new(4242, MessageType::Response, OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authoritative = true;
        m.add_query(Query::query(
            Name::from_ascii("www.example.com.").unwrap(),
            qtype,
        ));
        for i in 0..answers {
            m.add_answer(Record::from_rdata(
                Name::from_ascii("www.example.com.").unwrap(),
                300,
                RData::A(std::net::Ipv4Addr::new(192, 0, 2, i as u8).into()),
            ));
        }
        m.to_vec().unwrap()
    }

    fn limiter(rate: u32, slip: u32, table_size: usize) -> (Rrl, Instant) {
        let epoch = Instant::now();
        let mut rrl = Rrl::with_epoch(
            RrlConfig {
                rate,
                slip,
                table_size,
            },
            epoch,
        )
        .expect("enabled");
        // A fixed seed: with a random one, the few prefixes a test uses could share a bucket
        // of the table now and then (a collision resets it) and the counts come out wrong.
        rrl.seed = 0x5eed;
        (rrl, epoch)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn tally(rrl: &Rrl, client: IpAddr, bytes: &[u8], n: usize, at: Instant) -> [usize; 3] {
        let mut out = [0; 3];
        for _ in 0..n {
            match rrl.check(client, bytes, at) {
                Verdict::Send => out[0] += 1,
                Verdict::Slip(_) => out[1] += 1,
                Verdict::Drop => out[2] += 1,
            }
        }
        out
    }

    #[test]
    fn rate_zero_is_off() {
        assert!(Rrl::new(RrlConfig::default()).is_none());
    }

    #[test]
    fn a_burst_gets_rate_answers_then_every_slip_th_truncated() {
        let (rrl, t0) = limiter(10, 2, 1024);
        let ok = response(ResponseCode::NoError, 1, RecordType::A);
        let [sent, slipped, dropped] = tally(&rrl, ip("192.0.2.7"), &ok, 110, t0);
        assert_eq!(sent, 10);
        assert_eq!(slipped, 50);
        assert_eq!(dropped, 50);
    }

    #[test]
    fn tokens_come_back_with_time_but_never_more_than_one_second_of_them() {
        let (rrl, t0) = limiter(10, 0, 1024);
        let ok = response(ResponseCode::NoError, 1, RecordType::A);
        let client = ip("192.0.2.7");
        assert_eq!(tally(&rrl, client, &ok, 20, t0)[0], 10);
        // 100 ms at 10/s: one more.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(tally(&rrl, client, &ok, 5, t1), [1, 0, 4]);
        // A long silence refills to the rate, not beyond.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(tally(&rrl, client, &ok, 30, t2), [10, 0, 20]);
        // A clock that goes backwards (another socket's `now` taken earlier) takes nothing.
        assert_eq!(tally(&rrl, client, &ok, 1, t1), [0, 0, 1]);
    }

    #[test]
    fn slip_zero_drops_all_and_slip_one_truncates_all() {
        let ok = response(ResponseCode::NoError, 1, RecordType::A);
        let (rrl, t0) = limiter(1, 0, 64);
        assert_eq!(tally(&rrl, ip("192.0.2.1"), &ok, 11, t0), [1, 0, 10]);
        let (rrl, t0) = limiter(1, 1, 64);
        assert_eq!(tally(&rrl, ip("192.0.2.1"), &ok, 11, t0), [1, 10, 0]);
    }

    #[test]
    fn clients_share_a_budget_per_prefix_and_not_across_prefixes() {
        let (rrl, t0) = limiter(5, 0, 4096);
        let ok = response(ResponseCode::NoError, 1, RecordType::A);
        // 192.0.2.1 and .200 are one /24.
        assert_eq!(tally(&rrl, ip("192.0.2.1"), &ok, 3, t0)[0], 3);
        assert_eq!(tally(&rrl, ip("192.0.2.200"), &ok, 5, t0)[0], 2);
        // Another /24 has its own.
        assert_eq!(tally(&rrl, ip("192.0.3.1"), &ok, 5, t0)[0], 5);
        // IPv6: one /56, then another.
        assert_eq!(tally(&rrl, ip("2001:db8:0:ff::1"), &ok, 3, t0)[0], 3);
        assert_eq!(tally(&rrl, ip("2001:db8:0:1::2"), &ok, 5, t0)[0], 2);
        assert_eq!(tally(&rrl, ip("2001:db8:0:100::1"), &ok, 5, t0)[0], 5);
        // An IPv4-mapped address counts as its IPv4 client.
        assert_eq!(tally(&rrl, ip("::ffff:192.0.3.9"), &ok, 1, t0)[0], 0);
    }

    #[test]
    fn each_response_class_has_its_own_budget() {
        let (rrl, t0) = limiter(3, 0, 4096);
        let client = ip("198.51.100.1");
        for bytes in [
            response(ResponseCode::NoError, 1, RecordType::A),
            response(ResponseCode::NoError, 0, RecordType::A),
            response(ResponseCode::NXDomain, 0, RecordType::A),
            response(ResponseCode::Refused, 0, RecordType::A),
            response(ResponseCode::NoError, 2, RecordType::ANY),
        ] {
            assert_eq!(tally(&rrl, client, &bytes, 5, t0)[0], 3);
        }
    }

    #[test]
    fn classes_are_read_from_the_wire() {
        let of = |b: &[u8]| ResponseClass::of(b);
        use ResponseClass::*;
        assert_eq!(
            of(&response(ResponseCode::NoError, 2, RecordType::A)),
            Some(Positive)
        );
        assert_eq!(
            of(&response(ResponseCode::NoError, 0, RecordType::MX)),
            Some(Empty)
        );
        assert_eq!(
            of(&response(ResponseCode::NXDomain, 0, RecordType::A)),
            Some(NxDomain)
        );
        assert_eq!(
            of(&response(ResponseCode::ServFail, 0, RecordType::A)),
            Some(Error)
        );
        assert_eq!(
            of(&response(ResponseCode::NoError, 0, RecordType::ANY)),
            Some(Any)
        );
        assert_eq!(of(&[0u8; 5]), None);
    }

    #[test]
    fn the_slip_form_is_the_question_with_tc_and_nothing_else() {
        let full = response(ResponseCode::NoError, 5, RecordType::A);
        let slip = truncated(&full).expect("reads");
        assert!(slip.len() < full.len());
        let m = Message::from_vec(&slip).expect("well-formed");
        assert!(m.metadata.truncation);
        assert!(m.metadata.authoritative);
        assert_eq!(m.metadata.id, 4242);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name().to_ascii(), "www.example.com.");
        assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
        // A compression pointer in the first name is malformed: dropped, not slipped.
        let mut bad = full.clone();
        bad[12] = 0xc0;
        assert_eq!(truncated(&bad), None);
        assert_eq!(truncated(&full[..20]), None);
    }

    #[test]
    fn the_table_is_fixed_and_collisions_reset_rather_than_grow() {
        let (rrl, t0) = limiter(2, 0, 3);
        assert_eq!(rrl.table_len(), 4);
        let ok = response(ResponseCode::NoError, 1, RecordType::A);
        // Ten thousand prefixes through four buckets: memory stays put, and every newcomer
        // that lands on a bucket held by another key starts with a full budget.
        let mut sent = 0;
        for i in 0..10_000u32 {
            let client = IpAddr::V4((0x0a00_0000 + (i << 8)).into());
            sent += tally(&rrl, client, &ok, 1, t0)[0];
        }
        assert_eq!(rrl.table_len(), 4);
        assert!(sent > 9_000, "{sent}");
        // Sizes are clamped.
        assert_eq!(table_len_for(usize::MAX), MAX_TABLE);
        assert_eq!(table_len_for(0), 1);
        assert_eq!(table_len_for(65_536), 65_536);
    }
}
