//! Wiring: open the store, import zone files, bind the sockets, serve, shut down with the
//! store flushed and the start-up snapshot written. Also the offline zone commands that work
//! on a data directory directly.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use hickory_proto::rr::Name;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api;
use crate::cli::{self, CliError};
use crate::config::{Cli, Command, DataArgs, ServeArgs, ZoneCommand};
use crate::dns::{self, DnsOptions, RecursionPolicy};
use crate::model::{normalize_name, EndpointZones, HostedZone, Vpc};
use crate::resolver::{Resolver, ResolverConfig};
use crate::service::Service;
use crate::store::SledStore;
use crate::zonefile;

/// Logging: `RUST_LOG`-style filter (default info; hickory-server at warn since it logs
/// every response at info, hickory-proto at error since it warns about malformed input any
/// client can send, once per message), `LOG_FORMAT=json` for containers.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new("info,hickory_server=warn,hickory_proto=error,sled=warn")
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    if std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn main(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Zone(cmd) => zone_command(cmd).await,
        Command::Record(cmd) => client_command(move || cli::record(cmd)).await,
        Command::Change(args) => client_command(move || cli::change(args)).await,
        Command::Lb(args) => crate::stubs::lb::run(args).await,
        Command::Rds(args) => crate::stubs::rds::run(args).await,
    }
}

/// Runs a client command off the async runtime (its HTTP client blocks). A failure comes back
/// as a [`CliError`], which `main` prints as the aws CLI does and turns into the aws CLI's exit
/// code (254 for an error from the API, 255 when it cannot be reached).
async fn client_command(
    command: impl FnOnce() -> Result<(), CliError> + Send + 'static,
) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(command)
        .await
        .context("the client command panicked")??;
    Ok(())
}

/// Everything `r53 serve` needs, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub dns_addr: SocketAddr,
    /// `None`: no API (tests of DNS alone).
    pub api_addr: Option<SocketAddr>,
    pub api_token: Option<String>,
    pub api_body_limit: usize,
    /// How long an API request may take to arrive, and how many are handled at once.
    pub api_limits: api::ApiLimits,
    pub name_servers: Vec<Name>,
    /// Where load balancers and databases registered as endpoints answer.
    pub endpoint_zones: EndpointZones,
    /// VPCs defined (or redefined) at start, from `--vpc`.
    pub vpcs: Vec<Vpc>,
    /// The embedded resolver; `None` answers for r53's zones only.
    pub recursion: Option<RecursionOptions>,
    pub data_dir: PathBuf,
    pub cache_bytes: u64,
    pub zones_dir: Option<PathBuf>,
    /// How long the zones must go unchanged before a live start-up snapshot is written;
    /// `None`: only at a clean shutdown.
    pub snapshot_quiet: Option<Duration>,
    pub dns: DnsOptions,
}

impl Default for ServeOptions {
    /// Loopback on ephemeral ports, no API, data and zones under the current directory.
    fn default() -> Self {
        Self {
            dns_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_addr: None,
            api_token: None,
            api_body_limit: 1 << 20,
            api_limits: api::ApiLimits::default(),
            name_servers: Name::from_ascii("ns1.r53.test.").into_iter().collect(),
            endpoint_zones: EndpointZones::default(),
            vpcs: Vec::new(),
            recursion: None,
            data_dir: PathBuf::from("./data"),
            cache_bytes: 8 << 20,
            zones_dir: None,
            snapshot_quiet: None,
            dns: DnsOptions::default(),
        }
    }
}

/// How the embedded resolver is set up.
#[derive(Debug, Clone)]
pub struct RecursionOptions {
    pub resolver: ResolverConfig,
    /// Networks allowed to recurse; `None`: loopback and every VPC's CIDRs.
    pub allow: Option<Vec<ipnet::IpNet>>,
}

/// Reads `ADDR` or `ADDR:PORT` (port 53 when none).
fn parse_upstream(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip: std::net::IpAddr = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .with_context(|| format!("--upstream {text}: expected ADDR or ADDR:PORT"))?;
    Ok(SocketAddr::new(ip, 53))
}

