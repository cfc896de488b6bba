//! The target pool: each target's health, decided by active checks, and the round-robin choice
//! among the healthy ones.
//!
//! Knows nothing of the requests being proxied or of r53: it publishes the healthy set for the
//! proxy and a yes/no "some target is healthy" summary for the registration.
//!
//! Health follows AWS target groups with one difference at start. A target begins `Initial` and
//! is not routed to. Its first check runs at once and decides: pass and it is `Healthy`, fail and
//! it is `Unhealthy`. After that it takes `healthy_threshold` consecutive passes to become
//! healthy again and `unhealthy_threshold` consecutive failures to become unhealthy. (AWS also
//! asks the full healthy threshold of a new target. The thresholds are there to stop a known
//! state from flapping, and at start there is no known state yet. Waiting threshold × interval
//! after every restart of the LB would only turn away traffic that a target that just passed its
//! check can serve.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::http::uri::Authority;
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// A target's health as the LB sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// Not checked yet; not routed to.
    Initial,
    Healthy,
    Unhealthy,
}

/// How many consecutive results flip a known state.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub healthy: u32,
    pub unhealthy: u32,
}

/// One target's state machine: its health and the run of results that disagree with it.
#[derive(Debug, Clone, Copy)]
pub struct Tracker {
    health: Health,
    /// Consecutive results contrary to `health`; a result that agrees resets it.
    streak: u32,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            health: Health::Initial,
            streak: 0,
        }
    }
}

impl Tracker {
    pub fn health(&self) -> Health {
        self.health
    }

    /// Records one check's result; returns the new health when it changed.
    pub fn record(&mut self, passed: bool, thresholds: Thresholds) -> Option<Health> {
        let (contrary, threshold, next) = match self.health {
            // The first result decides (see the module comment).
            Health::Initial => (true, 1, health_of(passed)),
            Health::Healthy => (!passed, thresholds.unhealthy, Health::Unhealthy),
            Health::Unhealthy => (passed, thresholds.healthy, Health::Healthy),
        };
        if !contrary {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        if self.streak < threshold {
            return None;
        }
        self.health = next;
        self.streak = 0;
        Some(next)
    }
}

fn health_of(passed: bool) -> Health {
    if passed {
        Health::Healthy
    } else {
        Health::Unhealthy
    }
}

/// How targets are checked.
#[derive(Debug, Clone)]
pub struct CheckConfig {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub thresholds: Thresholds,
}

/// The targets, their health, and the round-robin cursor.
pub struct Pool {
    targets: Vec<Authority>,
    trackers: Mutex<Vec<Tracker>>,
    /// Indexes of the healthy targets, in target order. Read on every request without a lock;
    /// replaced (under `trackers`' lock) only when some target's health changes.
    healthy: ArcSwap<Vec<usize>>,
    cursor: AtomicUsize,
    any_healthy: watch::Sender<bool>,
}

impl Pool {
    pub fn new(targets: Vec<Authority>) -> Self {
        let trackers = vec![Tracker::default(); targets.len()];
        Self {
            targets,
            trackers: Mutex::new(trackers),
            healthy: ArcSwap::from_pointee(Vec::new()),
            cursor: AtomicUsize::new(0),
            any_healthy: watch::channel(false).0,
        }
    }

    pub fn target(&self, index: usize) -> &Authority {
        &self.targets[index]
    }

    /// The next healthy target in turn, skipping `avoid` when another is healthy.
    /// `None` when no target is healthy.
    pub fn pick(&self, avoid: Option<usize>) -> Option<usize> {
        let healthy = self.healthy.load();
        if healthy.is_empty() {
            return None;
        }
        let turn = self.cursor.fetch_add(1, Ordering::Relaxed) % healthy.len();
        let chosen = healthy[turn];
        if avoid == Some(chosen) && healthy.len() > 1 {
            // The healthy indexes are distinct, so the neighbour is another target.
            return Some(healthy[(turn + 1) % healthy.len()]);
        }
        Some(chosen)
    }

    /// Whether some target is healthy, now and as it changes.
    pub fn any_healthy(&self) -> watch::Receiver<bool> {
        self.any_healthy.subscribe()
    }

    /// Records a check's result and republishes the healthy set when it changes health.
    fn record(&self, index: usize, passed: bool, thresholds: Thresholds) -> Option<Health> {
        // A poisoned lock means a checker panicked mid-update of plain counters; they are
        // still consistent, so keep going rather than take the LB down.
        let mut trackers = self.trackers.lock().unwrap_or_else(|p| p.into_inner());
        let changed = trackers[index].record(passed, thresholds)?;
        let healthy: Vec<usize> = trackers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.health() == Health::Healthy)
            .map(|(i, _)| i)
            .collect();
        let any = !healthy.is_empty();
        self.healthy.store(Arc::new(healthy));
        self.any_healthy
            .send_if_modified(|old| std::mem::replace(old, any) != any);
        Some(changed)
    }

