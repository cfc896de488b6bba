//! Group commit: how a change the service has decided becomes durable, and then served.
//!
//! A writer, holding the service's writer lock, encodes its batch and queues it here, records
//! the change in the service's state, lets go of the lock and waits. The first waiter that
//! finds no group in progress leads the next one: it takes the state to publish (the last
//! sequence number applied and the catalog as of then), and hands everything queued to a
//! blocking thread, which writes it in one store transaction, flushes, publishes that catalog
//! and marks that sequence number durable. Every waiter covered returns; the others lead the
//! next group, which starts as soon as this one ends. While a group is being written and
//! flushed, writers go on deciding and queueing changes, so the next group grows meanwhile
//! and nobody sleeps or polls.
//!
//! Why writers do not write to the store themselves: sled 0.34 takes a process-wide lock,
//! exclusively for every transaction and shared for every flush, and a flush holds it through
//! its disk write. A writer's transaction waited for the flush in progress while it held the
//! writer lock, so changes and flushes took turns instead of overlapping. Here the one thread
//! that flushes also writes, just before.
//!
//! What it must not do: decide whether a change is valid (the service does, before queueing),
//! or publish a catalog holding a change the store has not flushed.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::Notify;

use crate::catalog::{Catalog, SharedCatalog};
use crate::service::ServiceError;
use crate::store::{Batch, Encoded, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A group's transaction failed earlier: changes the service's state holds are in no
    /// store, so nothing can be made durable or published until a restart reloads the store.
    #[error("the store could not be written ({0}); r53 accepts no change until it is restarted")]
    Broken(String),
    #[error("the group commit's thread failed: {0}")]
    Thread(String),
}

impl From<CommitError> for ServiceError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Store(e) => ServiceError::Store(e),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// The queue of batches, the durable sequence number and the published catalog.
pub struct GroupCommit {
    shared: Arc<Shared>,
}

/// What the blocking thread that writes a group needs: it finishes the group even when the
/// waiter that led it goes away.
struct Shared {
    store: Arc<dyn Store>,
    catalog: SharedCatalog,
    /// Batches queued and not yet handed to a group, in the order of their changes.
    queued: Mutex<Encoded>,
    /// The highest sequence number durable and published.
    durable: AtomicU64,
    /// Whether a group is in progress (its [`Leader`] is alive).
    leading: AtomicBool,
    /// Wakes every waiter when a group ends, or its leader gives up before starting it.
    ended: Notify,
    /// Set when a group's transaction failed (see [`CommitError::Broken`]).
    broken: OnceLock<String>,
}

/// The right to run the one group in progress. Dropping it lets the next group start and
/// wakes every waiter to look again. A waiter takes it and sends it with the group to the
/// blocking thread, which hands it back when the group has ended; the waiter then drops it
/// (waking the others from a runtime thread is cheaper than from the blocking thread). A waiter
/// that goes away drops it at once before the group starts, and after that the runtime drops
/// it with the blocking task's output once the group has ended.
struct Leader(Arc<Shared>);

impl Leader {
    fn try_new(shared: &Arc<Shared>) -> Option<Self> {
        shared
            .leading
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Leader(shared.clone()))
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Released before the wake-up, so that every waiter woken can take it.
        self.0.leading.store(false, Ordering::Release);
        self.0.ended.notify_waiters();
    }
}

