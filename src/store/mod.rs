//! Durable state: hosted zones and their record sets.
//!
//! [`Store`] is the seam between r53 and its storage engine. [`SledStore`] is the one
//! implementation and this is the only module that imports sled. A [`Batch`] is encoded into
//! the store's byte layout first ([`Batch::encode`], the last step that can refuse it for what
//! it holds), then applied all or nothing, several encoded batches at once when the service
//! commits a group; what a store has applied is durable once a `flush` returns. A store never
//! decides what is valid (the service does) and is never read on the DNS path (the catalog is).
//!
//! A store may keep a start-up snapshot ([`Store::write_snapshot`] at a clean shutdown,
//! [`Store::begin_snapshot`] and [`Store::write_snapshot_file`] while serving, once
//! [`Store::live_snapshot_due`] says so; [`Store::take_snapshot`] at the next start): the
//! hosted zones as they were when it was made, to be read instead of the store. It is used only
//! while no zone or record set was written since it was made, by as many starts as come before
//! such a write.

pub(crate) mod codec;
mod sled_store;
mod snapshot;

pub use sled_store::SledStore;

use hickory_proto::rr::Name;
use std::sync::Arc;

use crate::resolver::ForwardingRule;

use crate::model::{ChangeInfo, Endpoint, HostedZone, HostedZoneId, ResourceRecordSet, RrKey, Vpc};

/// A live start-up snapshot begins no sooner than this many times as long as the last one took
/// after the last one began ([`Store::live_snapshot_due`]): they take at most about 1/20 (5%)
/// of one core's time and of the disk's, even with a write to the zones just over every
/// `--snapshot-quiet-ms`.
pub const LIVE_SNAPSHOT_SPACING: u32 = 20;

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

impl Batch {
    /// A new hosted zone with its record sets.
    pub fn create_zone(zone: &HostedZone, rrsets: &[Arc<ResourceRecordSet>]) -> Self {
        let mut writes = vec![Write::PutZone(zone.clone())];
        writes.extend(
            rrsets
                .iter()
                .map(|s| Write::PutRrset(zone.id.clone(), s.clone())),
        );
        Self(writes)
    }

    /// The batch in the store's byte layout, ready to apply. This is where a batch can still be
    /// refused for what it holds (record data longer than its length field); applying it can
    /// then fail only when storage does.
    pub fn encode(&self) -> Result<Encoded, StoreError> {
        let mut ops = Vec::with_capacity(self.0.len());
        for write in &self.0 {
            let (tree, key, value) = match write {
                Write::PutZone(zone) => (
                    Tree::Zones,
                    codec::zone_key(&zone.id),
                    Some(codec::encode_zone(zone)),
                ),
                Write::DeleteZone(id) => (Tree::Zones, codec::zone_key(id), None),
                Write::PutRrset(id, set) => (
                    Tree::Rrsets,
                    codec::rrset_key(id, &set.key())?,
                    Some(codec::encode_rrset(set)?),
                ),
                Write::DeleteRrset(id, key) => (Tree::Rrsets, codec::rrset_key(id, key)?, None),
                Write::PutChange(change) => (
                    Tree::Changes,
                    change.id.as_bytes().to_vec(),
                    Some(codec::encode_change(change)),
                ),
                Write::PutEndpoint(e) => (
                    Tree::Endpoints,
                    codec::name_key(&e.dns_name),
                    Some(codec::encode_endpoint(e)?),
                ),
                Write::DeleteEndpoint(name) => (Tree::Endpoints, codec::name_key(name), None),
                Write::PutVpc(vpc) => (
                    Tree::Vpcs,
                    vpc.id.as_bytes().to_vec(),
                    Some(codec::encode_vpc(vpc)),
                ),
                Write::DeleteVpc(id) => (Tree::Vpcs, id.as_bytes().to_vec(), None),
                Write::PutRule(rule) => (
                    Tree::Rules,
                    codec::name_key(&rule.domain),
                    Some(codec::encode_rule(rule)?),
                ),
                Write::DeleteRule(domain) => (Tree::Rules, codec::name_key(domain), None),
            };
            ops.push(Op { tree, key, value });
        }
        Ok(Encoded(ops))
    }
}

/// The store's key spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tree {
    Zones,
    Rrsets,
    Changes,
    Endpoints,
    Vpcs,
    Rules,
}

/// One write in the store's byte layout: `value` `None` removes `key`.
#[derive(Debug)]
struct Op {
    tree: Tree,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// Encoded batches ([`Batch::encode`]), in order: applied all or nothing, later writes to a key
/// winning over earlier ones.
#[derive(Debug, Default)]
pub struct Encoded(Vec<Op>);

impl Encoded {
    /// Adds `later`'s writes after these, to be applied with them.
    pub fn append(&mut self, mut later: Encoded) {
        self.0.append(&mut later.0);
    }

