//! `r53 lb`: a small HTTP/1.1 load balancer that registers itself with `r53 serve` as an Alias
//! target (a load-balancer endpoint), as an AWS load balancer is one for Route 53.
//!
//! ```text
//!   clients ──HTTP/1.1──► proxy ──► pool.pick() ──► target (round robin, healthy only)
//!                                     ▲
//!                    health checkers ─┘ (one per target, every --health-interval)
//!                                     │ "some target is healthy", as it changes
//!                                     ▼
//!                    register ──PUT/DELETE /v1/endpoints/{DNSName}──► r53 serve
//! ```
//!
//! - [`health`]: target health (thresholds, the first check decides) and the round-robin pick.
//! - [`proxy`]: connections, request forwarding, header rewriting.
//! - [`register`]: the endpoint registration, its renewals and the deregistration.
//!
//! [`run`] binds and waits for SIGINT/SIGTERM; [`serve`] takes bound listeners and a
//! cancellation token, which is what tests use. Nothing here knows r53's internals: the LB talks
//! to r53 only through its HTTP API.

pub mod health;
pub mod proxy;
pub mod register;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use hyper::http::uri::{Authority, PathAndQuery};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use self::health::{CheckConfig, Pool, Thresholds};
use self::proxy::Proxy;
use self::register::Registration;

/// The suffix a `--name` without a trailing dot is put under.
pub const NAME_SUFFIX: &str = "elb.r53.internal.";

#[derive(Debug, Args, Clone)]
pub struct LbArgs {
    /// Address to accept HTTP on (repeatable).
    #[arg(
        long = "listen",
        env = "R53_LB_LISTEN",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    pub listen: Vec<SocketAddr>,
    /// Address to register in r53 (repeatable; needed when listening on 0.0.0.0 or [::];
    /// default: the listen addresses).
    #[arg(
        long = "advertise",
        env = "R53_LB_ADVERTISE",
        value_name = "IP",
        value_delimiter = ','
    )]
    pub advertise: Vec<IpAddr>,
    /// A backend to send requests to, HOST:PORT (repeatable).
    #[arg(
        long = "target",
        env = "R53_LB_TARGETS",
        value_name = "HOST:PORT",
        value_delimiter = ',',
        required = true,
        value_parser = parse_target
    )]
    pub targets: Vec<Authority>,
    /// Path (and query) the health checks GET on each target.
    #[arg(long, env = "R53_LB_HEALTH_PATH", default_value = "/", value_parser = parse_health_path)]
    pub health_path: String,
    /// Time between health checks of a target: seconds, or with a unit (500ms, 2s).
    #[arg(long, env = "R53_LB_HEALTH_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub health_interval: Duration,
    /// Consecutive passed checks (2xx or 3xx) that make an unhealthy target healthy.
    #[arg(long, env = "R53_LB_HEALTHY_THRESHOLD", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub healthy_threshold: u32,
    /// Consecutive failed checks (other status, timeout, no connection) that make a healthy
    /// target unhealthy.
    #[arg(long, env = "R53_LB_UNHEALTHY_THRESHOLD", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub unhealthy_threshold: u32,
    /// How long a health check may take before it counts as failed.
    #[arg(long, env = "R53_LB_HEALTH_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub health_timeout: Duration,
    /// URL of r53's API to register with.
    #[arg(long = "api", env = "R53_API", value_name = "URL",
          default_value = crate::config::DEFAULT_API_URL)]
    pub api: String,
    /// Bearer token for r53's API (`Authorization: Bearer …`), as the server's --api-token.
    #[arg(long, env = "R53_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// The endpoint's name: `web` registers `web.elb.r53.internal.`; a name ending with a dot
    /// is used as it is. Without a name the LB balances but registers nowhere.
    #[arg(long, env = "R53_LB_NAME", value_parser = parse_name)]
    pub name: Option<String>,
    /// Seconds the registration lasts unless renewed (it is renewed every third of this).
    #[arg(long, env = "R53_LB_LEASE", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub lease: u64,
    /// TTL of the endpoint's DNS answers, in seconds.
    #[arg(long, env = "R53_LB_TTL", default_value_t = 60,
          value_parser = clap::value_parser!(u32).range(0..=2_147_483_647))]
    pub ttl: u32,
    /// At shutdown, how long requests in flight may take to finish.
    #[arg(long, env = "R53_LB_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
}