/// The resolver's settings from the command line; default upstreams from /etc/resolv.conf,
/// leaving out r53's own address.
fn recursion_options(args: &ServeArgs) -> anyhow::Result<Option<RecursionOptions>> {
    if args.no_recursion {
        return Ok(None);
    }
    let mut upstreams = args
        .upstreams
        .iter()
        .map(|u| parse_upstream(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if upstreams.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        // r53 itself may be in resolv.conf (it is the stack's DNS server): leave it out, or
        // every miss would come back to us.
        let ip = args.dns_addr.ip();
        let own: Vec<std::net::IpAddr> = match (args.dns_addr.port(), ip.is_unspecified()) {
            (53, true) => vec![ip, "127.0.0.1".parse()?, "::1".parse()?],
            (53, false) => vec![ip],
            _ => Vec::new(),
        };
        upstreams = crate::resolver::system_upstreams(&text, &own);
    }
    if upstreams.is_empty() {
        warn!("no upstream resolvers (none given with --upstream, none usable in /etc/resolv.conf): names outside r53's zones will get SERVFAIL");
    }
    Ok(Some(RecursionOptions {
        resolver: ResolverConfig {
            upstreams,
            cache_entries: args.cache_size,
            serve_stale: args.serve_stale,
            ..ResolverConfig::default()
        },
        allow: (!args.recursion_allow.is_empty()).then(|| args.recursion_allow.clone()),
    }))
}

/// Reads `--vpc ID=CIDR,CIDR…`.
pub fn parse_vpc_arg(text: &str) -> anyhow::Result<Vpc> {
    let (id, cidrs) = text
        .split_once('=')
        .with_context(|| format!("--vpc {text}: expected ID=CIDR,CIDR…"))?;
    let cidrs: Vec<String> = cidrs.split(',').map(|c| c.trim().to_owned()).collect();
    Vpc::new(id.trim(), &cidrs).map_err(|e| anyhow::anyhow!("--vpc {text}: {e}"))
}

impl TryFrom<ServeArgs> for ServeOptions {
    type Error = anyhow::Error;

    fn try_from(args: ServeArgs) -> anyhow::Result<Self> {
        let mut dns = DnsOptions::default();
        if let Some(n) = args.udp_sockets {
            dns.udp_sockets = n;
        }
        dns.tcp_idle_timeout = Duration::from_secs(args.tcp_idle_timeout);
        dns.tcp_max_connections = args.tcp_max_connections;
        dns.tcp_read_timeout = Duration::from_secs(args.tcp_read_timeout);
        dns.tcp_reclaim_after = Duration::from_millis(args.tcp_reclaim_after_ms);
        dns.max_recursions = args.max_recursions;
        dns.rrl = dns::RrlConfig {
            rate: args.rrl_rate,
            slip: args.rrl_slip,
            table_size: args.rrl_table_size,
        };
        let ns_names = if args.ns_names.is_empty() {
            vec![crate::config::host_name_server()]
        } else {
            args.ns_names.clone()
        };
        let recursion = recursion_options(&args)?;
        Ok(Self {
            recursion,
            dns_addr: args.dns_addr,
            api_addr: Some(args.api_addr),
            api_token: args.api_token.filter(|t| !t.is_empty()),
            api_body_limit: args.api_body_limit,
            api_limits: api::ApiLimits {
                request_timeout: Duration::from_secs(args.api_timeout),
                max_concurrent: args.api_max_concurrent,
            },
            name_servers: ns_names
                .iter()
                .filter_map(|n| Name::from_ascii(n).ok().map(|n| normalize_name(&n)))
                .collect(),
            endpoint_zones: EndpointZones::new(&args.lb_suffix, &args.db_suffix),
            vpcs: args
                .vpcs
                .iter()
                .map(|v| parse_vpc_arg(v))
                .collect::<anyhow::Result<_>>()?,
            data_dir: args.data.data_dir,
            cache_bytes: args.data.cache_mb << 20,
            zones_dir: Some(args.zones_dir),
            snapshot_quiet: (args.snapshot_quiet_ms > 0)
                .then(|| Duration::from_millis(args.snapshot_quiet_ms)),
            dns,
        })
    }
}

/// A running server.
pub struct Running {
    pub dns_addr: SocketAddr,
    pub api_addr: Option<SocketAddr>,
    pub service: Arc<Service>,
    shutdown: CancellationToken,
    tasks: JoinSet<()>,
}

impl Running {
    /// Stops serving, waits for the tasks, flushes the store and writes the start-up
    /// snapshot (see [`Service::close`]: a change still arriving is refused).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.service.close().await.context("flushing the store")?;
        info!("shut down");
        Ok(())
    }
}

fn open_service(
    data_dir: &Path,
    cache_bytes: u64,
    endpoint_zones: EndpointZones,
) -> anyhow::Result<Service> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let store = SledStore::open(data_dir, cache_bytes)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    Ok(Service::open_with(Arc::new(store), endpoint_zones)?)
}

/// How often endpoints whose lease ran out are forgotten (DNS stops answering them at once).
const LEASE_SWEEP: Duration = Duration::from_secs(1);

async fn sweep_leases(service: Arc<Service>, shutdown: CancellationToken) {
    every(LEASE_SWEEP, shutdown, || async {
        if let Err(e) = service.expire_endpoints().await {
            warn!(error = %e, "could not forget expired endpoints");
        }
    })
    .await;
}

