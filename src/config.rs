//! The command line. Every option has a long flag and an `R53_…` environment variable; this is
//! the only module that reads the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "r53", version, about = "Route 53 that you run yourself")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS (UDP and TCP) for the hosted zones in the data directory.
    Serve(ServeArgs),
    /// Manage hosted zones.
    #[command(subcommand)]
    Zone(ZoneCommand),
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
    #[command(flatten)]
    pub data: DataArgs,
    /// Directory of zone files (NAME.zone) imported at start when no zone of that name exists.
    #[arg(long, env = "R53_ZONES_DIR", default_value = "./zones")]
    pub zones_dir: PathBuf,
    /// UDP sockets bound with SO_REUSEPORT (default: one per CPU).
    #[arg(long, env = "R53_UDP_SOCKETS")]
    pub udp_sockets: Option<usize>,
    /// Seconds a TCP connection may sit idle between queries.
    #[arg(long, env = "R53_TCP_IDLE_TIMEOUT", default_value_t = 10)]
    pub tcp_idle_timeout: u64,
    /// Most TCP connections open at once.
    #[arg(long, env = "R53_TCP_MAX_CONNECTIONS", default_value_t = 1024)]
    pub tcp_max_connections: usize,
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

#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Import a zone file as a hosted zone (replacing the records of an existing zone of the
    /// same name). Works on a stopped server's data directory.
    Import {
        /// The zone file.
        file: PathBuf,
        /// The zone's name (default: the file name without `.zone`).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print a hosted zone as a zone file.
    Export {
        /// The zone's name.
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
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
