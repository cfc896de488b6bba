//! Route 53's domain types and their rules: hosted zones, resource record sets, change batches.
//!
//! No IO lives here: nothing in `model` knows sled, sockets, HTTP or JSON. Record data is held
//! as hickory-proto's `RData`, which is the one representation both the zone-file reader and
//! the DNS answer path speak.

mod record_set;
mod zone;

pub use record_set::{normalize_name, RrKey, ResourceRecordSet};
pub use zone::{HostedZone, HostedZoneId, SchemaError};
