//! Route 53's domain types and their rules: hosted zones, resource record sets, change batches.
//!
//! No IO lives here: nothing in `model` knows sled, sockets, HTTP or JSON. Record data is held
//! as hickory-proto's `RData`, which is the one representation both the zone-file reader and
//! the DNS answer path speak.

mod change;
mod endpoint;
mod record_set;
mod value;
mod vpc;
mod wire_name;
mod zone;

pub use change::{plan, Action, Change, ChangeBatch, ChangeInfo, Plan, ALL_TYPES};
pub use endpoint::{Endpoint, EndpointAddress, EndpointKind, EndpointZones};
pub use record_set::{
    normalize_name, parse_type, type_mnemonic, type_name, AliasTarget, RecordSets,
    ResourceRecordSet, RrKey, SPF,
};
pub use value::{parse_name, parse_value, route53_name, InvalidInput};
pub use vpc::{check_vpc_id, Vpc, VpcAssociation};
pub use wire_name::{reversed_name, WireName};
pub use zone::{HostedZone, HostedZoneId, SchemaError};
