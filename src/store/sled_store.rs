//! The sled implementation of [`Store`].
//!
//! sled 0.34 notes that shape this file: transactions over several trees may run their
//! closure more than once, so the closure only writes; `flush()` makes writes survive a
//! process crash (it uses sync_file_range, not fsync, so power loss is not covered, sled#1452);
//! `flush_async` can deadlock (sled#1308), so callers run `apply` and `flush` on a blocking
//! thread.
//!
//! The start-up snapshot ([`super::snapshot`]) is tied to sled by a token: a random u64 kept
//! under [`SNAPSHOT_TOKEN_KEY`] in sled's default tree and in the file. `begin_snapshot` stores
//! and flushes the token first, then `write_snapshot_file` writes the file; `open` uses a file
//! only when its token is sled's.
//!
//! While a token stands, every write that changes what [`Store::load`] returns (the zones and
//! rrsets trees) removes it *in the same sled transaction*: after a crash either both the write
//! and the removal are there, or neither is. So a token that survives in sled means that no
//! write to the zones or record sets was made after it, and the file that carries it holds
//! exactly what the store does. A write never waits for the file: a file written for a token
//! that a write has removed meanwhile is simply stale, and ignored at the next start.
//!
//! A valid snapshot found at `open` is kept, file and token, and its token becomes the store's
//! live one before `open` returns, exactly as if this process had just written it: the first
//! write to the zones or record sets removes it, and until then a start after a crash (or a
//! clean stop, which leaves it as it is) reads it again. A stale or damaged file is removed
//! with sled's token. Why a kept snapshot cannot hide a write:
//! - sled's token is the file's, so nothing `load` reads was written since the file was made
//!   (the rule above); nothing is written between that check and `live_token` being set,
//!   since no one else holds the store yet, so every later write removes the token as usual.
//! - `remove_unfinished_zones` runs before the check: it removes only record sets whose zone
//!   record was never written (a creation in steps cut short), which `load` never returns, so
//!   the file still holds what `load` does. A creation in steps writes such invisible record
//!   sets too, and removes the token in the transaction that writes its zone record: a crash
//!   before that leaves a valid snapshot and record sets `open` removes.
//! - A crash between storing a new token and renaming its file into place leaves sled with the
//!   new token and the disk with the old file (or none): they differ, so the file is stale.
//! - Two starts in a row with no write read the same file, which still holds what sled does:
//!   no token was removed because nothing changed.
//! - A write refused after `write_snapshot` (which closes the store) is refused before it
//!   touches sled, under the lock `write_snapshot` took exclusively, so the token stands for a
//!   store that did not change.
//! - A token of 0 (which `live_token` keeps for "none", so no write would remove it) is never
//!   stored; a file and sled both holding 0 are treated as stale.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use super::codec;
use super::{
    Batch, Encoded, EncodedSets, ShutdownSnapshot, Store, StoreError, StoredZone, Tree,
    LIVE_SNAPSHOT_SPACING, SCHEMA_VERSION,
};
use std::sync::Arc;

use crate::model::{ChangeInfo, Endpoint, HostedZone, HostedZoneId, ResourceRecordSet, Vpc};
use crate::resolver::ForwardingRule;

use super::snapshot;

const SCHEMA_KEY: &[u8] = b"schema_version";
/// The token of the start-up snapshot (u64, big-endian): stored just before its file is
/// written, removed by the first write to the zones or record sets after it, or by an `open`
/// that finds no valid file for it.
const SNAPSHOT_TOKEN_KEY: &[u8] = b"snapshot_token";
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
    dir: PathBuf,
    /// The valid start-up snapshot's zones, until `take_snapshot` hands them over.
    snapshot: Mutex<Option<Vec<StoredZone>>>,
    /// Set by `write_snapshot`: the store refuses writes from then on. Writers hold it shared
    /// while they write, so none is half-way through when a snapshot's token is stored
    /// (`begin_snapshot` holds it exclusively).
    closed: RwLock<bool>,
    /// The token standing in sled (0: none). Set by `open` when it keeps a valid snapshot,
    /// and by `begin_snapshot` under `closed`'s write lock; a writer that changes zones or
    /// record sets reads it under the read lock, removes the token in its transaction when
    /// there is one, and clears it. Writers while no token stands pay nothing for it.
    live_token: AtomicU64,
    /// What decides when the next live snapshot is due.
    live: Mutex<Live>,
    /// Held while a snapshot file is written: one writer of the temporary file at a time.
    file: Mutex<()>,
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
        // After remove_unfinished_zones: see the module's comment.
        let kept = claim_snapshot(&db, dir)?;
        let token = kept.as_ref().map_or(0, |kept| kept.token);
        let changes = db.open_tree("changes").map_err(engine)?;
        let endpoints = db.open_tree("endpoints").map_err(engine)?;
        let vpcs = db.open_tree("vpcs").map_err(engine)?;
        let rules = db.open_tree("rules").map_err(engine)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            snapshot: Mutex::new(kept.map(|kept| kept.zones)),
            closed: RwLock::new(false),
            // Before any write can be made: the first one removes the kept snapshot's token.
            live_token: AtomicU64::new(token),
            live: Mutex::new(Live::new(token, Instant::now())),
            file: Mutex::new(()),
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
    /// A zone's record sets, as stored (the zone index decodes them). One scan: two threads
    /// scanning from both ends until they met took ~10% less time at a million record sets
    /// after a kill -9, for ~40 MiB more at the peak, which was not worth it.
    fn load_rrsets(&self, id: &HostedZoneId) -> Result<EncodedSets, StoreError> {
        let mut out = EncodedSets::default();
        for entry in self.rrsets.scan_prefix(codec::rrset_prefix(id)) {
            out.push(&entry.map_err(engine)?.1);
        }
        Ok(out)
    }
}

