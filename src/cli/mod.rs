//! The client commands (`r53 zone …`, `r53 record …`, `r53 change …`): they talk to a running
//! r53 through its REST API only, never to the store, and print what it answers the way the aws
//! CLI does (tables for people, `--output json` for the API's JSON, aws-style errors and exit
//! codes).
//!
//! ```text
//!   config (clap) ──► zones / records / transfer ──► client (blocking HTTP, no TLS) ──► API
//!                          │                              │
//!                          └── output (tables, JSON) ◄────┘ responses (client-side shapes)
//! ```
//!
//! Everything here blocks (ureq); the caller runs it off the async runtime.

mod client;
mod output;
mod records;
mod responses;
mod transfer;
mod zones;

use std::path::Path;

use crate::config::{ApiArgs, ChangeArgs, RecordCommand, ZoneCommand};

pub use client::Client;

/// Exit codes, as the aws CLI v2 uses them.
pub mod exit {
    /// A parameter or input file was not acceptable (aws: "command syntax was invalid … or a
    /// parameter value was incorrect").
    pub const INPUT: u8 = 252;
    /// The service answered with an error.
    pub const SERVICE: u8 = 254;
    /// Anything else: the API could not be reached, or answered something unreadable.
    pub const OTHER: u8 = 255;
}

/// Why a client command failed; `Display` is the one line printed to stderr.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The API answered with a Route 53 error.
    #[error("An error occurred ({code}) when calling the {operation} operation: {message}")]
    Service {
        operation: &'static str,
        code: String,
        message: String,
    },
    /// Something the user asked for does not exist (found out on the client side, e.g. a zone
    /// name no hosted zone has). Reported like a service error, since it is one in substance.
    #[error("{0}")]
    NotFound(String),
    /// The API could not be reached at all.
    #[error("Could not connect to the r53 API at {url}: {cause}. Is a server running there? Start one with `r53 serve`, or point --api (R53_API) at it.")]
    Connection { url: String, cause: String },
    /// A parameter or input file is not acceptable; nothing was sent.
    #[error("{0}")]
    Input(String),
    /// The API answered something this client cannot read.
    #[error("{0}")]
    Unexpected(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Service { .. } | CliError::NotFound(_) => exit::SERVICE,
            CliError::Input(_) => exit::INPUT,
            CliError::Connection { .. } | CliError::Unexpected(_) => exit::OTHER,
        }
    }
}

/// `r53 zone create|list|get|delete`, and `import`/`export` through the API. `zone_name` is
/// the name `import` resolved from its file name or `--name` (the caller knows the rules).
pub fn zone(cmd: ZoneCommand, import_name: Option<&str>) -> Result<(), CliError> {
    match cmd {
        ZoneCommand::Create {
            name,
            comment,
            caller_reference,
            client,
        } => zones::create(
            &Client::new(&client.api)?,
            client.output,
            &name,
            comment,
            caller_reference,
        ),
        ZoneCommand::List { client } => zones::list(&Client::new(&client.api)?, client.output),
        ZoneCommand::Get { zone, client } => {
            zones::get(&Client::new(&client.api)?, client.output, &zone)
        }
        ZoneCommand::Delete { zone, client } => {
            zones::delete(&Client::new(&client.api)?, client.output, &zone)
        }
        ZoneCommand::Import { file, api, .. } => {
            let name = import_name.ok_or_else(|| {
                CliError::Input(format!(
                    "cannot tell the zone's name from {}; pass --name",
                    file.display()
                ))
            })?;
            transfer::import(&Client::new(&api)?, &file, name)
        }
        ZoneCommand::Export { name, api, .. } => transfer::export(&Client::new(&api)?, &name),
    }
}

/// `r53 record list|upsert|delete`.
pub fn record(cmd: RecordCommand) -> Result<(), CliError> {
    match cmd {
        RecordCommand::List {
            zone,
            name,
            rtype,
            client,
        } => records::list(
            &Client::new(&client.api)?,
            client.output,
            &zone,
            name.as_deref(),
            rtype.as_deref(),
        ),
        RecordCommand::Upsert {
            zone,
            name,
            rtype,
            ttl,
            values,
            comment,
            client,
        } => records::upsert(
            &Client::new(&client.api)?,
            client.output,
            records::Upsert {
                zone: &zone,
                name: &name,
                rtype: &rtype,
                ttl,
                values: &values,
                comment,
            },
        ),
        RecordCommand::Delete {
            zone,
            name,
            rtype,
            client,
        } => records::delete(
            &Client::new(&client.api)?,
            client.output,
            &zone,
            &name,
            &rtype,
        ),
    }
}

/// `r53 change ZONE --file batch.json`.
pub fn change(args: ChangeArgs) -> Result<(), CliError> {
    let path = args.file.strip_prefix("file://").unwrap_or(&args.file);
    records::change(
        &Client::new(&args.client.api)?,
        args.client.output,
        &args.zone,
        Path::new(path),
    )
}

/// Whether `zone import`/`zone export` should go through the API rather than a data directory.
pub fn wants_api(api: &ApiArgs) -> bool {
    api.api.as_deref().is_some_and(|url| !url.trim().is_empty())
}
