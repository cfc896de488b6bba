//! The fuzzing harness shared by the `cargo fuzz` target (`fuzz_targets/respond.rs`) and the
//! stable property and flood tests (`tests/it/fuzz.rs`, which includes this file by path):
//! a catalog with public and private zones seen from several VPCs, the client addresses that
//! make up every view, the invariants every response must keep, and a deterministic generator
//! of hostile datagrams.
//!
//! An input is one selector byte followed by the request: the selector picks the client
//! (outside every VPC, in one, in both; IPv4, IPv6, v4-mapped) and the transport, so one
//! crash file replays the same way in `cargo fuzz run` and in the regression test.
//!
//! Private data is marked so that a leak shows in any section: the private twin of
//! example.com (VPC A) uses 10.66.0.0/16, fd66::/16 and names or text containing
//! `private-66`; the private-only zone `private-67.internal.` (VPC B) owns names under itself
//! and uses 10.67.0.0/16, fd67::/16 and the text `private-67-data`.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Once};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use r53::catalog::{Catalog, Endpoints, ZoneIndex};
use r53::dns::{respond, Outcome, RecursionPolicy, Transport, SERVER_UDP_PAYLOAD};
use r53::model::{
    AliasTarget, Endpoint, EndpointAddress, EndpointKind, EndpointZones, HostedZone,
    ResourceRecordSet, Vpc, VpcAssociation,
};

/// The seed zone r53 ships, served publicly.
const PUBLIC_EXAMPLE_COM: &str = include_str!("../../zones/example.com.zone");

/// Public example.org: CNAMEs into both private zones, which outsiders must see end there.
const PUBLIC_EXAMPLE_ORG: &str = "$ORIGIN example.org.\n$TTL 300\n\
    @ SOA ns1.example.org. hostmaster.example.org. 1 7200 900 1209600 300\n\
    @ NS ns1.example.org.\n\
    ns1 A 192.0.2.153\n\
    link CNAME www.example.com.\n\
    corp CNAME www.private-67.internal.\n\
    mx MX 10 mail.example.com.\n";

/// The private twin of example.com (VPC A): same names as the public zone, marked data.
fn private_example_com() -> String {
    let many: String = (1..=60).map(|i| format!("many A 10.66.1.{i}\n")).collect();
    let big: String = (0..14)
        .map(|i| format!("big TXT \"private-66 {i:02} {}\"\n", "x".repeat(120)))
        .collect();
    format!(
        "$ORIGIN example.com.\n$TTL 300\n\
        @ 3600 SOA ns.private-66.example.com. hostmaster.private-66.example.com. 1 7200 900 1209600 300\n\
        @ 3600 NS ns.private-66.example.com.\n\
        @ MX 10 mail\n\
        @ TXT \"private-66\"\n\
        @ A 10.66.0.1\n\
        ns.private-66 A 10.66.0.53\n\
        ns.private-66 AAAA fd66::53\n\
        www A 10.66.0.10\n\
        www AAAA fd66::10\n\
        db A 10.66.0.20\n\
        blog CNAME www\n\
        docs CNAME blog\n\
        loop1 CNAME loop2\n\
        loop2 CNAME loop1\n\
        out CNAME www.private-67.internal.\n\
        mail A 10.66.0.25\n\
        *.apps A 10.66.0.40\n\
        *.apps TXT \"private-66 wildcard\"\n\
        _sip._tcp SRV 0 5 5060 sip\n\
        sip A 10.66.0.30\n\
        svc SVCB 1 svc-host alpn=\"h2\"\n\
        svc-host A 10.66.0.90\n\
        svc-host AAAA fd66::90\n\
        sub NS ns.sub\n\
        ns.sub A 10.66.0.60\n\
        ns.sub AAAA fd66::60\n\
        {many}{big}"
    )
}

/// A private-only zone (VPC B).
const PRIVATE_67: &str = "$ORIGIN private-67.internal.\n$TTL 300\n\
    @ SOA ns hostmaster 1 7200 900 1209600 300\n\
    @ NS ns\n\
    @ TXT \"private-67-data\"\n\
    ns A 10.67.0.53\n\
    ns AAAA fd67::53\n\
    www A 10.67.0.10\n\
    www AAAA fd67::10\n\
    back CNAME www.example.com.\n\
    *.wild A 10.67.0.40\n\
    deleg NS ns.deleg\n\
    ns.deleg A 10.67.0.60\n";