/// Reads `dir`'s start-up snapshot and, when it is whole and its token is sled's, keeps it:
/// the file and sled's token stay (only a temporary file a cut-short write left is removed),
/// and the snapshot is returned for the store to make its token the live one. Otherwise (a
/// damaged or stale file, logged and ignored: the zones are then read from sled; a token with
/// no file, or a file with no token) removes the file and sled's token durably. Only a
/// failure to remove something is an error, since it could otherwise outlive the writes to
/// come.
fn claim_snapshot(db: &sled::Db, dir: &Path) -> Result<Option<snapshot::Snapshot>, StoreError> {
    let token = db.get(SNAPSHOT_TOKEN_KEY).map_err(engine)?;
    let path = snapshot::path(dir);
    let removing = |e: std::io::Error| engine(format!("removing {}: {e}", path.display()));
    let started = std::time::Instant::now();
    match snapshot::read(dir) {
        Ok(None) => {}
        Ok(Some(found))
            if found.token != 0
                && token.as_deref() == Some(found.token.to_be_bytes().as_slice()) =>
        {
            tracing::info!(
                path = %path.display(),
                zones = found.zones.len(),
                read_ms = started.elapsed().as_millis() as u64,
                "start-up snapshot read"
            );
            snapshot::remove_tmp(dir).map_err(removing)?;
            return Ok(Some(found));
        }
        Ok(Some(_)) => {
            tracing::warn!(
                path = %path.display(),
                "the start-up snapshot is stale (the store was written after it, or it is another store's); ignored, reading the store"
            );
        }
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "the start-up snapshot cannot be used; ignored, reading the store"
            );
        }
    }
    // The token first: once it is gone no file can pass for valid, whatever happens next.
    if token.is_some() {
        db.remove(SNAPSHOT_TOKEN_KEY).map_err(engine)?;
        db.flush().map_err(engine)?;
    }
    snapshot::remove(dir).map_err(removing)?;
    Ok(None)
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
        let _open = self.open_for_writes()?;
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
        // The steps above wrote record sets under a zone id no zone record names yet, which
        // `load` does not read (and `open` removes after a crash): a standing snapshot still
        // holds what `load` returns. This transaction makes the zone appear, so it is the one
        // that removes the token.
        let live = self.live_token.load(Ordering::SeqCst) != 0;
        let value = codec::encode_zone(zone);
        (&*self.db, &self.zones)
            .transaction(|(db, zones)| {
                zones.insert(id.as_slice(), value.as_slice())?;
                db.remove(marker.as_slice())?;
                if live {
                    db.remove(SNAPSHOT_TOKEN_KEY)?;
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(transaction_error)?;
        if live {
            self.live_token.store(0, Ordering::SeqCst);
        }
        self.zones_were_written();
        Ok(())
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
        let _open = self.open_for_writes()?;
        let touches_zones = writes
            .0
            .iter()
            .any(|op| matches!(op.tree, Tree::Zones | Tree::Rrsets));
        // Read under `_open`: no token can be stored between this and the commit.
        let remove_token = touches_zones && self.live_token.load(Ordering::SeqCst) != 0;
        // The closure may run more than once (sled retries on conflict), so it only writes:
        // everything was encoded before.
        if remove_token {
            (
                &self.zones,
                &self.rrsets,
                &self.changes,
                &self.endpoints,
                &self.vpcs,
                &self.rules,
                &*self.db,
            )
                .transaction(|(zones, rrsets, changes, endpoints, vpcs, rules, db)| {
                    // The token goes with the write, all or nothing: a snapshot can never
                    // stand for a store this write changed.
                    db.remove(SNAPSHOT_TOKEN_KEY)?;
                    write_ops(writes, [zones, rrsets, changes, endpoints, vpcs, rules])
                })
                .map_err(transaction_error)?;
            self.live_token.store(0, Ordering::SeqCst);
        } else {
            (
                &self.zones,
                &self.rrsets,
                &self.changes,
                &self.endpoints,
                &self.vpcs,
                &self.rules,
            )
                .transaction(|(zones, rrsets, changes, endpoints, vpcs, rules)| {
                    write_ops(writes, [zones, rrsets, changes, endpoints, vpcs, rules])
                })
                .map_err(transaction_error)?;
        }
        if touches_zones {
            self.zones_were_written();
        }
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

    fn take_snapshot(&self) -> Option<Vec<StoredZone>> {
        self.snapshot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// At shutdown: closes the store to writes; then, unless a snapshot written whole still
    /// stands, a snapshot as `begin_snapshot` and `write_snapshot_file` make one.
    fn write_snapshot(
        &self,
        count: usize,
        zones: &mut dyn Iterator<Item = Result<StoredZone, StoreError>>,
    ) -> Result<ShutdownSnapshot, StoreError> {
        let token = {
            let mut closed = self.closed.write().unwrap_or_else(PoisonError::into_inner);
            *closed = true;
            // No write is half-way (this holds the lock writers share) and none can come
            // (closed): a snapshot that stands now stands for good.
            if self.standing() {
                return Ok(ShutdownSnapshot::Current);
            }
            self.store_token()?
        };
        match self.write_snapshot_file(token, count, zones)? {
            Some(bytes) => Ok(ShutdownSnapshot::Written(bytes)),
            // Only a write can remove the token, and the store is closed to writes.
            None => Err(engine(
                "the start-up snapshot's token was removed while it was written",
            )),
        }
    }

    fn live_snapshot_due(&self, quiet: Duration) -> bool {
        let closed = self.closed.read().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return false;
        }
        let token = self.live_token.load(Ordering::SeqCst);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .due(token, Instant::now(), quiet)
    }

    fn begin_snapshot(&self) -> Result<Option<u64>, StoreError> {
        // Exclusively: no write is half-way through, and every later one sees the token.
        let closed = self.closed.write().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return Ok(None);
        }
        self.store_token().map(Some)
    }

    /// Writes the file unless `token` is no longer sled's (a write removed it, or another
    /// snapshot replaced it): `None` then, as the file would be stale before it was whole.
    /// A write may still remove the token while the file is written; the file is then stale
    /// and ignored at the next start. Whatever the outcome, records how long the snapshot
    /// took since its token was stored, and whether it failed, for `live_snapshot_due`.
    fn write_snapshot_file(
        &self,
        token: u64,
        count: usize,
        zones: &mut dyn Iterator<Item = Result<StoredZone, StoreError>>,
    ) -> Result<Option<u64>, StoreError> {
        let _file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        let written = if self.live_token.load(Ordering::SeqCst) != token {
            Ok(None)
        } else {
            snapshot::write(&self.dir, token, count, zones)
                .map(Some)
                .map_err(|e| {
                    engine(format!(
                        "writing {}: {e}",
                        snapshot::path(&self.dir).display()
                    ))
                })
        };
        let outcome = match &written {
            Ok(Some(_)) => Outcome::Written(token),
            Ok(None) => Outcome::Skipped,
            Err(_) => Outcome::Failed,
        };
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finished(outcome, Instant::now());
        written
    }
}

/// Applies `writes` inside a transaction over the trees, in [`Tree`]'s order.
fn write_ops(
    writes: &Encoded,
    trees: [&sled::transaction::TransactionalTree; 6],
) -> Result<(), ConflictableTransactionError<StoreError>> {
    let [zones, rrsets, changes, endpoints, vpcs, rules] = trees;
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
    Ok(())
}

impl SledStore {
    /// Stores a new token in sled and flushes it. The caller holds `closed`'s write lock, so
    /// no write is in progress and every later one sees the token and removes it.
    fn store_token(&self) -> Result<u64, StoreError> {
        // Never 0, which `live_token` keeps for "none".
        let token: u64 = rand::random::<u64>().max(1);
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .began(Instant::now());
        // Set before the insert: should the insert or the flush fail, a later write still
        // removes whatever reached sled.
        self.live_token.store(token, Ordering::SeqCst);
        let stored = self
            .db
            .insert(SNAPSHOT_TOKEN_KEY, &token.to_be_bytes())
            .and_then(|_| self.db.flush())
            .map_err(engine);
        if stored.is_err() {
            self.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .finished(Outcome::Failed, Instant::now());
        }
        stored.map(|_| token)
    }

    /// Whether a snapshot whose file was written whole (or read whole at open) still stands
    /// in sled: nothing was written to the zones or record sets since it was made.
    fn standing(&self) -> bool {
        let token = self.live_token.load(Ordering::SeqCst);
        token != 0
            && token
                == self
                    .live
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .whole
    }

    fn zones_were_written(&self) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .zones_written = Instant::now();
    }
}

