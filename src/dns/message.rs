//! One query in, one response out: parsing a request, the checks an authoritative server makes
//! before looking anything up, and composing the response on the wire.
//!
//! The order of checks follows hickory's catalog and RFC 6891: header, message type, opcode,
//! question count, EDNS version, question type and class, then the catalog. Nothing here does
//! IO; the socket loops in `server` call [`respond`]. What is answered where Knot DNS and r53
//! could differ is pinned by `tests/it/knot_diff.rs`.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, TSIG};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use super::cache::Countdown;
use super::compress::{self, Names};
use crate::catalog::{Answer, Catalog, Rrset, Section, SharedCatalog, View};
use crate::resolver::{dangling, Cached, Freshness, Resolved, Resolver};

/// The UDP payload size r53 advertises and the most it sends (the DNS Flag Day 2020 figure).
pub const SERVER_UDP_PAYLOAD: u16 = 1232;
/// RFC 1035 §4.2.1: the most a UDP response may carry without EDNS.
pub(crate) const PLAIN_UDP_LIMIT: u16 = 512;
const HEADER_LEN: usize = 12;
/// Our OPT record: root owner, type, class (payload), TTL (flags), RDLENGTH, no options.
const OPT_LEN: u16 = 11;
/// The CD bit in the header's fourth byte (RFC 4035 §3.2.2).
pub(crate) const CD: u8 = 0x10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Who may have questions resolved recursively, and by what.
#[derive(Debug, Clone, Default)]
pub struct RecursionPolicy {
    /// `None`: r53 answers for its own zones only.
    pub resolver: Option<Arc<Resolver>>,
    /// Networks allowed to recurse; `None` means loopback plus every VPC's CIDRs.
    pub allow: Option<Vec<IpNet>>,
}

impl RecursionPolicy {
    /// Whether `client` may have a question resolved (r53 is never an open resolver).
    pub(crate) fn allows(&self, catalog: &Catalog, client: IpAddr) -> bool {
        if self.resolver.is_none() {
            return false;
        }
        match &self.allow {
            Some(nets) => nets.iter().any(|n| n.contains(&client)),
            None => client.is_loopback() || catalog.in_any_vpc(client),
        }
    }
}

/// What an answer depends on about the client, worked out once per query.
pub struct ClientContext {
    /// The VPCs the client is in: which private zones it sees.
    pub view: View,
    /// Whether it may have questions resolved (RD aside).
    pub may_recurse: bool,
    /// Its address, for a view in a later catalog (a resolved answer that leads back into
    /// r53's zones).
    pub address: IpAddr,
}

impl ClientContext {
    pub fn new(catalog: &Catalog, client: IpAddr, recursion: &RecursionPolicy) -> Self {
        Self {
            address: client,
            view: catalog.view(client),
            may_recurse: recursion.allows(catalog, client),
        }
    }
}

/// What to do with a request.
pub enum Outcome {
    /// Send these bytes.
    Reply(Vec<u8>),
    /// Resolve a name through the embedded resolver first ([`Recursion::run`]), then send.
    /// Boxed: it carries the parsed request, and the common case is `Reply`.
    Recurse(Box<Recursion>),
}

/// Answers one request. `None` means drop it silently: shorter than a header, or itself a
/// response (answering responses would make r53 a reflector).
/// `client` is the source address: it decides which private zones the answer may come from,
/// and whether the resolver may be asked.
pub fn respond(
    catalog: &Catalog,
    request: &[u8],
    transport: Transport,
    client: IpAddr,
    recursion: &RecursionPolicy,
) -> Option<Outcome> {
    let context = ClientContext::new(catalog, client, recursion);
    respond_noting(catalog, request, transport, &context, recursion, &mut false)
}

/// [`respond`] for a client whose context is known, also setting `reusable` when the reply is
/// an answer from the catalog that depends on nothing but the snapshot and the question (so a
/// response cache may keep it).
pub fn respond_noting(
    catalog: &Catalog,
    request: &[u8],
    transport: Transport,
    client: &ClientContext,
    recursion: &RecursionPolicy,
    reusable: &mut bool,
) -> Option<Outcome> {
    *reusable = false;
    if request.len() < HEADER_LEN {
        return None;
    }
    // QR is the top bit of byte 2.
    if request[2] & 0x80 != 0 {
        return None;
    }
    // A bug in decoding or answering must cost one answer, never the socket loop that called
    // us (a panic would end that loop's task and with it the socket). The catalog is an
    // immutable snapshot, so nothing is left half-changed by an unwind.
    let answered = catch_unwind(AssertUnwindSafe(|| {
        parse_and_answer(catalog, request, transport, client, recursion, reusable)
    }));
    Some(
        answered
            .unwrap_or_else(|_| Outcome::Reply(error_from_raw(request, ResponseCode::ServFail))),
    )
}

fn parse_and_answer(
    catalog: &Catalog,
    request: &[u8],
    transport: Transport,
    client: &ClientContext,
    recursion: &RecursionPolicy,
    reusable: &mut bool,
) -> Outcome {
    let id = u16::from_be_bytes([request[0], request[1]]);
    let message = match read_request(request) {
        Some(m) => m,
        // hickory reads a Client Subnet option (RFC 7871) into an address and fails the whole
        // message when it cannot: an unknown family, a prefix longer than the address, the
        // option cut short. r53 does not use the option, and RFC 6891 §6.1.2 has options a
        // responder does not understand ignored, as Knot and NSD (ECS not configured) ignore
        // it and answer. So the message is read again with those options renamed to a code
        // hickory keeps as opaque bytes; only a message that failed pays for the copy.
        None => match without_client_subnet(request)
            .as_deref()
            .and_then(read_request)
        {
            Some(m) => m,
            None => return Outcome::Reply(error_from_raw(request, ResponseCode::FormErr)),
        },
    };
    respond_to(catalog, message, id, transport, client, recursion, reusable)
}

/// The request read whole, or `None` when it is malformed.
fn read_request(request: &[u8]) -> Option<Message> {
    let mut decoder = BinDecoder::new(request);
    match Message::read(&mut decoder) {
        // Bytes after the last record the header counts make the message malformed too
        // (Knot answers FORMERR to them as well).
        // So do EDNS options that overrun their OPT record, which hickory drops quietly.
        // So does a question whose name is a pointer, or ends in one.
        Ok(m)
            if decoder.is_empty()
                && (m.edns.is_none() || edns_options_fit(request))
                && (m.queries.is_empty() || question_name_is_plain(request)) =>
        {
            Some(m)
        }
        _ => None,
    }
}

/// Whether the first question's name is written out, without a compression pointer. RFC 1035
/// §4.1.4 lets a pointer stand for "a prior occurance of the same name", and no name comes
/// before the first question: a pointer there reaches into the header (hickory reads the
/// bytes there as labels) or back into the name itself. Knot drops such a query, NSD answers
/// FORMERR.
fn question_name_is_plain(request: &[u8]) -> bool {
    let mut at = HEADER_LEN;
    while let Some(&len) = request.get(at) {
        match len {
            0 => return true,
            1..=63 => at += 1 + usize::from(len),
            _ => return false,
        }
    }
    false
}