    /// Starts one checker per target; they stop when `shutdown` is cancelled.
    pub fn spawn_checkers(
        self: &Arc<Self>,
        config: CheckConfig,
        shutdown: CancellationToken,
    ) -> JoinSet<()> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        // One fresh connection per check, as a load balancer's checker does: a pooled
        // connection would keep a target that no longer accepts connections looking healthy.
        let client: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        let mut tasks = JoinSet::new();
        for index in 0..self.targets.len() {
            let pool = self.clone();
            let client = client.clone();
            let config = config.clone();
            let shutdown = shutdown.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = pool.check_forever(index, &client, &config) => {}
                }
            });
        }
        tasks
    }

    async fn check_forever(
        &self,
        index: usize,
        client: &Client<HttpConnector, Empty<Bytes>>,
        config: &CheckConfig,
    ) {
        let target = &self.targets[index];
        let uri = match Uri::builder()
            .scheme("http")
            .authority(target.clone())
            .path_and_query(config.path.as_str())
            .build()
        {
            Ok(uri) => uri,
            Err(e) => {
                // The path was validated when the arguments were parsed; this is a bug.
                warn!(lb.target = %target, error = %e, "cannot build the health check URL");
                return;
            }
        };
        // The first tick is immediate: a new target's first check runs at start.
        let mut ticks = tokio::time::interval(config.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let outcome = check(client, &uri, config.timeout).await;
            let passed = outcome.is_ok();
            debug!(lb.target = %target, passed, detail = %outcome.as_ref().map_or_else(|e| e.as_str(), |s| s.as_str()), "health check");
            match self.record(index, passed, config.thresholds) {
                Some(Health::Healthy) => info!(lb.target = %target, "target is healthy"),
                Some(_) => {
                    let reason = outcome.err().unwrap_or_default();
                    warn!(lb.target = %target, reason = %reason, "target is unhealthy");
                }
                None => {}
            }
        }
    }
}

/// One health check: `Ok` with the status for a 2xx or 3xx, `Err` with why not.
async fn check(
    client: &Client<HttpConnector, Empty<Bytes>>,
    uri: &Uri,
    timeout: Duration,
) -> Result<String, String> {
    let request = Request::get(uri.clone())
        .header(hyper::header::USER_AGENT, "r53-lb-health-check")
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(timeout, client.request(request)).await {
        Err(_) => Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) => Err(describe(&e)),
        Ok(Ok(response)) => {
            let status = response.status();
            if status.is_success() || status.is_redirection() {
                Ok(status.to_string())
            } else {
                Err(format!("status {status}"))
            }
        }
    }
}

/// An error with its causes, since hyper's top-level message says little ("client error
/// (Connect)") and the cause ("Connection refused") is what an operator needs.
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        healthy: 3,
        unhealthy: 2,
    };

    #[test]
    fn first_check_decides() {
        let mut t = Tracker::default();
        assert_eq!(t.record(true, T), Some(Health::Healthy));
        let mut t = Tracker::default();
        assert_eq!(t.record(false, T), Some(Health::Unhealthy));
    }

    #[test]
    fn unhealthy_after_threshold_consecutive_failures() {
        let mut t = Tracker::default();
        t.record(true, T);
        assert_eq!(t.record(false, T), None);
        // A pass in between resets the run.
        assert_eq!(t.record(true, T), None);
        assert_eq!(t.record(false, T), None);
        assert_eq!(t.record(false, T), Some(Health::Unhealthy));
        assert_eq!(t.record(false, T), None);
    }

    #[test]
    fn healthy_again_after_threshold_consecutive_passes() {
        let mut t = Tracker::default();
        t.record(false, T);
        assert_eq!(t.record(true, T), None);
        assert_eq!(t.record(true, T), None);
        assert_eq!(t.record(false, T), None);
        assert_eq!(t.record(true, T), None);
        assert_eq!(t.record(true, T), None);
        assert_eq!(t.record(true, T), Some(Health::Healthy));
        assert_eq!(t.health(), Health::Healthy);
    }

    fn pool(n: u16) -> Pool {
        Pool::new(
            (0..n)
                .map(|i| Authority::from_maybe_shared(format!("127.0.0.1:{}", 1000 + i)))
                .collect::<Result<_, _>>()
                .unwrap(),
        )
    }

    #[test]
    fn nothing_is_routed_before_a_check_passes() {
        let p = pool(2);
        assert_eq!(p.pick(None), None);
        assert!(!*p.any_healthy().borrow());
    }

    #[test]
    fn round_robin_over_the_healthy_targets_only() {
        let p = pool(3);
        let summary = p.any_healthy();
        p.record(0, true, T);
        p.record(1, false, T);
        p.record(2, true, T);
        assert!(*summary.borrow());
        let picks: Vec<_> = (0..6).map(|_| p.pick(None).unwrap()).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 3);
        assert_eq!(picks.iter().filter(|&&i| i == 2).count(), 3);
        assert_eq!(p.pick(Some(0)), Some(2));
        assert_eq!(p.pick(Some(2)), Some(0));
    }

    #[test]
    fn the_summary_follows_the_last_healthy_target() {
        let p = pool(1);
        let mut summary = p.any_healthy();
        p.record(0, true, T);
        assert!(summary.has_changed().unwrap());
        assert!(*summary.borrow_and_update());
        p.record(0, false, T);
        assert!(!summary.has_changed().unwrap());
        p.record(0, false, T);
        assert!(!*summary.borrow_and_update());
        assert_eq!(p.pick(None), None);
    }
}
