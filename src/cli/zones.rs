//! `r53 zone create|list|get|delete`, and turning what the user typed for ZONE (an id or a
//! name) into a hosted zone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde_json::{json, Map, Value};

use super::client::{Client, Method, VERSION_PATH};
use super::output::{json_text, print, Table};
use super::responses::{decode, ChangeReply, HostedZone, HostedZonePage, ZoneReply};
use super::CliError;
use crate::config::Output;
use crate::model::{parse_name, HostedZoneId};

/// A caller reference nobody else has: the time to the nanosecond, this process's id (two
/// runs in the same instant: parallel CI jobs) and a counter (two zones from one process in
/// the same clock tick).
pub fn unique_caller_reference() -> String {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    format!(
        "r53-cli-{}-{}-{}",
        humantime::format_rfc3339_nanos(SystemTime::now()),
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    )
}

/// CreateHostedZone; returns the created zone and the raw answer (with `Location` first, as
/// the aws CLI shows it).
pub fn create_zone(
    client: &Client,
    name: &str,
    comment: Option<String>,
    caller_reference: Option<String>,
) -> Result<(ZoneReply, Value), CliError> {
    let mut request = json!({
        "Name": name,
        "CallerReference": caller_reference.unwrap_or_else(unique_caller_reference),
    });
    if let Some(comment) = comment {
        request["HostedZoneConfig"] = json!({ "Comment": comment });
    }
    let reply = client.send(
        "CreateHostedZone",
        Method::Post,
        &format!("{VERSION_PATH}/hostedzone"),
        &[],
        Some(&request),
    )?;
    let created: ZoneReply = decode("CreateHostedZone", &reply.body)?;
    let mut shown = Map::new();
    if let Some(location) = reply.location {
        shown.insert("Location".into(), Value::String(location));
    }
    if let Value::Object(fields) = reply.body {
        shown.extend(fields);
    }
    Ok((created, Value::Object(shown)))
}

pub fn create(
    client: &Client,
    output: Output,
    name: &str,
    comment: Option<String>,
    caller_reference: Option<String>,
) -> Result<(), CliError> {
    let (created, raw) = create_zone(client, name, comment, caller_reference)?;
    match output {
        Output::Json => print(&json_text(&raw)),
        Output::Table => print(&zone_table(&created)),
    }
}

/// Every hosted zone, following `NextMarker` (as raw JSON objects, in the API's order).
pub fn list_all(client: &Client) -> Result<Vec<Value>, CliError> {
    let mut zones = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut query = vec![("maxitems", "100")];
        if let Some(m) = &marker {
            query.push(("marker", m.as_str()));
        }
        let body = client.get(
            "ListHostedZones",
            &format!("{VERSION_PATH}/hostedzone"),
            &query,
        )?;
        let page: HostedZonePage = decode("ListHostedZones", &body)?;
        zones.extend(page.hosted_zones);
        match page.next_marker.filter(|_| page.is_truncated) {
            // A marker that does not move would page forever.
            Some(next) if marker.as_deref() != Some(next.as_str()) => marker = Some(next),
            Some(next) => {
                return Err(CliError::Unexpected(format!(
                    "ListHostedZones answered the same NextMarker {next} twice"
                )))
            }
            None => return Ok(zones),
        }
    }
}

pub fn list(client: &Client, output: Output) -> Result<(), CliError> {
    let zones = list_all(client)?;
    match output {
        Output::Json => print(&json_text(&json!({ "HostedZones": zones }))),
        Output::Table => {
            let mut table = Table::new(&["ID", "NAME", "RECORDS", "PRIVATE", "COMMENT"]);
            for raw in &zones {
                let zone: HostedZone = decode("ListHostedZones", raw)?;
                table.row(vec![
                    zone.bare_id().to_owned(),
                    zone.name.clone(),
                    zone.resource_record_set_count
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    zone.private().to_string(),
                    zone.comment().to_owned(),
                ]);
            }
            print(&table.render())
        }
    }
}

