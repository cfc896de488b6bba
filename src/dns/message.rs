//! One query in, one response out: parsing a request, the checks an authoritative server makes
//! before looking anything up, and composing the response on the wire.
//!
//! The order of checks follows hickory's catalog and RFC 6891: header, message type, opcode,
//! question count, EDNS version, class, then the catalog. Nothing here does IO; the socket
//! loops in `server` call [`respond`].

use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};

use crate::catalog::{Answer, Catalog, Section};

/// The UDP payload size r53 advertises and the most it sends (the DNS Flag Day 2020 figure).
pub const SERVER_UDP_PAYLOAD: u16 = 1232;
/// RFC 1035 §4.2.1: the most a UDP response may carry without EDNS.
const PLAIN_UDP_LIMIT: u16 = 512;
const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Answers one request. `None` means drop it silently: shorter than a header, or itself a
/// response (answering responses would make r53 a reflector).
pub fn respond(catalog: &Catalog, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
    if request.len() < HEADER_LEN {
        return None;
    }
    // QR is the top bit of byte 2.
    if request[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([request[0], request[1]]);
    let message = match Message::read(&mut BinDecoder::new(request)) {
        Ok(m) => m,
        Err(_) => return Some(formerr_from_raw_header(request)),
    };
    Some(respond_to(catalog, &message, id, transport))
}

/// FORMERR for a message whose header could be read but nothing after it: echo the ID, the
/// opcode and RD, no sections (RFC 1035 §4.1.1).
fn formerr_from_raw_header(request: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[0] = request[0];
    out[1] = request[1];
    // QR=1, opcode and RD kept from the request.
    out[2] = 0x80 | (request[2] & 0x79);
    out[3] = ResponseCode::FormErr.low();
    out
}

fn respond_to(catalog: &Catalog, request: &Message, id: u16, transport: Transport) -> Vec<u8> {
    let mut response = Response::new(request, id);
    if request.metadata.op_code != OpCode::Query {
        return response.error(ResponseCode::NotImp);
    }
    // RFC 9619: a QUERY carries exactly one question.
    if request.queries.len() != 1 {
        response.question = None;
        return response.error(ResponseCode::FormErr);
    }
    if let Some(edns) = &request.edns {
        // RFC 6891 §6.1.3: a version we do not implement gets BADVERS and our version.
        if edns.version() > 0 {
            return response.error(ResponseCode::BADVERS);
        }
    }
    let query = &request.queries[0];
    let qtype = query.query_type();
    match qtype {
        // Zone transfers are not offered (yet); RFC 5936 §2.2.1 allows REFUSED.
        RecordType::AXFR | RecordType::IXFR => return response.error(ResponseCode::Refused),
        // Meta-types that are never a question (RFC 6895 §3.1).
        RecordType::OPT | RecordType::TSIG | RecordType::SIG => {
            return response.error(ResponseCode::FormErr);
        }
        _ => {}
    }
    if query.query_class() != DNSClass::IN {
        // r53 serves class IN only.
        return response.error(ResponseCode::Refused);
    }
    let answer = catalog.answer(query.name(), qtype);
    let limit = match transport {
        Transport::Tcp => u16::MAX,
        Transport::Udp => match &request.edns {
            Some(edns) => edns.max_payload().clamp(PLAIN_UDP_LIMIT, SERVER_UDP_PAYLOAD),
            None => PLAIN_UDP_LIMIT,
        },
    };
    response.compose(&answer, limit)
}

/// The parts of a response decided before the answer.
struct Response<'q> {
    id: u16,
    op_code: OpCode,
    recursion_desired: bool,
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
            checking_disabled: request.metadata.checking_disabled,
            question: request.queries.first(),
            edns,
        }
    }

    fn error(self, rcode: ResponseCode) -> Vec<u8> {
        let mut answer = Answer {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
            glue_required: false,
        };
        answer.rcode = rcode;
        self.compose(&answer, u16::MAX)
    }

    /// Writes the response, whole RRsets only: an answer or authority RRset that does not fit
    /// sets TC and ends the message; additional RRsets that do not fit are left out without TC
    /// (RFC 2181 §9), except referral glue (RFC 9471 §3).
    fn compose(self, answer: &Answer<'_>, limit: u16) -> Vec<u8> {
        let mut buf = Vec::with_capacity(512);
        let opt_len = self.edns.as_ref().map_or(0, |_| 11);
        let mut counts = [0u16; 4];
        let mut truncated = false;
        {
            let mut encoder = BinEncoder::new(&mut buf);
            encoder.set_max_size(limit.saturating_sub(opt_len));
            // Header placeholder, patched below once the counts are known.
            let header_ok = encoder.emit_vec(&[0u8; HEADER_LEN]).is_ok();
            if let (true, Some(q)) = (header_ok, self.question) {
                if q.emit(&mut encoder).is_ok() {
                    counts[0] = 1;
                }
            }
            let sections = [
                (&answer.answers, 1usize),
                (&answer.authorities, 2),
                (&answer.additionals, 3),
            ];
            'sections: for (sections, slot) in sections {
                for section in sections {
                    let mark = encoder.offset();
                    match emit_rrset(&mut encoder, section) {
                        Ok(n) => counts[slot] += n,
                        Err(_) => {
                            encoder.set_offset(mark);
                            encoder.trim();
                            if slot < 3 || answer.glue_required {
                                truncated = true;
                            }
                            break 'sections;
                        }
                    }
                }
            }
            if let Some(edns) = &self.edns {
                encoder.set_max_size(limit);
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
        let mut flags3 = answer.rcode.low() & 0x0f;
        if self.checking_disabled {
            flags3 |= 0x10;
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

/// Emits every record of one RRset; on error the caller rolls back to before the set.
fn emit_rrset(
    encoder: &mut BinEncoder<'_>,
    section: &Section<'_>,
) -> Result<u16, hickory_proto::ProtoError> {
    let set = section.rrset.as_ref();
    for rdata in &set.records {
        emit_record(encoder, section.owner.as_ref(), set.rtype, set.ttl, rdata)?;
    }
    Ok(set.records.len() as u16)
}

fn emit_record(
    encoder: &mut BinEncoder<'_>,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdata: &RData,
) -> Result<(), hickory_proto::ProtoError> {
    owner.emit(encoder)?;
    encoder.emit_u16(rtype.into())?;
    encoder.emit_u16(DNSClass::IN.into())?;
    encoder.emit_u32(ttl)?;
    let len_at = encoder.offset();
    encoder.emit_u16(0)?;
    let start = encoder.offset();
    rdata.emit(encoder)?;
    let len = encoder.offset() - start;
    let end = encoder.offset();
    encoder.set_offset(len_at);
    encoder.emit_u16(len as u16)?;
    encoder.set_offset(end);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_datagrams_are_dropped() {
        let catalog = Catalog::default();
        for len in 0..HEADER_LEN {
            assert!(respond(&catalog, &vec![0u8; len], Transport::Udp).is_none());
        }
    }

    #[test]
    fn responses_are_not_answered() {
        let catalog = Catalog::default();
        let mut m = [0u8; 12];
        m[2] = 0x80;
        assert!(respond(&catalog, &m, Transport::Udp).is_none());
    }

    #[test]
    fn garbage_after_the_header_is_formerr() {
        let catalog = Catalog::default();
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[63, b'a']);
        let out = respond(&catalog, &m, Transport::Udp).unwrap();
        assert_eq!(&out[0..2], &[0x12, 0x34]);
        assert_eq!(out[3] & 0x0f, 1);
        assert_eq!(out[2] & 0x80, 0x80);
    }
}
