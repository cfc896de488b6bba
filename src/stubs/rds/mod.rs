//! `r53 rds`: a database endpoint controller, as RDS gives a database names that follow
//! failover.
//!
//! ```text
//!   instances ◄── TCP connect every --check-interval ── checker
//!                                                          │ results
//!   POST /failover ──► control ──► cluster (roles, health, failover rules; no IO)
//!                                     │ Desired (writer, reader) via watch
//!                                     ▼
//!                                registrar ── PUT / DELETE /v1/endpoints/{DNSName} ──► r53 serve
//! ```
//!
//! The writer endpoint (`NAME.rds.r53.internal.`) answers the primary's address; the reader
//! (`NAME-ro.rds.r53.internal.`) the healthy replicas', or the writer's when none is healthy.
//! When the primary fails `--unhealthy-threshold` checks in a row, the healthy standby is
//! promoted and the old primary becomes the standby (no automatic fail-back).
//!
//! It talks to r53 only through the API, as any registrant would; it never serves DNS.

mod cluster;
mod control;
mod registrar;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::ApiArgs;
use cluster::{
    CheckOutcome, Cluster, Desired, Event, Failover, FailoverError, Health, Registration,
    Thresholds,
};
use registrar::{Acknowledged, RegistryClient, Schedule};

/// The domain endpoint names are made under when `--name` is a bare name.
pub const ENDPOINT_DOMAIN: &str = "rds.r53.internal.";

#[derive(Debug, Args, Clone)]
pub struct RdsArgs {
    /// The database's name: `mydb` gives the writer endpoint `mydb.rds.r53.internal.` and the
    /// reader `mydb-ro.rds.r53.internal.`; a name ending in a dot is the writer's full name.
    #[arg(long, env = "R53_RDS_NAME")]
    pub name: String,
    /// The primary instance, `host:port`.
    #[arg(long, env = "R53_RDS_PRIMARY", value_parser = parse_target)]
    pub primary: String,
    /// The Multi-AZ standby, `host:port`, promoted when the primary fails.
    #[arg(long, env = "R53_RDS_STANDBY", value_parser = parse_target)]
    pub standby: Option<String>,
    /// A read replica, `host:port` (repeatable).
    #[arg(
        long = "replica",
        env = "R53_RDS_REPLICAS",
        value_delimiter = ',',
        value_parser = parse_target
    )]
    pub replicas: Vec<String>,
    /// Time between health checks (`1s`, `500ms`; a bare number is seconds).
    #[arg(long, env = "R53_RDS_CHECK_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub check_interval: Duration,
    /// Failed checks in a row that make an instance unhealthy (and fail the primary over).
    #[arg(long, env = "R53_RDS_UNHEALTHY_THRESHOLD", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub unhealthy_threshold: u32,
    /// Passed checks in a row that make an unhealthy instance healthy again.
    #[arg(long, env = "R53_RDS_HEALTHY_THRESHOLD", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub healthy_threshold: u32,
    /// How long a check may take to connect (at most the interval).
    #[arg(long, env = "R53_RDS_CHECK_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub check_timeout: Duration,
    /// Address of the control port (`POST /failover`, `GET /status`).
    #[arg(long, env = "R53_RDS_CONTROL", default_value = "127.0.0.1:8054")]
    pub control: SocketAddr,
    #[command(flatten)]
    pub api: ApiArgs,
    /// The endpoints' lease: r53 drops them when not renewed within it (renewed every third).
    #[arg(long, env = "R53_RDS_LEASE", default_value = "15s", value_parser = parse_duration)]
    pub lease: Duration,
    /// TTL of the endpoints' answers; short, so clients see a failover quickly.
    #[arg(long, env = "R53_RDS_TTL", default_value_t = 5)]
    pub ttl: u32,
}

/// `host:port`, where host is an IP or a name (`[v6]:port` for IPv6).
fn parse_target(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.parse::<SocketAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    match s.rsplit_once(':') {
        Some((host, port))
            if !host.is_empty() && !host.contains(':') && port.parse::<u16>().is_ok() =>
        {
            Ok(s.to_owned())
        }
        _ => Err(format!(
            "`{s}` is not host:port (for example 127.0.0.11:5432 or db1.internal:5432)"
        )),
    }
}

