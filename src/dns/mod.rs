//! DNS service: the socket loops ([`server`]), the request-to-response function
//! ([`message`]), with the name compression of what it composes (`compress`), and UDP
//! response-rate limiting ([`rrl`]). The only module that serves DNS.
//!
//! ```text
//!   UdpSocket ×N (SO_REUSEPORT) ─┐
//!                                ├─► message::respond(catalog snapshot, bytes) ─► bytes
//!   TcpListener ─► connection ───┘        │
//!                  (length-prefixed,      └─► catalog::Catalog::answer
//!                   pipelined, timeouts)
//! ```

pub mod cache;
mod compress;
pub mod message;
mod mmsg;
pub mod rrl;
pub mod server;
mod steer;

pub use message::{respond, Outcome, Recursion, RecursionPolicy, Transport, SERVER_UDP_PAYLOAD};
pub use rrl::RrlConfig;
pub use server::{bind, DnsListeners, DnsOptions};