/// EDNS option code 8, Client Subnet (RFC 7871).
const CLIENT_SUBNET: u16 = 8;

/// A copy of `request` with every Client Subnet option's code replaced by 65535 (reserved,
/// RFC 6891 §9), which hickory keeps as an unknown option; `None` when it has none.
fn without_client_subnet(request: &[u8]) -> Option<Vec<u8>> {
    let mut at = Vec::new();
    walk_edns_options(request, |offset, code| {
        if code == CLIENT_SUBNET {
            at.push(offset);
        }
    });
    if at.is_empty() {
        return None;
    }
    let mut copy = request.to_vec();
    for offset in at {
        copy[offset..offset + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    }
    Some(copy)
}

/// Whether the options of every OPT record in `request` (one that hickory read whole) fill
/// its RDATA exactly, each option's data as long as its length says (RFC 6891 §6.1.2).
fn edns_options_fit(request: &[u8]) -> bool {
    walk_edns_options(request, |_, _| {})
}

/// Walks the options of every OPT record in `request`, telling `visit` where each option's
/// code is and what it is; false when the message or an option is cut short (an option
/// whose data overruns its OPT record included).
fn walk_edns_options(request: &[u8], mut visit: impl FnMut(usize, u16)) -> bool {
    let mut walk = || -> Result<bool, hickory_proto::ProtoError> {
        let mut d = BinDecoder::new(request);
        d.read_slice(4)?;
        let mut counts = [0u16; 4];
        for count in &mut counts {
            *count = d.read_u16()?.unverified(/*a count; each record is read in turn*/);
        }
        for _ in 0..counts[0] {
            Query::read(&mut d)?;
        }
        let records = counts[1..].iter().map(|&c| usize::from(c)).sum::<usize>();
        for _ in 0..records {
            Name::read(&mut d)?;
            let rtype = d.read_u16()?.unverified(/*compared only*/);
            d.read_slice(6)?; // class, TTL
            let len = usize::from(d.read_u16()?.unverified(/*read as a slice, bounds-checked*/));
            let mut offset = d.index();
            let mut rdata = d.read_slice(len)?.unverified(/*walked below, bounds-checked*/);
            if rtype != u16::from(RecordType::OPT) {
                continue;
            }
            while !rdata.is_empty() {
                let [code_high, code_low, high, low, rest @ ..] = rdata else {
                    return Ok(false);
                };
                let option_len = usize::from(u16::from_be_bytes([*high, *low]));
                if rest.len() < option_len {
                    return Ok(false);
                }
                visit(offset, u16::from_be_bytes([*code_high, *code_low]));
                offset += 4 + option_len;
                rdata = &rest[option_len..];
            }
        }
        Ok(true)
    };
    walk().unwrap_or(false)
}

/// Appends to the composed response `out` the TSIG record of an unsigned BADKEY error for the
/// request signed with `tsig` (RFC 8945 §5.2 and §5.3.2: the key's and algorithm's names,
/// the request's time and fudge, no MAC, the request's ID), counting it in ARCOUNT.
fn push_badkey_tsig(out: &mut Vec<u8>, tsig: &Record<TSIG>, id: u16) {
    let signed = &tsig.data;
    let badkey = TSIG::new(
        signed.algorithm.clone(),
        signed.time,
        signed.fudge,
        Vec::new(),
        id,
        Some(TsigError::BadKey),
        Vec::new(),
    );
    let mut record = Record::from_rdata(tsig.name.clone(), 0, RData::TSIG(badkey));
    record.dns_class = DNSClass::ANY;
    let arcount = u16::from_be_bytes([out[10], out[11]]).checked_add(1);
    if let (Ok(bytes), Some(arcount)) = (record.to_bytes(), arcount) {
        out.extend_from_slice(&bytes);
        out[10..12].copy_from_slice(&arcount.to_be_bytes());
    }
}

/// An error for a message that could not be read whole: the ID, opcode and RD echoed (RFC
/// 1035 §4.1.1), and the question when it reads cleanly, so that the client can match the
/// response to its query (Knot does the same). No OPT: the EDNS part may be what is broken.
fn error_from_raw(request: &[u8], rcode: ResponseCode) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    out.extend_from_slice(&request[..HEADER_LEN]);
    // QR=1, opcode and RD kept from the request; AA, TC, RA, Z, AD, CD clear.
    out[2] = 0x80 | (request[2] & 0x79);
    out[3] = rcode.low() & 0x0f;
    out[4..HEADER_LEN].fill(0);
    let qdcount = u16::from_be_bytes([request[4], request[5]]);
    if qdcount == 1 {
        // Decode over the whole message: compression pointers count from its first byte.
        let mut decoder = BinDecoder::new(request);
        let question = decoder
            .read_slice(HEADER_LEN)
            .ok()
            .and_then(|_| Query::read(&mut decoder).ok())
            .and_then(|q| q.to_bytes().ok());
        if let Some(question) = question {
            out.extend_from_slice(&question);
            out[5] = 1;
        }
    }
    out
}

fn respond_to(
    catalog: &Catalog,
    request: Message,
    id: u16,
    transport: Transport,
    client: &ClientContext,
    recursion: &RecursionPolicy,
    reusable: &mut bool,
) -> Outcome {
    let reply = answer_locally(
        catalog, &request, id, transport, client, recursion, reusable,
    );
    match reply {
        Local::Reply(bytes) => Outcome::Reply(bytes),
        Local::Recurse {
            name,
            prefix,
            volatile,
        } => match &recursion.resolver {
            Some(resolver) => Outcome::Recurse(Box::new(Recursion {
                qtype: request.queries[0].query_type(),
                request,
                id,
                transport,
                name,
                prefix,
                volatile,
                client: client.address,
                resolver: resolver.clone(),
            })),
            // `Recurse` is only decided with a resolver present.
            None => Outcome::Reply(Response::new(&request, id).error(ResponseCode::Refused)),
        },
    }
}

/// The local part of answering: from r53's zones, or the decision to ask the resolver.
enum Local {
    Reply(Vec<u8>),
    /// Resolve `name`; `prefix` is the CNAME chain from r53's zones that led to it, and
    /// `volatile` says whether that chain depends on the clock (see `Answer::volatile`).
    Recurse {
        name: Name,
        prefix: Vec<(Name, Rrset)>,
        volatile: bool,
    },
}

