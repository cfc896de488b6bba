//! The embedded caching resolver: answers questions about names in no hosted zone by asking
//! recursive upstream servers, and caches what they say.
//!
//! ```text
//!   resolve(name, type)
//!     │
//!     ├─► cache (fresh?) ──────────────────────────────────► answer, TTLs counted down
//!     │
//!     └─► in flight already? ── yes ─► wait for that one ──► answer
//!             │ no
//!             └─► task: forwarding rule or default upstreams, in order
//!                   ├─► upstream::exchange (UDP, TC → TCP) ─► cache ─► answer
//!                   │     └─► ends in a CNAME left unfollowed ─► its target (cache or
//!                   │           upstreams, again) ─► whole chain cached ─► answer
//!                   └─► all failed ─► stale answer (RFC 8767) or SERVFAIL
//! ```
//!
//! A self-contained library component: it knows nothing of zones, views, sockets towards
//! clients or the API. The DNS path decides *whether* to recurse (RD, the client's address,
//! a private zone, [`Resolver::forwards`]) and composes what [`Resolver::resolve`] returns.
//! It does not validate DNSSEC. The upstreams are meant to be recursive resolvers, which
//! follow CNAMEs themselves; an answer that ends in a CNAME the upstream did not follow (an
//! authoritative server behind a forwarding rule stops at its zones' edge) is completed here
//! by asking for the target, as Unbound does.
//!
//! Locks: the cache and the table of questions in flight are each behind a std `Mutex`,
//! held for a hash probe and a few clones and never across an `.await`, so a tokio mutex
//! would only add cost (the reasoning of mini-redis's `db.rs`). Lock order, where both are
//! taken: in-flight table, then cache.

mod cache;
mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::sync::watch;
use tokio::time::Instant;

pub use cache::{dangling, Freshness, UseMark, MAX_NEGATIVE_TTL, MAX_STALE, MAX_TTL, STALE_TTL};
pub use upstream::{system_upstreams, UpstreamError, UPSTREAM_UDP_PAYLOAD};

use cache::{Cache, Entry, Key, KeyBuf, Lookup};

/// The most times one question is restarted at a CNAME's target that an upstream's answer
/// left unfollowed. RFC 1034 §3.6.2 wants CNAME loops "signalled as an error"; a loop seen
/// is, and this bound ends one that is not (each link a fresh name from some upstream).
pub const MAX_CHASE: usize = 11;

/// How the resolver is set up. `Default` gives no upstreams (every question is SERVFAIL until
/// some are configured), 10 000 entries, no serve-stale and 1.5 s per upstream attempt.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// Default upstreams, tried in order.
    pub upstreams: Vec<SocketAddr>,
    /// The most cached answers (positive and negative) kept; entries not used lately go
    /// first (CLOCK, an approximation of least recently used). Zero turns caching off.
    pub cache_entries: usize,
    /// RFC 8767: when every upstream fails, answer with the expired entry (TTL 30 s) if it
    /// expired less than [`MAX_STALE`] ago.
    pub serve_stale: bool,
    /// The wait for one upstream attempt (UDP, and again for the TCP retry after TC).
    pub upstream_timeout: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            upstreams: Vec::new(),
            cache_entries: 10_000,
            serve_stale: false,
            upstream_timeout: Duration::from_millis(1500),
        }
    }
}

/// A forwarding rule as Route 53 Resolver has them: questions for `domain` and every name
/// below it go to `upstreams`. An empty `upstreams` is Route 53's SYSTEM rule: names under the
/// domain are resolved the ordinary way (default upstreams, and private zones win), which
/// carves a subdomain out of a broader forwarding rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardingRule {
    pub domain: Name,
    pub upstreams: Vec<SocketAddr>,
}

/// What the resolver says about one question. The DNS path copies the sections into its
/// response (and sets RA).
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// NOERROR (an answer or NODATA), NXDOMAIN or SERVFAIL.
    pub rcode: ResponseCode,
    /// The answer section: the RRset asked for, after the CNAMEs leading to it if any.
    pub answers: Vec<Record>,
    /// For negative answers, the SOA that bounds how long they may be cached (RFC 2308 §3).
    pub authorities: Vec<Record>,
    /// Served from an expired entry because no upstream answered (RFC 8767).
    pub stale: bool,
}

impl Resolved {
    fn servfail() -> Self {
        Self {
            rcode: ResponseCode::ServFail,
            answers: Vec::new(),
            authorities: Vec::new(),
            stale: false,
        }
    }
}