/// Binds `--listen`, serves until SIGINT or SIGTERM, deregisters, exits.
pub async fn run(args: LbArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed before serving so a signal that comes early is not lost.
    let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut listeners = Vec::new();
    for addr in &args.listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        listeners.push(listener);
    }
    let shutdown = CancellationToken::new();
    let cancel = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            r = tokio::signal::ctrl_c() => {
                if let Err(e) = r {
                    error!(error = %e, "cannot watch for SIGINT; shutting down");
                }
            }
            _ = term.recv() => {}
        }
        info!("signal received; shutting down");
        cancel.cancel();
    });
    serve(args, listeners, shutdown).await
}

/// Serves on `listeners` (bound by the caller; `args.listen` is not used) until `shutdown` is
/// cancelled. Then it deregisters from r53, lets requests in flight finish (up to
/// `--drain-timeout`), and returns.
pub async fn serve(
    args: LbArgs,
    listeners: Vec<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if listeners.is_empty() {
        bail!("no address to listen on");
    }
    if args.targets.is_empty() {
        bail!("no targets: pass --target HOST:PORT");
    }
    let local: Vec<SocketAddr> = listeners
        .iter()
        .map(TcpListener::local_addr)
        .collect::<Result<_, _>>()
        .context("a listener has no local address")?;
    let registration = match &args.name {
        Some(dns_name) => Some(Registration {
            api: api_base(&args.api)?,
            token: args.api_token.clone().filter(|t| !t.is_empty()),
            dns_name: dns_name.clone(),
            addresses: advertised(&local, &args.advertise)?,
            ttl: args.ttl,
            lease: Duration::from_secs(args.lease),
            // The first checks take at most the check timeout, and a little for the DNS
            // lookup of a target given by name.
            settle: args.health_timeout + Duration::from_millis(100),
        }),
        None => None,
    };

    let pool = Arc::new(Pool::new(args.targets.clone()));
    // Checks go on while connections drain, so they stop on a token of their own.
    let stop_checks = CancellationToken::new();
    let mut checkers = pool.spawn_checkers(
        CheckConfig {
            path: args.health_path.clone(),
            interval: args.health_interval,
            timeout: args.health_timeout,
            thresholds: Thresholds {
                healthy: args.healthy_threshold,
                unhealthy: args.unhealthy_threshold,
            },
        },
        stop_checks.clone(),
    );
    let targets: Vec<&str> = args.targets.iter().map(Authority::as_str).collect();
    info!(lb.targets = ?targets, health.path = %args.health_path, health.interval_ms = args.health_interval.as_millis() as u64, "load balancing");

    let registering = match registration {
        Some(registration) => Some(tokio::spawn(register::maintain(
            registration,
            pool.any_healthy(),
            shutdown.clone(),
        ))),
        None => {
            info!("no --name: not registering with r53");
            None
        }
    };

    let proxy = Arc::new(Proxy::new(pool));
    let mut serving = JoinSet::new();
    for (listener, addr) in listeners.into_iter().zip(&local) {
        info!(lb.listen = %addr, "listening");
        serving.spawn(proxy::accept_loop(
            listener,
            proxy.clone(),
            shutdown.clone(),
            args.drain_timeout,
        ));
    }
    while serving.join_next().await.is_some() {}
    if let Some(task) = registering {
        if let Err(e) = task.await {
            error!(error = %e, "the registration task failed");
        }
    }
    stop_checks.cancel();
    while checkers.join_next().await.is_some() {}
    info!("load balancer stopped");
    Ok(())
}

/// The addresses to register: `--advertise` when given, else the listen addresses (which then
/// must not be wildcards: 0.0.0.0 is no address a client can reach).
pub fn advertised(listen: &[SocketAddr], advertise: &[IpAddr]) -> anyhow::Result<Vec<IpAddr>> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    if advertise.is_empty() {
        if let Some(wildcard) = listen.iter().find(|a| a.ip().is_unspecified()) {
            bail!("listening on {wildcard} (every address): pass --advertise with the address(es) clients should reach");
        }
        addresses.extend(listen.iter().map(|a| a.ip().to_canonical()));
    } else {
        if let Some(wildcard) = advertise.iter().find(|a| a.is_unspecified()) {
            bail!("--advertise {wildcard}: name an address clients can reach");
        }
        addresses.extend(advertise.iter().map(|a| a.to_canonical()));
    }
    let mut unique = Vec::new();
    for address in addresses {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    Ok(unique)
}