fn answer_locally(
    catalog: &Catalog,
    request: &Message,
    id: u16,
    transport: Transport,
    client: &ClientContext,
    recursion: &RecursionPolicy,
    reusable: &mut bool,
) -> Local {
    let mut response = Response::new(request, id);
    // RFC 1035 §4.1.1: RA "denotes whether recursive query support is available in the name
    // server". It is for a client allowed to recurse, whatever this answer needed, so every
    // response to such a client says so (as BIND and Unbound do); without it `dig` warns
    // "recursion requested but not available" on r53's own answers and stubs may look
    // elsewhere. Other clients never see RA.
    response.recursion_available = client.may_recurse;
    // RFC 8945 §5.2: r53 holds no TSIG keys, so a signed request's key is unknown: NOTAUTH,
    // with an unsigned TSIG that says BADKEY. (An unsigned answer would tell the client
    // nothing about why its signature is missing.)
    if let Some(tsig) = request.signature() {
        let mut out = response.error(ResponseCode::NotAuth);
        push_badkey_tsig(&mut out, tsig, id);
        return Local::Reply(out);
    }
    if request.metadata.op_code != OpCode::Query {
        return Local::Reply(response.error(ResponseCode::NotImp));
    }
    // RFC 9619: a QUERY carries exactly one question.
    if request.queries.len() != 1 {
        response.question = None;
        return Local::Reply(response.error(ResponseCode::FormErr));
    }
    if let Some(edns) = &request.edns {
        // RFC 6891 §6.1.3: a version we do not implement gets BADVERS and our version.
        if edns.version() > 0 {
            return Local::Reply(response.error(ResponseCode::BADVERS));
        }
    }
    let query = &request.queries[0];
    let qtype = query.query_type();
    let class = query.query_class();
    // A class no one here answers in is refused before the type is looked at, as Knot does
    // (class CH, which Knot answers, goes on to the type's checks and is refused below).
    if !matches!(class, DNSClass::IN | DNSClass::ANY | DNSClass::CH) {
        return Local::Reply(response.error(ResponseCode::Refused));
    }
    match (qtype, transport) {
        // RFC 5936 §4.2: "AXFR sessions over UDP transport are not defined", so not
        // implemented (Knot answers NOTIMP too).
        (RecordType::AXFR, Transport::Udp) => {
            return Local::Reply(response.error(ResponseCode::NotImp))
        }
        // Zone transfers are not offered to anyone (yet): a policy refusal, RFC 1035 §4.1.1
        // "Refused ... for policy reasons". (RFC 5936 §2.2.1 keeps NotAuth for zones the
        // server is not authoritative for; Knot, refusing by ACL, says NotAuth.)
        (RecordType::AXFR | RecordType::IXFR, _) => {
            return Local::Reply(response.error(ResponseCode::Refused))
        }
        // RFC 6895 §3.1: type 0 is reserved and never names data, so there is nothing to look
        // up (Knot answers NOTIMP as well). Other types with no data here, meta-types such
        // as OPT included, get the ordinary NODATA, as from Knot.
        (RecordType::ZERO, _) => return Local::Reply(response.error(ResponseCode::NotImp)),
        _ => {}
    }
    match class {
        // RFC 1035 §3.2.5: QCLASS 255 (*) is "any class", and all of r53's data is class IN.
        DNSClass::IN | DNSClass::ANY => {}
        // r53 serves class IN only.
        _ => return Local::Reply(response.error(ResponseCode::Refused)),
    }
    let view = &client.view;
    let recursive = request.metadata.recursion_desired && client.may_recurse;
    // Route 53 Resolver: "If a query matches both a forwarding rule and a private hosted
    // zone, the forwarding rule wins".
    if recursive
        && recursion
            .resolver
            .as_ref()
            .is_some_and(|r| r.forwards(query.name()))
    {
        return Local::Recurse {
            name: query.name().clone(),
            prefix: Vec::new(),
            volatile: false,
        };
    }
    let answer = catalog.answer(query.name(), qtype, view);
    if recursive {
        // A name in no zone this client sees goes to the resolver, and so does the rest of
        // a CNAME chain that leaves r53's zones (RFC 1034 §4.3.2 step 3a restarts there).
        if answer.rcode == ResponseCode::Refused {
            return Local::Recurse {
                name: query.name().clone(),
                prefix: Vec::new(),
                volatile: false,
            };
        }
        let tail = answer
            .answers
            .last()
            .and_then(|s| match s.rrset.records.first() {
                Some(RData::CNAME(c)) if s.rrset.rtype == RecordType::CNAME => Some(&c.0),
                _ => None,
            });
        if let Some(target) = tail {
            if answer.rcode == ResponseCode::NoError
                && qtype != RecordType::CNAME
                && catalog.find_zone(target, view).is_none()
            {
                return Local::Recurse {
                    name: target.clone(),
                    prefix: answer
                        .answers
                        .iter()
                        .map(|s| (s.owner.as_ref().clone(), s.rrset.as_ref().clone()))
                        .collect(),
                    volatile: answer.volatile,
                };
            }
        }
    }
    let limit = size_limit(request, transport);
    *reusable = !answer.volatile;
    Local::Reply(response.compose(&answer, limit))
}

/// The size limit for a response: 65535 on TCP; on UDP the client's EDNS size clamped to
/// 512..1232, or 512 without EDNS.
fn size_limit(request: &Message, transport: Transport) -> u16 {
    match transport {
        Transport::Tcp => u16::MAX,
        Transport::Udp => match &request.edns {
            Some(edns) => edns
                .max_payload()
                .clamp(PLAIN_UDP_LIMIT, SERVER_UDP_PAYLOAD),
            None => PLAIN_UDP_LIMIT,
        },
    }
}

/// A question on its way to the resolver, with what is needed to answer it afterwards.
pub struct Recursion {
    request: Message,
    id: u16,
    transport: Transport,
    name: Name,
    qtype: RecordType,
    prefix: Vec<(Name, Rrset)>,
    /// The prefix depends on the clock: the response must not be reused.
    volatile: bool,
    /// The asker's address: which private zones it sees.
    client: IpAddr,
    resolver: Arc<Resolver>,
}

impl Recursion {
    /// Resolves and composes the response: RA set, AA clear (the answer is not all r53's
    /// own), the CNAME chain from r53's zones first. An upstream's chain that leads back
    /// into r53's zones is completed from the `catalog` of the moment.
    pub async fn run(self, catalog: &SharedCatalog) -> Vec<u8> {
        let resolved = self.resolver.resolve(&self.name, self.qtype).await;
        let resolved = self.completed_locally(resolved, &catalog.load());
        self.finish(&resolved, None).0
    }

    /// `resolved`, when it ends in a CNAME to a name in a zone the asker sees, completed from
    /// that zone (RFC 1034 §4.3.2 step 3a restarts the query at the target, which r53 is
    /// authoritative for; the resolver does not chase those, see
    /// `Resolver::set_local_names`). The target's rcode and negative SOA replace the
    /// resolver's. A target in no zone the asker sees is left as it is.
    fn completed_locally(&self, mut resolved: Resolved, catalog: &Catalog) -> Resolved {
        let Some(target) = dangling(&self.name, self.qtype, &resolved) else {
            return resolved;
        };
        let view = catalog.view(self.client);
        let local = catalog.answer(&target, self.qtype, &view);
        if local.rcode == ResponseCode::Refused {
            return resolved;
        }
        let records = |sections: &[Section<'_>]| -> Vec<hickory_proto::rr::Record> {
            sections
                .iter()
                .flat_map(|s| {
                    let (owner, set) = (s.owner.as_ref(), s.rrset.as_ref());
                    set.records.iter().map(move |rdata| {
                        hickory_proto::rr::Record::from_rdata(owner.clone(), set.ttl, rdata.clone())
                    })
                })
                .collect()
        };
        resolved.rcode = local.rcode;
        resolved.answers.extend(records(&local.answers));
        resolved.authorities = records(&local.authorities);
        resolved
    }