/// How a snapshot's file write ended.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Written whole, for this token.
    Written(u64),
    /// Not written: a write removed the token first.
    Skipped,
    /// The token could not be stored, or the file not written.
    Failed,
}

/// When the next live snapshot is due ([`Live::due`], for [`Store::live_snapshot_due`]).
#[derive(Debug)]
struct Live {
    /// The token whose file was written whole, or read whole at open (0: none). While it is
    /// also `live_token`, that snapshot stands for the store as it is. A token stored whose
    /// file write failed, or has not finished, is never this.
    whole: u64,
    /// When zones or record sets were last written (or the store opened).
    zones_written: Instant,
    /// When the snapshot under way stored its token.
    began: Option<Instant>,
    /// When the last snapshot stored its token, and how long it took from then until its
    /// file was written, skipped or failed.
    last: Option<(Instant, Duration)>,
    /// When the last snapshot failed, unless one was written since.
    failed: Option<Instant>,
}

impl Live {
    fn new(whole: u64, now: Instant) -> Self {
        Self {
            whole,
            zones_written: now,
            began: None,
            last: None,
            failed: None,
        }
    }

    fn began(&mut self, now: Instant) {
        self.began = Some(now);
        self.whole = 0;
    }

    fn finished(&mut self, outcome: Outcome, now: Instant) {
        if let Some(began) = self.began.take() {
            self.last = Some((began, now.saturating_duration_since(began)));
        }
        match outcome {
            Outcome::Written(token) => {
                self.whole = token;
                self.failed = None;
            }
            Outcome::Skipped => {}
            Outcome::Failed => self.failed = Some(now),
        }
    }

