//! Asking one upstream one question: the query on the wire, UDP with a fallback to TCP, and
//! the checks a response must pass before anything in it is believed. Also where the default
//! upstreams come from (`/etc/resolv.conf`).
//!
//! No caching, no choice between upstreams and no retries beyond the TC fallback: that is the
//! caller's (`resolver::Resolver`). Every attempt is bounded by the caller's timeout.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The UDP payload size advertised upstream: the DNS Flag Day 2020 figure, which avoids IP
/// fragmentation on ordinary paths.
pub const UPSTREAM_UDP_PAYLOAD: u16 = 1232;

/// Why an upstream gave no usable answer. Each one moves the resolver to the next upstream.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("network error: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode the query: {0}")]
    Encode(#[from] hickory_proto::ProtoError),
    #[error("malformed response over TCP")]
    Malformed,
    #[error("response does not match the query")]
    Mismatch,
    #[error("upstream answered {0}")]
    Rcode(ResponseCode),
}

/// The question as sent: what a response must echo.
struct Asked<'a> {
    id: u16,
    name: &'a Name,
    qtype: RecordType,
}

impl Asked<'_> {
    /// RFC 5452 §3: a response is accepted only if it matches the query's ID, question and
    /// the address it was sent to (the last is enforced by the connected socket). Names
    /// compare case-insensitively (RFC 4343); hickory's `Name` equality already does.
    fn matches(&self, response: &Message) -> bool {
        let meta = &response.metadata;
        meta.id == self.id
            && meta.message_type == MessageType::Response
            && meta.op_code == OpCode::Query
            && response.queries.len() == 1
            && response.queries[0].name() == self.name
            && response.queries[0].query_type() == self.qtype
            && response.queries[0].query_class() == DNSClass::IN
    }
}

/// The query: a random ID (RFC 5452 §9.2, the other half of the entropy next to the source
/// port), RD set because the upstream is a recursive resolver, and EDNS advertising
/// [`UPSTREAM_UDP_PAYLOAD`] (RFC 6891 §6.2.5) with DO set, whoever asked: RFC 4035 §3.2.1,
/// a recursive server "MUST set the DO bit when sending requests, regardless of the state of
/// the DO bit in the initiating request", so that the one cached answer can serve clients
/// that want the signatures and proofs as well as those that do not (the DNS path leaves
/// them out for the latter).
fn compose_query(id: u16, name: &Name, qtype: RecordType) -> Result<Vec<u8>, UpstreamError> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(name.clone(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_UDP_PAYLOAD);
    edns.set_version(0);
    edns.set_dnssec_ok(true);
    message.set_edns(edns);
    Ok(message.to_vec()?)
}

/// Asks `upstream` for `name`/`qtype`: over UDP, and again over TCP if the UDP answer was
/// truncated. Each of the two attempts gets `timeout`. Only NOERROR and NXDOMAIN come back
/// as answers; SERVFAIL, REFUSED and the rest are errors, so that the next upstream is tried.
pub async fn exchange(
    upstream: SocketAddr,
    name: &Name,
    qtype: RecordType,
    timeout: Duration,
) -> Result<Message, UpstreamError> {
    let asked = Asked {
        id: rand::random(),
        name,
        qtype,
    };
    let query = compose_query(asked.id, name, qtype)?;
    let mut response = tokio::time::timeout(timeout, over_udp(upstream, &query, &asked))
        .await
        .map_err(|_| UpstreamError::Timeout(timeout))??;
    if response.metadata.truncation {
        // RFC 1035 §4.2.1 and RFC 7766 §5: a truncated UDP response means "retry over TCP";
        // the truncated one is never used or cached.
        response = tokio::time::timeout(timeout, over_tcp(upstream, &query, &asked))
            .await
            .map_err(|_| UpstreamError::Timeout(timeout))??;
    }
    match response.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(response),
        other => Err(UpstreamError::Rcode(other)),
    }
}

/// One UDP exchange from a fresh socket on an ephemeral port the kernel picks at random (RFC
/// 5452 §4.5, source port randomisation). The socket is connected, so the kernel drops
/// datagrams from any other address and an ICMP port unreachable ends the wait at once.
async fn over_udp(
    upstream: SocketAddr,
    query: &[u8],
    asked: &Asked<'_>,
) -> Result<Message, UpstreamError> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let len = socket.recv(&mut buf).await?;
        // RFC 5452 §9.1: a response that does not match is discarded and the wait goes on:
        // it may be a spoofing attempt, and giving up on it would let a forger cut us off
        // from the real answer. The caller's timeout bounds the wait.
        match Message::from_vec(&buf[..len]) {
            Ok(response) if asked.matches(&response) => return Ok(response),
            Ok(_) => tracing::debug!(%upstream, "resolver: ignoring a mismatched response"),
            Err(e) => tracing::debug!(%upstream, error = %e, "resolver: ignoring garbage"),
        }
    }
}