    /// The response when the resolver's cache has the answer now (fresh, or stale within its
    /// failure recheck timer), composed without waiting; `None` when only [`run`](Self::run)
    /// can answer. A fresh answer comes with its [`Countdown`], so that a response cache may
    /// serve it again, TTLs counting down, until the resolver's entry expires.
    pub fn answer_from_cache(&self) -> Option<(Vec<u8>, Option<Countdown>)> {
        match self.resolver.cached(&self.name, self.qtype)? {
            Cached::Fresh(resolved, _) if self.volatile => {
                Some((self.finish(&resolved, None).0, None))
            }
            Cached::Fresh(resolved, freshness) => {
                let (response, countdown) = self.finish(&resolved, Some(freshness));
                Some((response, countdown))
            }
            Cached::Stale(resolved) => Some((self.finish(&resolved, None).0, None)),
        }
    }

    /// The resolver this question goes to.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// SERVFAIL without asking: too many questions are being resolved already.
    pub fn busy(self) -> Vec<u8> {
        let response = Response::recursive(&self.request, self.id);
        response.compose(&Answer::new(ResponseCode::ServFail, false), u16::MAX)
    }

    /// Composes the response from what the resolver said. Owner names equal to the question
    /// name take the asker's letter case (the cache holds the case of whoever asked first);
    /// consecutive records of one owner, type and TTL go out as one RRset, so that truncation
    /// never splits an RRset (RFC 2181 §9). With `fresh`, also where the resolver's TTLs are
    /// in the response, for a [`Countdown`].
    fn finish(
        &self,
        resolved: &Resolved,
        fresh: Option<Freshness>,
    ) -> (Vec<u8>, Option<Countdown>) {
        let qname = self.request.queries.first().map(Query::name);
        let mut answer = Answer::new(resolved.rcode, false);
        answer.answers = self
            .prefix
            .iter()
            .map(|(owner, rrset)| Section {
                owner: Cow::Owned(owner.clone()),
                rrset: Cow::Owned(rrset.clone()),
            })
            .collect();
        let local = answer.answers.len();
        // RFC 4035 §3.2.1: without DO the client gets no RRSIG, NSEC or NSEC3 records it did
        // not ask for by type (the resolver asks with DO and keeps them for those who set it).
        let dnssec_ok = self
            .request
            .edns
            .as_ref()
            .is_some_and(|e| e.flags().dnssec_ok);
        let keep = |r: &hickory_proto::rr::Record| {
            let rtype = r.record_type();
            dnssec_ok
                || rtype == self.qtype
                || !matches!(
                    rtype,
                    RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
                )
        };
        push_rrsets(&mut answer.answers, &resolved.answers, qname, keep);
        push_rrsets(&mut answer.authorities, &resolved.authorities, qname, keep);
        let limit = size_limit(&self.request, self.transport);
        let response = Response::recursive(&self.request, self.id);
        let Some(freshness) = fresh else {
            return (response.compose(&answer, limit), None);
        };
        let mut ttls = Vec::new();
        let bytes = response.compose_noting(&answer, limit, Some(&mut ttls));
        let ttls = ttls
            .into_iter()
            .filter_map(|at| {
                let sections = match at.section {
                    1 if at.index >= local => &answer.answers,
                    2 => &answer.authorities,
                    _ => return None,
                };
                let ttl = sections[at.index].rrset.ttl;
                Some((at.offset, ttl.saturating_add(freshness.elapsed)))
            })
            .collect();
        (bytes, Some(Countdown { freshness, ttls }))
    }
}

/// Appends the resolver records `keep` accepts to a section, grouped into RRsets (consecutive
/// records of one owner, type and TTL), owner names equal to `qname` written as the question
/// has them.
fn push_rrsets(
    sections: &mut Vec<Section<'static>>,
    records: &[hickory_proto::rr::Record],
    qname: Option<&Name>,
    keep: impl Fn(&hickory_proto::rr::Record) -> bool,
) {
    let start = sections.len();
    for r in records.iter().filter(|r| keep(r)) {
        let rtype = r.record_type();
        if sections.len() > start {
            if let Some(last) = sections.last_mut() {
                if last.rrset.rtype == rtype
                    && last.rrset.ttl == r.ttl
                    && last.owner.as_ref() == &r.name
                {
                    let set = last.rrset.to_mut();
                    if !set.records.contains(&r.data) {
                        set.records.push(r.data.clone());
                    }
                    continue;
                }
            }
        }
        // `Name` equality ignores case (RFC 4343).
        let owner = match qname {
            Some(q) if *q == r.name => q.clone(),
            _ => r.name.clone(),
        };
        sections.push(Section {
            rrset: Cow::Owned(Rrset {
                name: owner.clone(),
                rtype,
                ttl: r.ttl,
                records: vec![r.data.clone()],
                alias: None,
                texts: None,
            }),
            owner: Cow::Owned(owner),
        });
    }
}

/// Where a record's TTL went in a composed message.
struct TtlAt {
    /// 1 answer, 2 authority, 3 additional.
    section: u8,
    /// Which entry of that section of the [`Answer`].
    index: usize,
    offset: usize,
}

/// The parts of a response decided before the answer.
struct Response<'q> {
    id: u16,
    op_code: OpCode,
    recursion_desired: bool,
    /// RA: set for clients that may recurse.
    recursion_available: bool,
    /// CD, copied from the request into what the resolver answers (RFC 4035 §3.2.2).
    checking_disabled: bool,
    question: Option<&'q Query>,
    /// Our OPT, present when the request had one (RFC 6891 §7).
    edns: Option<Edns>,
}

impl<'q> Response<'q> {
    fn new(request: &'q Message, id: u16) -> Self {
        let edns = request.edns.as_ref().map(|theirs| {
            let mut ours = Edns::new();
            ours.set_max_payload(SERVER_UDP_PAYLOAD);
            ours.set_version(0);
            // RFC 3225 §3: the DO bit is copied into the response.
            ours.set_dnssec_ok(theirs.flags().dnssec_ok);
            ours
        });
        Self {
            id,
            op_code: request.metadata.op_code,
            recursion_desired: request.metadata.recursion_desired,
            recursion_available: false,
            checking_disabled: false,
            question: request.queries.first(),
            edns,
        }
    }

    /// A response made by recursion: RA set, and CD copied from the request, as RFC 4035
    /// §3.2.2 has a recursive name server do: "The name server side MUST copy the setting of
    /// the CD bit from a query to the corresponding response" (the resolver validates
    /// nothing, so the bit changes nothing else here).
    fn recursive(request: &'q Message, id: u16) -> Self {
        let mut response = Self::new(request, id);
        response.recursion_available = true;
        response.checking_disabled = request.metadata.checking_disabled;
        response
    }

    fn error(self, rcode: ResponseCode) -> Vec<u8> {
        self.compose(&Answer::new(rcode, false), u16::MAX)
    }

    /// Writes the response, whole RRsets only (RFC 2181 §9: a partial RRset is never sent).
    /// An answer or authority RRset that does not fit sets TC and ends the message. An
    /// additional RRset that does not fit is left out and the next one tried, as Knot does.
    /// That sets TC only for in-domain glue of a referral (RFC 9471), since RFC 2181 §9 says
    /// "The TC bit should not be set merely because some extra information could have been
    /// included, but there was insufficient room. This includes the results of additional
    /// section processing."
    fn compose(self, answer: &Answer<'_>, limit: u16) -> Vec<u8> {
        self.compose_noting(answer, limit, None)
    }