/// `--api` without a trailing slash; plain HTTP only, as for the client commands.
fn api_base(url: &str) -> anyhow::Result<String> {
    let url = url.trim().trim_end_matches('/');
    if !url.starts_with("http://") {
        bail!("--api {url}: expected an http:// URL (r53's API is plain HTTP)");
    }
    url.parse::<hyper::Uri>()
        .with_context(|| format!("--api {url}: not a URL"))?;
    Ok(url.to_owned())
}

/// `--target`: HOST:PORT, the port required (there is no sensible default for a backend).
fn parse_target(s: &str) -> Result<Authority, String> {
    let authority: Authority = s
        .trim()
        .parse()
        .map_err(|e| format!("expected HOST:PORT: {e}"))?;
    if authority.as_str().contains('@') {
        return Err("expected HOST:PORT, without user information".into());
    }
    if authority.port_u16().is_none() {
        return Err("expected HOST:PORT: the port is missing".into());
    }
    Ok(authority)
}

fn parse_health_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err("the health check path must start with /".into());
    }
    PathAndQuery::try_from(s).map_err(|e| e.to_string())?;
    Ok(s.to_owned())
}

/// A duration: plain seconds (`2`, `0.5`) or with a unit (`500ms`, `2s`, `1m`). Zero is not a
/// duration any of these options can use.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let duration = match s.parse::<f64>() {
        Ok(secs) if (0.0..1e9).contains(&secs) => Duration::from_secs_f64(secs),
        Ok(_) => return Err(format!("{s}: out of range")),
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("{s}: {e}"))?,
    };
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

/// `--name`: `web` → `web.elb.r53.internal.`; `lb.example.com.` as it is. Lower case, letters,
/// digits, hyphens and underscores in labels of 1 to 63, 255 octets in all, so that the name can
/// go into the registration URL as it is.
pub fn parse_name(s: &str) -> Result<String, String> {
    let s = s.trim().to_ascii_lowercase();
    let full = if s.ends_with('.') {
        s
    } else {
        format!("{s}.{NAME_SUFFIX}")
    };
    if full.len() > 254 {
        return Err(format!("{full}: longer than 255 octets"));
    }
    let labels = &full[..full.len() - 1];
    for label in labels.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{full}: every label must have 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{full}: labels may hold letters, digits, hyphens and underscores"
            ));
        }
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_under_the_lb_suffix_unless_fully_qualified() {
        assert_eq!(parse_name("web").unwrap(), "web.elb.r53.internal.");
        assert_eq!(
            parse_name("Web-3F9c").unwrap(),
            "web-3f9c.elb.r53.internal."
        );
        assert_eq!(parse_name("lb.example.com.").unwrap(), "lb.example.com.");
        assert!(parse_name("").is_err());
        assert!(parse_name("a..b").is_err());
        assert!(parse_name("a/b").is_err());
        assert!(parse_name("a?b").is_err());
        assert!(parse_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn durations_in_seconds_or_with_units() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn targets_need_a_port() {
        assert_eq!(parse_target("app:8080").unwrap().as_str(), "app:8080");
        assert_eq!(parse_target("[::1]:80").unwrap().host(), "[::1]");
        assert!(parse_target("app").is_err());
        assert!(parse_target("user@app:80").is_err());
        assert!(parse_target("http://app:80").is_err());
    }

    #[test]
    fn wildcard_listeners_need_advertised_addresses() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let lo: SocketAddr = "127.0.0.4:8080".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8081".parse().unwrap();
        assert!(advertised(&[any], &[]).is_err());
        assert_eq!(
            advertised(&[any], &["10.0.0.5".parse().unwrap()]).unwrap(),
            ["10.0.0.5".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            advertised(&[lo, lo, lo6], &[]).unwrap(),
            [
                "127.0.0.4".parse::<IpAddr>().unwrap(),
                "::1".parse().unwrap()
            ]
        );
        assert!(advertised(&[lo], &["0.0.0.0".parse().unwrap()]).is_err());
    }

    #[test]
    fn api_urls_are_plain_http() {
        assert_eq!(
            api_base("http://127.0.0.1:8053/").unwrap(),
            "http://127.0.0.1:8053"
        );
        assert!(api_base("https://r53.example").is_err());
        assert!(api_base("127.0.0.1:8053").is_err());
    }
}