/// One client address of the harness, and which private zones it may see.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    pub address: IpAddr,
    /// In VPC A: sees the private twin of example.com.
    pub sees_66: bool,
    /// In VPC B: sees private-67.internal.
    pub sees_67: bool,
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

const fn v6(segments: [u16; 8]) -> IpAddr {
    let [a, b, c, d, e, f, g, h] = segments;
    IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
}

const fn client(address: IpAddr, sees_66: bool, sees_67: bool) -> Client {
    Client {
        address,
        sees_66,
        sees_67,
    }
}

/// Every view the catalog has: outside (v4, v6, loopback, v4-mapped), VPC A (v4, v6,
/// v4-mapped), VPC B, and A and B at once. Visibility is written out here rather than asked of
/// the catalog, so that a mistake in `Catalog::view` shows as a leak.
pub const CLIENTS: [Client; 9] = [
    client(v4(203, 0, 113, 7), false, false),
    client(v6([0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 7]), false, false),
    client(v4(127, 0, 0, 1), false, false),
    client(v6([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7107]), false, false),
    client(v4(172, 20, 1, 2), true, false),
    client(v6([0, 0, 0, 0, 0, 0xffff, 0xac14, 0x0102]), true, false),
    client(v6([0xfd00, 0x20, 0, 0, 0, 0, 0, 5]), true, false),
    client(v4(172, 21, 3, 4), false, true),
    client(v4(172, 22, 9, 9), true, true),
];

/// The client and transport a selector byte stands for: the low nibble picks the client
/// (modulo their number), the top bit TCP.
pub fn select(selector: u8) -> (Client, Transport) {
    let client = CLIENTS[usize::from(selector & 0x0f) % CLIENTS.len()];
    let transport = if selector & 0x80 != 0 {
        Transport::Tcp
    } else {
        Transport::Udp
    };
    (client, transport)
}

thread_local! {
    /// Set while this thread is inside `respond` for the harness.
    static WATCHING: RefCell<bool> = const { RefCell::new(false) };
    /// The message of a panic caught inside `respond` on this thread.
    static PANICKED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `respond` catches panics (one SERVFAIL, not a dead socket loop), which would hide them
/// from a fuzzer. This hook records a panic that happens on a thread inside the harness and
/// then hands over to the previous hook, so other tests in the same binary are unaffected.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if WATCHING.with(|w| *w.borrow()) {
                PANICKED.with(|p| *p.borrow_mut() = Some(info.to_string()));
            }
            previous(info);
        }));
    });
}

/// Runs `f` and returns the message of any panic on this thread while it ran, caught or not
/// (with [`install_panic_hook`] installed).
pub fn watch<R>(f: impl FnOnce() -> R) -> (R, Option<String>) {
    WATCHING.with(|w| *w.borrow_mut() = true);
    PANICKED.with(|p| p.borrow_mut().take());
    let out = f();
    WATCHING.with(|w| *w.borrow_mut() = false);
    (out, PANICKED.with(|p| p.borrow_mut().take()))
}

/// The catalog under test and the check of one input against it.
pub struct Harness {
    pub catalog: Catalog,
    policy: RecursionPolicy,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("a valid name")
}

fn zone(apex: &str, text: &str, vpc: Option<&str>, extra: Vec<ResourceRecordSet>) -> ZoneIndex {
    let apex = name(apex);
    let parsed = r53::zonefile::parse(text, &apex, apex.to_ascii().as_str()).expect("zone parses");
    let mut hosted = HostedZone::new(&apex, "fuzz", None);
    if let Some(vpc) = vpc {
        hosted.private = true;
        hosted.vpcs = vec![VpcAssociation {
            region: "us-east-1".into(),
            vpc_id: vpc.into(),
        }];
    }
    let mut rrsets = parsed.rrsets;
    rrsets.extend(extra);
    ZoneIndex::build(hosted, rrsets.into_iter().map(std::sync::Arc::new))
}

fn alias(owner: &str, rtype: RecordType, zone_id: &str, target: &str) -> ResourceRecordSet {
    ResourceRecordSet {
        name: name(owner),
        rtype,
        ttl: 0,
        records: Vec::new(),
        alias: Some(Box::new(AliasTarget {
            hosted_zone_id: zone_id.into(),
            dns_name: name(target),
            evaluate_target_health: false,
        })),
        texts: None,
    }
}