    /// [`compose`](Self::compose), noting in `ttls` where each record's TTL went.
    fn compose_noting(
        self,
        answer: &Answer<'_>,
        limit: u16,
        mut ttls: Option<&mut Vec<TtlAt>>,
    ) -> Vec<u8> {
        let mut buf = Vec::with_capacity(512);
        let opt_len = self.edns.as_ref().map_or(0, |_| OPT_LEN);
        // Room for everything but our OPT, which always goes in.
        let budget = usize::from(limit.saturating_sub(opt_len));
        let mut counts = [0u16; 4];
        let mut truncated = false;
        {
            // The encoder may use the whole 64 KiB and the budget is checked after each RRset,
            // on the bytes as written, compression included.
            let mut encoder = BinEncoder::new(&mut buf);
            // Header placeholder, patched below once the counts are known.
            let header_ok = encoder.emit_vec(&[0u8; HEADER_LEN]).is_ok();
            if let (true, Some(q)) = (header_ok, self.question) {
                if q.emit(&mut encoder).is_ok() {
                    counts[0] = 1;
                }
            }
            // Every name r53 compresses goes through `names` (Knot's scheme, see `compress`),
            // not hickory's compression, which gives up after a message's 120th name.
            let mut names = Names::new((counts[0] == 1).then_some(HEADER_LEN));
            // Names are respelt only for a question with capitals in it: r53 keeps its names
            // in lower case (`model::normalize_name`), so for any other question there is
            // nothing to respell, and the check is cheaper than the walk.
            let respell = self.question.map(Query::name).filter(|q| {
                q.iter()
                    .any(|label| label.iter().any(u8::is_ascii_uppercase))
            });
            let sections = [
                (&answer.answers, 1usize),
                (&answer.authorities, 2),
                (&answer.additionals, 3),
            ];
            'sections: for (sections, slot) in sections {
                for (index, section) in sections.iter().enumerate() {
                    let mark = encoder.offset();
                    let names_mark = names.mark();
                    let noted = ttls.as_ref().map_or(0, |t| t.len());
                    let emitted =
                        emit_rrset(&mut encoder, &mut names, section, slot, respell, |offset| {
                            if let Some(ttls) = ttls.as_mut() {
                                ttls.push(TtlAt {
                                    section: slot as u8,
                                    index,
                                    offset,
                                });
                            }
                        });
                    match emitted {
                        Ok(n) if encoder.offset() <= budget => counts[slot] += n,
                        _ => {
                            if let Some(ttls) = ttls.as_mut() {
                                ttls.truncate(noted);
                            }
                            // Roll back to before the RRset, and forget the names in the
                            // discarded bytes, so that no later name points into them.
                            encoder.set_offset(mark);
                            encoder.trim();
                            names.rollback(names_mark);
                            if slot < 3 {
                                truncated = true;
                                break 'sections;
                            }
                            let glue = answer
                                .glue_cut
                                .as_ref()
                                .is_some_and(|cut| cut.zone_of(section.owner.as_ref()));
                            truncated |= glue;
                        }
                    }
                }
            }
            if let Some(edns) = &self.edns {
                let mut opt = hickory_proto::rr::Record::from(edns);
                // The extended RCODE's upper 8 bits live in the OPT TTL (RFC 6891 §6.1.3).
                let high = answer.rcode.high();
                opt.ttl = (u32::from(high) << 24) | (opt.ttl & 0x00ff_ffff);
                if opt.emit(&mut encoder).is_ok() {
                    counts[3] += 1;
                }
            }
        }
        let mut flags2: u8 = 0x80 | (u8::from(self.op_code) << 3);
        if answer.authoritative {
            flags2 |= 0x04;
        }
        if truncated {
            flags2 |= 0x02;
        }
        if self.recursion_desired {
            flags2 |= 0x01;
        }
        // Z and AD stay clear: no data validated here. CD is clear in r53's own answers: RFC
        // 4035 §3.1.6, "A security-aware name server SHOULD clear the CD bit when composing
        // an authoritative response"; copied into recursive ones (§3.2.2).
        let mut flags3 = answer.rcode.low() & 0x0f;
        if self.recursion_available {
            flags3 |= 0x80;
        }
        if self.checking_disabled {
            flags3 |= CD;
        }
        buf[0..2].copy_from_slice(&self.id.to_be_bytes());
        buf[2] = flags2;
        buf[3] = flags3;
        for (i, count) in counts.iter().enumerate() {
            buf[4 + 2 * i..6 + 2 * i].copy_from_slice(&count.to_be_bytes());
        }
        buf
    }
}

/// Emits every record of one RRset, telling `ttl_at` where each TTL went; on error the
/// caller rolls back to before the set (and `names` to its mark).
///
/// Names are compared for compression byte for byte, so a name that ends like the question
/// but in other letter case is first spelt as the question is ([`spelt_like`]); it then
/// shrinks to a pointer, as from Knot, which compresses without regard to case. Otherwise a
/// mixed-case question would make bigger answers (fewer optional records in 512 bytes) and
/// the response cache's copy would depend on the case of the question that made it.
fn emit_rrset(
    encoder: &mut BinEncoder<'_>,
    names: &mut Names,
    section: &Section<'_>,
    slot: usize,
    question: Option<&Name>,
    mut ttl_at: impl FnMut(usize),
) -> Result<u16, hickory_proto::ProtoError> {
    let set = section.rrset.as_ref();
    let owner = section.owner.as_ref();
    let respelt = question.and_then(|q| spelt_like(owner, q));
    let owner = respelt.as_ref().unwrap_or(owner);
    let mut first_owner = None;
    for (index, rdata) in set.records.iter().enumerate() {
        let rdata = match question {
            Some(q) => rdata_spelt_like(rdata, q),
            None => Cow::Borrowed(rdata),
        };
        names.emit_owner(encoder, owner, &mut first_owner, slot == 3)?;
        encoder.emit_u16(set.rtype.into())?;
        encoder.emit_u16(DNSClass::IN.into())?;
        ttl_at(encoder.offset());
        encoder.emit_u32(set.ttl)?;
        let len_at = encoder.offset();
        encoder.emit_u16(0)?;
        let start = encoder.offset();
        // Additional records' owners may point to the names of answer and authority RDATA.
        names.emit_rdata(encoder, &rdata, slot < 3 && compress::hinted(index))?;
        let end = encoder.offset();
        encoder.set_offset(len_at);
        encoder.emit_u16((end - start) as u16)?;
        encoder.set_offset(end);
    }
    Ok(set.records.len() as u16)
}

