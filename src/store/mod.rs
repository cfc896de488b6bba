//! Durable state: hosted zones and their record sets.
//!
//! [`Store`] is the seam between r53 and its storage engine. [`SledStore`] is the one
//! implementation and this is the only module that imports sled. A store applies a [`Batch`]
//! all or nothing, and what it has applied is durable once a `flush` returns (the service
//! shares one flush among concurrent changes); it never decides what is valid (the service
//! does) and is never read on the DNS path (the catalog is).

mod codec;
mod sled_store;

pub use sled_store::SledStore;

use hickory_proto::rr::Name;
use std::sync::Arc;

use crate::resolver::ForwardingRule;

use crate::model::{ChangeInfo, Endpoint, HostedZone, HostedZoneId, ResourceRecordSet, RrKey, Vpc};

/// The on-disk layout version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {path} holds schema version {found}; this r53 reads version {expected} only and will not rewrite it")]
    SchemaVersion {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage engine: {0}")]
    Engine(String),
}

/// One write inside a batch.
#[derive(Debug, Clone)]
pub enum Write {
    PutZone(HostedZone),
    DeleteZone(HostedZoneId),
    PutRrset(HostedZoneId, Arc<ResourceRecordSet>),
    DeleteRrset(HostedZoneId, RrKey),
    /// The record of a change, for GetChange.
    PutChange(ChangeInfo),
    PutEndpoint(Endpoint),
    DeleteEndpoint(Name),
    PutVpc(Vpc),
    DeleteVpc(String),
    PutRule(ForwardingRule),
    DeleteRule(Name),
}

/// Writes applied together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch(pub Vec<Write>);

/// A hosted zone with its record sets, as loaded at start.
#[derive(Debug, Clone)]
pub struct StoredZone {
    pub zone: HostedZone,
    pub rrsets: Vec<ResourceRecordSet>,
}

pub trait Store: Send + Sync + 'static {
    /// Everything stored, for building the in-memory state at start.
    fn load(&self) -> Result<Vec<StoredZone>, StoreError>;
    /// Every registered endpoint, for the registry at start.
    fn load_endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Every VPC.
    fn load_vpcs(&self) -> Result<Vec<Vpc>, StoreError>;
    /// Every resolver forwarding rule.
    fn load_rules(&self) -> Result<Vec<ForwardingRule>, StoreError>;
    /// Applies the batch atomically: all of it or none. Durable once a later `flush` returns.
    /// Blocking: call it from `spawn_blocking` in async code.
    fn apply(&self, batch: &Batch) -> Result<(), StoreError>;
    /// A change recorded by an earlier batch.
    fn change(&self, id: &str) -> Result<Option<ChangeInfo>, StoreError>;
    /// Makes everything applied so far survive a process crash. Blocking.
    fn flush(&self) -> Result<(), StoreError>;
    /// Creates a hosted zone with its record sets: none of it is seen (after a crash either)
    /// unless all of it is. The same as one `apply` by default; a store may write a large zone
    /// in steps, as long as the zone appears whole or not at all. Blocking.
    fn create_zone(
        &self,
        zone: &HostedZone,
        rrsets: &[Arc<ResourceRecordSet>],
    ) -> Result<(), StoreError> {
        let mut writes = vec![Write::PutZone(zone.clone())];
        writes.extend(
            rrsets
                .iter()
                .map(|s| Write::PutRrset(zone.id.clone(), s.clone())),
        );
        self.apply(&Batch(writes))
    }
}