/// A duration: `500ms`, `2s`, `1m`, or a bare number of seconds. Zero is refused.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e}"))?,
    };
    if d.is_zero() {
        return Err(format!("`{s}`: must be more than zero"));
    }
    Ok(d)
}

/// The writer and reader endpoint names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointNames {
    pub writer: String,
    pub reader: String,
}

impl EndpointNames {
    /// `mydb` → `mydb.rds.r53.internal.` and `mydb-ro.rds.r53.internal.`; a name ending in a
    /// dot is the writer's full name, and the reader gets `-ro` on its first label.
    pub fn from_name(name: &str) -> Result<Self, String> {
        let name = name.trim().to_ascii_lowercase();
        let writer = if name.ends_with('.') {
            name.clone()
        } else {
            format!("{name}.{ENDPOINT_DOMAIN}")
        };
        let (first, rest) = writer.split_once('.').unwrap_or((writer.as_str(), ""));
        let reader = format!("{first}-ro.{rest}");
        for n in [&writer, &reader] {
            check_dns_name(n).map_err(|why| format!("--name {name}: {n} {why}"))?;
        }
        Ok(Self { writer, reader })
    }
}

/// Hostname rules (RFC 1123 §2.1): letters, digits and hyphens, no hyphen at either end of a
/// label, labels up to 63 octets, names up to 253 (without the final dot).
fn check_dns_name(name: &str) -> Result<(), String> {
    let body = name.strip_suffix('.').unwrap_or(name);
    if body.is_empty() || body.len() > 253 {
        return Err("is not 1 to 253 characters long".into());
    }
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "has a label `{label}` that is not 1 to 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            || label.starts_with('-')
            || label.ends_with('-')
        {
            return Err(format!(
                "has a label `{label}` that is not letters, digits and inner hyphens"
            ));
        }
    }
    Ok(())
}

/// What the checker, the control port and the registrar share.
pub(crate) struct Shared {
    cluster: Mutex<Cluster>,
    names: EndpointNames,
    /// What r53 should hold; the registrar follows it.
    desired: watch::Sender<Desired>,
    /// What r53 has acknowledged, from the registrar.
    acknowledged: watch::Receiver<Acknowledged>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Cluster> {
        // A panic while holding the lock leaves a cluster whose fields are each still
        // consistent (every mutation is a plain assignment), so keep going rather than
        // cascading the panic into every task.
        self.cluster
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_cluster<T>(&self, f: impl FnOnce(&Cluster) -> T) -> T {
        f(&self.lock())
    }

    /// Hands the registrar the registrations the cluster wants now, waking it only when they
    /// changed.
    fn publish(&self, cluster: &Cluster) {
        let want = cluster.desired(&self.names.writer, &self.names.reader);
        self.desired.send_if_modified(|current| {
            let changed = *current != want;
            if changed {
                *current = want;
            }
            changed
        });
    }

    fn apply(&self, outcomes: &[(usize, CheckOutcome)]) -> Vec<Event> {
        let mut cluster = self.lock();
        let events = cluster.apply(outcomes);
        self.publish(&cluster);
        events
    }

    /// A failover asked for: the new roles and the writer registration that follows.
    fn force_failover(&self) -> Result<(Failover, Option<Registration>), FailoverError> {
        let mut cluster = self.lock();
        let (failover, event) = cluster.force_failover()?;
        self.publish(&cluster);
        log_event(&event);
        let writer = self.desired.borrow().writer.clone();
        Ok((failover, writer))
    }
}

fn log_event(event: &Event) {
    match event {
        Event::HealthChanged {
            target,
            role,
            health: Health::Unhealthy,
        } => warn!(instance = %target, role = role.as_str(), "instance is unhealthy"),
        Event::HealthChanged {
            target,
            role,
            health,
        } => {
            info!(instance = %target, role = role.as_str(), health = health.as_str(), "instance health changed")
        }
        Event::FailedOver { from, to, forced } => {
            warn!(writer = %to, standby = %from, forced, "failed over: the standby is the primary")
        }
        Event::PrimaryDownNoStandby { primary } => error!(
            instance = %primary,
            "the primary is unhealthy and there is no healthy standby to promote; the writer stays"
        ),
    }
}

/// One check: resolve `target` (an IP literal needs no resolving), then connect over TCP, both
/// within `timeout`. The connection is closed at once; accepting it is all that is asked.
async fn check(target: &str, timeout: Duration) -> CheckOutcome {
    let deadline = Instant::now() + timeout;
    let addr = match target.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => tokio::time::timeout_at(deadline, tokio::net::lookup_host(target))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|mut addrs| addrs.next()),
    };
    let Some(addr) = addr else {
        return CheckOutcome {
            addr: None,
            ok: false,
        };
    };
    let ok = matches!(
        tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await,
        Ok(Ok(_))
    );
    CheckOutcome {
        addr: Some(addr),
        ok,
    }
}