    /// Whether a live snapshot is due at `now`, `token` being the live token (0: none):
    /// the rules [`Store::live_snapshot_due`] gives.
    fn due(&self, token: u64, now: Instant, quiet: Duration) -> bool {
        let since = |then: Instant| now.saturating_duration_since(then);
        if token != 0 && token == self.whole {
            return false;
        }
        if since(self.zones_written) < quiet {
            return false;
        }
        if self.failed.is_some_and(|failed| since(failed) < quiet) {
            return false;
        }
        match self.last {
            Some((began, took)) => since(began) >= took.saturating_mul(LIVE_SNAPSHOT_SPACING),
            None => true,
        }
    }
}

impl SledStore {
    /// Held (shared) while writing: refuses once `write_snapshot` has begun, since a write
    /// after the snapshot would not be in it.
    fn open_for_writes(&self) -> Result<std::sync::RwLockReadGuard<'_, bool>, StoreError> {
        let closed = self.closed.read().unwrap_or_else(PoisonError::into_inner);
        if *closed {
            return Err(engine(
                "the store is closed: the start-up snapshot has been written",
            ));
        }
        Ok(closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{HostedZone, ResourceRecordSet, Vpc};
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
        // Every set once.
        let mut read: Vec<_> = loaded[0].rrsets.decode().unwrap();
        read.sort_by_key(|s| s.key());
        let mut written: Vec<_> = sets.iter().map(|s| (**s).clone()).collect();
        written.sort_by_key(|s| s.key());
        assert_eq!(read, written);
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

    /// A data dir holding two zones (one created in steps), flushed and closed.
    fn two_zones(dir: &Path) -> (HostedZone, HostedZone) {
        let small = HostedZone::new(&Name::from_str("small.example.").unwrap(), "s", None);
        let large = HostedZone::new(&Name::from_str("example.com.").unwrap(), "l", None);
        let store = SledStore::open(dir, 1 << 20).unwrap();
        store
            .create_zone(&small, &[a_set("www.small.example.", "192.0.2.9")])
            .unwrap();
        store
            .create_zone(&large, &many_sets(CREATE_STEP + 3))
            .unwrap();
        store.flush().unwrap();
        (small, large)
    }

    /// Each zone with its record sets decoded, in zone id order, sets in key order.
    fn contents(zones: &[StoredZone]) -> Vec<(HostedZone, Vec<ResourceRecordSet>)> {
        let mut out: Vec<_> = zones
            .iter()
            .map(|z| {
                let mut sets = z.rrsets.decode().unwrap();
                sets.sort_by_key(|s| codec::rrset_key(&z.zone.id, &s.key()).unwrap());
                (z.zone.clone(), sets)
            })
            .collect();
        out.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        out
    }

    /// Opens `dir`, writes a snapshot of what it holds, closes it; returns what it held.
    fn write_snapshot(dir: &Path) -> Vec<(HostedZone, Vec<ResourceRecordSet>)> {
        let store = SledStore::open(dir, 1 << 20).unwrap();
        assert!(store.take_snapshot().is_none());
        let zones = store.load().unwrap();
        let written = store
            .write_snapshot(zones.len(), &mut zones.iter().cloned().map(Ok))
            .unwrap();
        let size = std::fs::metadata(snapshot::path(dir)).unwrap().len();
        assert_eq!(written, ShutdownSnapshot::Written(size));
        contents(&zones)
    }

    /// The snapshot file's identity: a file written again (a new inode by the rename, a new
    /// modification time) differs.
    fn file_identity(dir: &Path) -> (u64, std::time::SystemTime, Vec<u8>) {
        use std::os::unix::fs::MetadataExt;
        let path = snapshot::path(dir);
        let meta = std::fs::metadata(&path).unwrap();
        (
            meta.ino(),
            meta.modified().unwrap(),
            std::fs::read(&path).unwrap(),
        )
    }

    /// Whether sled holds the token in `dir`'s snapshot file.
    fn token_matches_file(store: &SledStore, dir: &Path) -> bool {
        let file = snapshot::read(dir).unwrap().expect("a snapshot file");
        store.db.get(SNAPSHOT_TOKEN_KEY).unwrap().as_deref()
            == Some(file.token.to_be_bytes().as_slice())
    }

    /// What a store opened on `dir` loads, and where from.
    fn reopen(dir: &Path) -> (SledStore, Option<Vec<StoredZone>>) {
        let store = SledStore::open(dir, 1 << 20).unwrap();
        let snapshot = store.take_snapshot();
        (store, snapshot)
    }

    /// Opens the store at `dir` (which has a snapshot, and uses it), writes `writes` and
    /// flushes, then drops the store without a snapshot, as after kill -9.
    fn write_after_a_start_from_the_snapshot(dir: &Path, writes: Vec<Write>) {
        let (store, snapshot) = reopen(dir);
        assert!(snapshot.is_some());
        store.apply(&Batch(writes).encode().unwrap()).unwrap();
        store.flush().unwrap();
    }

    /// After an open that found no usable snapshot (damaged, stale, cut short): no file, no
    /// token, nothing a later open could use.
    fn assert_no_snapshot_left(store: &SledStore, dir: &Path) {
        assert!(!snapshot::path(dir).exists(), "the snapshot file is gone");
        assert!(!dir.join(snapshot::TMP).exists());
        assert_eq!(store.db.get(SNAPSHOT_TOKEN_KEY).unwrap(), None);
        assert!(store.take_snapshot().is_none(), "handed over once at most");
    }

    /// Reopens the store at `dir` and checks that it did not use the snapshot (`what` says
    /// why it must not), read `held` from sled instead, and left no snapshot behind.
    fn assert_reopened_from_the_store(
        dir: &Path,
        held: &[(HostedZone, Vec<ResourceRecordSet>)],
        what: &str,
    ) {
        let (store, snapshot) = reopen(dir);
        assert!(snapshot.is_none(), "{what}: the snapshot was used");
        assert_eq!(contents(&store.load().unwrap()), held, "{what}");
        assert_no_snapshot_left(&store, dir);
    }

    #[test]
    fn a_snapshot_loads_the_same_zones_and_stays_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        two_zones(dir.path());
        let held = write_snapshot(dir.path());
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].1.len() + held[1].1.len(), CREATE_STEP + 4);

        let (store, snapshot) = reopen(dir.path());
        let snapshot = snapshot.expect("the snapshot is used");
        assert_eq!(contents(&snapshot), held);
        assert_eq!(
            contents(&store.load().unwrap()),
            held,
            "sled holds the same"
        );
        assert!(store.take_snapshot().is_none(), "handed over once");
        // Kept, file and token: it stands for the store this start opened.
        assert!(token_matches_file(&store, dir.path()));
        assert!(store.standing());
        assert!(
            !store.live_snapshot_due(Duration::ZERO),
            "no live snapshot while it stands"
        );
        drop(store); // as after kill -9

        // A second and a third start with no write in between read it again.
        for start in ["second", "third"] {
            let (store, snapshot) = reopen(dir.path());
            let snapshot = snapshot.unwrap_or_else(|| panic!("{start} start: not used"));
            assert_eq!(contents(&snapshot), held, "{start} start");
            assert!(token_matches_file(&store, dir.path()), "{start} start");
        }
    }

    #[test]
    fn the_store_refuses_writes_once_the_snapshot_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (small, _) = two_zones(dir.path());
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let zones = store.load().unwrap();
        store
            .write_snapshot(zones.len(), &mut zones.into_iter().map(Ok))
            .unwrap();
        let write = Batch(vec![Write::PutRrset(
            small.id.clone(),
            a_set("late.small.example.", "192.0.2.7"),
        )]);
        assert!(store.apply(&write.encode().unwrap()).is_err());
        let zone = HostedZone::new(&Name::from_str("late.example.").unwrap(), "x", None);
        assert!(store
            .create_zone(&zone, &many_sets(CREATE_STEP + 1))
            .is_err());
        drop(store);
        let (store, snapshot) = reopen(dir.path());
        let held = contents(&store.load().unwrap());
        assert_eq!(contents(&snapshot.unwrap()), held);
        assert_eq!(held.len(), 2, "the zone refused is not in the store");
    }

    #[test]
    fn a_damaged_snapshot_is_ignored_and_the_store_read() {
        let dir = tempfile::tempdir().unwrap();
        two_zones(dir.path());
        type Damage = fn(&mut Vec<u8>);
        let damages: [(&str, Damage); 8] = [
            ("the magic", |b| b[0] ^= 0x10),
            ("the token", |b| b[20] ^= 0x10),
            ("a zone record", |b| b[30] ^= 0x10),
            ("a record set", |b| {
                let mid = b.len() / 2;
                b[mid] ^= 0x10
            }),
            ("the checksum", |b| *b.last_mut().unwrap() ^= 0x10),
            ("cut short", |b| b.truncate(b.len() - 5)),
            ("cut to 3 bytes", |b| b.truncate(3)),
            ("empty", |b| b.clear()),
        ];
        for (what, damage) in damages {
            let held = write_snapshot(dir.path());
            let path = snapshot::path(dir.path());
            let mut bytes = std::fs::read(&path).unwrap();
            damage(&mut bytes);
            std::fs::write(&path, bytes).unwrap();
            assert_reopened_from_the_store(dir.path(), &held, &format!("{what}: damaged"));
        }
    }

    #[test]
    fn a_snapshot_of_another_store_is_ignored() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        two_zones(a.path());
        write_snapshot(a.path());
        // b holds one zone, and a snapshot of its own that a's file replaces.
        let zone = HostedZone::new(&Name::from_str("b.example.").unwrap(), "b", None);
        {
            let store = SledStore::open(b.path(), 1 << 20).unwrap();
            store
                .create_zone(&zone, &[a_set("www.b.example.", "192.0.2.2")])
                .unwrap();
            store.flush().unwrap();
        }
        let held = write_snapshot(b.path());
        std::fs::copy(snapshot::path(a.path()), snapshot::path(b.path())).unwrap();
        assert_reopened_from_the_store(b.path(), &held, "a's snapshot, for b");
    }

    #[test]
    fn a_snapshot_older_than_the_stores_last_write_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (small, _) = two_zones(dir.path());
        write_snapshot(dir.path());
        // Kept aside, as if the start below had not removed it when it found it stale (or it
        // were restored from a backup): it no longer holds everything the store does.
        let old = std::fs::read(snapshot::path(dir.path())).unwrap();
        write_after_a_start_from_the_snapshot(
            dir.path(),
            vec![Write::PutRrset(
                small.id.clone(),
                a_set("new.small.example.", "192.0.2.8"),
            )],
        );
        std::fs::write(snapshot::path(dir.path()), old).unwrap();
        let (store, snapshot) = reopen(dir.path());
        assert!(snapshot.is_none(), "a stale snapshot was used");
        let held = contents(&store.load().unwrap());
        let small_sets = &held.iter().find(|z| z.0.id == small.id).unwrap().1;
        assert!(small_sets.contains(&a_set("new.small.example.", "192.0.2.8")));
        assert_no_snapshot_left(&store, dir.path());
    }

    #[test]
    fn a_write_after_a_start_from_the_snapshot_is_read_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        let (small, _) = two_zones(dir.path());
        write_snapshot(dir.path());
        let deleted = a_set("www.small.example.", "192.0.2.9").key();
        write_after_a_start_from_the_snapshot(
            dir.path(),
            vec![
                Write::DeleteRrset(small.id.clone(), deleted.clone()),
                Write::PutRrset(small.id.clone(), a_set("new.small.example.", "192.0.2.8")),
            ],
        );
        let (store, snapshot) = reopen(dir.path());
        assert!(snapshot.is_none());
        let held = contents(&store.load().unwrap());
        let small_sets = &held.iter().find(|z| z.0.id == small.id).unwrap().1;
        assert_eq!(
            small_sets,
            &vec![(*a_set("new.small.example.", "192.0.2.8")).clone()]
        );
        assert_no_snapshot_left(&store, dir.path());
    }

    #[test]
    fn a_snapshot_cut_short_by_a_crash_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        two_zones(dir.path());
        {
            // The token is stored, the temporary file half written, the rename never made.
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            store
                .db
                .insert(SNAPSHOT_TOKEN_KEY, &7u64.to_be_bytes())
                .unwrap();
            store.flush().unwrap();
            std::fs::write(dir.path().join(snapshot::TMP), b"r53snap\n\0\0").unwrap();
        }
        let (store, snapshot) = reopen(dir.path());
        assert!(snapshot.is_none());
        assert_eq!(store.load().unwrap().len(), 2);
        assert_no_snapshot_left(&store, dir.path());
    }

    /// A live snapshot of what `store` holds, in its two steps; the file's size, `None` when
    /// the store no longer held the token when the file was to be written.
    fn live_snapshot(store: &SledStore) -> Option<u64> {
        let zones = store.load().unwrap();
        let token = store.begin_snapshot().unwrap().expect("a token");
        store
            .write_snapshot_file(token, zones.len(), &mut zones.into_iter().map(Ok))
            .unwrap()
    }

    fn put(zone: &HostedZone, name: &str, ip: &str) -> Encoded {
        Batch(vec![Write::PutRrset(zone.id.clone(), a_set(name, ip))])
            .encode()
            .unwrap()
    }

    #[test]
    fn a_live_snapshot_is_used_after_a_crash_while_the_store_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        two_zones(dir.path());
        let held = {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            assert!(
                store.live_snapshot_due(Duration::ZERO),
                "none stands after open"
            );
            assert!(live_snapshot(&store).unwrap() > 0);
            assert!(store.standing(), "one stands");
            assert!(!store.live_snapshot_due(Duration::ZERO));
            // Endpoints, VPCs and change records are not in the snapshot (they are read
            // from the store at every start): writing them leaves it standing.
            let vpc = Vpc {
                id: "vpc-1".into(),
                cidrs: vec!["10.0.0.0/8".parse().unwrap()],
            };
            store
                .apply(&Batch(vec![Write::PutVpc(vpc)]).encode().unwrap())
                .unwrap();
            store.flush().unwrap();
            assert!(store.standing(), "still stands");
            contents(&store.load().unwrap())
            // Dropped without a shutdown snapshot, as after kill -9.
        };
        let (store, snapshot) = reopen(dir.path());
        assert_eq!(
            contents(&snapshot.expect("the live snapshot is used")),
            held
        );
        assert_eq!(store.load_vpcs().unwrap().len(), 1);
        assert!(store.standing(), "kept by the start that read it");
    }

    #[test]
    fn a_write_after_a_live_snapshot_or_a_start_from_one_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (small, large) = two_zones(dir.path());
        // A record set written, a large zone created in steps, a zone deleted: each after a
        // live snapshot, or after a start that read a snapshot and kept it, then a crash.
        let writes: [&dyn Fn(&SledStore); 3] = [
            &|store| {
                store
                    .apply(&put(&small, "new.small.example.", "192.0.2.8"))
                    .unwrap()
            },
            &|store| {
                let zone = HostedZone::new(&Name::from_str("big.example.").unwrap(), "g", None);
                store
                    .create_zone(&zone, &many_sets(CREATE_STEP + 1))
                    .unwrap()
            },
            &|store| {
                let delete = Batch(vec![Write::DeleteZone(large.id.clone())]);
                store.apply(&delete.encode().unwrap()).unwrap()
            },
        ];
        for (i, write) in writes.iter().enumerate() {
            for kept in [false, true] {
                let what = format!("{i}: stale, {}", if kept { "kept" } else { "live" });
                if kept {
                    write_snapshot(dir.path());
                }
                let held = {
                    let (store, snapshot) = reopen(dir.path());
                    assert_eq!(snapshot.is_some(), kept, "{what}");
                    if !kept {
                        assert!(live_snapshot(&store).is_some());
                    }
                    assert!(store.standing(), "{what}");
                    write(&store);
                    store.flush().unwrap();
                    assert!(!store.standing(), "{what}: it no longer stands");
                    assert_eq!(store.db.get(SNAPSHOT_TOKEN_KEY).unwrap(), None, "{what}");
                    assert!(snapshot::path(dir.path()).exists());
                    contents(&store.load().unwrap())
                };
                assert_reopened_from_the_store(dir.path(), &held, &what);
            }
        }
    }

    #[test]
    fn a_clean_stop_leaves_a_standing_snapshot_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (small, _) = two_zones(dir.path());
        let held = write_snapshot(dir.path());
        let stop = |store: &SledStore| {
            let zones = store.load().unwrap();
            store
                .write_snapshot(zones.len(), &mut zones.into_iter().map(Ok))
                .unwrap()
        };

        // Read at open, nothing written since; then a live one, nothing written since.
        for standing in ["read at open", "written live"] {
            let (store, snapshot) = reopen(dir.path());
            assert!(snapshot.is_some(), "{standing}");
            if standing == "written live" {
                store
                    .apply(&put(&small, "x.small.example.", "192.0.2.1"))
                    .unwrap();
                store.flush().unwrap();
                assert!(live_snapshot(&store).is_some());
            }
            let before = file_identity(dir.path());
            // The zones handed in are not read: none is there to read.
            let written = store.write_snapshot(2, &mut std::iter::empty()).unwrap();
            assert_eq!(written, ShutdownSnapshot::Current, "{standing}");
            assert_eq!(file_identity(dir.path()), before, "{standing}: untouched");
            assert!(
                store
                    .apply(&put(&small, "late.small.example.", "192.0.2.7"))
                    .is_err(),
                "{standing}: closed to writes all the same"
            );
        }
        let (store, snapshot) = reopen(dir.path());
        let snapshot = snapshot.expect("the next start reads it");
        assert_eq!(contents(&snapshot), contents(&store.load().unwrap()));
        assert_ne!(
            contents(&snapshot),
            held,
            "the write before the live one is in"
        );

        // A write since: a new one is written.
        store
            .apply(&put(&small, "y.small.example.", "192.0.2.2"))
            .unwrap();
        store.flush().unwrap();
        let before = file_identity(dir.path());
        assert!(matches!(stop(&store), ShutdownSnapshot::Written(_)));
        assert_ne!(file_identity(dir.path()), before);
        drop(store);

        // A live snapshot whose token was stored but whose file was not written (failed, or
        // cut short): it does not count, and a new one is written.
        let (store, snapshot) = reopen(dir.path());
        assert!(snapshot.is_some());
        store
            .apply(&put(&small, "z.small.example.", "192.0.2.3"))
            .unwrap();
        store.flush().unwrap();
        store.begin_snapshot().unwrap().expect("a token");
        assert!(!store.standing(), "its file is not written");
        let written = stop(&store);
        assert!(
            matches!(written, ShutdownSnapshot::Written(_)),
            "{written:?}"
        );
        let held = contents(&store.load().unwrap());
        drop(store);
        let (_, snapshot) = reopen(dir.path());
        assert_eq!(contents(&snapshot.expect("read")), held);
    }

    #[test]
    fn a_failed_live_snapshot_is_retried_after_the_next_quiet_period() {
        let quiet = Duration::from_millis(300);
        let dir = tempfile::tempdir().unwrap();
        two_zones(dir.path());
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        // A directory where the temporary file must go: the file cannot be created.
        let tmp = dir.path().join(snapshot::TMP);
        std::fs::create_dir(&tmp).unwrap();
        std::thread::sleep(quiet);
        assert!(store.live_snapshot_due(quiet));
        let zones = store.load().unwrap();
        let token = store.begin_snapshot().unwrap().unwrap();
        let written =
            store.write_snapshot_file(token, zones.len(), &mut zones.clone().into_iter().map(Ok));
        assert!(written.is_err(), "{written:?}");
        let failed = Instant::now();
        assert!(!snapshot::path(dir.path()).exists());
        assert!(!store.standing());
        assert!(
            !store.live_snapshot_due(quiet),
            "not retried at once after a failure"
        );

        std::fs::remove_dir(&tmp).unwrap();
        // Due again once `quiet` has passed since the failure (the spacing rule may add a
        // moment), with no write to the zones in between.
        let deadline = failed + Duration::from_secs(10);
        while !store.live_snapshot_due(quiet) {
            assert!(Instant::now() < deadline, "never retried");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(failed.elapsed() >= quiet, "retried within a quiet period");
        assert!(live_snapshot(&store).is_some(), "the retry is written");
        assert!(store.standing());
        assert!(!store.live_snapshot_due(quiet));
        let held = contents(&zones);
        drop(store);
        let (_, snapshot) = reopen(dir.path());
        assert_eq!(contents(&snapshot.expect("the retry is read")), held);
    }

    /// The rules of `Live::due` at chosen moments: quiet, a failure, the spacing.
    #[test]
    fn a_live_snapshot_is_due_when_quiet_and_no_sooner_than_20_times_the_last_one_took() {
        let quiet = Duration::from_secs(2);
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut live = Live::new(0, t0);
        assert!(!live.due(0, t0 + ms(1999), quiet), "not yet quiet");
        assert!(live.due(0, t0 + quiet, quiet));

        // A snapshot begun at 2 s that took 200 ms, then a write at 2.3 s: quiet again from
        // 4.3 s, but not due before 2 s + 20 x 200 ms = 6 s.
        live.began(t0 + ms(2000));
        live.finished(Outcome::Written(7), t0 + ms(2200));
        assert!(!live.due(7, t0 + ms(9000), quiet), "it stands");
        assert!(live.due(8, t0 + ms(9000), quiet), "another token is not it");
        live.zones_written = t0 + ms(2300);
        assert!(!live.due(0, t0 + ms(4299), quiet), "not yet quiet");
        assert!(!live.due(0, t0 + ms(4300), quiet), "quiet, too soon");
        assert!(!live.due(0, t0 + ms(5999), quiet), "quiet, too soon");
        assert!(live.due(0, t0 + ms(6000), quiet));

        // A failure at 6.1 s, 100 ms after it began: not before 8.1 s (quiet since the
        // failure), though the spacing (2 s after 6 s) would allow it earlier.
        live.began(t0 + ms(6000));
        live.finished(Outcome::Failed, t0 + ms(6100));
        assert!(!live.due(9, t0 + ms(8099), quiet), "not retried at once");
        assert!(live.due(9, t0 + ms(8100), quiet), "retried");

        // Skipped (a write removed the token first): the write's quiet period rules.
        live.began(t0 + ms(8100));
        live.zones_written = t0 + ms(8101);
        live.finished(Outcome::Skipped, t0 + ms(8102));
        assert!(!live.due(0, t0 + ms(10100), quiet));
        assert!(live.due(0, t0 + ms(10101), quiet));

        // A 1 s snapshot (a slow disk): 20 s apart, however quiet.
        live.began(t0 + ms(20_000));
        live.finished(Outcome::Written(3), t0 + ms(21_000));
        live.zones_written = t0 + ms(21_000);
        assert!(!live.due(0, t0 + ms(39_999), quiet));
        assert!(live.due(0, t0 + ms(40_000), quiet));
    }

    #[test]
    fn a_write_while_the_live_snapshot_is_written_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        let (small, _) = two_zones(dir.path());
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let zones = store.load().unwrap();
            let count = zones.len();
            let token = store.begin_snapshot().unwrap().unwrap();
            // The write lands after the file has begun and before it is whole.
            let mut written = false;
            let mut zones = zones.into_iter().map(|zone| {
                if !written {
                    store
                        .apply(&put(&small, "mid.small.example.", "192.0.2.5"))
                        .unwrap();
                    store.flush().unwrap();
                    written = true;
                }
                Ok(zone)
            });
            let bytes = store.write_snapshot_file(token, count, &mut zones).unwrap();
            assert!(bytes.is_some(), "the file was begun before the write");
            assert!(snapshot::path(dir.path()).exists());
        }
        let (store, snapshot) = reopen(dir.path());
        assert!(
            snapshot.is_none(),
            "the file written around a write was used"
        );
        let held = contents(&store.load().unwrap());
        let small_sets = &held.iter().find(|z| z.0.id == small.id).unwrap().1;
        assert!(small_sets.contains(&a_set("mid.small.example.", "192.0.2.5")));
    }

    #[test]
    fn a_write_between_the_token_and_the_file_skips_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (small, _) = two_zones(dir.path());
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let zones = store.load().unwrap();
            let token = store.begin_snapshot().unwrap().unwrap();
            store
                .apply(&put(&small, "new.small.example.", "192.0.2.8"))
                .unwrap();
            store.flush().unwrap();
            let written = store
                .write_snapshot_file(token, zones.len(), &mut zones.into_iter().map(Ok))
                .unwrap();
            assert_eq!(written, None);
            assert!(!snapshot::path(dir.path()).exists());
        }
        let (store, snapshot) = reopen(dir.path());
        assert!(snapshot.is_none());
        assert_eq!(store.db.get(SNAPSHOT_TOKEN_KEY).unwrap(), None);
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
