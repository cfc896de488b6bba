//! The command line. Every server and connection option has a long flag and an `R53_…`
//! environment variable (per-command arguments such as a zone name or a comment have none);
//! this is the only module that reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "r53", version, about = "Route 53 that you run yourself")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process; the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS (UDP and TCP) for the hosted zones in the data directory.
    Serve(ServeArgs),
    /// Manage hosted zones.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// Manage the record sets of a hosted zone through the API.
    #[command(subcommand)]
    Record(RecordCommand),
    /// Apply a change batch file (the aws CLI's `--change-batch` JSON) to a hosted zone.
    Change(ChangeArgs),
    /// Run the stub load balancer, registered with `r53 serve` as an Alias target.
    Lb(crate::stubs::lb::LbArgs),
    /// Run the stub database endpoint controller (writer and reader endpoints, failover).
    Rds(crate::stubs::rds::RdsArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address for DNS over UDP and TCP.
    #[arg(long, env = "R53_DNS_ADDR", default_value = "0.0.0.0:53")]
    pub dns_addr: SocketAddr,
    /// Address for the REST API.
    #[arg(long, env = "R53_API_ADDR", default_value = "127.0.0.1:8053")]
    pub api_addr: SocketAddr,
    /// Bearer token every API request must carry (`Authorization: Bearer …`).
    #[arg(long, env = "R53_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Largest API request body accepted, in bytes.
    #[arg(long, env = "R53_API_BODY_LIMIT", default_value_t = 1 << 20)]
    pub api_body_limit: usize,
    /// Name servers given to new hosted zones (repeatable; default: this host's name).
    #[arg(long = "ns-name", env = "R53_NS_NAMES", value_delimiter = ',')]
    pub ns_names: Vec<String>,
    /// Upstream resolver for names outside r53's zones (`ADDR` or `ADDR:PORT`, repeatable;
    /// default: the name servers in /etc/resolv.conf other than r53 itself).
    #[arg(long = "upstream", env = "R53_UPSTREAMS", value_delimiter = ',')]
    pub upstreams: Vec<String>,
    /// Networks allowed to recurse (repeatable; default: loopback and every VPC's CIDRs).
    #[arg(
        long = "recursion-allow",
        env = "R53_RECURSION_ALLOW",
        value_delimiter = ','
    )]
    pub recursion_allow: Vec<ipnet::IpNet>,
    /// Answer for r53's zones only: no resolver.
    #[arg(long, env = "R53_NO_RECURSION")]
    pub no_recursion: bool,
    /// Most answers the resolver caches (least recently used go first).
    #[arg(long, env = "R53_CACHE_SIZE", default_value_t = 10_000)]
    pub cache_size: usize,
    /// Answer from expired cache entries when every upstream fails (RFC 8767).
    #[arg(long, env = "R53_SERVE_STALE")]
    pub serve_stale: bool,
    /// A VPC to define (or redefine) at start: `ID=CIDR,CIDR…` (repeatable).
    #[arg(long = "vpc", env = "R53_VPCS", value_delimiter = ';')]
    pub vpcs: Vec<String>,
    /// Zone under which load balancers registered as endpoints answer.
    #[arg(long, env = "R53_LB_SUFFIX", default_value = "elb.r53.internal.")]
    pub lb_suffix: hickory_proto::rr::Name,
    /// Zone under which databases registered as endpoints answer.
    #[arg(long, env = "R53_DB_SUFFIX", default_value = "rds.r53.internal.")]
    pub db_suffix: hickory_proto::rr::Name,
    #[command(flatten)]
    pub data: DataArgs,
    /// Directory of zone files (NAME.zone) imported at start when no zone of that name exists.
    #[arg(long, env = "R53_ZONES_DIR", default_value = "./zones")]
    pub zones_dir: PathBuf,
    /// Once no zone or record set has changed for this many milliseconds, write the start-up
    /// snapshot while serving, so that a start after a crash need not scan the store
    /// (0: only at a clean shutdown). Also the wait before a failed one is tried again; and
    /// one begins no sooner than 20 times as long as the last one took after it began.
    #[arg(long, env = "R53_SNAPSHOT_QUIET_MS", default_value_t = 2000)]
    pub snapshot_quiet_ms: u64,
    /// UDP sockets bound with SO_REUSEPORT, each served by a thread (default: one per CPU).
    #[arg(long, env = "R53_UDP_SOCKETS")]
    pub udp_sockets: Option<usize>,
    /// Seconds a TCP connection may sit idle between queries.
    #[arg(long, env = "R53_TCP_IDLE_TIMEOUT", default_value_t = 10)]
    pub tcp_idle_timeout: u64,
    /// Most TCP connections open at once.
    #[arg(long, env = "R53_TCP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub tcp_max_connections: usize,
    /// Seconds the rest of a TCP query may take to arrive once its first byte has.
    #[arg(long, env = "R53_TCP_READ_TIMEOUT", default_value_t = 5)]
    pub tcp_read_timeout: u64,
    /// Milliseconds a TCP connection must have waited for its next query before it may be
    /// closed to make room when every connection slot is taken.
    #[arg(long, env = "R53_TCP_RECLAIM_AFTER_MS", default_value_t = 1000)]
    pub tcp_reclaim_after_ms: u64,
    /// Questions resolved at once per UDP socket; past this, SERVFAIL at once.
    #[arg(long, env = "R53_MAX_RECURSIONS", default_value_t = 1024)]
    pub max_recursions: usize,
    /// UDP responses per second per client network (/24, /56) and kind of answer, as
    /// Knot's and NSD's response-rate limiting; 0: no limit.
    #[arg(long, env = "R53_RRL_RATE", default_value_t = 0)]
    pub rrl_rate: u32,
    /// Every Nth rate-limited response is sent truncated (TC) so real clients retry over
    /// TCP; the others are dropped. 0: drop them all.
    #[arg(long, env = "R53_RRL_SLIP", default_value_t = 2)]
    pub rrl_slip: u32,
    /// Buckets in the rate limiter's fixed table (rounded up to a power of two).
    #[arg(long, env = "R53_RRL_TABLE_SIZE", default_value_t = 65_536)]
    pub rrl_table_size: usize,
    /// Seconds an API request may take to arrive, headers and body; then 408.
    #[arg(long, env = "R53_API_TIMEOUT", default_value_t = 30)]
    pub api_timeout: u64,
    /// Most API requests handled at once; past it, 503 Throttling.
    #[arg(long, env = "R53_API_MAX_CONCURRENT", default_value_t = 256)]
    pub api_max_concurrent: usize,
}