/// Checks every instance each `interval`, all at once, and applies the round's results.
async fn check_loop(
    shared: Arc<Shared>,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let targets = shared.with_cluster(Cluster::targets);
    let mut ticker = tokio::time::interval(interval);
    // A slow round delays the next rather than being followed by a burst.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let mut round = JoinSet::new();
        for (index, target) in targets.iter().enumerate() {
            let target = target.clone();
            round.spawn(async move { (index, check(&target, timeout).await) });
        }
        let outcomes = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcomes = round.join_all() => outcomes,
        };
        for event in shared.apply(&outcomes) {
            log_event(&event);
        }
    }
}

/// Runs the controller on an already-bound control listener until `shutdown`, then
/// deregisters both endpoints and returns.
pub async fn serve(
    args: RdsArgs,
    control: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let names = EndpointNames::from_name(&args.name).map_err(anyhow::Error::msg)?;
    let lease_seconds = args.lease.as_secs_f64().ceil().max(1.0) as u64;
    let renew_every = Duration::from_secs(lease_seconds) / 3;
    let schedule = Schedule {
        renew_every,
        retry_after: renew_every.min(Duration::from_secs(1)),
    };
    // A check that may outlast the interval would stretch the failover bound
    // (interval × threshold); cap it.
    let timeout = args.check_timeout.min(args.check_interval);
    if timeout < args.check_timeout {
        info!(
            check_timeout_ms = timeout.as_millis() as u64,
            "--check-timeout is longer than --check-interval; checks time out at the interval"
        );
    }
    let cluster = Cluster::new(
        args.primary.clone(),
        args.standby.clone(),
        args.replicas.clone(),
        Thresholds {
            healthy: args.healthy_threshold,
            unhealthy: args.unhealthy_threshold,
        },
    );
    // Nothing is registered before the first round of checks, so the first registration
    // already carries real health.
    let (desired_tx, desired_rx) = watch::channel(Desired::default());
    let (ack_tx, ack_rx) = watch::channel(Acknowledged::default());
    let shared = Arc::new(Shared {
        cluster: Mutex::new(cluster),
        names: names.clone(),
        desired: desired_tx,
        acknowledged: ack_rx,
    });
    let client = Arc::new(RegistryClient::new(
        args.api.url(),
        args.api.api_token.clone(),
        args.ttl,
        lease_seconds,
    ));
    let control_addr = control.local_addr().context("the control listener")?;
    info!(
        writer = %names.writer,
        reader = %names.reader,
        primary = %args.primary,
        standby = args.standby.as_deref().unwrap_or("-"),
        replicas = ?args.replicas,
        control.addr = %control_addr,
        api = %args.api.url(),
        "r53 rds started"
    );

    let mut tasks = JoinSet::new();
    tasks.spawn(registrar::run(
        client,
        desired_rx,
        ack_tx,
        [names.writer.clone(), names.reader.clone()],
        schedule,
        shutdown.clone(),
    ));
    tasks.spawn(check_loop(
        shared.clone(),
        args.check_interval,
        timeout,
        shutdown.clone(),
    ));
    let control_shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = control::serve(control, shared, control_shutdown).await {
            error!(error = %e, "the control port stopped");
        }
    });
    while let Some(joined) = tasks.join_next().await {
        joined.context("an r53 rds task panicked")?;
    }
    info!("r53 rds stopped");
    Ok(())
}