/// Runs `work` every `period` (a late round delays the next, none are made up) until
/// `shutdown`. A round under way is not cut short by it.
async fn every<F, R>(period: Duration, shutdown: CancellationToken, mut work: F)
where
    F: FnMut() -> R,
    R: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        work().await;
    }
}

/// Writes the live start-up snapshot whenever one is due: the zones have been quiet for
/// `quiet`, and the store's other rules ([`Service::live_snapshot`]); looks a few times per
/// quiet period.
async fn live_snapshots(service: Arc<Service>, quiet: Duration, shutdown: CancellationToken) {
    let period = (quiet / 4).max(Duration::from_millis(50));
    // Not raced against the shutdown: `close` waits for the writer lock this holds, and a
    // file cut short is never used.
    every(period, shutdown, || async {
        if let Err(e) = service.live_snapshot(quiet).await {
            warn!(error = %e, "the live start-up snapshot was not written; tried again after another quiet period (until then a start after a crash reads the store)");
        }
    })
    .await;
}

/// Opens the store, imports zone files, binds and starts serving.
pub async fn start(options: ServeOptions) -> anyhow::Result<Running> {
    let service = Arc::new(open_service(
        &options.data_dir,
        options.cache_bytes,
        options.endpoint_zones.clone(),
    )?);
    for vpc in &options.vpcs {
        if service.vpcs().await.contains(vpc) {
            continue;
        }
        service.put_vpc(vpc.clone()).await?;
        info!(vpc.id = %vpc.id, "VPC defined from the command line");
    }
    if let Some(dir) = &options.zones_dir {
        import_zones_dir(&service, dir).await;
    }
    let listeners = dns::bind(options.dns_addr, &options.dns).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            anyhow::anyhow!(
                "cannot bind DNS to {}: permission denied. Ports below 1024 need privileges: run as root, grant the binary CAP_NET_BIND_SERVICE (sudo setcap cap_net_bind_service=+ep $(which r53)), or pass --dns-addr 127.0.0.1:5300",
                options.dns_addr
            )
        } else {
            anyhow::anyhow!("cannot bind DNS to {}: {e}", options.dns_addr)
        }
    })?;
    let dns_addr = listeners.local_addr()?;
    info!(
        dns.udp = %dns_addr,
        dns.tcp = %dns_addr,
        udp.sockets = listeners.udp.len(),
        "serving DNS"
    );
    let resolver = options.recursion.as_ref().map(|r| {
        info!(
            upstreams = ?r.resolver.upstreams,
            cache.entries = r.resolver.cache_entries,
            serve_stale = r.resolver.serve_stale,
            "embedded resolver on"
        );
        Arc::new(Resolver::new(r.resolver.clone()))
    });
    if let Some(resolver) = &resolver {
        resolver.set_rules(service.rules().await);
        let catalog = service.catalog();
        resolver.set_local_names(move |name| catalog.load().serves(name));
    }
    let mut dns_options = options.dns.clone();
    dns_options.recursion = RecursionPolicy {
        resolver: resolver.clone(),
        allow: options.recursion.as_ref().and_then(|r| r.allow.clone()),
    };
    let shutdown = CancellationToken::new();
    let mut tasks = listeners
        .serve(service.catalog(), dns_options, shutdown.clone())
        .context("cannot start the DNS threads")?;
    tasks.spawn(sweep_leases(service.clone(), shutdown.clone()));
    if let Some(quiet) = options.snapshot_quiet {
        tasks.spawn(live_snapshots(service.clone(), quiet, shutdown.clone()));
    }
    let api_addr = match options.api_addr {
        Some(addr) => Some(
            start_api(
                &options,
                addr,
                &service,
                resolver.clone(),
                &shutdown,
                &mut tasks,
            )
            .await?,
        ),
        None => None,
    };
    Ok(Running {
        dns_addr,
        api_addr,
        service,
        shutdown,
        tasks,
    })
}