/// `name` with the labels it shares with the end of `question` (compared without regard to
/// case) spelt as in `question`; `None` when they are spelt so already.
fn spelt_like(name: &Name, question: &Name) -> Option<Name> {
    let mut shared = 0;
    let mut respell = false;
    for (a, b) in name.iter().rev().zip(question.iter().rev()) {
        if !a.eq_ignore_ascii_case(b) {
            break;
        }
        respell |= a != b;
        shared += 1;
    }
    if !respell {
        return None;
    }
    // Every label counts, a leading `*` included (`Name::num_labels` leaves it out, as RRSIG's
    // Labels field does, and `iter` yields it).
    let own = name.iter().len() - shared;
    let asked = question.iter().len() - shared;
    let labels = name.iter().take(own).chain(question.iter().skip(asked));
    let mut respelt = Name::from_labels(labels).ok()?;
    respelt.set_fqdn(name.is_fqdn());
    Some(respelt)
}

/// The record data with its compressible names (RFC 3597 §4: NS, CNAME, PTR, MX, SOA) spelt
/// like the question where they end like it.
fn rdata_spelt_like<'r>(rdata: &'r RData, question: &Name) -> Cow<'r, RData> {
    let respelt = match rdata {
        RData::NS(ns) => spelt_like(&ns.0, question).map(|n| RData::NS(NS(n))),
        RData::CNAME(cname) => spelt_like(&cname.0, question).map(|n| RData::CNAME(CNAME(n))),
        RData::PTR(ptr) => spelt_like(&ptr.0, question).map(|n| RData::PTR(PTR(n))),
        RData::MX(mx) => spelt_like(&mx.exchange, question)
            .map(|exchange| RData::MX(MX::new(mx.preference, exchange))),
        RData::SOA(soa) => {
            let mname = spelt_like(&soa.mname, question);
            let rname = spelt_like(&soa.rname, question);
            (mname.is_some() || rname.is_some()).then(|| {
                let mut soa = soa.clone();
                soa.mname = mname.unwrap_or(soa.mname);
                soa.rname = rname.unwrap_or(soa.rname);
                RData::SOA(soa)
            })
        }
        _ => None,
    };
    respelt.map_or(Cow::Borrowed(rdata), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_spelt_like_the_question_where_they_end_like_it() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let q = name("X.SibBig.EXAMPLE.com.");
        let spelt = spelt_like(&name("ns01.sibbig.example.com."), &q).unwrap();
        assert!(spelt.eq_case(&name("ns01.SibBig.EXAMPLE.com.")), "{spelt}");
        // Already spelt so, or sharing nothing: left alone.
        assert!(spelt_like(&name("ns01.SibBig.EXAMPLE.com."), &q).is_none());
        assert!(spelt_like(&name("www.example.net."), &q).is_none());
        // Only the shared end changes: a label that differs stops the match.
        let spelt = spelt_like(&name("sibbig.Example.com."), &name("SIBBIG.other.COM.")).unwrap();
        assert!(spelt.eq_case(&name("sibbig.Example.COM.")), "{spelt}");
        // A leading `*` is a label like any other, in the question and in the name.
        let wild = name("*.D1.Example.COM.");
        let spelt = spelt_like(&name("example.com."), &wild).unwrap();
        assert!(spelt.eq_case(&name("Example.COM.")), "{spelt}");
        let spelt = spelt_like(&name("ns1.d1.example.com."), &wild).unwrap();
        assert!(spelt.eq_case(&name("ns1.D1.Example.COM.")), "{spelt}");
        let spelt = spelt_like(&name("*.d1.example.com."), &wild).unwrap();
        assert!(spelt.eq_case(&wild), "{spelt}");
        let spelt = spelt_like(&name("*.x.example.com."), &name("A.EXAMPLE.com.")).unwrap();
        assert!(spelt.eq_case(&name("*.x.EXAMPLE.com.")), "{spelt}");
        let soa = RData::SOA(hickory_proto::rr::rdata::SOA::new(
            name("ns1.example.com."),
            name("hostmaster.example.com."),
            1,
            2,
            3,
            4,
            5,
        ));
        let RData::SOA(spelt) = rdata_spelt_like(&soa, &q).into_owned() else {
            panic!("an SOA stays an SOA");
        };
        assert!(spelt.mname.eq_case(&name("ns1.EXAMPLE.com.")));
        assert!(spelt.rname.eq_case(&name("hostmaster.EXAMPLE.com.")));
        assert_eq!((spelt.serial, spelt.minimum), (1, 5));
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn resolver_answers_leave_dnssec_records_out_unless_the_client_set_do() {
        use hickory_proto::dnssec::rdata::{DNSSECRData, SigInput, NSEC, RRSIG};
        use hickory_proto::op::MessageType;
        use hickory_proto::rr::rdata::{A, SOA};
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let record = |owner: &str, rdata: RData| {
            hickory_proto::rr::Record::from_rdata(name(owner), 300, rdata)
        };
        let rrsig = |owner: &str, covered: RecordType| {
            let input = SigInput {
                type_covered: covered,
                algorithm: hickory_proto::dnssec::Algorithm::ECDSAP256SHA256,
                num_labels: name(owner).num_labels(),
                original_ttl: 300,
                sig_expiration: 2_000_000_000.into(),
                sig_inception: 1_700_000_000.into(),
                key_tag: 1,
                signer_name: name("example.com."),
            };
            let sig = RRSIG::from_sig(input, vec![7; 64]);
            record(owner, RData::DNSSEC(DNSSECRData::RRSIG(sig)))
        };
        let positive = Resolved {
            rcode: ResponseCode::NoError,
            answers: vec![
                record("www.example.com.", RData::A(A::new(192, 0, 2, 1))),
                rrsig("www.example.com.", RecordType::A),
            ],
            authorities: vec![],
            stale: false,
        };
        let soa = SOA::new(
            name("ns.example.com."),
            name("h.example.com."),
            1,
            2,
            3,
            4,
            60,
        );
        let nsec = NSEC::new(name("z.example.com."), [RecordType::A]);
        let negative = Resolved {
            rcode: ResponseCode::NXDomain,
            answers: vec![],
            authorities: vec![
                record("example.com.", RData::SOA(soa)),
                rrsig("example.com.", RecordType::SOA),
                record("a.example.com.", RData::DNSSEC(DNSSECRData::NSEC(nsec))),
                rrsig("a.example.com.", RecordType::NSEC),
            ],
            stale: false,
        };
        let types = |records: &[hickory_proto::rr::Record]| -> Vec<RecordType> {
            records.iter().map(|r| r.record_type()).collect()
        };
        let answer = |qtype: RecordType, dnssec_ok: bool, resolved: &Resolved| {
            let mut request = Message::new(7, MessageType::Query, OpCode::Query);
            request.add_query(Query::query(name("www.example.com."), qtype));
            let mut edns = Edns::new();
            edns.set_dnssec_ok(dnssec_ok);
            request.set_edns(edns);
            let recursion = Recursion {
                request,
                id: 7,
                transport: Transport::Udp,
                name: name("www.example.com."),
                qtype,
                prefix: Vec::new(),
                volatile: false,
                client: LOOPBACK,
                resolver: Arc::new(Resolver::new(crate::resolver::ResolverConfig::default())),
            };
            Message::from_vec(&recursion.finish(resolved, None).0).unwrap()
        };
        let with_do = answer(RecordType::A, true, &positive);
        assert_eq!(types(&with_do.answers), [RecordType::A, RecordType::RRSIG]);
        let without = answer(RecordType::A, false, &positive);
        assert_eq!(types(&without.answers), [RecordType::A]);
        // Asked for by type, an RRSIG is the answer itself.
        let asked = Resolved {
            answers: vec![rrsig("www.example.com.", RecordType::A)],
            ..positive.clone()
        };
        let by_type = answer(RecordType::RRSIG, false, &asked);
        assert_eq!(types(&by_type.answers), [RecordType::RRSIG]);
        let with_do = answer(RecordType::A, true, &negative);
        assert_eq!(with_do.authorities.len(), 4);
        let without = answer(RecordType::A, false, &negative);
        assert_eq!(types(&without.authorities), [RecordType::SOA]);
        assert_eq!(without.metadata.response_code, ResponseCode::NXDomain);
    }

    /// The bytes r53 sends back, with no resolver (every outcome is a reply).
    fn reply(catalog: &Catalog, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
        match respond(
            catalog,
            request,
            transport,
            LOOPBACK,
            &RecursionPolicy::default(),
        )? {
            Outcome::Reply(bytes) => Some(bytes),
            Outcome::Recurse(_) => panic!("no resolver, yet asked to recurse"),
        }
    }

    #[test]
    fn short_datagrams_are_dropped() {
        let catalog = Catalog::default();
        for len in 0..HEADER_LEN {
            assert!(reply(&catalog, &vec![0u8; len], Transport::Udp).is_none());
        }
    }

    #[test]
    fn responses_are_not_answered() {
        let catalog = Catalog::default();
        let mut m = [0u8; 12];
        m[2] = 0x80;
        assert!(reply(&catalog, &m, Transport::Udp).is_none());
    }

    /// A query for www.example.com A with `extra` bytes after it, as counted in the header.
    fn www_query(arcount: u8, extra: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, arcount];
        m.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        m.extend_from_slice(extra);
        m
    }

    #[test]
    fn formerr_echoes_a_question_that_reads_cleanly() {
        let catalog = Catalog::default();
        let opt = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
        let two_opts = www_query(2, &[opt, opt].concat());
        let out = reply(&catalog, &two_opts, Transport::Udp).unwrap();
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name().to_ascii(), "www.example.com.");
        assert!(m.edns.is_none());
    }

    #[test]
    fn a_request_signed_with_an_unknown_key_gets_notauth_and_an_unsigned_badkey() {
        let catalog = Catalog::default();
        let mut tsig = b"\x04tkey\x00\x00\xfa\x00\xff\x00\x00\x00\x00".to_vec();
        let mut rdata = b"\x0bhmac-sha256\x00".to_vec();
        rdata.extend_from_slice(&[0, 0, 0x65, 0x53, 0xf1, 0x00, 0x01, 0x2c, 0, 4, 1, 2, 3, 4]);
        rdata.extend_from_slice(&[0x12, 0x34, 0, 0, 0, 0]); // original ID, error, other
        tsig.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        tsig.extend_from_slice(&rdata);
        let out = reply(&catalog, &www_query(1, &tsig), Transport::Udp).unwrap();
        let m = Message::from_vec(&out).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NotAuth);
        assert_eq!(m.queries[0].name().to_ascii(), "www.example.com.");
        let signature = m.signature().expect("a TSIG record");
        assert_eq!(signature.name.to_ascii(), "tkey.");
        let data = &signature.data;
        assert_eq!(
            data.error,
            Some(hickory_proto::rr::rdata::tsig::TsigError::BadKey)
        );
        assert!(data.mac.is_empty(), "unsigned");
        assert_eq!(
            (data.oid, data.time, data.fudge),
            (0x1234, 0x6553_f100, 300)
        );
    }

    /// The RCODE of the answer to `www_query` with an OPT record (payload 1232) holding
    /// `options` as they are.
    fn rcode_with_options(options: &[u8]) -> ResponseCode {
        let mut opt = vec![0, 0, 41, 4, 0xd0, 0, 0, 0, 0];
        opt.extend_from_slice(&(options.len() as u16).to_be_bytes());
        opt.extend_from_slice(options);
        let out = reply(&Catalog::default(), &www_query(1, &opt), Transport::Udp).unwrap();
        Message::from_vec(&out).unwrap().metadata.response_code
    }

    #[test]
    fn edns_options_must_fill_their_opt_record_exactly() {
        let rcode = rcode_with_options;
        // A cookie (option 10) of 8 bytes, whole; then one claiming a byte more than there is,
        // and then one cut short in its header.
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_ne!(rcode(&cookie), ResponseCode::FormErr);
        assert_ne!(
            rcode(&[&cookie[..], &[0, 12, 0, 0]].concat()),
            ResponseCode::FormErr
        );
        let mut overrun = cookie;
        overrun[3] = 9;
        assert_eq!(rcode(&overrun), ResponseCode::FormErr);
        assert_eq!(
            rcode(&[&cookie[..], &[0, 12, 0]].concat()),
            ResponseCode::FormErr
        );
    }

    #[test]
    fn a_client_subnet_option_that_does_not_read_is_ignored() {
        let rcode = rcode_with_options;
        // Family 3, then an option cut short after its family, then one after a cookie.
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_ne!(rcode(&[0, 8, 0, 4, 0, 3, 0, 0]), ResponseCode::FormErr);
        assert_ne!(rcode(&[0, 8, 0, 2, 0, 1]), ResponseCode::FormErr);
        assert_ne!(
            rcode(&[&cookie[..], &[0, 8, 0, 2, 0, 1]].concat()),
            ResponseCode::FormErr
        );
        // Still malformed when an option overruns the OPT record.
        assert_eq!(
            rcode(&[0, 8, 0, 2, 0, 1, 0, 10, 0, 9]),
            ResponseCode::FormErr
        );
    }

    #[test]
    fn every_record_of_a_large_rrset_has_its_owner_compressed() {
        // 360 A records at a 255-byte name: 16 bytes each with the owner a pointer, 269 each
        // written out, which would not fit in 65535 bytes.
        let owner = Name::from_ascii(format!(
            "{}.{}.example.com.",
            vec!["l".repeat(63); 3].join("."),
            "r".repeat(49)
        ))
        .unwrap();
        let records = (0..360u32)
            .map(|i| RData::A(std::net::Ipv4Addr::from(0xc612_0000 | i).into()))
            .collect();
        let mut answer = Answer::new(ResponseCode::NoError, true);
        answer.answers.push(Section {
            owner: Cow::Owned(owner.clone()),
            rrset: Cow::Owned(Rrset {
                name: owner.clone(),
                rtype: RecordType::A,
                ttl: 60,
                records,
                alias: None,
                texts: None,
            }),
        });
        let mut request = Message::query();
        request.add_query(Query::query(owner.clone(), RecordType::A));
        let out = Response::new(&request, 7).compose(&answer, u16::MAX);
        let m = Message::from_vec(&out).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(m.answers.len(), 360);
        assert!(m.answers.iter().all(|r| r.name == owner));
        assert_eq!(out.len(), 12 + 259 + 360 * 16);
    }

    /// Reads every name in `wire` (question, owners, and the RDATA names of NS, CNAME, PTR,
    /// MX, SOA and SRV) and checks that each compression pointer points back at the first
    /// byte of a label read before it; returns how many pointers there were.
    fn check_pointers(wire: &[u8]) -> usize {
        let mut labels = std::collections::HashSet::new();
        let mut pointers = 0;
        let mut name = |at: &mut usize| loop {
            let len = wire[*at];
            match len {
                0 => {
                    *at += 1;
                    return;
                }
                1..=63 => {
                    labels.insert(*at);
                    *at += 1 + usize::from(len);
                }
                _ => {
                    assert!(len >= 0xC0, "a bad label type at {at}");
                    let target = usize::from(u16::from_be_bytes([len & 0x3F, wire[*at + 1]]));
                    assert!(target < *at, "a pointer at {at} to {target}, not back");
                    assert!(
                        labels.contains(&target),
                        "a pointer at {at} to {target}, no label"
                    );
                    pointers += 1;
                    *at += 2;
                    return;
                }
            }
        };
        let count = |i: usize| usize::from(u16::from_be_bytes([wire[i], wire[i + 1]]));
        let mut at = HEADER_LEN;
        for _ in 0..count(4) {
            name(&mut at);
            at += 4;
        }
        for _ in 0..count(6) + count(8) + count(10) {
            name(&mut at);
            let rtype = count(at);
            let rdlen = count(at + 8);
            at += 10;
            let end = at + rdlen;
            let mut inner = at;
            match RecordType::from(rtype as u16) {
                RecordType::NS | RecordType::CNAME | RecordType::PTR => name(&mut inner),
                RecordType::MX => {
                    inner += 2;
                    name(&mut inner);
                }
                RecordType::SRV => {
                    inner += 6;
                    name(&mut inner);
                }
                RecordType::SOA => {
                    name(&mut inner);
                    name(&mut inner);
                    inner += 20;
                }
                _ => inner = end,
            }
            assert_eq!(
                inner, end,
                "RDATA of type {rtype} at {at} is not its length"
            );
            at = end;
        }
        assert_eq!(at, wire.len());
        pointers
    }

    #[test]
    fn names_compress_to_earlier_names_and_read_back_exactly_past_the_pointer_reach() {
        // 400 MX records at the question, in its mixed case, then their exchanges' addresses
        // (every tenth with an AAAA too) and 200 SRV records of another name: some 20 KB, past
        // the 0x3FFF a pointer reaches, and far past the 120 names hickory would compress.
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let zone_name = |i: usize| name(&format!("h{i:03}.large.test."));
        let set = |owner: Name, rtype, records| Section {
            owner: Cow::Owned(owner.clone()),
            rrset: Cow::Owned(Rrset {
                name: owner,
                rtype,
                ttl: 3600,
                records,
                alias: None,
                texts: None,
            }),
        };
        let mut answer = Answer::new(ResponseCode::NoError, true);
        let mx = (0..400)
            .map(|i| RData::MX(MX::new(i as u16, zone_name(i))))
            .collect();
        answer
            .answers
            .push(set(name("mx400.large.test."), RecordType::MX, mx));
        let srv = (0..200)
            .map(|i| RData::SRV(hickory_proto::rr::rdata::SRV::new(0, 0, 5060, zone_name(i))))
            .collect();
        answer
            .authorities
            .push(set(name("_sip._tcp.large.test."), RecordType::SRV, srv));
        for i in 0..400 {
            let a = RData::A(std::net::Ipv4Addr::new(10, 0, (i / 256) as u8, i as u8).into());
            answer
                .additionals
                .push(set(zone_name(i), RecordType::A, vec![a]));
            if i % 10 == 0 {
                let aaaa = RData::AAAA(std::net::Ipv6Addr::LOCALHOST.into());
                answer
                    .additionals
                    .push(set(zone_name(i), RecordType::AAAA, vec![aaaa]));
            }
        }
        let mut request = Message::query();
        request.add_query(Query::query(name("MX400.Large.TEST."), RecordType::MX));
        let out = Response::new(&request, 7).compose(&answer, u16::MAX);
        assert!(out.len() > 0x3FFF, "{} bytes", out.len());
        assert!(check_pointers(&out) > 1000);
        let m = Message::from_vec(&out).unwrap();
        assert!(!m.metadata.truncation);
        assert_eq!(
            (m.answers.len(), m.authorities.len(), m.additionals.len()),
            (400, 200, 440)
        );
        // Names that end like the question are spelt as it is; others as r53 keeps them. What
        // was written is what is read back, letter case included.
        let respelt = |i: usize| name(&format!("h{i:03}.Large.TEST."));
        for (i, r) in m.answers.iter().enumerate() {
            assert!(r.name.eq_case(&name("MX400.Large.TEST.")), "{}", r.name);
            let RData::MX(mx) = &r.data else {
                panic!("an MX")
            };
            assert!(mx.exchange.eq_case(&respelt(i)), "{}", mx.exchange);
        }
        for (i, r) in m.authorities.iter().enumerate() {
            assert!(r.name.eq_case(&name("_sip._tcp.Large.TEST.")), "{}", r.name);
            let RData::SRV(srv) = &r.data else {
                panic!("an SRV")
            };
            // Never compressed, so never respelt.
            assert!(srv.target.eq_case(&zone_name(i)), "{}", srv.target);
        }
        let mut owners = m.additionals.iter().map(|r| &r.name);
        for i in 0..400 {
            let copies = if i % 10 == 0 { 2 } else { 1 };
            for _ in 0..copies {
                let owner = owners.next().unwrap();
                assert!(owner.eq_case(&respelt(i)), "{owner}");
            }
        }
    }

    #[test]
    fn a_question_with_a_compression_pointer_is_formerr() {
        let catalog = Catalog::default();
        // `a` then a pointer to offset 4, where QDCOUNT's zero byte reads as the root.
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(b"\x01a\xc0\x04\x00\x01\x00\x01");
        let out = reply(&catalog, &m, Transport::Udp).unwrap();
        assert_eq!(out[3] & 0x0f, 1);
    }

    #[test]
    fn bytes_after_the_last_record_are_formerr() {
        let catalog = Catalog::default();
        let out = reply(&catalog, &www_query(0, &[0xde, 0xad]), Transport::Tcp).unwrap();
        assert_eq!(out[3] & 0x0f, 1);
        let clean = reply(&catalog, &www_query(0, &[]), Transport::Tcp).unwrap();
        assert_eq!(
            clean[3] & 0x0f,
            ResponseCode::Refused.low(),
            "no zone: REFUSED"
        );
    }

    #[test]
    fn type_zero_is_notimp() {
        let catalog = Catalog::default();
        let mut q = www_query(0, &[]);
        let at = q.len() - 3;
        q[at] = 0;
        let out = reply(&catalog, &q, Transport::Udp).unwrap();
        assert_eq!(out[3] & 0x0f, ResponseCode::NotImp.low());
    }

    #[test]
    fn garbage_after_the_header_is_formerr() {
        let catalog = Catalog::default();
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[63, b'a']);
        let out = reply(&catalog, &m, Transport::Udp).unwrap();
        assert_eq!(&out[0..2], &[0x12, 0x34]);
        assert_eq!(out[3] & 0x0f, 1);
        assert_eq!(out[2] & 0x80, 0x80);
    }
}