#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Where the hosted zones are stored (sled).
    #[arg(long, env = "R53_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// sled's page cache, in MiB (sled may use several times this).
    #[arg(long, env = "R53_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,
}

/// Where a running r53's API is and how to authenticate to it.
#[derive(Debug, Args, Clone, Default)]
pub struct ApiArgs {
    /// URL of a running r53's API [default: http://127.0.0.1:8053].
    // No clap default: `zone import`/`zone export` tell "given" (go through the API) from
    // "not given" (open the data directory) by this being `None`.
    #[arg(long = "api", env = "R53_API", value_name = "URL")]
    pub api: Option<String>,
    /// Bearer token to send (`Authorization: Bearer …`), as the server's --api-token.
    #[arg(long, env = "R53_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

/// The URL client commands use when neither `--api` nor `R53_API` is given.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8053";

impl ApiArgs {
    /// The API's base URL, the default when none was given.
    pub fn url(&self) -> &str {
        self.api.as_deref().unwrap_or(DEFAULT_API_URL)
    }
}

/// How client commands print what the API answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The API's JSON, as `aws route53 … --output json` prints it.
    Json,
}

/// The options every client command takes.
#[derive(Debug, Args, Clone, Default)]
pub struct ClientArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Output format.
    #[arg(long, env = "R53_OUTPUT", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Create a hosted zone (CreateHostedZone).
    Create {
        /// The zone's name, e.g. example.com.
        name: String,
        /// A comment stored with the zone.
        #[arg(long)]
        comment: Option<String>,
        /// CreateHostedZone's idempotency key (default: a unique timestamp-based string).
        #[arg(long)]
        caller_reference: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List the hosted zones (ListHostedZones, every page).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a hosted zone and its name servers (GetHostedZone).
    Get {
        /// Zone id (Z…, /hostedzone/Z…) or name.
        zone: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a hosted zone that holds only its SOA and NS (DeleteHostedZone).
    Delete {
        /// Zone id (Z…, /hostedzone/Z…) or name.
        zone: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Import a zone file as a hosted zone (replacing the records of an existing zone of the
    /// same name). Through a running server's API when --api or R53_API is given; otherwise on
    /// a stopped server's data directory.
    Import {
        /// The zone file.
        file: PathBuf,
        /// The zone's name (default: the file name without `.zone`).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print a hosted zone as a zone file. Through a running server's API when --api or
    /// R53_API is given; otherwise from a stopped server's data directory.
    Export {
        /// The zone's name (or, through the API, its id).
        name: String,
        #[command(flatten)]
        api: ApiArgs,
        #[command(flatten)]
        data: DataArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordCommand {
    /// List a zone's record sets (ListResourceRecordSets, every page).
    List {
        /// Zone id (Z…, /hostedzone/Z…) or name.
        zone: String,
        /// Only the record sets of this name (relative to the zone unless it ends with a dot).
        #[arg(long)]
        name: Option<String>,
        /// Only record sets of this type.
        #[arg(long = "type", value_name = "TYPE")]
        rtype: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Create or replace a record set: `r53 record upsert example.com www A 300 192.0.2.1`.
    Upsert {
        /// Zone id (Z…, /hostedzone/Z…) or name.
        zone: String,
        /// Owner name: relative to the zone unless it ends with a dot or with the zone's
        /// name; `@` is the apex.
        name: String,
        /// Record type (A, AAAA, CNAME, MX, TXT, …).
        #[arg(value_name = "TYPE")]
        rtype: String,
        /// Time to live, in seconds.
        ttl: u32,
        /// The values, in zone-file presentation format; TXT and SPF values without quotes
        /// are quoted. A value starting with `-` goes after `--`.
        // No allow_hyphen_values: it would swallow options given after the values
        // (`… 192.0.2.1 --output json`).
        #[arg(required = true, num_args = 1..)]
        values: Vec<String>,
        /// A comment for the change.
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a record set, whatever its current TTL and values.
    Delete {
        /// Zone id (Z…, /hostedzone/Z…) or name.
        zone: String,
        /// Owner name, as for `upsert`.
        name: String,
        /// Record type.
        #[arg(value_name = "TYPE")]
        rtype: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Args)]
pub struct ChangeArgs {
    /// Zone id (Z…, /hostedzone/Z…) or name.
    pub zone: String,
    /// A JSON change batch, `{"Comment": …, "Changes": [...]}` (`file://` prefix allowed).
    #[arg(long, visible_alias = "change-batch", value_name = "FILE")]
    pub file: String,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// The default name server for new zones: this host's name, fully qualified.
pub fn host_name_server() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}.")
}
