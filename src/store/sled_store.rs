//! The sled implementation of [`Store`].
//!
//! sled 0.34 notes that shape this file: transactions over several trees may run their
//! closure more than once, so the closure only writes; `flush()` makes writes survive a
//! process crash (it uses sync_file_range, not fsync, so power loss is not covered, sled#1452);
//! `flush_async` can deadlock (sled#1308), so callers run `apply` and `flush` on a blocking
//! thread.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::codec;
use super::{Batch, Encoded, EncodedSets, Store, StoreError, StoredZone, Tree, SCHEMA_VERSION};
use std::sync::Arc;

use crate::model::{ChangeInfo, Endpoint, HostedZone, HostedZoneId, ResourceRecordSet, Vpc};
use crate::resolver::ForwardingRule;

const SCHEMA_KEY: &[u8] = b"schema_version";
/// Prefix of the markers (in sled's default tree) of zones being created in steps: see
/// [`SledStore::create_zone`].
const CREATING_PREFIX: &[u8] = b"creating/";
/// A zone with more record sets than this is created in steps of this many.
const CREATE_STEP: usize = 4096;
/// The schema version again, as a plain file beside sled's: opening a sled dir rewrites it
/// (recovery extends the log and writes a new snapshot), so the version must be readable
/// without sled for a refused dir to be left exactly as it was.
pub(crate) const SCHEMA_FILE: &str = "r53-schema-version";

/// The version in `dir`'s schema file, `None` when there is no such file (a new dir, or one
/// written before the file existed: its sled key is checked instead).
fn read_schema_file(dir: &Path) -> Result<Option<u32>, StoreError> {
    match std::fs::read_to_string(dir.join(SCHEMA_FILE)) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            StoreError::Corrupt(format!(
                "{}: not a schema version",
                dir.join(SCHEMA_FILE).display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(engine(format!("{}: {e}", dir.join(SCHEMA_FILE).display()))),
    }
}

/// Writes the schema file durably (temporary file, fsync, rename, fsync of the dir).
fn write_schema_file(dir: &Path) -> Result<(), StoreError> {
    use std::io::Write as _;
    let io = |e: std::io::Error| engine(format!("{}: {e}", dir.join(SCHEMA_FILE).display()));
    let tmp = dir.join(format!("{SCHEMA_FILE}.tmp"));
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(format!("{SCHEMA_VERSION}\n").as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, dir.join(SCHEMA_FILE)).map_err(io)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)
}

pub struct SledStore {
    db: sled::Db,
    zones: sled::Tree,
    rrsets: sled::Tree,
    changes: sled::Tree,
    endpoints: sled::Tree,
    vpcs: sled::Tree,
    rules: sled::Tree,
}

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

fn transaction_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => engine(e),
    }
}