/// Counters since start. Every call to [`Resolver::resolve`] is either a hit or a miss, and so
/// is every answer from [`Resolver::cached`]; answers served from a copy of a fresh entry
/// (the DNS path's response cache) are hits too ([`Resolver::note_hits`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolverStats {
    /// Answered from a fresh cache entry.
    pub hits: u64,
    /// Not answered from a fresh entry: sent upstream, joined a question already in flight,
    /// or answered stale.
    pub misses: u64,
    /// Entries in the cache now (expired ones kept for serve-stale included).
    pub entries: u64,
    /// Entries dropped to stay within `cache_entries`.
    pub evictions: u64,
    /// Upstream attempts that gave no usable answer (timeout, network error, SERVFAIL,
    /// REFUSED, a mismatched or malformed response over TCP).
    pub upstream_errors: u64,
    /// Upstream attempts made, failed ones included.
    pub upstream_queries: u64,
    /// Answers served stale.
    pub stale_answers: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    upstream_errors: AtomicU64,
    upstream_queries: AtomicU64,
    stale_answers: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A question being resolved upstream; later askers wait on it (single flight). `None`
/// until the answer is in.
type Flight = watch::Receiver<Option<Resolved>>;

struct Inner {
    config: ResolverConfig,
    /// Changes whenever cached answers stop being valid other than by their TTL (a flush, a
    /// change of forwarding rules): copies kept elsewhere are valid for one generation.
    /// Unique in the process, like catalog generations.
    generation: AtomicU64,
    rules: RwLock<Vec<ForwardingRule>>,
    cache: Mutex<Cache>,
    in_flight: Mutex<HashMap<Key, Flight>>,
    counters: Counters,
    /// Names the DNS path answers itself: a CNAME chase stops there (see
    /// [`Resolver::set_local_names`]).
    local: OnceLock<LocalNames>,
}

/// Whether a name is in a zone the DNS path answers from (in some view).
type LocalNames = Box<dyn Fn(&Name) -> bool + Send + Sync>;

