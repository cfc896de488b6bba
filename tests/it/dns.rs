//! DNS answers over real sockets: one test per rule an authoritative server must keep, each
//! against r53 started in-process on an ephemeral port (UDP and TCP on the same port).
//!
//! The rules are the issue's; the RFC that decides each is quoted at its test. The same
//! behaviours are compared with Knot DNS in `knot_diff.rs`; these tests pin r53's own answer,
//! record by record.

use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RecordType};
use r53::dns::DnsOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::support::{
    exchange_tcp, exchange_udp, plain_query, query, query_tcp, query_udp, read_tcp, rrs, TestServer,
};

const SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SHA1: &str = "da39a3ee5e6b4b0d3255bfef95601890afd80709";

/// The zone most tests query: one owner per rule.
fn example_com() -> String {
    let many: String = (1..=40)
        .map(|i| format!("many 300 A 198.51.100.{i}\n"))
        .collect();
    let big: String = (0..14)
        .map(|i| format!("big 300 TXT \"record {i:02}: {}\"\n", "x".repeat(110)))
        .collect();
    format!(
        r#"$ORIGIN example.com.
$TTL 3600
@         3600 SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@         NS    ns1
@         NS    ns.example.net.
@         MX    10 mail
@         A     192.0.2.1
@         TXT   "v=spf1 mx -all"
@         SPF   "v=spf1 mx -all"
@         CAA   0 issue "ca.example.net"
@         HTTPS 1 . alpn="h2"
ns1       A     192.0.2.53
ns1       AAAA  2001:db8::53
mail      A     192.0.2.25
mail      AAAA  2001:db8::25
www       A     192.0.2.80
www       AAAA  2001:db8::80
www       SSHFP 1 1 {SHA1}
_443._tcp.www TLSA 3 1 1 {SHA256}
txt       TXT   "one" "two words"
ptr       PTR   www
naptr     NAPTR 100 10 "S" "SIP+D2U" "" _sip._udp
_sip._udp SRV   0 5 5060 sip
sip       A     192.0.2.60
svc       SVCB  1 svc-host alpn="h2" port=8443
svc-host  A     192.0.2.90
alias     CNAME www
chain     CNAME alias
dangling  CNAME nowhere
loop1     CNAME loop2
loop2     CNAME loop1
out       CNAME www.elsewhere.test.
cross     CNAME www.example.net.
*.wild    A     192.0.2.100
*.wild    TXT   "synthesized"
host.wild A     192.0.2.101
a.ent.wild A    192.0.2.102
*.cw      CNAME www
deleg     NS    ns.deleg
deleg     NS    ns.elsewhere.test.
deleg     DS    12345 13 2 {SHA256}
ns.deleg  A     192.0.2.200
{many}{big}"#
    )
}

/// A second zone: a CNAME target in another zone r53 serves, and an SOA whose TTL is below
/// its minimum.
const EXAMPLE_NET: &str = r#"$ORIGIN example.net.
$TTL 600
@         60 SOA ns.example.net. hostmaster.example.net. 7 7200 3600 1209600 600
@         NS    ns
ns        A     203.0.113.53
www       A     203.0.113.80
"#;

async fn server() -> TestServer {
    TestServer::start(&[
        ("example.com", &example_com()),
        ("example.net", EXAMPLE_NET),
    ])
    .await
}

fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

/// A query dressed by `dress` (EDNS, flags, class) before it is sent.
fn custom(name: &str, qtype: RecordType, dress: impl FnOnce(&mut Message)) -> Message {
    let mut m = query(name, qtype);
    dress(&mut m);
    m
}

fn edns(payload: u16) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(payload);
    e
}

/// A header with the given flags word and counts.
fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut h = id.to_be_bytes().to_vec();
    h.extend_from_slice(&flags.to_be_bytes());
    for c in counts {
        h.extend_from_slice(&c.to_be_bytes());
    }
    h
}

/// A question in wire form (class IN).
fn question(name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    out
}

// ---------------------------------------------------------------------------------------------
// Answers

#[tokio::test]
async fn authoritative_answer_sets_aa() {
    let s = server().await;
    let m = s.udp("www.example.com", RecordType::A).await;
    assert_eq!(rcode(&m), ResponseCode::NoError);
    // RFC 1035 §4.1.1: AA "specifies that the responding name server is an authority for
    // the domain name in question section".
    assert!(m.metadata.authoritative);
    assert!(!m.metadata.recursion_available, "r53 offers no recursion");
    assert_eq!(rrs(&m.answers), ["www.example.com. 3600 A 192.0.2.80"]);
    assert!(m.authorities.is_empty() && m.additionals.is_empty());
    // RFC 4035 §3.1.6: an authoritative response clears CD; AD stays clear as nothing is
    // validated here. RD is copied (RFC 1035 §4.1.1).
    let flagged = query_udp(
        s.addr,
        &custom("www.example.com", RecordType::A, |m| {
            m.metadata.checking_disabled = true;
            m.metadata.authentic_data = true;
            m.metadata.recursion_desired = true;
        }),
    )
    .await;
    assert!(!flagged.metadata.checking_disabled && !flagged.metadata.authentic_data);
    assert!(flagged.metadata.recursion_desired && !flagged.metadata.recursion_available);
    assert!(flagged.metadata.authoritative);
}

