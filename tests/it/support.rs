//! Starting r53 on ephemeral ports with given zone files, and sending it queries.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use r53::app::{Running, ServeOptions};
use r53::dns::DnsOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

pub struct TestServer {
    pub running: Running,
    /// UDP and TCP share this address, as on port 53.
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub dns: DnsOptions,
}

impl TestServer {
    /// Starts r53 with `zones` written as `zones/NAME.zone` files in a fresh data directory.
    pub async fn start(zones: &[(&str, &str)]) -> Self {
        Self::start_with(zones, DnsOptions::default()).await
    }

    /// [`TestServer::start`] with DNS options of the test's choosing (timeouts, limits).
    pub async fn start_with(zones: &[(&str, &str)], dns: DnsOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let zones_dir = dir.path().join("zones");
        std::fs::create_dir_all(&zones_dir).unwrap();
        for (name, text) in zones {
            std::fs::write(zones_dir.join(format!("{name}.zone")), text).unwrap();
        }
        let running = start_in(dir.path(), dns.clone()).await;
        let addr = running.dns_addr;
        Self {
            running,
            addr,
            dir,
            dns,
        }
    }

    /// Stops the server and starts another on the same data directory (a restart).
    pub async fn restart(self) -> Self {
        let Self {
            running, dir, dns, ..
        } = self;
        running.shutdown().await.expect("shutdown");
        let running = start_in(dir.path(), dns.clone()).await;
        let addr = running.dns_addr;
        Self {
            running,
            addr,
            dir,
            dns,
        }
    }

    /// The zone files the server was started with.
    pub fn zones_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("zones")
    }

    pub async fn udp(&self, name: &str, qtype: RecordType) -> Message {
        query_udp(self.addr, &query(name, qtype)).await
    }

    pub async fn tcp(&self, name: &str, qtype: RecordType) -> Message {
        query_tcp(self.addr, &query(name, qtype)).await
    }
}

pub async fn start_in(dir: &Path, dns: DnsOptions) -> Running {
    r53::app::start(ServeOptions {
        data_dir: dir.join("data"),
        zones_dir: Some(dir.join("zones")),
        dns,
        ..ServeOptions::default()
    })
    .await
    .expect("server starts")
}

/// A query with EDNS (payload 1232), RD clear, as `dig +norec` sends.
/// A hosted zone's id as the API gives it (`/hostedzone/Z…`), without the prefix.
pub fn bare_id(id: &serde_json::Value) -> String {
    id.as_str().unwrap().rsplit('/').next().unwrap().to_owned()
}

/// A port free for both UDP and TCP on loopback right now.
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m
}

/// A query without EDNS.
pub fn plain_query(name: &str, qtype: RecordType) -> Message {
    let mut m = query(name, qtype);
    m.edns = None;
    m
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(1);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

pub async fn query_udp(addr: SocketAddr, message: &Message) -> Message {
    let raw = exchange_udp(addr, &message.to_vec().unwrap())
        .await
        .expect("an answer over UDP");
    let response = Message::from_vec(&raw).expect("a well-formed response");
    assert_eq!(response.metadata.id, message.metadata.id, "response id");
    response
}

/// Sends raw bytes over UDP; `None` if nothing comes back within a second.
pub async fn exchange_udp(addr: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, addr).await.unwrap();
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

pub async fn query_tcp(addr: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let raw = exchange_tcp(&mut stream, &message.to_vec().unwrap())
        .await
        .expect("an answer over TCP");
    Message::from_vec(&raw).expect("a well-formed response")
}

/// Sends one length-prefixed message on an open connection and reads one back.
pub async fn exchange_tcp(stream: &mut TcpStream, bytes: &[u8]) -> Option<Vec<u8>> {
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(bytes);
    stream.write_all(&framed).await.ok()?;
    read_tcp(stream).await
}

pub async fn read_tcp(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let read = async {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf)
    };
    tokio::time::timeout(Duration::from_secs(2), read)
        .await
        .ok()?
}

/// Record lines of a section, owner lower-cased, sorted, for comparisons:
/// `name ttl TYPE rdata`.
pub fn rrs(records: &[hickory_proto::rr::Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}",
                r.name.to_ascii().to_lowercase(),
                r.ttl,
                type_name(r.record_type()),
                r.data
            )
        })
        .collect();
    out.sort();
    out
}

/// A type's mnemonic, or `TYPEn` (RFC 3597) where hickory has none (SPF, for one).
pub fn type_name(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        other => match other.to_string().as_str() {
            "Unknown" => format!("TYPE{}", u16::from(other)),
            name => name.to_owned(),
        },
    }
}

/// One HTTP/1.1 request over a fresh connection: the status and the JSON body (Null if none).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    http_as(addr, method, path, None, body.as_ref()).await
}

/// [`http`] with an `Authorization` header value (`Bearer …`, or anything a test sends).
pub async fn http_as(
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: r53\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}