/// Takes a lock even if a thread panicked while holding it: every critical section here
/// leaves the data consistent at each step (a panic can at worst lose one insert), so the
/// poison flag carries no information worth failing a query for.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The embedded resolver. Cheap to share: clone it or put it in an `Arc`.
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("config", &self.inner.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Resolver {
    pub fn new(config: ResolverConfig) -> Self {
        let cache = Cache::new(config.cache_entries, config.serve_stale);
        Self {
            inner: Arc::new(Inner {
                config,
                generation: AtomicU64::new(next_generation()),
                rules: RwLock::new(Vec::new()),
                cache: Mutex::new(cache),
                in_flight: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                local: OnceLock::new(),
            }),
        }
    }

    /// Resolves one question (class IN). Never panics and never fails: an error is a
    /// SERVFAIL in the result. Must be called within a tokio runtime: a miss is resolved in a
    /// task of its own, so that a caller that gives up (a client timeout dropping this
    /// future) neither cancels the answer for the others waiting on it nor wastes it.
    pub async fn resolve(&self, name: &Name, qtype: RecordType) -> Resolved {
        let inner = &self.inner;
        match self.cached(name, qtype) {
            Some(Cached::Fresh(resolved, _) | Cached::Stale(resolved)) => return resolved,
            None => {}
        }
        let key = cache::key(name, qtype);
        let mut flight = {
            let mut in_flight = lock(&inner.in_flight);
            match in_flight.get(&key) {
                Some(flight) => flight.clone(),
                None => {
                    // Look again under the in-flight lock: a flight that ended between the
                    // first look and here has put its answer in the cache, and starting
                    // another would ask the upstream twice.
                    if let Lookup::Fresh(resolved, _) =
                        lock(&inner.cache).lookup(&key, Instant::now())
                    {
                        bump(&inner.counters.hits, 1);
                        return resolved;
                    }
                    let (tx, rx) = watch::channel(None);
                    in_flight.insert(key.clone(), rx.clone());
                    let task_inner = Arc::clone(inner);
                    let mut asked = name.clone();
                    asked.set_fqdn(true);
                    tokio::spawn(async move {
                        let landing = Landing {
                            inner: &task_inner,
                            key: &key,
                        };
                        let resolved = task_inner.fetch(&key, &asked, qtype).await;
                        // Leave the table before answering: a question arriving after the
                        // answer finds the cache filled, not a finished flight.
                        drop(landing);
                        tx.send_replace(Some(resolved));
                    });
                    rx
                }
            }
        };
        bump(&inner.counters.misses, 1);
        let answered = flight.wait_for(Option::is_some).await;
        match answered.as_deref() {
            Ok(Some(resolved)) => resolved.clone(),
            // The flight's task ended without answering (it panicked); its `Landing` has
            // taken it off the table, so the next question starts afresh.
            _ => Resolved::servfail(),
        }
    }

    /// What the cache can answer at once, without waiting for anyone: a fresh answer (TTLs
    /// counted down) with how it ages, or an expired one within its failure recheck timer,
    /// served stale as [`resolve`](Self::resolve) would. `None`: only `resolve` can answer
    /// (it asks the upstreams, or waits for a question already in flight). Counted as
    /// `resolve` counts; a `None` is not counted, as the `resolve` that follows is.
    pub fn cached(&self, name: &Name, qtype: RecordType) -> Option<Cached> {
        let inner = &self.inner;
        let key = KeyBuf::new(name, qtype);
        let found = lock(&inner.cache).lookup(key.as_bytes(), Instant::now());
        match found {
            Lookup::Fresh(resolved, freshness) => {
                bump(&inner.counters.hits, 1);
                Some(Cached::Fresh(resolved, freshness))
            }
            Lookup::Stale(resolved) => {
                bump(&inner.counters.misses, 1);
                bump(&inner.counters.stale_answers, 1);
                Some(Cached::Stale(resolved))
            }
            Lookup::Miss => None,
        }
    }

    /// Tells the resolver which names the DNS path answers itself (r53's zones, seen from any
    /// view). An upstream's answer that ends in a CNAME to such a name (one no forwarding
    /// rule takes) is not chased upstream, where those zones may not exist, but handed back
    /// as it is and not cached: the DNS path completes it from the zone the asker sees
    /// ([`dangling`] says where it stops). Set once; later calls change nothing.
    pub fn set_local_names(&self, local: impl Fn(&Name) -> bool + Send + Sync + 'static) {
        let _ = self.inner.local.set(Box::new(local));
    }

    /// Counts `n` answers served from copies of fresh entries (see [`Freshness`]) as hits.
    pub fn note_hits(&self, n: u64) {
        if n > 0 {
            bump(&self.inner.counters.hits, n);
        }
    }

    /// The current generation: copies of answers made in another one must not be served.
    /// Never 0.
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Starts a new generation, after the cache or the rules changed.
    fn invalidate_copies(&self) {
        self.inner
            .generation
            .store(next_generation(), Ordering::Release);
    }

    /// Replaces the forwarding rules. Cached answers for names under a rule that was added,
    /// removed or changed are dropped: they came from upstreams that no longer answer for
    /// those names.
    pub fn set_rules(&self, rules: Vec<ForwardingRule>) {
        let rules: Vec<ForwardingRule> = rules
            .into_iter()
            .map(|mut r| {
                r.domain = r.domain.to_lowercase();
                r.domain.set_fqdn(true);
                r
            })
            .collect();
        let changed: Vec<Name> = {
            let mut current = self
                .inner
                .rules
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let changed = current
                .iter()
                .filter(|r| !rules.contains(r))
                .chain(rules.iter().filter(|r| !current.contains(r)))
                .map(|r| r.domain.clone())
                .collect();
            *current = rules;
            changed
        };
        if !changed.is_empty() {
            lock(&self.inner.cache).retain_names(|n| !changed.iter().any(|d| d.zone_of(n)));
            // The DNS path may have kept answers whose routing just changed (a forwarding
            // rule also beats a private zone): they go too.
            self.invalidate_copies();
        }
    }

    /// The forwarding rules, domains lower-cased and fully qualified.
    pub fn rules(&self) -> Vec<ForwardingRule> {
        self.inner
            .rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Whether questions for `name` are forwarded by a rule. As in Route 53 Resolver, the DNS
    /// path then sends them to the resolver even when a private zone would match: "If a
    /// query matches both a forwarding rule and a private hosted zone, the forwarding rule
    /// wins". A SYSTEM rule (no upstreams) forwards nothing.
    pub fn forwards(&self, name: &Name) -> bool {
        self.inner
            .rule_upstreams(name)
            .is_some_and(|upstreams| !upstreams.is_empty())
    }

    /// The upstreams a question for `name` goes to, in order.
    pub fn upstreams_for(&self, name: &Name) -> Vec<SocketAddr> {
        self.inner.upstreams_for(name)
    }

    pub fn stats(&self) -> ResolverStats {
        let c = &self.inner.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ResolverStats {
            hits: load(&c.hits),
            misses: load(&c.misses),
            entries: lock(&self.inner.cache).len() as u64,
            evictions: load(&c.evictions),
            upstream_errors: load(&c.upstream_errors),
            upstream_queries: load(&c.upstream_queries),
            stale_answers: load(&c.stale_answers),
        }
    }

    /// Drops every cached answer, or with a name every answer for that name (all types).
    /// Questions in flight are unaffected: their answers land in the cache afterwards.
    pub fn flush(&self, name: Option<&Name>) {
        {
            let mut cache = lock(&self.inner.cache);
            match name {
                None => cache.clear(),
                // `Name` compares without case.
                Some(name) => cache.retain_names(|n| n != name),
            }
        }
        self.invalidate_copies();
    }
}

/// What [`Resolver::cached`] found.
#[derive(Debug)]
pub enum Cached {
    /// A fresh answer, TTLs counted down, and how it ages.
    Fresh(Resolved, Freshness),
    /// An expired answer served stale (RFC 8767) within its failure recheck timer.
    Stale(Resolved),
}

/// A number no resolver generation in this process has had before.
fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Takes a question off the in-flight table when its task ends, however it ends.
struct Landing<'a> {
    inner: &'a Inner,
    key: &'a Key,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        lock(&self.inner.in_flight).remove(self.key);
    }
}