impl Harness {
    pub fn new() -> Self {
        install_panic_hook();
        let cidrs = |list: &[&str]| list.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let vpcs = vec![
            Vpc::new(
                "vpc-a",
                &cidrs(&["172.20.0.0/16", "fd00:20::/48", "172.22.0.0/16"]),
            )
            .expect("vpc-a"),
            Vpc::new("vpc-b", &cidrs(&["172.21.0.0/16", "172.22.0.0/16"])).expect("vpc-b"),
        ];
        let endpoint = Endpoint {
            dns_name: name("web.elb.r53.internal."),
            kind: EndpointKind::LoadBalancer,
            addresses: vec![
                EndpointAddress {
                    address: v4(198, 51, 100, 80),
                    healthy: true,
                },
                EndpointAddress {
                    address: v4(198, 51, 100, 81),
                    healthy: false,
                },
            ],
            ttl: 60,
            lease_expires_at: None,
        };
        let zones = [
            zone(
                "example.com.",
                PUBLIC_EXAMPLE_COM,
                None,
                vec![alias(
                    "lb.example.com.",
                    RecordType::A,
                    "ZR53ELBENDPOINTS",
                    "web.elb.r53.internal.",
                )],
            ),
            zone("example.org.", PUBLIC_EXAMPLE_ORG, None, Vec::new()),
            zone(
                "example.com.",
                &private_example_com(),
                Some("vpc-a"),
                vec![alias(
                    "lb.example.com.",
                    RecordType::A,
                    "ZPRIVATE",
                    "db.example.com.",
                )],
            ),
            zone(
                "private-67.internal.",
                PRIVATE_67,
                Some("vpc-b"),
                Vec::new(),
            ),
        ];
        let catalog = Catalog::new(
            zones.into_iter().map(Arc::new),
            Arc::new(vpcs),
            Arc::new(Endpoints::new(EndpointZones::default(), [endpoint])),
        );
        Self {
            catalog,
            policy: RecursionPolicy::default(),
        }
    }

    /// Runs one fuzz input: a selector byte (see [`select`]) and the request.
    pub fn run(&self, data: &[u8]) -> Result<(), String> {
        let Some((&selector, request)) = data.split_first() else {
            return Ok(());
        };
        let (client, transport) = select(selector);
        self.check(client, transport, request).map(|_| ())
    }

    /// Answers `request` as from `client` and checks every invariant; the response on success.
    pub fn check(
        &self,
        client: Client,
        transport: Transport,
        request: &[u8],
    ) -> Result<Option<Vec<u8>>, String> {
        let (outcome, panicked) = watch(|| {
            respond(
                &self.catalog,
                request,
                transport,
                client.address,
                &self.policy,
            )
        });
        if let Some(message) = panicked {
            return Err(format!("panic inside respond: {message}"));
        }
        let response = match outcome {
            None => {
                // Only short messages and responses may be dropped.
                if request.len() >= 12 && request[2] & 0x80 == 0 {
                    return Err("a query was dropped without an answer".into());
                }
                return Ok(None);
            }
            Some(Outcome::Recurse(_)) => return Err("asked to recurse with no resolver".into()),
            Some(Outcome::Reply(bytes)) => bytes,
        };
        if request.len() < 12 || request[2] & 0x80 != 0 {
            return Err("answered a short message or a response".into());
        }
        check_response(request, transport, &response)?;
        check_no_leak(client, &response)?;
        Ok(Some(response))
    }
}

/// The UDP size limit a request earns: the EDNS payload clamped to 512..1232, else 512.
fn udp_limit(request: &[u8]) -> usize {
    match Message::from_vec(request) {
        Ok(m) => m.edns.map_or(512, |e| {
            usize::from(e.max_payload().clamp(512, SERVER_UDP_PAYLOAD))
        }),
        // An unreadable request gets a header and at most its question back.
        Err(_) => 512,
    }
}