async fn start_api(
    options: &ServeOptions,
    addr: SocketAddr,
    service: &Arc<Service>,
    resolver: Option<Arc<Resolver>>,
    shutdown: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind the API to {addr}"))?;
    let bound = listener.local_addr()?;
    if options.api_token.is_none() && !bound.ip().is_loopback() {
        warn!(api.addr = %bound, "the API listens beyond loopback without --api-token: anyone who can reach it can change every zone");
    }
    info!(api.addr = %bound, auth = options.api_token.is_some(), "serving the API");
    let router = api::router(api::ApiState {
        service: service.clone(),
        name_servers: Arc::new(options.name_servers.clone()),
        token: options.api_token.as_deref().map(Arc::from),
        resolver,
        body_limit: options.api_body_limit,
    });
    let router = api::limit(router, &options.api_limits, options.api_body_limit);
    let limits = options.api_limits.clone();
    let shutdown = shutdown.clone();
    tasks.spawn(async move {
        if let Err(e) = api::serve(listener, router, &limits, shutdown).await {
            error!(error = %e, "the API server stopped");
        }
    });
    Ok(bound)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let running = start(ServeOptions::try_from(args)?).await?;
    wait_for_signal().await?;
    info!("signal received; shutting down");
    running.shutdown().await
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

/// The zone name a file `NAME.zone` holds.
fn zone_name_of(path: &Path) -> Option<Name> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".zone")?;
    Name::from_ascii(stem).ok().map(|n| normalize_name(&n))
}

/// Imports every `NAME.zone` in `dir` whose zone does not exist yet. A file that does not parse
/// is reported (file and line) and skipped; the others still load.
pub async fn import_zones_dir(service: &Service, dir: &Path) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            info!(zones.dir = %dir.display(), "no zones directory; nothing to import");
            return;
        }
        Err(e) => {
            error!(zones.dir = %dir.display(), error = %e, "cannot read the zones directory");
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(name) = zone_name_of(&path) else {
            continue;
        };
        if service.zone_by_name(&name).await.is_some() {
            continue;
        }
        match import_file(service, &path, &name).await {
            Ok(summary) => info!(zone.name = %name, file = %path.display(), "{summary}"),
            Err(e) => error!(zone.name = %name, "zone file not loaded: {e:#}"),
        }
    }
}

/// Imports one zone file: a new hosted zone, or the records of an existing zone of that name
/// replaced.
async fn import_file(service: &Service, path: &Path, name: &Name) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = zonefile::parse(&text, name, &path.display().to_string())?;
    let count = parsed.rrsets.len();
    match service.zone_by_name(name).await {
        Some(existing) => {
            service
                .replace_records(&existing.zone().id, parsed.rrsets)
                .await?;
            Ok(format!(
                "replaced the records of hosted zone {} with {count} record sets",
                existing.zone().id
            ))
        }
        None => {
            let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
            let zone = HostedZone::new(
                name,
                format!("zonefile:{}", file.as_deref().unwrap_or_default()),
                Some(format!(
                    "imported from {}",
                    file.as_deref().unwrap_or_default()
                )),
            );
            let zone = service.create_zone(zone, parsed.rrsets).await?;
            Ok(format!(
                "created hosted zone {} with {count} record sets",
                zone.id
            ))
        }
    }
}

/// `r53 zone …`: import and export work on a stopped server's data directory unless an API is
/// given (`--api` or `R53_API`); everything else goes through the API.
async fn zone_command(cmd: ZoneCommand) -> anyhow::Result<()> {
    match cmd {
        ZoneCommand::Import {
            file,
            name,
            api,
            data,
        } => {
            let name = match name {
                Some(n) => normalize_name(&Name::from_ascii(&n).context("zone name")?),
                None => zone_name_of(&file).with_context(|| {
                    format!(
                        "cannot tell the zone's name from {}; pass --name",
                        file.display()
                    )
                })?,
            };
            if cli::wants_api(&api) {
                let cmd = ZoneCommand::Import {
                    file,
                    name: None,
                    api,
                    data,
                };
                let name = name.to_ascii();
                return client_command(move || cli::zone(cmd, Some(&name))).await;
            }
            let service = open_offline(&data)?;
            let summary = import_file(&service, &file, &name).await?;
            service.flush().await?;
            println!("{name}: {summary}");
            Ok(())
        }
        ZoneCommand::Export { name, api, data } if !cli::wants_api(&api) => {
            let name = normalize_name(&Name::from_ascii(&name).context("zone name")?);
            let service = open_offline(&data)?;
            let Some(zone) = service.zone_by_name(&name).await else {
                bail!("no hosted zone named {name}");
            };
            let sets: Vec<_> = zone.rrsets.values().map(Arc::unwrap_or_clone).collect();
            print!("{}", zonefile::emit(&zone.zone().name, &sets));
            Ok(())
        }
        other => client_command(move || cli::zone(other, None)).await,
    }
}

/// Opens a data directory directly; sled's lock makes this fail while a server has it open.
fn open_offline(data: &DataArgs) -> anyhow::Result<Service> {
    open_service(
        &data.data_dir,
        data.cache_mb << 20,
        EndpointZones::default(),
    )
    .map_err(|e| {
        warn!("{e:#}");
        e.context(
            "is a server running on this data directory? stop it first (sled allows one process)",
        )
    })
}