impl Inner {
    /// The upstreams of the most specific rule covering `name` (the one with the most
    /// labels), if any rule does.
    fn rule_upstreams(&self, name: &Name) -> Option<Vec<SocketAddr>> {
        let rules = self
            .rules
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        rules
            .iter()
            .filter(|r| r.domain.zone_of(name))
            .max_by_key(|r| r.domain.num_labels())
            .map(|r| r.upstreams.clone())
    }

    /// Whether the DNS path answers `name` from r53's zones rather than asking the resolver.
    fn answered_locally(&self, name: &Name) -> bool {
        self.local.get().is_some_and(|local| local(name))
            && self
                .rule_upstreams(name)
                .is_none_or(|upstreams| upstreams.is_empty())
    }

    fn upstreams_for(&self, name: &Name) -> Vec<SocketAddr> {
        match self.rule_upstreams(name) {
            Some(upstreams) if !upstreams.is_empty() => upstreams,
            _ => self.config.upstreams.clone(),
        }
    }

    /// Answers a question from the upstreams and caches the answer. An answer that ends in a
    /// CNAME the upstream did not follow is completed first ([`chase`](Self::chase)). When
    /// no upstream answers, the stale answer if serve-stale allows one, else SERVFAIL.
    async fn fetch(&self, key: &Key, name: &Name, qtype: RecordType) -> Resolved {
        let Some((resolved, entry)) = self.ask_upstreams(name, qtype).await else {
            return self.failed(key);
        };
        let (resolved, entry) = match cache::dangling(name, qtype, &resolved) {
            None => (resolved, entry),
            // The DNS path goes on from r53's own zones; nothing to cache.
            Some(target) if self.answered_locally(&target) => (resolved, None),
            Some(target) => match self.chase(name, qtype, resolved, target).await {
                Some(completed) => completed,
                None => return self.failed(key),
            },
        };
        if let Some(entry) = entry {
            self.store(key.clone(), entry);
        }
        resolved
    }

    /// What a question gets when it could not be answered: RFC 8767's stale answer when
    /// allowed and kept, else SERVFAIL.
    fn failed(&self, key: &Key) -> Resolved {
        if self.config.serve_stale {
            if let Some(stale) = lock(&self.cache).stale_after_failure(key, Instant::now()) {
                bump(&self.counters.stale_answers, 1);
                return stale;
            }
        }
        Resolved::servfail()
    }

    fn store(&self, key: Key, entry: Entry) {
        let evicted = lock(&self.cache).insert(key, entry);
        bump(&self.counters.evictions, evicted);
    }

    /// Asks the upstreams for `name` in turn until one answers: what the client gets and,
    /// when it may be cached, the entry (not stored here). `None` when every one failed.
    async fn ask_upstreams(
        &self,
        name: &Name,
        qtype: RecordType,
    ) -> Option<(Resolved, Option<Entry>)> {
        for upstream in self.upstreams_for(name) {
            bump(&self.counters.upstream_queries, 1);
            let response =
                match upstream::exchange(upstream, name, qtype, self.config.upstream_timeout).await
                {
                    Ok(response) => response,
                    Err(error) => {
                        bump(&self.counters.upstream_errors, 1);
                        tracing::debug!(
                            %upstream, query.name = %name, query.qtype = %qtype, %error,
                            "resolver: upstream failed"
                        );
                        continue;
                    }
                };
            let rcode = response.metadata.response_code;
            return Some(Entry::from_response(
                qtype,
                rcode,
                response.answers,
                response.authorities,
                Instant::now(),
            ));
        }
        None
    }