/// The invariants of any response to any request, whoever asked: it reads as a DNS message,
/// it is a response with the request's ID, opcode and RD, it fits the transport, it is not a
/// SERVFAIL (with no resolver, only a caught panic makes one), and it echoes at most the
/// request's question.
pub fn check_response(request: &[u8], transport: Transport, response: &[u8]) -> Result<(), String> {
    if response.len() < 12 {
        return Err(format!("response shorter than a header: {response:02x?}"));
    }
    if response[..2] != request[..2] {
        return Err("response ID differs from the query's".into());
    }
    if response[2] & 0x80 == 0 {
        return Err("QR clear in a response".into());
    }
    if (response[2] >> 3) & 0x0f != (request[2] >> 3) & 0x0f {
        return Err("opcode not copied".into());
    }
    if response[2] & 0x01 != request[2] & 0x01 {
        return Err("RD not copied".into());
    }
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => udp_limit(request),
    };
    if response.len() > limit {
        return Err(format!(
            "response of {} bytes over the limit of {limit}",
            response.len()
        ));
    }
    let parsed = Message::from_vec(response).map_err(|e| format!("response unreadable: {e}"))?;
    if parsed.metadata.response_code == ResponseCode::ServFail {
        return Err("SERVFAIL without a resolver (a caught panic)".into());
    }
    if parsed.queries.len() > 1 {
        return Err("more than one question in a response".into());
    }
    if let (Some(asked), Ok(request)) = (parsed.queries.first(), Message::from_vec(request)) {
        if request.queries.first() != Some(asked) {
            return Err(format!("response question {asked} is not the request's"));
        }
    }
    Ok(())
}

/// Whether `record` holds data of the private twin of example.com.
fn is_private_66(record: &Record) -> bool {
    let text = format!("{} {}", record.name, record.data).to_ascii_lowercase();
    match &record.data {
        RData::A(a) => a.0.octets()[..2] == [10, 66],
        RData::AAAA(a) => a.0.segments()[0] == 0xfd66,
        _ => text.contains("private-66"),
    }
}

/// Whether `record` holds data of private-67.internal.
fn is_private_67(record: &Record) -> bool {
    let zone = name("private-67.internal.");
    match &record.data {
        RData::A(a) => a.0.octets()[..2] == [10, 67],
        RData::AAAA(a) => a.0.segments()[0] == 0xfd67,
        data => {
            zone.zone_of(&record.name.to_lowercase())
                || data.to_string().contains("private-67-data")
        }
    }
}

/// A client outside a private zone's VPCs never gets a record of it, in any section.
pub fn check_no_leak(client: Client, response: &[u8]) -> Result<(), String> {
    let parsed = Message::from_vec(response).map_err(|e| format!("response unreadable: {e}"))?;
    let sections = [&parsed.answers, &parsed.authorities, &parsed.additionals];
    for record in sections.into_iter().flatten() {
        if !client.sees_66 && is_private_66(record) {
            return Err(format!("{} got private-66 data: {record}", client.address));
        }
        if !client.sees_67 && is_private_67(record) {
            return Err(format!("{} got private-67 data: {record}", client.address));
        }
    }
    Ok(())
}

/// xorshift64*: deterministic, seedable, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Query names worth asking: every answer path in the harness zones, and some odd ones.
const NAMES: &[&str] = &[
    "example.com",
    "www.example.com",
    "WwW.ExAmPlE.cOm",
    "docs.example.com",
    "blog.example.com",
    "x.apps.example.com",
    "*.apps.example.com",
    "a.b.sub.example.com",
    "sub.example.com",
    "host.dept.corp.example.com",
    "corp.example.com",
    "nothing.example.com",
    "_sip._tcp.example.com",
    "ns1.example.com",
    "ns.private-66.example.com",
    "many.example.com",
    "big.example.com",
    "loop1.example.com",
    "out.example.com",
    "svc.example.com",
    "lb.example.com",
    "db.example.com",
    "private-67.internal",
    "www.private-67.internal",
    "back.private-67.internal",
    "x.wild.private-67.internal",
    "a.deleg.private-67.internal",
    "link.example.org",
    "corp.example.org",
    "mx.example.org",
    "web.elb.r53.internal",
    "nope.elb.r53.internal",
    "rds.r53.internal",
    "example.net",
    "com",
    "",
];

/// Query types: the common ones, meta-types and reserved values.
const TYPES: &[u16] = &[
    1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 43, 44, 52, 64, 65, 99, 255, 0, 41, 250, 251, 252, 253,
    254, 46, 48, 257, 65535,
];
const CLASSES: &[u16] = &[1, 1, 1, 1, 255, 3, 4, 254, 0, 65535];

/// Encodes a dotted name as labels (no compression); bytes outside ASCII are allowed.
pub fn encode_name(text: &str, out: &mut Vec<u8>) {
    for label in text.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len().min(63) as u8);
        out.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    out.push(0);
}

/// A well-formed query; `edns`: (payload, DO, version, options).
pub fn query_bytes(
    id: u16,
    flags: u16,
    qname: &str,
    qtype: u16,
    qclass: u16,
    edns: Option<(u16, bool, u8, &[u8])>,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    encode_name(qname, &mut m);
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&qclass.to_be_bytes());
    if let Some((payload, dnssec_ok, version, options)) = edns {
        push_opt(&mut m, payload, dnssec_ok, version, options);
    }
    m
}