impl SledStore {
    /// Opens (or creates) the store in `dir`. A data dir written by another schema version is
    /// refused, never rewritten.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        // Checked before sled touches the dir: sled's open rewrites its files.
        let file_version = read_schema_file(dir)?;
        if let Some(found) = file_version {
            if found != SCHEMA_VERSION {
                return Err(StoreError::SchemaVersion {
                    path: dir.display().to_string(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
        }
        let config = sled::Config::new().path(dir).cache_capacity(cache_bytes);
        // sled's lock file outlives a dropped Db for a moment while its flusher thread winds
        // down (a restart inside one process), so wait briefly before calling it taken.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled reports a taken lock as an `Other` error that names the OS's WouldBlock.
                Err(sled::Error::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    if attempts == 100 {
                        return Err(StoreError::Engine(format!(
                            "the data directory {} is in use by another process",
                            dir.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(engine(e)),
            }
        };
        match db.get(SCHEMA_KEY).map_err(engine)? {
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| StoreError::Corrupt("schema version key".into()))?;
                if found != SCHEMA_VERSION {
                    return Err(StoreError::SchemaVersion {
                        path: dir.display().to_string(),
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            None => {
                db.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())
                    .map_err(engine)?;
                db.flush().map_err(engine)?;
            }
        }
        if file_version.is_none() {
            write_schema_file(dir)?;
        }
        let zones = db.open_tree("zones").map_err(engine)?;
        let rrsets = db.open_tree("rrsets").map_err(engine)?;
        remove_unfinished_zones(&db, &zones, &rrsets)?;
        let changes = db.open_tree("changes").map_err(engine)?;
        let endpoints = db.open_tree("endpoints").map_err(engine)?;
        let vpcs = db.open_tree("vpcs").map_err(engine)?;
        let rules = db.open_tree("rules").map_err(engine)?;
        Ok(Self {
            rules,
            db,
            zones,
            rrsets,
            changes,
            endpoints,
            vpcs,
        })
    }
}

impl SledStore {
    /// A zone's record sets, as stored (the zone index decodes them).
    fn load_rrsets(&self, id: &HostedZoneId) -> Result<EncodedSets, StoreError> {
        let mut out = EncodedSets::default();
        for entry in self.rrsets.scan_prefix(codec::rrset_prefix(id)) {
            out.push(&entry.map_err(engine)?.1);
        }
        Ok(out)
    }
}

/// A zone whose creation in steps was cut short (a crash before its zone record was written)
/// left record sets no zone owns, and its marker: remove both.
fn remove_unfinished_zones(
    db: &sled::Db,
    zones: &sled::Tree,
    rrsets: &sled::Tree,
) -> Result<(), StoreError> {
    for entry in db.scan_prefix(CREATING_PREFIX) {
        let (marker, id) = entry.map_err(engine)?;
        if zones.get(&id).map_err(engine)?.is_none() {
            let mut batch = sled::Batch::default();
            for key in rrsets.scan_prefix(codec::rrset_prefix_of(&id)).keys() {
                batch.remove(key.map_err(engine)?);
            }
            rrsets.apply_batch(batch).map_err(engine)?;
        }
        db.remove(marker).map_err(engine)?;
        db.flush().map_err(engine)?;
    }
    Ok(())
}

impl Store for SledStore {
    /// A zone of up to [`CREATE_STEP`] record sets is one transaction. A larger one is written
    /// in steps, because sled keeps every page version a transaction makes until it ends (a
    /// million record sets in one transaction took ~7 GB): first a marker, then the record
    /// sets a step at a time, then the zone record and the marker's removal in one
    /// transaction. Readers find zones through their zone record, so the zone appears whole
    /// or not at all; after a crash, `open` removes what an unfinished creation wrote.
    fn create_zone(
        &self,
        zone: &HostedZone,
        rrsets: &[Arc<ResourceRecordSet>],
    ) -> Result<(), StoreError> {
        if rrsets.len() <= CREATE_STEP {
            return self.apply(&Batch::create_zone(zone, rrsets).encode()?);
        }
        let id = codec::zone_key(&zone.id);
        let marker = [CREATING_PREFIX, &id].concat();
        self.db.insert(&marker, id.as_slice()).map_err(engine)?;
        for step in rrsets.chunks(CREATE_STEP) {
            let mut batch = sled::Batch::default();
            for set in step {
                batch.insert(
                    codec::rrset_key(&zone.id, &set.key())?,
                    codec::encode_rrset(set)?,
                );
            }
            self.rrsets.apply_batch(batch).map_err(engine)?;
        }
        let value = codec::encode_zone(zone);
        (&*self.db, &self.zones)
            .transaction(|(db, zones)| {
                zones.insert(id.as_slice(), value.as_slice())?;
                db.remove(marker.as_slice())?;
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(transaction_error)
    }

    fn load(&self) -> Result<Vec<StoredZone>, StoreError> {
        let mut out = Vec::new();
        for entry in self.zones.iter() {
            let (_, value) = entry.map_err(engine)?;
            let zone = codec::decode_zone(&value)?;
            let rrsets = self.load_rrsets(&zone.id)?;
            out.push(StoredZone { zone, rrsets });
        }
        Ok(out)
    }

    fn apply(&self, writes: &Encoded) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        // The closure may run more than once (sled retries on conflict), so it only writes:
        // everything was encoded before.
        (
            &self.zones,
            &self.rrsets,
            &self.changes,
            &self.endpoints,
            &self.vpcs,
            &self.rules,
        )
            .transaction(|(zones, rrsets, changes, endpoints, vpcs, rules)| {
                for op in &writes.0 {
                    let tree = match op.tree {
                        Tree::Zones => zones,
                        Tree::Rrsets => rrsets,
                        Tree::Changes => changes,
                        Tree::Endpoints => endpoints,
                        Tree::Vpcs => vpcs,
                        Tree::Rules => rules,
                    };
                    match &op.value {
                        Some(value) => tree.insert(op.key.as_slice(), value.as_slice())?,
                        None => tree.remove(op.key.as_slice())?,
                    };
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(transaction_error)?;
        Ok(())
    }

    fn load_endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.endpoints
            .iter()
            .map(|entry| {
                let (_, value) = entry.map_err(engine)?;
                codec::decode_endpoint(&value)
            })
            .collect()
    }

    fn load_vpcs(&self) -> Result<Vec<Vpc>, StoreError> {
        self.vpcs
            .iter()
            .map(|entry| {
                let (_, value) = entry.map_err(engine)?;
                codec::decode_vpc(&value)
            })
            .collect()
    }

    fn load_rules(&self) -> Result<Vec<ForwardingRule>, StoreError> {
        self.rules
            .iter()
            .map(|entry| {
                let (_, value) = entry.map_err(engine)?;
                codec::decode_rule(&value)
            })
            .collect()
    }

    fn change(&self, id: &str) -> Result<Option<ChangeInfo>, StoreError> {
        match self.changes.get(id.as_bytes()).map_err(engine)? {
            Some(v) => Ok(Some(codec::decode_change(&v)?)),
            None => Ok(None),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HostedZone, ResourceRecordSet};
    use crate::store::{Batch, Write};
    use hickory_proto::rr::{Name, RData, RecordType};
    use std::str::FromStr;
    use std::sync::Arc;

    fn a_set(name: &str, ip: &str) -> Arc<ResourceRecordSet> {
        Arc::new(ResourceRecordSet::new(
            &Name::from_str(name).unwrap(),
            RecordType::A,
            300,
            vec![RData::A(ip.parse().unwrap())],
        ))
    }

    #[test]
    fn committed_batches_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let zone = HostedZone::new(&Name::from_str("example.com.").unwrap(), "r", None);
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let batch = Batch(vec![
                Write::PutZone(zone.clone()),
                Write::PutRrset(zone.id.clone(), a_set("www.example.com.", "192.0.2.1")),
                Write::PutRrset(zone.id.clone(), a_set("api.example.com.", "192.0.2.2")),
            ]);
            store.apply(&batch.encode().unwrap()).unwrap();
            let del = Batch(vec![Write::DeleteRrset(
                zone.id.clone(),
                a_set("api.example.com.", "192.0.2.2").key(),
            )]);
            store.apply(&del.encode().unwrap()).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].zone, zone);
        assert_eq!(
            loaded[0].rrsets.decode().unwrap(),
            vec![(*a_set("www.example.com.", "192.0.2.1")).clone()]
        );
    }

    fn many_sets(count: usize) -> Vec<Arc<ResourceRecordSet>> {
        (0..count)
            .map(|i| a_set(&format!("h{i}.example.com."), "192.0.2.1"))
            .collect()
    }

    #[test]
    fn a_large_zone_created_in_steps_loads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let zone = HostedZone::new(&Name::from_str("example.com.").unwrap(), "ref", None);
        let sets = many_sets(CREATE_STEP * 2 + 7);
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            store.create_zone(&zone, &sets).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].zone.id, zone.id);
        assert_eq!(loaded[0].rrsets.len(), sets.len());
        assert_eq!(store.db.scan_prefix(CREATING_PREFIX).count(), 0);
    }

    #[test]
    fn an_unfinished_creation_is_removed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let kept = HostedZone::new(&Name::from_str("kept.example.").unwrap(), "a", None);
        let cut = HostedZone::new(&Name::from_str("example.com.").unwrap(), "b", None);
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            store
                .create_zone(&kept, &[a_set("www.kept.example.", "192.0.2.9")])
                .unwrap();
            // What a creation in steps has written when it is cut short before its zone
            // record: the marker and some record sets.
            let id = codec::zone_key(&cut.id);
            store
                .db
                .insert([CREATING_PREFIX, &id].concat(), id.as_slice())
                .unwrap();
            for set in many_sets(10) {
                store
                    .rrsets
                    .insert(
                        codec::rrset_key(&cut.id, &set.key()).unwrap(),
                        codec::encode_rrset(&set).unwrap(),
                    )
                    .unwrap();
            }
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].zone.id, kept.id);
        assert_eq!(
            store.rrsets.len(),
            1,
            "the cut-short zone's record sets are gone"
        );
        assert_eq!(store.db.scan_prefix(CREATING_PREFIX).count(), 0);
    }

    #[test]
    fn unknown_schema_version_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert(SCHEMA_KEY, &99u32.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let err = SledStore::open(dir.path(), 1 << 20).err().unwrap();
        assert!(
            matches!(err, StoreError::SchemaVersion { found: 99, .. }),
            "{err}"
        );
        let db = sled::open(dir.path()).unwrap();
        assert_eq!(
            db.get(SCHEMA_KEY).unwrap().unwrap().as_ref(),
            99u32.to_be_bytes()
        );
    }
}