    /// How many writes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What [`Store::write_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownSnapshot {
    /// This store keeps no snapshot.
    Unsupported,
    /// A new snapshot was written, of this many bytes.
    Written(u64),
    /// The snapshot on disk still stands for the store as it is (its file was written whole
    /// and nothing has been written to the zones or record sets since it was made): it was
    /// left as it is rather than written again.
    Current,
}

/// A hosted zone with its record sets as stored, as loaded at start. The record sets stay
/// encoded: the zone index keeps most of them in (nearly) that form, so decoding each into a
/// [`ResourceRecordSet`] here would only be undone.
#[derive(Debug, Clone)]
pub struct StoredZone {
    pub zone: HostedZone,
    pub rrsets: EncodedSets,
}

/// Record sets in [`codec::encode_rrset`]'s form, one after another, each preceded by its
/// length (u32, big-endian).
#[derive(Debug, Clone, Default)]
pub struct EncodedSets {
    bytes: Vec<u8>,
    count: usize,
}

impl EncodedSets {
    pub fn push(&mut self, value: &[u8]) {
        self.bytes
            .extend_from_slice(&(value.len() as u32).to_be_bytes());
        self.bytes.extend_from_slice(value);
        self.count += 1;
    }

    /// Takes bytes laid out as [`EncodedSets`] keeps them (for example read back from a file),
    /// checking the framing: every length must fit what follows.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, StoreError> {
        let mut count = 0;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| StoreError::Corrupt("record set length cut short".into()))?;
            let len = u32::from_be_bytes(*len) as usize;
            if tail.len() < len {
                return Err(StoreError::Corrupt("record set cut short".into()));
            }
            rest = &tail[len..];
            count += 1;
        }
        Ok(Self { bytes, count })
    }

    /// The bytes as [`from_bytes`](Self::from_bytes) takes them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many record sets.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each record set's encoded form.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let (value, tail) = tail.split_at(u32::from_be_bytes(*len) as usize);
            rest = tail;
            Some(value)
        })
    }

    /// Every record set decoded.
    pub fn decode(&self) -> Result<Vec<ResourceRecordSet>, StoreError> {
        self.iter().map(codec::decode_rrset).collect()
    }
}

pub trait Store: Send + Sync + 'static {
    /// Everything stored, for building the in-memory state at start.
    fn load(&self) -> Result<Vec<StoredZone>, StoreError>;
    /// The zones of the start-up snapshot found when the store was opened, if it was valid
    /// (whole, and nothing written to the store since it was made): what [`load`](Self::load)
    /// would return, read without scanning the store. Handed over once; `None` after that,
    /// and when there was no valid snapshot. A valid snapshot stays on disk after the start
    /// that read it and stands for the store as the snapshot of this start: the first write
    /// to the zones or record sets makes it stale (in that write's own transaction), so no
    /// write made after it is ever hidden by it, and until then a start after a crash reads
    /// it again.
    fn take_snapshot(&self) -> Option<Vec<StoredZone>> {
        None
    }
    /// Writes the start-up snapshot at shutdown: `zones` (`count` of them) must be every
    /// hosted zone with its record sets as the store holds them, everything applied flushed.
    /// The last thing done with the store: it refuses every write after this. When a snapshot
    /// written whole still stands for the store (nothing written to the zones or record sets
    /// since), it is left as it is and `zones` is not read: [`ShutdownSnapshot::Current`].
    /// Blocking.
    fn write_snapshot(
        &self,
        _count: usize,
        _zones: &mut dyn Iterator<Item = Result<StoredZone, StoreError>>,
    ) -> Result<ShutdownSnapshot, StoreError> {
        Ok(ShutdownSnapshot::Unsupported)
    }
    /// While serving: whether a live snapshot is due, asked a few times per `quiet`. It is
    /// when the store is open to writes, no snapshot written whole stands for the store as it
    /// is (one read at open or written live, with no write to the zones or record sets since),
    /// and the zones and record sets have gone unwritten for `quiet`; after a live snapshot
    /// that failed, also not before `quiet` has passed since it failed (it is retried then,
    /// not at once and not only after the next write); and, so that live snapshots take a
    /// small share of the time however often the zones change (a million record sets take
    /// ~0.1 s and 46 MB to write), not before [`LIVE_SNAPSHOT_SPACING`] times as long as the
    /// last one took has passed since it began. Always `false` for a store that keeps no
    /// snapshot.
    fn live_snapshot_due(&self, _quiet: std::time::Duration) -> bool {
        false
    }
    /// The first step of a live snapshot: stores (durably) a new token that every later write
    /// to the zones or record sets removes, and returns it (`None`: this store keeps no
    /// snapshot, or it is closed). The caller must hold what the store holds at this moment,
    /// everything applied flushed and nothing being written, and hands it to
    /// [`write_snapshot_file`](Self::write_snapshot_file) with the token. Blocking.
    fn begin_snapshot(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// The second step: writes the snapshot file for `token` (`zones` as for
    /// [`write_snapshot`](Self::write_snapshot)). `None` when the token is no longer the
    /// store's (a write since made it stale) and nothing was written; otherwise the size.
    /// Blocking.
    fn write_snapshot_file(
        &self,
        _token: u64,
        _count: usize,
        _zones: &mut dyn Iterator<Item = Result<StoredZone, StoreError>>,
    ) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }
    /// Every registered endpoint, for the registry at start.
    fn load_endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Every VPC.
    fn load_vpcs(&self) -> Result<Vec<Vpc>, StoreError>;
    /// Every resolver forwarding rule.
    fn load_rules(&self) -> Result<Vec<ForwardingRule>, StoreError>;
    /// Applies the writes atomically: all of them or none. Durable once a later `flush`
    /// returns. Blocking: call it from `spawn_blocking` in async code.
    fn apply(&self, writes: &Encoded) -> Result<(), StoreError>;
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
        self.apply(&Batch::create_zone(zone, rrsets).encode()?)
    }
}