fn push_opt(m: &mut Vec<u8>, payload: u16, dnssec_ok: bool, version: u8, options: &[u8]) {
    m.push(0);
    m.extend_from_slice(&41u16.to_be_bytes());
    m.extend_from_slice(&payload.to_be_bytes());
    m.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
    m.extend_from_slice(&(options.len() as u16).to_be_bytes());
    m.extend_from_slice(options);
}

/// A plausible query: a name from [`NAMES`], a type, a class, maybe EDNS.
pub fn seed_query(rng: &mut Rng) -> Vec<u8> {
    let id = rng.next_u64() as u16;
    // Mostly a plain QUERY with or without RD; sometimes any flags but QR.
    let flags = if rng.chance(8) {
        (rng.next_u64() as u16) & 0x7fff
    } else if rng.chance(2) {
        0x0100
    } else {
        0
    };
    let qname = *rng.pick(NAMES);
    let qtype = if rng.chance(10) {
        rng.next_u64() as u16
    } else {
        *rng.pick(TYPES)
    };
    let qclass = *rng.pick(CLASSES);
    // Mostly well formed: broken options are the mutations' job, and a FORMERR ends the path.
    let options: Vec<u8> = match rng.below(16) {
        0..=9 => Vec::new(),
        // A cookie (option 10), well formed.
        10..=12 => [&[0, 10, 0, 8][..], &rng.bytes(8)].concat(),
        // An option whose length runs past the OPT's data.
        13 => vec![0, 10, 0xff, 0xff, 1, 2],
        _ => {
            let n = rng.below(40);
            rng.bytes(n)
        }
    };
    let edns = match rng.below(3) {
        0 => None,
        _ => Some((
            *rng.pick(&[0u16, 1, 511, 512, 1232, 1400, 4096, 65535]),
            rng.chance(2),
            if rng.chance(8) { rng.byte() } else { 0 },
            &options[..],
        )),
    };
    query_bytes(id, flags, qname, qtype, qclass, edns)
}

/// Where each label length byte of the first question's name is (uncompressed names only).
fn label_offsets(m: &[u8]) -> Vec<usize> {
    let mut at = 12;
    let mut out = Vec::new();
    while at < m.len() && m[at] != 0 && m[at] < 64 && out.len() < 128 {
        out.push(at);
        at += 1 + usize::from(m[at]);
    }
    out
}

fn set_u16(m: &mut [u8], at: usize, value: u16) {
    if at + 2 <= m.len() {
        m[at..at + 2].copy_from_slice(&value.to_be_bytes());
    }
}

/// A compression pointer to `target` (14 bits).
fn pointer(target: usize) -> [u8; 2] {
    [0xc0 | ((target >> 8) as u8 & 0x3f), target as u8]
}