/// One TCP exchange (RFC 1035 §4.2.2: each message prefixed with its two-byte length).
async fn over_tcp(
    upstream: SocketAddr,
    query: &[u8],
    asked: &Asked<'_>,
) -> Result<Message, UpstreamError> {
    let mut stream = TcpStream::connect(upstream).await?;
    let len = u16::try_from(query.len()).map_err(|_| UpstreamError::Malformed)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(len)];
    stream.read_exact(&mut buf).await?;
    let response = Message::from_vec(&buf).map_err(|_| UpstreamError::Malformed)?;
    // Over TCP nobody else can inject into the stream; a mismatch is a broken upstream.
    if asked.matches(&response) {
        Ok(response)
    } else {
        Err(UpstreamError::Mismatch)
    }
}

/// The default upstreams: the `nameserver` lines of a resolv.conf (resolv.conf(5)), on port
/// 53, in order, without duplicates and without `exclude` (the addresses r53 itself answers
/// on at port 53: forwarding to ourselves would loop until the timeouts). Comments (`#`,
/// `;`) and other options are ignored. An IPv6 address with a zone (`fe80::1%2`) is kept
/// when the zone is a numeric interface index and skipped when it is an interface name,
/// which would need a system call to look up.
pub fn system_upstreams(resolv_conf_text: &str, exclude: &[IpAddr]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = Vec::new();
    for line in resolv_conf_text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or_default();
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let Some(addr) = words.next().and_then(parse_nameserver) else {
            continue;
        };
        if !exclude.contains(&addr.ip()) && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    match text.split_once('%') {
        None => text
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53)),
        Some((ip, zone)) => {
            let ip: Ipv6Addr = ip.parse().ok()?;
            let scope: u32 = zone.parse().ok()?;
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip, 53, 0, scope,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn resolv_conf_nameservers_in_order_without_ourselves() {
        let text = "# generated\n\
            search example.internal\n\
            nameserver 127.0.0.11\n\
            nameserver 192.0.2.53 # office\n\
            ;nameserver 192.0.2.99\n\
            nameserver 2001:db8::53\n\
            nameserver fe80::1%2\n\
            nameserver fe80::1%eth0\n\
            nameserver not-an-address\n\
            nameserver 192.0.2.53\n\
            options ndots:0\n";
        let got = system_upstreams(text, &["127.0.0.11".parse().unwrap()]);
        let want: Vec<SocketAddr> = vec![
            "192.0.2.53:53".parse().unwrap(),
            "[2001:db8::53]:53".parse().unwrap(),
            SocketAddr::V6(std::net::SocketAddrV6::new(
                "fe80::1".parse().unwrap(),
                53,
                0,
                2,
            )),
        ];
        assert_eq!(got, want);
        assert!(system_upstreams("", &[]).is_empty());
    }

    #[test]
    fn queries_ask_for_recursion_with_edns() {
        let name = Name::from_str("www.example.").unwrap();
        let bytes = compose_query(0x4242, &name, RecordType::AAAA).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert_eq!(m.metadata.id, 0x4242);
        assert!(m.metadata.recursion_desired);
        assert_eq!(m.edns.as_ref().map(Edns::max_payload), Some(1232));
        assert_eq!(m.edns.as_ref().map(|e| e.flags().dnssec_ok), Some(true));
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
    }

    #[test]
    fn responses_must_match_id_question_and_direction() {
        let name = Name::from_str("www.example.").unwrap();
        let asked = Asked {
            id: 7,
            name: &name,
            qtype: RecordType::A,
        };
        let response = |id: u16, qname: &str, qtype: RecordType, kind: MessageType| {
            let mut m = Message::new(id, kind, OpCode::Query);
            m.add_query(Query::query(Name::from_str(qname).unwrap(), qtype));
            m
        };
        assert!(asked.matches(&response(
            7,
            "WWW.Example.",
            RecordType::A,
            MessageType::Response
        )));
        assert!(!asked.matches(&response(
            8,
            "www.example.",
            RecordType::A,
            MessageType::Response
        )));
        assert!(!asked.matches(&response(
            7,
            "ww.example.",
            RecordType::A,
            MessageType::Response
        )));
        assert!(!asked.matches(&response(
            7,
            "www.example.",
            RecordType::MX,
            MessageType::Response
        )));
        assert!(!asked.matches(&response(
            7,
            "www.example.",
            RecordType::A,
            MessageType::Query
        )));
        assert!(!asked.matches(&Message::new(7, MessageType::Response, OpCode::Query)));
    }
}
