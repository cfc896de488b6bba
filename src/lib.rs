//! r53: Route 53 that you run yourself.
//!
//! A map of the crate, from the outside in:
//!
//! ```text
//!   UDP/TCP :53 ──► dns ──► catalog (in-memory snapshot, swapped atomically)
//!                                ▲
//!   zone files ──► zonefile ─┐   │ published after every durable change
//!                            ▼   │
//!   HTTP :8053 ──► api ──► service ──► store (sled; the only module that knows it)
//!                            ▲
//!   r53 zone/record/change ──► cli ──HTTP──► api
//!                          model (Route 53 types and rules; no IO)
//! ```
//!
//! - [`model`]: hosted zones, record sets, their rules.
//! - [`store`]: durable state behind the [`store::Store`] trait; sled is its one implementation.
//! - [`catalog`]: the serving snapshot and the answer algorithm (RFC 1034 §4.3.2).
//! - [`service`]: the operations every front end shares: validate, store, swap; [`commit`]:
//!   the group commit that makes their changes durable and publishes the catalog.
//! - [`dns`]: sockets, wire parsing and composing of answers.
//! - [`zonefile`]: RFC 1035 master files in and out.
//! - [`api`]: the Route 53-shaped REST API (axum, JSON); [`cli`]: the client commands that
//!   talk to it.
//! - [`app`]: wiring for `r53 serve`; [`config`]: the command line.

pub mod api;
pub mod app;
pub mod catalog;
pub mod cli;
pub mod commit;
pub mod config;
pub mod dns;
pub mod model;
pub mod resolver;
pub mod service;
pub mod store;
pub mod stubs;
pub mod zonefile;