/// One random change to a message: the damage a hostile or broken sender does.
pub fn mutate(rng: &mut Rng, m: &mut Vec<u8>) {
    let len = m.len();
    match rng.below(16) {
        // Bit flips.
        0 | 1 if len > 0 => {
            for _ in 0..=rng.below(4) {
                let at = rng.below(len);
                m[at] ^= 1 << rng.below(8);
            }
        }
        // A random byte.
        2 if len > 0 => {
            let at = rng.below(len);
            m[at] = rng.byte();
        }
        // Truncation.
        3 if len > 0 => m.truncate(rng.below(len)),
        // Garbage after the message.
        4 => {
            let n = 1 + rng.below(64);
            m.extend(rng.bytes(n));
        }
        // A huge or odd count in the header.
        5 => {
            let at = 4 + 2 * rng.below(4);
            let value = *rng.pick(&[0u16, 1, 2, 3, 255, 256, 0x7fff, 0xffff]);
            set_u16(m, at, value);
        }
        // A compression pointer to itself in place of the question name.
        6 if len >= 14 => m[12..14].copy_from_slice(&pointer(12)),
        // A pointer loop: two labels in, point back to the start of the name; or two pointers
        // pointing at each other.
        7 if len >= 16 => {
            let labels = label_offsets(m);
            match labels.get(1) {
                Some(&at) if rng.chance(2) && at + 2 <= len => {
                    m[at..at + 2].copy_from_slice(&pointer(12))
                }
                _ => {
                    m[12..14].copy_from_slice(&pointer(14));
                    m[14..16].copy_from_slice(&pointer(12));
                }
            }
        }
        // A pointer forward, past the end, or into the header.
        8 if len >= 14 => {
            let labels = label_offsets(m);
            let at = labels
                .get(rng.below(labels.len().max(1)))
                .copied()
                .unwrap_or(12);
            let target = match rng.below(4) {
                0 => len + rng.below(100),
                1 => at + 2 + rng.below(8),
                2 => rng.below(12),
                _ => rng.below(0x4000),
            };
            if at + 2 <= len {
                m[at..at + 2].copy_from_slice(&pointer(target));
            }
        }
        // A label length past the end of the message, or a reserved label type (0x40, 0x80).
        9 if len > 12 => {
            let labels = label_offsets(m);
            let at = labels.last().copied().unwrap_or(12).min(len - 1);
            m[at] = match rng.below(4) {
                0 => 63,
                1 => (len - at).min(63) as u8,
                2 => 0x40 | rng.byte() & 0x3f,
                _ => 0x80 | rng.byte() & 0x3f,
            };
            if rng.chance(2) {
                m.truncate(at + 1 + rng.below(4));
            }
        }
        // A name over 255 bytes: many labels in place of the question name.
        10 => {
            let mut q = m.get(..12).map_or_else(|| vec![0; 12], <[u8]>::to_vec);
            q[2] &= 0x7f;
            set_u16(&mut q, 4, 1);
            let labels = 100 + rng.below(60);
            for _ in 0..labels {
                q.extend_from_slice(&[1, b'a' + rng.below(26) as u8]);
            }
            q.extend_from_slice(&[0, 0, 1, 0, 1]);
            *m = q;
        }
        // A second OPT, an OPT whose RDLENGTH runs past the end, or one with a non-root owner.
        11 => {
            set_u16(m, 10, rng.below(3) as u16 + 1);
            match rng.below(3) {
                0 => push_opt(m, 1232, false, 0, &[]),
                1 => {
                    push_opt(m, 1232, true, 0, &[]);
                    let n = m.len();
                    set_u16(m, n - 2, 0x0400);
                }
                _ => {
                    m.extend_from_slice(&pointer(12));
                    m.extend_from_slice(&[0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
                }
            }
        }
        // A record in the answer or authority section of a query, of a random type.
        12 => {
            set_u16(m, 6 + 2 * rng.below(2), 1);
            m.extend_from_slice(&pointer(12));
            let rtype = *rng.pick(&[1u16, 2, 5, 6, 24, 41, 46, 250, 251, 252, 65535]);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 1, 0]);
            let n = rng.below(30);
            let rdata = rng.bytes(n);
            let rdlength = if rng.chance(3) {
                rng.next_u64() as u16
            } else {
                rdata.len() as u16
            };
            m.extend_from_slice(&rdlength.to_be_bytes());
            m.extend(rdata);
        }
        // A second copy of the question.
        13 if len > 12 => {
            let question = m[12..].to_vec();
            m.extend(question);
            set_u16(m, 4, 2);
        }
        // Another opcode, or the QR bit (a response: dropped).
        14 if len > 2 => {
            m[2] = (m[2] & 0x87) | (rng.below(16) as u8) << 3;
            if rng.chance(8) {
                m[2] |= 0x80;
            }
        }
        // Splice: the head of this message with the tail of another.
        _ => {
            let other = seed_query(rng);
            let cut = rng.below(m.len() + 1);
            let from = rng.below(other.len() + 1);
            m.truncate(cut);
            m.extend_from_slice(&other[from..]);
        }
    }
}

/// One hostile datagram: pure noise one time in ten, else a plausible query with one to four
/// mutations (one in five left intact, so that the answering paths get their share: most
/// mutations make a message unreadable, and FORMERR is a short path).
pub fn datagram(rng: &mut Rng) -> Vec<u8> {
    if rng.chance(10) {
        let n = rng.below(600);
        let mut m = rng.bytes(n);
        // Mostly queries: a set QR bit would be dropped before any parsing.
        if m.len() > 2 && !rng.chance(8) {
            m[2] &= 0x7f;
        }
        return m;
    }
    let mut m = seed_query(rng);
    if rng.chance(5) {
        return m;
    }
    let mutations = if rng.chance(2) { 1 } else { 2 + rng.below(3) };
    for _ in 0..mutations {
        mutate(rng, &mut m);
    }
    m
}