    /// Completes an answer that ends in a CNAME to `target` with nothing for it: an upstream
    /// that is authoritative rather than recursive (a forwarding rule to a company's own
    /// servers, say) does not follow a CNAME out of its zones. RFC 1034 §5.3.3 step 4c:
    /// "if the response shows a CNAME and that is not the answer itself, cache the CNAME,
    /// change the SNAME to the canonical name in the CNAME RR and go to step 1", as Unbound
    /// does. The target is asked of the upstreams for *its* name (a forwarding rule may send
    /// it elsewhere), or taken from the cache; its own answer is cached under its own
    /// question, and the whole chain under the first. The rcode is the last name's (RFC 6604
    /// §2). `None` (SERVFAIL) when a target cannot be resolved, the chain loops, or it is
    /// longer than [`MAX_CHASE`] restarts. A chain that reaches r53's own zones stops there,
    /// uncached, for the DNS path to complete.
    ///
    /// Targets are not joined with questions in flight: two chains asked at once that
    /// point at each other would each wait for the other.
    async fn chase(
        &self,
        qname: &Name,
        qtype: RecordType,
        mut resolved: Resolved,
        mut target: Name,
    ) -> Option<(Resolved, Option<Entry>)> {
        let mut seen = vec![qname.clone()];
        for _ in 0..MAX_CHASE {
            // `Name` equality ignores case.
            if seen.contains(&target) {
                return None;
            }
            let part = self.answer_for(&target, qtype).await?;
            let next = cache::dangling(&target, qtype, &part);
            resolved.rcode = part.rcode;
            resolved.answers.extend(part.answers);
            resolved.authorities = part.authorities;
            match next {
                Some(next) if self.answered_locally(&next) => return Some((resolved, None)),
                Some(next) => seen.push(std::mem::replace(&mut target, next)),
                None => {
                    return Some(Entry::from_response(
                        qtype,
                        resolved.rcode,
                        resolved.answers,
                        resolved.authorities,
                        Instant::now(),
                    ))
                }
            }
        }
        None
    }

    /// One link of a chase: the fresh cached answer for `name`, else the upstreams' (cached
    /// when it may be).
    async fn answer_for(&self, name: &Name, qtype: RecordType) -> Option<Resolved> {
        let key = KeyBuf::new(name, qtype);
        if let Lookup::Fresh(resolved, _) = lock(&self.cache).lookup(key.as_bytes(), Instant::now())
        {
            return Some(resolved);
        }
        let (resolved, entry) = self.ask_upstreams(name, qtype).await?;
        if let Some(entry) = entry {
            self.store(key.to_key(), entry);
        }
        Some(resolved)
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn name(s: &str) -> Name {
        Name::from_str(s).unwrap()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    #[test]
    fn resolver_is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Resolver>();
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let resolver = Resolver::new(ResolverConfig {
            upstreams: vec![addr(1)],
            ..ResolverConfig::default()
        });
        resolver.set_rules(vec![
            ForwardingRule {
                domain: name("Example.COM"),
                upstreams: vec![addr(2)],
            },
            ForwardingRule {
                domain: name("sub.example.com."),
                upstreams: vec![addr(3), addr(4)],
            },
            ForwardingRule {
                domain: name("system.example.com."),
                upstreams: vec![],
            },
        ]);
        assert_eq!(
            resolver.upstreams_for(&name("a.b.sub.example.com.")),
            [addr(3), addr(4)]
        );
        assert_eq!(
            resolver.upstreams_for(&name("sub.example.com.")),
            [addr(3), addr(4)]
        );
        assert_eq!(resolver.upstreams_for(&name("www.EXAMPLE.com.")), [addr(2)]);
        assert_eq!(resolver.upstreams_for(&name("notexample.com.")), [addr(1)]);
        assert_eq!(
            resolver.upstreams_for(&name("x.system.example.com.")),
            [addr(1)]
        );
        assert!(resolver.forwards(&name("example.com.")));
        assert!(!resolver.forwards(&name("x.system.example.com.")));
        assert!(!resolver.forwards(&name("example.org.")));
        assert_eq!(resolver.rules()[0].domain.to_string(), "example.com.");
        resolver.set_rules(vec![]);
        assert!(!resolver.forwards(&name("www.example.com.")));
    }

    #[tokio::test]
    async fn no_upstreams_is_servfail() {
        let resolver = Resolver::new(ResolverConfig::default());
        let r = resolver.resolve(&name("example.com."), RecordType::A).await;
        assert_eq!(r.rcode, ResponseCode::ServFail);
        let stats = resolver.stats();
        assert_eq!((stats.misses, stats.upstream_queries), (1, 0));
    }
}