/// `r53 rds`: binds the control port, runs until SIGINT or SIGTERM, deregisters, exits 0.
pub async fn run(args: RdsArgs) -> anyhow::Result<()> {
    let control = TcpListener::bind(args.control)
        .await
        .with_context(|| format!("cannot bind the control port to {}", args.control))?;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        match wait_for_signal().await {
            Ok(()) => info!("signal received; deregistering and stopping"),
            Err(e) => error!(error = %e, "cannot wait for signals; stopping"),
        }
        on_signal.cancel();
    });
    serve(args, control, shutdown).await
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: RdsArgs,
    }

    fn parse(args: &[&str]) -> Result<RdsArgs, clap::Error> {
        Cmd::try_parse_from(std::iter::once("rds").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn endpoint_names_follow_rds() {
        let n = EndpointNames::from_name("MyDB").unwrap();
        assert_eq!(n.writer, "mydb.rds.r53.internal.");
        assert_eq!(n.reader, "mydb-ro.rds.r53.internal.");
        let n = EndpointNames::from_name("orders.db.example.internal.").unwrap();
        assert_eq!(n.writer, "orders.db.example.internal.");
        assert_eq!(n.reader, "orders-ro.db.example.internal.");
        assert!(EndpointNames::from_name("").is_err());
        assert!(EndpointNames::from_name("my_db").is_err());
        assert!(EndpointNames::from_name("-db").is_err());
        assert!(
            EndpointNames::from_name(&"a".repeat(61)).is_err(),
            "the reader label is too long"
        );
        assert!(EndpointNames::from_name(&"a".repeat(60)).is_ok());
    }

    #[test]
    fn arguments_and_defaults() {
        let a = parse(&[
            "--name",
            "mydb",
            "--primary",
            "127.0.0.11:5432",
            "--replica",
            "127.0.0.21:5432",
            "--replica",
            "db-r2.internal:5432",
            "--check-interval",
            "500ms",
        ])
        .unwrap();
        assert_eq!(a.replicas, ["127.0.0.21:5432", "db-r2.internal:5432"]);
        assert_eq!(a.check_interval, Duration::from_millis(500));
        assert_eq!(a.unhealthy_threshold, 3);
        assert_eq!(a.healthy_threshold, 2);
        assert_eq!(a.check_timeout, Duration::from_secs(1));
        assert_eq!(a.lease, Duration::from_secs(15));
        assert_eq!(a.ttl, 5);
        assert_eq!(a.control, "127.0.0.1:8054".parse::<SocketAddr>().unwrap());
        assert!(a.standby.is_none());
    }

    #[test]
    fn bad_arguments_are_refused() {
        let base = ["--name", "db", "--primary"];
        for bad_primary in ["127.0.0.11", "db:notaport", ":5432", "::1:5432"] {
            let mut args = base.to_vec();
            args.push(bad_primary);
            assert!(parse(&args).is_err(), "{bad_primary}");
        }
        for good in ["[::1]:5432", "db.internal:5432", "127.0.0.1:1"] {
            let mut args = base.to_vec();
            args.push(good);
            assert!(parse(&args).is_ok(), "{good}");
        }
        let args = [
            "--name",
            "db",
            "--primary",
            "127.0.0.1:1",
            "--check-interval",
            "0s",
        ];
        assert!(parse(&args).is_err());
        let args = [
            "--name",
            "db",
            "--primary",
            "127.0.0.1:1",
            "--unhealthy-threshold",
            "0",
        ];
        assert!(parse(&args).is_err());
    }

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[tokio::test]
    async fn a_check_resolves_and_connects() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = check(&addr.to_string(), Duration::from_secs(1)).await;
        assert_eq!(
            up,
            CheckOutcome {
                addr: Some(addr),
                ok: true
            }
        );
        let by_name = check(
            &format!("localhost:{}", addr.port()),
            Duration::from_secs(1),
        )
        .await;
        assert!(by_name.addr.is_some_and(|a| a.ip().is_loopback()));
        drop(listener);
        let down = check(&addr.to_string(), Duration::from_secs(1)).await;
        assert_eq!(
            down,
            CheckOutcome {
                addr: Some(addr),
                ok: false
            }
        );
        let unresolvable = check("no-such-host.invalid:1", Duration::from_secs(1)).await;
        assert_eq!(
            unresolvable,
            CheckOutcome {
                addr: None,
                ok: false
            }
        );
    }
}