#[tokio::test]
async fn every_record_type_is_served() {
    let s = server().await;
    let spf = RecordType::from(99);
    let cases: &[(&str, RecordType, &[&str])] = &[
        ("www.example.com", RecordType::A, &["www.example.com. 3600 A 192.0.2.80"]),
        ("www.example.com", RecordType::AAAA, &["www.example.com. 3600 AAAA 2001:db8::80"]),
        ("example.com", RecordType::CAA, &["example.com. 3600 CAA 0 issue \"ca.example.net\""]),
        ("alias.example.com", RecordType::CNAME, &["alias.example.com. 3600 CNAME www.example.com."]),
        ("deleg.example.com", RecordType::DS, &["deleg.example.com. 3600 DS 12345 13 2 E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"]),
        ("example.com", RecordType::HTTPS, &["example.com. 3600 HTTPS 1 . alpn=h2,"]),
        ("example.com", RecordType::MX, &["example.com. 3600 MX 10 mail.example.com."]),
        ("naptr.example.com", RecordType::NAPTR, &["naptr.example.com. 3600 NAPTR 100 10 \"S\" \"SIP+D2U\" \"\" _sip._udp.example.com."]),
        ("example.com", RecordType::NS, &["example.com. 3600 NS ns.example.net.", "example.com. 3600 NS ns1.example.com."]),
        ("ptr.example.com", RecordType::PTR, &["ptr.example.com. 3600 PTR www.example.com."]),
        ("example.com", RecordType::SOA, &["example.com. 3600 SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"]),
        ("example.com", spf, &["example.com. 3600 TYPE99 DnY9c3BmMSBteCAtYWxs"]),
        ("_sip._udp.example.com", RecordType::SRV, &["_sip._udp.example.com. 3600 SRV 0 5 5060 sip.example.com."]),
        ("www.example.com", RecordType::SSHFP, &["www.example.com. 3600 SSHFP 1 1 da39a3ee5e6b4b0d3255bfef95601890afd80709"]),
        ("svc.example.com", RecordType::SVCB, &["svc.example.com. 3600 SVCB 1 svc-host.example.com. alpn=h2, port=8443"]),
        ("_443._tcp.www.example.com", RecordType::TLSA, &["_443._tcp.www.example.com. 3600 TLSA 3 1 1 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]),
        ("txt.example.com", RecordType::TXT, &["txt.example.com. 3600 TXT onetwo words"]),
    ];
    let mut failures = Vec::new();
    for (name, qtype, expected) in cases {
        let m = s.udp(name, *qtype).await;
        let got = rrs(&m.answers);
        let ok = rcode(&m) == ResponseCode::NoError && m.metadata.authoritative && got == *expected;
        if !ok {
            failures.push(format!(
                "{name} {qtype:?}: {:?} aa={} {got:#?}",
                rcode(&m),
                m.metadata.authoritative
            ));
        }
    }
    // TXT keeps its strings apart on the wire (RFC 1035 §3.3.14); hickory's display runs
    // them together.
    let m = s.udp("txt.example.com", RecordType::TXT).await;
    match m.answers.first().map(|r| &r.data) {
        Some(hickory_proto::rr::RData::TXT(txt)) => {
            let strings: Vec<&[u8]> = txt.txt_data.iter().map(|s| s.as_ref()).collect();
            assert_eq!(strings, [&b"one"[..], &b"two words"[..]]);
        }
        other => failures.push(format!("txt.example.com TXT: {other:?}")),
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn nxdomain_carries_soa_with_negative_ttl() {
    let s = server().await;
    let m = s.udp("missing.example.com", RecordType::A).await;
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    // RFC 2308 §3: the SOA's TTL is the lesser of its own TTL (3600) and its MINIMUM (300).
    assert_eq!(
        rrs(&m.authorities),
        ["example.com. 300 SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"]
    );
}

#[tokio::test]
async fn nodata_carries_soa_with_negative_ttl() {
    let s = server().await;
    let m = s.udp("www.example.com", RecordType::MX).await;
    // RFC 2308 §2.2: NODATA is NOERROR with no answer and the SOA in the authority section.
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(
        rrs(&m.authorities),
        ["example.com. 300 SOA ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"]
    );
}

#[tokio::test]
async fn negative_ttl_is_the_soa_ttl_when_that_is_lower() {
    let s = server().await;
    let m = s.udp("missing.example.net", RecordType::A).await;
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    // SOA TTL 60, MINIMUM 600: RFC 2308 §3 takes the minimum of the two.
    assert_eq!(
        rrs(&m.authorities),
        ["example.net. 60 SOA ns.example.net. hostmaster.example.net. 7 7200 3600 1209600 600"]
    );
}

#[tokio::test]
async fn empty_non_terminal_is_nodata_not_nxdomain() {
    let s = server().await;
    // ent.wild.example.com owns nothing but has a.ent.wild below it. RFC 8020 §2: "there is
    // nothing" only when nothing exists below; an empty non-terminal exists.
    let m = s.udp("ent.wild.example.com", RecordType::A).await;
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1, "{:?}", rrs(&m.authorities));
}

#[tokio::test]
async fn cname_chain_is_followed_within_the_zone() {
    let s = server().await;
    let m = s.udp("chain.example.com", RecordType::A).await;
    // RFC 1034 §4.3.2 step 3a: the CNAME goes in the answer and the lookup restarts at its
    // target; the whole chain is one answer.
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(
        rrs(&m.answers),
        [
            "alias.example.com. 3600 CNAME www.example.com.",
            "chain.example.com. 3600 CNAME alias.example.com.",
            "www.example.com. 3600 A 192.0.2.80",
        ]
    );
}

#[tokio::test]
async fn cname_to_a_missing_name_is_nxdomain() {
    let s = server().await;
    let m = s.udp("dangling.example.com", RecordType::A).await;
    // RFC 6604 §2.1: the RCODE is set according to the last name in the chain.
    assert_eq!(rcode(&m), ResponseCode::NXDomain);
    assert_eq!(
        rrs(&m.answers),
        ["dangling.example.com. 3600 CNAME nowhere.example.com."]
    );
    assert_eq!(m.authorities.len(), 1);
}

#[tokio::test]
async fn cname_loop_is_answered_once_round() {
    let s = server().await;
    let m = s.udp("loop1.example.com", RecordType::A).await;
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert_eq!(
        rrs(&m.answers),
        [
            "loop1.example.com. 3600 CNAME loop2.example.com.",
            "loop2.example.com. 3600 CNAME loop1.example.com.",
        ]
    );
}

#[tokio::test]
async fn cname_is_followed_into_another_served_zone() {
    let s = server().await;
    let m = s.udp("cross.example.com", RecordType::A).await;
    // Step 1 of RFC 1034 §4.3.2 looks among all the server's zones (NSD does the same).
    assert_eq!(
        rrs(&m.answers),
        [
            "cross.example.com. 3600 CNAME www.example.net.",
            "www.example.net. 600 A 203.0.113.80",
        ]
    );
    assert!(m.metadata.authoritative);
}

#[tokio::test]
async fn cname_out_of_every_zone_ends_the_answer() {
    let s = server().await;
    let m = s.udp("out.example.com", RecordType::A).await;
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert_eq!(
        rrs(&m.answers),
        ["out.example.com. 3600 CNAME www.elsewhere.test."]
    );
    assert!(m.authorities.is_empty());
}

#[tokio::test]
async fn wildcard_is_synthesized_with_the_query_name() {
    let s = server().await;
    let m = s.udp("anything.wild.example.com", RecordType::A).await;
    // RFC 4592 §3.3.1: the answer's owner is the query name, not the wildcard.
    assert_eq!(
        rrs(&m.answers),
        ["anything.wild.example.com. 3600 A 192.0.2.100"]
    );
    assert!(m.metadata.authoritative);
    let deeper = s.udp("a.b.wild.example.com", RecordType::TXT).await;
    assert_eq!(
        rrs(&deeper.answers),
        ["a.b.wild.example.com. 3600 TXT synthesized"]
    );
    let nodata = s.udp("anything.wild.example.com", RecordType::MX).await;
    assert_eq!(rcode(&nodata), ResponseCode::NoError);
    assert!(nodata.answers.is_empty());
    assert_eq!(nodata.authorities.len(), 1);
}

#[tokio::test]
async fn wildcard_does_not_apply_where_a_name_exists() {
    let s = server().await;
    // RFC 4592 §2.2.1 / §3.3.1: synthesis happens only where the name does not exist.
    let exists = s.udp("host.wild.example.com", RecordType::TXT).await;
    assert_eq!(rcode(&exists), ResponseCode::NoError);
    assert!(exists.answers.is_empty(), "{:?}", rrs(&exists.answers));
    // An empty non-terminal exists too: no synthesis at it...
    let ent = s.udp("ent.wild.example.com", RecordType::A).await;
    assert_eq!(rcode(&ent), ResponseCode::NoError);
    assert!(ent.answers.is_empty(), "{:?}", rrs(&ent.answers));
    // ...and below it the closest encloser is the empty non-terminal, which has no wildcard.
    let below = s.udp("x.ent.wild.example.com", RecordType::A).await;
    assert_eq!(rcode(&below), ResponseCode::NXDomain);
}

#[tokio::test]
async fn wildcard_cname_is_synthesized_and_followed() {
    let s = server().await;
    let m = s.udp("x.cw.example.com", RecordType::A).await;
    assert_eq!(
        rrs(&m.answers),
        [
            "www.example.com. 3600 A 192.0.2.80",
            "x.cw.example.com. 3600 CNAME www.example.com.",
        ]
    );
}

#[tokio::test]
async fn referral_clears_aa_and_carries_glue() {
    let s = server().await;
    for name in [
        "deleg.example.com",
        "host.deleg.example.com",
        "ns.deleg.example.com",
    ] {
        let m = s.udp(name, RecordType::A).await;
        // RFC 1034 §4.3.2 step 3b: a referral, not an authoritative answer.
        assert_eq!(rcode(&m), ResponseCode::NoError, "{name}");
        assert!(!m.metadata.authoritative, "{name}: AA on a referral");
        assert!(m.answers.is_empty(), "{name}");
        assert_eq!(
            rrs(&m.authorities),
            [
                "deleg.example.com. 3600 NS ns.deleg.example.com.",
                "deleg.example.com. 3600 NS ns.elsewhere.test.",
            ],
            "{name}"
        );
        // Glue for the in-zone name server only.
        assert_eq!(
            rrs(&m.additionals),
            ["ns.deleg.example.com. 3600 A 192.0.2.200"],
            "{name}"
        );
    }
}

#[tokio::test]
async fn ds_at_a_cut_is_answered_by_the_parent() {
    let s = server().await;
    let m = s.udp("deleg.example.com", RecordType::DS).await;
    // RFC 4035 §3.1.4.1: the DS RRset lives on the parent side of the cut.
    assert!(m.metadata.authoritative);
    assert_eq!(m.answers.len(), 1);
    assert!(m.authorities.is_empty());
}

#[tokio::test]
async fn additional_section_carries_addresses_of_in_zone_targets() {
    let s = server().await;
    let mx = s.udp("example.com", RecordType::MX).await;
    assert_eq!(
        rrs(&mx.additionals),
        [
            "mail.example.com. 3600 A 192.0.2.25",
            "mail.example.com. 3600 AAAA 2001:db8::25"
        ]
    );
    // NS: ns1 is in the zone; ns.example.net is another zone's data and is left out.
    let ns = s.udp("example.com", RecordType::NS).await;
    assert_eq!(
        rrs(&ns.additionals),
        [
            "ns1.example.com. 3600 A 192.0.2.53",
            "ns1.example.com. 3600 AAAA 2001:db8::53"
        ]
    );
    let srv = s.udp("_sip._udp.example.com", RecordType::SRV).await;
    assert_eq!(
        rrs(&srv.additionals),
        ["sip.example.com. 3600 A 192.0.2.60"]
    );
    // RFC 9460 §4.1: SVCB and HTTPS TargetNames in the zone get their addresses too.
    let svcb = s.udp("svc.example.com", RecordType::SVCB).await;
    assert_eq!(
        rrs(&svcb.additionals),
        ["svc-host.example.com. 3600 A 192.0.2.90"]
    );
}

#[tokio::test]
async fn names_in_no_hosted_zone_are_refused() {
    let s = server().await;
    for name in ["www.elsewhere.test", "com", ".", "example.org"] {
        let m = s.udp(name, RecordType::A).await;
        assert_eq!(rcode(&m), ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative, "{name}");
        assert!(m.answers.is_empty() && m.authorities.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn matching_ignores_case_and_the_question_keeps_the_clients() {
    let s = server().await;
    let m = s.udp("WwW.ExAmPlE.cOm", RecordType::A).await;
    // RFC 4343 §3: names compare case-insensitively; the question is echoed as sent.
    assert_eq!(m.queries[0].name().to_ascii(), "WwW.ExAmPlE.cOm.");
    assert_eq!(rrs(&m.answers), ["www.example.com. 3600 A 192.0.2.80"]);
    let nx = s.udp("NoSuch.EXAMPLE.com", RecordType::A).await;
    assert_eq!(rcode(&nx), ResponseCode::NXDomain);
    assert_eq!(nx.queries[0].name().to_ascii(), "NoSuch.EXAMPLE.com.");
    let referral = s.udp("HOST.Deleg.Example.COM", RecordType::A).await;
    assert!(!referral.metadata.authoritative);
    assert_eq!(referral.authorities.len(), 2);
}

#[tokio::test]
async fn any_query_gets_one_rrset() {
    let s = server().await;
    // RFC 8482 §4.2: answer ANY with one RRset of the name's (or a synthesized HINFO).
    let m = s.udp("example.com", RecordType::ANY).await;
    assert_eq!(rcode(&m), ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    let types: std::collections::BTreeSet<_> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "{:?}", rrs(&m.answers));
    let tcp = s.tcp("example.com", RecordType::ANY).await;
    assert_eq!(
        rrs(&tcp.answers),
        rrs(&m.answers),
        "ANY is minimal over TCP too"
    );
}

// ---------------------------------------------------------------------------------------------
// EDNS, sizes and transports

#[tokio::test]
async fn opt_is_echoed_with_the_servers_payload_size() {
    let s = server().await;
    let m = query_udp(
        s.addr,
        &custom("www.example.com", RecordType::A, |m| {
            let mut e = edns(4096);
            e.set_dnssec_ok(true);
            m.set_edns(e);
        }),
    )
    .await;
    // RFC 6891 §7: a responder that got an OPT includes one; r53 advertises 1232, and RFC
    // 3225 §3 copies the DO bit.
    let opt = m.edns.as_ref().expect("OPT in the response");
    assert_eq!(opt.max_payload(), 1232);
    assert_eq!(opt.version(), 0);
    assert!(opt.flags().dnssec_ok);
    let plain = query_udp(s.addr, &plain_query("www.example.com", RecordType::A)).await;
    // RFC 6891 §7: no OPT in the query, none in the response.
    assert!(plain.edns.is_none());
}

#[tokio::test]
async fn edns_version_1_is_badvers() {
    let s = server().await;
    let m = query_udp(
        s.addr,
        &custom("www.example.com", RecordType::A, |m| {
            let mut e = edns(1232);
            e.set_version(1);
            m.set_edns(e);
        }),
    )
    .await;
    // RFC 6891 §6.1.3: BADVERS (16, its upper bits in the OPT) and the version we speak.
    assert_eq!(u16::from(rcode(&m)), 16);
    assert_eq!(m.edns.as_ref().map(Edns::version), Some(0));
    assert!(m.answers.is_empty());
}

#[tokio::test]
async fn tc_set_when_udp_answer_does_not_fit() {
    let s = server().await;
    // 40 A records take about 670 bytes: more than 512 (RFC 1035 §4.2.1, no EDNS)...
    let m = query_udp(s.addr, &plain_query("many.example.com", RecordType::A)).await;
    assert!(m.metadata.truncation, "TC without EDNS");
    assert!(m.answers.is_empty(), "whole RRsets only (RFC 2181 §9)");
    let raw = exchange_udp(
        s.addr,
        &plain_query("many.example.com", RecordType::A)
            .to_vec()
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(raw.len() <= 512);
}

#[tokio::test]
async fn client_udp_payload_size_is_honoured_up_to_1232() {
    let s = server().await;
    let with = |payload| {
        custom("many.example.com", RecordType::A, move |m| {
            m.set_edns(edns(payload));
        })
    };
    let small = query_udp(s.addr, &with(512)).await;
    assert!(small.metadata.truncation);
    let fits = query_udp(s.addr, &with(1232)).await;
    assert!(!fits.metadata.truncation);
    assert_eq!(fits.answers.len(), 40);
    // RFC 6891 §6.2.5: below 512 counts as 512.
    let tiny = query_udp(s.addr, &with(100)).await;
    assert!(tiny.metadata.truncation);
    // The TXT set needs about 2 KB: a client's 4096 is capped at the server's 1232.
    let raw = exchange_udp(
        s.addr,
        &custom("big.example.com", RecordType::TXT, |m| {
            m.set_edns(edns(4096));
        })
        .to_vec()
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(raw.len() <= 1232, "{} bytes over UDP", raw.len());
    assert!(Message::from_vec(&raw).unwrap().metadata.truncation);
}

#[tokio::test]
async fn tcp_carries_the_full_answer() {
    let s = server().await;
    let m = s.tcp("big.example.com", RecordType::TXT).await;
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 14);
    let plain = query_tcp(s.addr, &plain_query("many.example.com", RecordType::A)).await;
    assert!(!plain.metadata.truncation);
    assert_eq!(plain.answers.len(), 40);
}

#[tokio::test]
async fn pipelined_tcp_queries_are_all_answered() {
    let s = server().await;
    let names = [
        "www.example.com",
        "missing.example.com",
        "alias.example.com",
        "big.example.com",
        "example.com",
    ];
    let queries: Vec<Message> = (0..20)
        .map(|i| {
            let mut m = query(names[i % names.len()], RecordType::A);
            m.metadata.id = 1000 + i as u16;
            m
        })
        .collect();
    // All of them in one write, before reading anything (RFC 7766 §6.2.1.1).
    let mut bytes = Vec::new();
    for q in &queries {
        let wire = q.to_vec().unwrap();
        bytes.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&wire);
    }
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let mut seen = Vec::new();
    for _ in &queries {
        let raw = read_tcp(&mut stream)
            .await
            .expect("a response for every query");
        let m = Message::from_vec(&raw).unwrap();
        let q = &queries[usize::from(m.metadata.id - 1000)].queries[0];
        let echoed = &m.queries[0];
        assert_eq!(
            (echoed.name().to_ascii(), echoed.query_type()),
            (format!("{}.", q.name().to_ascii()), q.query_type()),
            "response {} answers its own question",
            m.metadata.id
        );
        seen.push(m.metadata.id);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1000..1020).collect::<Vec<u16>>());
}

/// Hundreds of kilobytes of pipelined answers: 400 queries for a name with many records, in
/// one write, all answered in turn and each framed whole (the server writes them in pieces of
/// at least 16 KiB as they are made).
#[tokio::test]
async fn pipelined_tcp_answers_of_many_kilobytes_are_all_framed_whole() {
    let s = server().await;
    let mut bytes = Vec::new();
    for id in 0..400u16 {
        let mut q = query("many.example.com", RecordType::A);
        q.metadata.id = id;
        let wire = q.to_vec().unwrap();
        bytes.extend_from_slice(&(wire.len() as u16).to_be_bytes());
        bytes.extend_from_slice(&wire);
    }
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut read, mut write) = stream.split();
    // Written while the answers are read, so that neither side waits on a full buffer.
    let writing = async { write.write_all(&bytes).await.unwrap() };
    let reading = async {
        let mut total = 0;
        for id in 0..400u16 {
            let mut len = [0u8; 2];
            read.read_exact(&mut len).await.unwrap();
            let mut raw = vec![0u8; usize::from(u16::from_be_bytes(len))];
            read.read_exact(&mut raw).await.unwrap();
            total += raw.len();
            let m = Message::from_vec(&raw).unwrap();
            assert_eq!(m.metadata.id, id, "answers come in turn");
            assert_eq!(m.answers.len(), 40);
        }
        total
    };
    let ((), total) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(writing, reading)
    })
    .await
    .expect("all 400 answers");
    assert!(
        total > 4 * 16 * 1024,
        "{total} bytes: more than a few writes' worth"
    );
}

#[tokio::test]
async fn tcp_queries_before_a_bad_or_unfinished_frame_are_still_answered() {
    let s = server().await;
    let mut response = query("www.example.com", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let tails: [(&str, Vec<u8>); 3] = [
        ("an empty frame", vec![0, 0]),
        ("one byte of the next frame", vec![0]),
        ("a response, not a query", {
            let wire = response.to_vec().unwrap();
            let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&wire);
            framed
        }),
    ];
    for (what, tail) in tails {
        let mut bytes = Vec::new();
        for id in 1..=3u16 {
            let mut q = query("www.example.com", RecordType::A);
            q.metadata.id = id;
            let wire = q.to_vec().unwrap();
            bytes.extend_from_slice(&(wire.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&wire);
        }
        bytes.extend_from_slice(&tail);
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        // One write, so that the tail arrives in the same read as the queries.
        stream.write_all(&bytes).await.unwrap();
        for id in 1..=3u16 {
            // Well within the 5 s read timeout the unfinished frame could otherwise wait for.
            let raw = tokio::time::timeout(Duration::from_secs(2), read_tcp(&mut stream))
                .await
                .unwrap_or_else(|_| panic!("answer {id} before {what} came late"))
                .unwrap_or_else(|| panic!("answer {id} before {what} was lost"));
            assert_eq!(Message::from_vec(&raw).unwrap().metadata.id, id, "{what}");
        }
    }
}

#[tokio::test]
async fn idle_tcp_connection_is_closed() {
    let options = DnsOptions {
        tcp_idle_timeout: Duration::from_millis(300),
        ..DnsOptions::default()
    };
    let s = TestServer::start_with(&[("example.com", &example_com())], options).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    // A query, then silence: RFC 7766 §6.2.3 lets the server close an idle connection.
    let answer = exchange_tcp(
        &mut stream,
        &query("www.example.com", RecordType::A).to_vec().unwrap(),
    )
    .await;
    assert!(answer.is_some());
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the idle connection is still open: {read:?}"
    );
    // A connection that never sends anything is closed as well.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
}

#[tokio::test]
async fn slow_tcp_client_does_not_stall_others() {
    let options = DnsOptions {
        tcp_read_timeout: Duration::from_millis(500),
        ..DnsOptions::default()
    };
    let s = TestServer::start_with(&[("example.com", &example_com())], options).await;
    // Several clients that start a query and never finish it.
    let mut slow = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        stream.write_all(&[0, 40, 0x12]).await.unwrap();
        slow.push(stream);
    }
    // Everyone else is answered meanwhile, over UDP and TCP (each with a 1-2 s timeout).
    for _ in 0..5 {
        let m = s.udp("www.example.com", RecordType::A).await;
        assert_eq!(m.answers.len(), 1);
        let m = s.tcp("www.example.com", RecordType::A).await;
        assert_eq!(m.answers.len(), 1);
    }
    // And the slow ones are cut off once their query is overdue.
    for mut stream in slow {
        let mut buf = [0u8; 16];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[tokio::test]
async fn two_questions_is_formerr() {
    let s = server().await;
    let mut m = query("www.example.com", RecordType::A);
    m.add_query(Query::query(
        Name::from_ascii("example.com").unwrap(),
        RecordType::SOA,
    ));
    let r = query_udp(s.addr, &m).await;
    // RFC 9619: a QUERY carries one question; more is a format error.
    assert_eq!(rcode(&r), ResponseCode::FormErr);
    assert!(r.answers.is_empty());
    let r = query_tcp(s.addr, &m).await;
    assert_eq!(rcode(&r), ResponseCode::FormErr);
}

#[tokio::test]
async fn zero_questions_is_formerr() {
    let s = server().await;
    let raw = exchange_udp(s.addr, &header(0x4242, 0, [0, 0, 0, 0]))
        .await
        .expect("an answer");
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, 0x4242);
    assert_eq!(rcode(&m), ResponseCode::FormErr);
}

#[tokio::test]
async fn malformed_query_is_formerr() {
    let s = server().await;
    let mut cut = header(0x5151, 0x0100, [1, 0, 0, 0]);
    cut.extend(&question("www.example.com", 1)[..9]);
    let mut trailing = header(0x5252, 0, [1, 0, 0, 0]);
    trailing.extend(question("www.example.com", 1));
    trailing.extend([0xde, 0xad, 0xbe]);
    let mut pointer_loop = header(0x5353, 0, [1, 0, 0, 0]);
    pointer_loop.extend([0xc0, 12, 0, 1, 0, 1]);
    let mut two_opts = header(0x5454, 0, [1, 0, 0, 2]);
    two_opts.extend(question("www.example.com", 1));
    for _ in 0..2 {
        two_opts.extend([0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    for (what, bytes) in [
        ("question cut short", cut),
        ("bytes after the message", trailing),
        ("compression pointer loop", pointer_loop),
        ("two OPT records (RFC 6891 §6.1.1)", two_opts),
    ] {
        let id = u16::from_be_bytes([bytes[0], bytes[1]]);
        let raw = exchange_udp(s.addr, &bytes)
            .await
            .unwrap_or_else(|| panic!("{what}: no answer"));
        let m = Message::from_vec(&raw).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(m.metadata.id, id, "{what}");
        assert_eq!(m.metadata.message_type, MessageType::Response, "{what}");
        assert_eq!(rcode(&m), ResponseCode::FormErr, "{what}");
    }
}

#[tokio::test]
async fn short_datagram_is_dropped() {
    let s = server().await;
    // RFC 1035 §4.1.1: without a whole header there is no ID to answer to.
    for len in [0, 1, 2, 11] {
        let bytes = vec![0x11; len];
        assert_eq!(exchange_udp(s.addr, &bytes).await, None, "{len} bytes");
    }
    // A response is not answered either (that would make r53 a reflector).
    let mut response = header(0x6161, 0x8000, [1, 0, 0, 0]);
    response.extend(question("www.example.com", 1));
    assert_eq!(exchange_udp(s.addr, &response).await, None);
    // And the server goes on answering.
    assert_eq!(
        s.udp("www.example.com", RecordType::A).await.answers.len(),
        1
    );
}

#[tokio::test]
async fn opcodes_other_than_query_are_notimp() {
    let s = server().await;
    for opcode in [
        OpCode::Notify,
        OpCode::Update,
        OpCode::Status,
        OpCode::Unknown(1),
        OpCode::Unknown(6),
    ] {
        let mut m = Message::new(0x7171, MessageType::Query, opcode);
        m.add_query(Query::query(
            Name::from_ascii("example.com").unwrap(),
            RecordType::SOA,
        ));
        let r = query_udp(s.addr, &m).await;
        // RFC 1035 §4.1.1: "Not Implemented - The name server does not support the
        // requested kind of query".
        assert_eq!(rcode(&r), ResponseCode::NotImp, "{opcode:?}");
        assert_eq!(r.metadata.op_code, opcode, "the opcode is echoed");
    }
}

#[tokio::test]
async fn classes_other_than_in_are_refused_and_any_is_in() {
    let s = server().await;
    let class = |c| {
        custom("www.example.com", RecordType::A, move |m| {
            m.queries[0].set_query_class(c);
        })
    };
    for c in [DNSClass::CH, DNSClass::HS, DNSClass::NONE] {
        let r = query_udp(s.addr, &class(c)).await;
        assert_eq!(rcode(&r), ResponseCode::Refused, "{c:?}");
    }
    // RFC 1035 §3.2.5: QCLASS * matches any class, and all of r53's data is IN.
    let r = query_udp(s.addr, &class(DNSClass::ANY)).await;
    assert_eq!(rrs(&r.answers), ["www.example.com. 3600 A 192.0.2.80"]);
}

#[tokio::test]
async fn zone_transfers_are_not_offered() {
    let s = server().await;
    let axfr = query("example.com", RecordType::AXFR);
    // RFC 5936 §4.2: AXFR over UDP is not defined.
    assert_eq!(rcode(&query_udp(s.addr, &axfr).await), ResponseCode::NotImp);
    // Over TCP it is a policy refusal (RFC 1035 §4.1.1), for now.
    assert_eq!(
        rcode(&query_tcp(s.addr, &axfr).await),
        ResponseCode::Refused
    );
    let ixfr = query("example.com", RecordType::IXFR);
    assert_eq!(
        rcode(&query_udp(s.addr, &ixfr).await),
        ResponseCode::Refused
    );
}

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random bytes, or a valid query with a few bytes changed.
fn garbage(rng: &mut XorShift, valid: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(3) == 0 {
        let len = rng.below(600);
        (0..len).map(|_| rng.next() as u8).collect()
    } else {
        let mut bytes = valid[rng.below(valid.len())].clone();
        for _ in 0..=rng.below(6) {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        if rng.below(4) == 0 {
            bytes.truncate(rng.below(bytes.len() + 1));
        }
        bytes
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_never_stops_the_server() {
    let s = server().await;
    let valid: Vec<Vec<u8>> = [
        ("www.example.com", RecordType::A),
        ("x.wild.example.com", RecordType::TXT),
        ("host.deleg.example.com", RecordType::A),
        ("example.com", RecordType::ANY),
        ("chain.example.com", RecordType::SVCB),
    ]
    .iter()
    .map(|(n, t)| query(n, *t).to_vec().unwrap())
    .collect();
    let mut rng = XorShift(0x5eed_1234_abcd_9876);
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut buf = vec![0u8; 65535];
    for i in 0..3000 {
        let bytes = garbage(&mut rng, &valid);
        socket.send_to(&bytes, s.addr).await.unwrap();
        // What must be dropped is dropped; everything else gets a response for its ID.
        let dropped = bytes.len() < 12 || bytes[2] & 0x80 != 0;
        if dropped {
            continue;
        }
        let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("datagram {i} got no answer: {bytes:02x?}"))
            .unwrap();
        let m = Message::from_vec(&buf[..n])
            .unwrap_or_else(|e| panic!("datagram {i}: unreadable answer ({e}) to {bytes:02x?}"));
        assert_eq!(
            &buf[..2],
            &bytes[..2],
            "datagram {i}: answer for another ID"
        );
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert_ne!(
            rcode(&m),
            ResponseCode::ServFail,
            "datagram {i}: {bytes:02x?}"
        );
    }
    // Garbage over TCP: every connection is answered or closed, never left hanging.
    for _ in 0..200 {
        let mut stream = TcpStream::connect(s.addr).await.unwrap();
        let bytes = garbage(&mut rng, &valid);
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        if rng.below(5) == 0 {
            // A length that lies.
            framed = (rng.next() as u16).to_be_bytes().to_vec();
        }
        framed.extend_from_slice(&bytes);
        let _ = stream.write_all(&framed).await;
        let _ = stream.shutdown().await;
        let mut sink = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(8), stream.read_to_end(&mut sink)).await;
        assert!(read.is_ok(), "a TCP connection was left hanging");
    }
    // Still serving, over both transports.
    assert_eq!(
        s.udp("www.example.com", RecordType::A).await.answers.len(),
        1
    );
    assert_eq!(
        s.tcp("www.example.com", RecordType::A).await.answers.len(),
        1
    );
}

// ---------------------------------------------------------------------------------------------
// Restart

#[tokio::test]
async fn restart_serves_the_same_answers_from_the_store() {
    let s = server().await;
    let battery: &[(&str, RecordType)] = &[
        ("www.example.com", RecordType::A),
        ("example.com", RecordType::MX),
        ("missing.example.com", RecordType::A),
        ("x.wild.example.com", RecordType::TXT),
        ("chain.example.com", RecordType::A),
        ("host.deleg.example.com", RecordType::A),
        ("svc.example.com", RecordType::SVCB),
        ("example.com", RecordType::from(99)),
        ("cross.example.com", RecordType::A),
    ];
    let mut before = Vec::new();
    for (name, qtype) in battery {
        before.push(answer_lines(&s.udp(name, *qtype).await));
    }
    // Without the zone files, whatever is served after the restart comes from sled.
    std::fs::remove_dir_all(s.zones_dir()).unwrap();
    let s = s.restart().await;
    for ((name, qtype), before) in battery.iter().zip(before) {
        assert_eq!(
            answer_lines(&s.udp(name, *qtype).await),
            before,
            "{name} {qtype:?}"
        );
    }
}

fn answer_lines(m: &Message) -> Vec<String> {
    let mut out = vec![format!(
        "{:?} aa={} tc={}",
        rcode(m),
        m.metadata.authoritative,
        m.metadata.truncation
    )];
    for section in [&m.answers, &m.authorities, &m.additionals] {
        out.extend(rrs(section));
        out.push("--".into());
    }
    out
}

/// The UDP response cache: a repeated question, asked in another letter case and with another
/// ID, gets the same answer with its own ID and its own case echoed; a change to the zone is
/// seen at once (a new snapshot empties the cache).
#[tokio::test]
async fn repeated_questions_are_answered_alike_and_changes_show_at_once() {
    let s = server().await;
    let first = crate::support::exchange_udp(
        s.addr,
        &query("www.example.com.", RecordType::A).to_vec().unwrap(),
    )
    .await
    .expect("first answer");
    let mut again = query("wWw.ExAmPlE.cOm.", RecordType::A);
    again.metadata.id = 0xbeef;
    let bytes = again.to_vec().unwrap();
    let second = crate::support::exchange_udp(s.addr, &bytes)
        .await
        .expect("second answer");
    assert_eq!(&second[0..2], &[0xbe, 0xef], "the asker's ID");
    let name_end = 12 + "www.example.com.".len() + 1;
    assert_eq!(
        &second[12..name_end],
        &bytes[12..name_end],
        "the asker's case"
    );
    assert_eq!(
        &second[name_end..],
        &first[name_end..],
        "the same answer otherwise"
    );
    assert_eq!(&second[2..12], &first[2..12]);

    let zone = s
        .running
        .service
        .zone_by_name(&Name::from_ascii("example.com.").unwrap())
        .await
        .unwrap();
    let new = r53::model::ResourceRecordSet::new(
        &Name::from_ascii("www.example.com.").unwrap(),
        RecordType::A,
        60,
        vec![hickory_proto::rr::RData::A("192.0.2.99".parse().unwrap())],
    );
    let mut rrsets: Vec<_> = zone
        .rrsets
        .values()
        .filter(|r| r.key() != new.key())
        .map(std::sync::Arc::unwrap_or_clone)
        .collect();
    rrsets.push(new);
    s.running
        .service
        .replace_records(&zone.zone().id, rrsets)
        .await
        .unwrap();
    let after = s.udp("www.example.com.", RecordType::A).await;
    let values: Vec<String> = after.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(values, ["192.0.2.99"]);
}

/// Whether a UDP socket is still bound to `addr`'s port, from /proc/net/udp (local address
/// and port in hex), without sending it anything that could wake its thread.
fn udp_port_open(addr: std::net::SocketAddr) -> bool {
    let table = std::fs::read_to_string("/proc/net/udp").expect("/proc/net/udp");
    let port = format!(":{:04X}", addr.port());
    table
        .lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().nth(1))
        .any(|local| local.ends_with(&port))
}

/// The UDP sockets are served by threads of their own, blocked in the kernel between
/// batches: a shutdown must wake them, and the sockets must be closed when it returns.
#[tokio::test]
async fn shutdown_stops_the_udp_threads_and_closes_their_sockets() {
    let s = TestServer::start(&[("example.com", &example_com())]).await;
    let addr = s.addr;
    assert!(s.udp("www.example.com", RecordType::A).await.answers.len() == 1);
    tokio::time::timeout(Duration::from_secs(10), s.running.shutdown())
        .await
        .expect("shutdown returns")
        .unwrap();
    assert!(!udp_port_open(addr), "a UDP socket is still open");
}

/// The same when the server is dropped without a shutdown (a test ending, a task aborted).
#[tokio::test]
async fn dropping_the_server_stops_the_udp_threads() {
    let s = TestServer::start(&[("example.com", &example_com())]).await;
    let addr = s.addr;
    assert!(s.udp("www.example.com", RecordType::A).await.answers.len() == 1);
    drop(s);
    let mut closed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !udp_port_open(addr) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a UDP socket is still open 5 s after the server was dropped"
    );
}