impl GroupCommit {
    /// `catalog` is the snapshot every group publishes into.
    pub fn new(store: Arc<dyn Store>, catalog: SharedCatalog) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                catalog,
                queued: Mutex::new(Encoded::default()),
                durable: AtomicU64::new(0),
                leading: AtomicBool::new(false),
                ended: Notify::new(),
                broken: OnceLock::new(),
            }),
        }
    }

    /// Queues a batch for the next group. The caller holds the writer lock and records the
    /// change in its state (taking the next sequence number) before letting go, so that what
    /// is queued always matches the sequence numbers applied. Encoding is the last step that
    /// can refuse a batch for what it holds: on an error nothing is queued.
    pub fn queue(&self, batch: &Batch) -> Result<(), CommitError> {
        if let Some(why) = self.shared.broken.get() {
            return Err(CommitError::Broken(why.clone()));
        }
        let encoded = batch.encode()?;
        self.shared
            .queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(encoded);
        Ok(())
    }

    /// The highest sequence number durable and published.
    pub fn durable(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Returns once change `seq` is durable and published, leading groups as needed.
    /// `snapshot` gives what a group publishes: the last sequence number applied and the
    /// catalog as of it (taken under the writer lock, so that every change up to that number
    /// is queued or written already).
    pub async fn wait<F, Fut>(&self, seq: u64, snapshot: F) -> Result<(), CommitError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (u64, Catalog)>,
    {
        loop {
            // Registered before looking, so that a group ending in between still wakes this.
            let ended = self.shared.ended.notified();
            if self.durable() >= seq {
                return Ok(());
            }
            if let Some(why) = self.shared.broken.get() {
                return Err(CommitError::Broken(why.clone()));
            }
            match Leader::try_new(&self.shared) {
                Some(leader) => self.lead(leader, &snapshot).await?,
                None => ended.await,
            }
        }
    }

    /// Commits everything queued now, as one more group, and flushes (at shutdown).
    pub async fn flush<F, Fut>(&self, snapshot: F) -> Result<(), CommitError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (u64, Catalog)>,
    {
        loop {
            let ended = self.shared.ended.notified();
            if let Some(why) = self.shared.broken.get() {
                return Err(CommitError::Broken(why.clone()));
            }
            match Leader::try_new(&self.shared) {
                Some(leader) => return self.lead(leader, &snapshot).await,
                None => ended.await,
            }
        }
    }

    async fn lead<F, Fut>(&self, leader: Leader, snapshot: &F) -> Result<(), CommitError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = (u64, Catalog)>,
    {
        let (target, catalog) = snapshot().await;
        // Everything up to `target` is queued by now (a batch queued since belongs to a later
        // change; writing it early is harmless, it is published with its own group). From
        // here on nothing awaits until the blocking thread owns the group.
        let writes = std::mem::take(
            &mut *self
                .shared
                .queued
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let shared = self.shared.clone();
        // apply() and flush() block (and sled 0.34's flush_async can deadlock, sled#1308).
        let (leader, result) = tokio::task::spawn_blocking(move || {
            // `leader` goes with the group and comes back after it: see [`Leader`].
            let commit = AssertUnwindSafe(|| shared.commit(target, catalog, writes));
            let result = std::panic::catch_unwind(commit).unwrap_or_else(|_| {
                // Whether the group reached the store is unknown: as if its write failed.
                let why = "a panic while writing a group of changes";
                tracing::error!("{why}; refusing every change until restarted");
                let _ = shared.broken.set(why.to_owned());
                Err(CommitError::Broken(why.to_owned()))
            });
            (leader, result)
        })
        .await
        .map_err(|e| CommitError::Thread(e.to_string()))?;
        drop(leader);
        result
    }
}

impl Shared {
    /// Writes one group, flushes, publishes. Runs on a blocking thread.
    fn commit(&self, target: u64, catalog: Catalog, writes: Encoded) -> Result<(), CommitError> {
        if let Some(why) = self.broken.get() {
            return Err(CommitError::Broken(why.clone()));
        }
        if let Err(e) = self.store.apply(&writes) {
            // These changes are in the service's state and in no store: a later catalog would
            // serve them, so none is published again.
            tracing::error!(error = %e, "writing a group of changes to the store failed; refusing every change until restarted");
            let _ = self.broken.set(e.to_string());
            return Err(e.into());
        }
        // A failed flush publishes nothing; the writes are in the store, and the next group's
        // flush may still make them durable (it is then published with that group).
        self.store.flush()?;
        self.catalog.store(Arc::new(catalog));
        self.durable.store(target, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Endpoints;
    use crate::model::{ChangeInfo, Endpoint, Vpc};
    use crate::resolver::ForwardingRule;
    use crate::store::{StoredZone, Write};
    use arc_swap::ArcSwap;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A store that counts what it is asked to do, fails `apply` when told to, and takes a
    /// while to flush (so that groups form).
    #[derive(Default)]
    struct Counting {
        applies: AtomicUsize,
        writes: AtomicUsize,
        flushes: AtomicUsize,
        fail_apply: AtomicBool,
        panic_apply: AtomicBool,
    }

    impl Store for Counting {
        fn load(&self) -> Result<Vec<StoredZone>, StoreError> {
            Ok(Vec::new())
        }
        fn load_endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
            Ok(Vec::new())
        }
        fn load_vpcs(&self) -> Result<Vec<Vpc>, StoreError> {
            Ok(Vec::new())
        }
        fn load_rules(&self) -> Result<Vec<ForwardingRule>, StoreError> {
            Ok(Vec::new())
        }
        fn apply(&self, writes: &Encoded) -> Result<(), StoreError> {
            if self.fail_apply.load(Ordering::SeqCst) {
                return Err(StoreError::Engine("disk on fire".into()));
            }
            assert!(!self.panic_apply.load(Ordering::SeqCst), "store bug");
            self.applies.fetch_add(1, Ordering::SeqCst);
            self.writes.fetch_add(writes.len(), Ordering::SeqCst);
            Ok(())
        }
        fn change(&self, _: &str) -> Result<Option<ChangeInfo>, StoreError> {
            Ok(None)
        }
        fn flush(&self) -> Result<(), StoreError> {
            std::thread::sleep(Duration::from_millis(20));
            self.flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn empty_catalog() -> Catalog {
        Catalog::new([], Arc::new(Vec::new()), Arc::new(Endpoints::default()))
    }

    fn batch() -> Batch {
        Batch(vec![Write::PutChange(ChangeInfo::new(None))])
    }

    fn setup() -> (Arc<Counting>, Arc<GroupCommit>, SharedCatalog) {
        let store = Arc::new(Counting::default());
        let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(empty_catalog()));
        let commits = Arc::new(GroupCommit::new(store.clone(), catalog.clone()));
        (store, commits, catalog)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_changes_share_groups_and_all_become_durable() {
        let (store, commits, _) = setup();
        let applied = Arc::new(tokio::sync::Mutex::new(0u64));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let (commits, applied) = (commits.clone(), applied.clone());
            tasks.spawn(async move {
                let seq = {
                    let mut applied = applied.lock().await;
                    commits.queue(&batch()).unwrap();
                    *applied += 1;
                    *applied
                };
                let snapshot = || async { (*applied.lock().await, empty_catalog()) };
                commits.wait(seq, snapshot).await.unwrap();
                assert!(commits.durable() >= seq);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(commits.durable(), 40);
        assert_eq!(store.writes.load(Ordering::SeqCst), 40);
        // 40 waiters over 20 ms flushes: far fewer groups than changes.
        let flushes = store.flushes.load(Ordering::SeqCst);
        assert!(flushes < 20, "{flushes} flushes for 40 changes");
        assert_eq!(store.applies.load(Ordering::SeqCst), flushes);
    }

    #[tokio::test]
    async fn a_failed_write_publishes_nothing_and_refuses_later_changes() {
        let (store, commits, catalog) = setup();
        let before = catalog.load_full();
        store.fail_apply.store(true, Ordering::SeqCst);
        commits.queue(&batch()).unwrap();
        let snapshot = || async { (1, empty_catalog()) };
        let err = commits.wait(1, snapshot).await.unwrap_err();
        assert!(matches!(err, CommitError::Store(_)), "{err}");
        assert_eq!(commits.durable(), 0);
        assert!(Arc::ptr_eq(&before, &catalog.load_full()));
        // Even once the store works again: the failed group's change is lost to it.
        store.fail_apply.store(false, Ordering::SeqCst);
        assert!(matches!(
            commits.queue(&batch()),
            Err(CommitError::Broken(_))
        ));
        let snapshot = || async { (1, empty_catalog()) };
        assert!(matches!(
            commits.wait(1, snapshot).await,
            Err(CommitError::Broken(_))
        ));
        assert_eq!(store.flushes.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_leader_that_goes_away_before_its_group_starts_lets_the_next_lead() {
        let (store, commits, _) = setup();
        commits.queue(&batch()).unwrap();
        // The first waiter is dropped while it waits for its snapshot (the writer lock).
        let never = || std::future::pending::<(u64, Catalog)>();
        let gone = tokio::time::timeout(Duration::from_millis(10), commits.wait(1, never)).await;
        assert!(gone.is_err());
        let snapshot = || async { (1, empty_catalog()) };
        commits.wait(1, snapshot).await.unwrap();
        assert_eq!(commits.durable(), 1);
        assert_eq!(store.writes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panic_while_writing_is_a_failed_write() {
        let (store, commits, _) = setup();
        store.panic_apply.store(true, Ordering::SeqCst);
        commits.queue(&batch()).unwrap();
        let snapshot = || async { (1, empty_catalog()) };
        assert!(matches!(
            commits.wait(1, snapshot).await,
            Err(CommitError::Broken(_))
        ));
        assert_eq!(commits.durable(), 0);
        assert!(matches!(
            commits.queue(&batch()),
            Err(CommitError::Broken(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_outlives_the_waiter_that_led_it() {
        let (store, commits, catalog) = setup();
        let before = catalog.load_full();
        commits.queue(&batch()).unwrap();
        // The leader is dropped while its group is being flushed (a 20 ms flush).
        let snapshot = || async { (1, empty_catalog()) };
        let gone = tokio::time::timeout(Duration::from_millis(5), commits.wait(1, snapshot)).await;
        assert!(gone.is_err());
        // The group still ends, publishes, and lets the next waiter through without another.
        commits.wait(1, snapshot).await.unwrap();
        assert_eq!(commits.durable(), 1);
        assert!(!Arc::ptr_eq(&before, &catalog.load_full()));
        assert_eq!(store.flushes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn flush_writes_what_is_queued() {
        let (store, commits, _) = setup();
        commits.queue(&batch()).unwrap();
        commits.queue(&batch()).unwrap();
        commits
            .flush(|| async { (2, empty_catalog()) })
            .await
            .unwrap();
        assert_eq!(commits.durable(), 2);
        assert_eq!(store.writes.load(Ordering::SeqCst), 2);
        assert_eq!(store.flushes.load(Ordering::SeqCst), 1);
    }
}