/// The hosted zone ZONE names: an id (`Z…`, `/hostedzone/Z…`) is asked for directly; a name
/// is looked up in the list, and must name exactly one zone.
pub fn resolve(client: &Client, zone: &str) -> Result<HostedZone, CliError> {
    if let Ok(id) = HostedZoneId::parse(zone.trim()) {
        let body = client.get(
            "GetHostedZone",
            &format!("{VERSION_PATH}/hostedzone/{id}"),
            &[],
        )?;
        let reply: ZoneReply = decode("GetHostedZone", &body)?;
        return Ok(reply.hosted_zone);
    }
    find_by_name(client, zone)?.ok_or_else(|| {
        CliError::NotFound(format!(
            "No hosted zone named {} at {} (`r53 zone list` shows the zones)",
            fqdn(zone),
            client.base()
        ))
    })
}

/// The one hosted zone named `name`, if any. Route 53 allows several zones of one name; then
/// only an id says which is meant.
pub fn find_by_name(client: &Client, name: &str) -> Result<Option<HostedZone>, CliError> {
    let wanted = parse_name(name.trim()).map_err(|e| {
        CliError::Input(format!(
            "{name} is neither a hosted zone id nor a domain name: {e}"
        ))
    })?;
    let mut found = Vec::new();
    for raw in list_all(client)? {
        let zone: HostedZone = decode("ListHostedZones", &raw)?;
        if parse_name(&zone.name).is_ok_and(|n| n == wanted) {
            found.push(zone);
        }
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(CliError::Input(format!(
            "{} hosted zones are named {wanted}: {}; give the id instead of the name",
            found.len(),
            found
                .iter()
                .map(|z| z.bare_id().to_owned())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn fqdn(name: &str) -> String {
    let name = name.trim();
    if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    }
}

pub fn get(client: &Client, output: Output, zone: &str) -> Result<(), CliError> {
    let id = resolve(client, zone)?.bare_id().to_owned();
    let body = client.get(
        "GetHostedZone",
        &format!("{VERSION_PATH}/hostedzone/{id}"),
        &[],
    )?;
    match output {
        Output::Json => print(&json_text(&body)),
        Output::Table => print(&zone_table(&decode("GetHostedZone", &body)?)),
    }
}

pub fn delete(client: &Client, output: Output, zone: &str) -> Result<(), CliError> {
    let id = resolve(client, zone)?.bare_id().to_owned();
    let reply = client.send(
        "DeleteHostedZone",
        Method::Delete,
        &format!("{VERSION_PATH}/hostedzone/{id}"),
        &[],
        None,
    )?;
    match output {
        Output::Json => print(&json_text(&reply.body)),
        Output::Table => {
            let deleted: ChangeReply = decode("DeleteHostedZone", &reply.body)?;
            print(&change_table(&deleted))
        }
    }
}

/// A zone as `key  value` lines, name servers one per line.
fn zone_table(reply: &ZoneReply) -> String {
    let zone = &reply.hosted_zone;
    let mut table = Table::new(&["FIELD", "VALUE"]);
    table.row(vec!["Id".into(), zone.bare_id().to_owned()]);
    table.row(vec!["Name".into(), zone.name.clone()]);
    table.row(vec![
        "CallerReference".into(),
        zone.caller_reference.clone(),
    ]);
    table.row(vec!["Comment".into(), zone.comment().to_owned()]);
    table.row(vec!["PrivateZone".into(), zone.private().to_string()]);
    if let Some(count) = zone.resource_record_set_count {
        table.row(vec!["ResourceRecordSetCount".into(), count.to_string()]);
    }
    for ns in reply
        .delegation_set
        .as_ref()
        .map(|d| d.name_servers.as_slice())
        .unwrap_or_default()
    {
        table.row(vec!["NameServer".into(), ns.clone()]);
    }
    if let Some(change) = &reply.change_info {
        table.row(vec!["Change".into(), change.bare_id().to_owned()]);
        table.row(vec!["Status".into(), change.status.clone()]);
    }
    table.render()
}

/// A ChangeInfo as one row.
pub fn change_table(reply: &ChangeReply) -> String {
    let change = &reply.change_info;
    let mut table = Table::new(&["CHANGE", "STATUS", "SUBMITTED", "COMMENT"]);
    table.row(vec![
        change.bare_id().to_owned(),
        change.status.clone(),
        change.submitted_at.clone(),
        change.comment.clone().unwrap_or_default(),
    ]);
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_references_differ_and_fit_route53s_limit() {
        let a = unique_caller_reference();
        let b = unique_caller_reference();
        assert_ne!(a, b);
        assert!(a.len() <= 128, "{a}");
    }
}
