//! `r53 zone import` and `r53 zone export` through a running server's API: zone files in and
//! out of a hosted zone without stopping the server.
//!
//! Import makes the zone hold exactly what the file holds, in one change batch (so all of it
//! or none of it): record sets that differ are UPSERTed, record sets the file does not have are
//! DELETEd, unchanged ones are left alone. The apex SOA and NS are never deleted (Route 53
//! requires them); the file's SOA and NS replace them by UPSERT.

use std::collections::BTreeMap;
use std::path::Path;

use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{json, Value};

use super::client::Client;
use super::output::print;
use super::records::{each_record_set, submit_batch};
use super::responses::{decode, ChangeReply, RecordSet};
use super::zones::{create_zone, find_by_name, resolve};
use super::CliError;
use crate::model::{
    parse_name, parse_type, parse_value, route53_name, type_name, AliasTarget, ResourceRecordSet,
    RrKey,
};
use crate::zonefile;

/// A record set as listed, with the JSON to send back to delete it exactly.
struct Listed {
    set: ResourceRecordSet,
    raw: Value,
}

/// Reads a listed record set into the model, as the API's own parser reads values.
fn to_model(listed: &RecordSet) -> Result<ResourceRecordSet, CliError> {
    let unreadable = |what: String| {
        CliError::Unexpected(format!(
            "the API listed a record set r53 cannot read ({} {}): {what}",
            listed.name, listed.rtype
        ))
    };
    let name = parse_name(&listed.name).map_err(|e| unreadable(e.to_string()))?;
    let rtype = parse_type(&listed.rtype).ok_or_else(|| unreadable("unknown type".into()))?;
    if let Some(alias) = &listed.alias_target {
        // An Alias has no zone-file form: the export notes it in a comment, and an import
        // leaves it alone.
        let field = |key: &str| alias.get(key).and_then(Value::as_str);
        let target = AliasTarget {
            hosted_zone_id: field("HostedZoneId").unwrap_or_default().to_owned(),
            dns_name: parse_name(field("DNSName").unwrap_or_default())
                .map_err(|e| unreadable(e.to_string()))?,
            evaluate_target_health: alias
                .get("EvaluateTargetHealth")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        return Ok(ResourceRecordSet::alias(&name, rtype, target));
    }
    let ttl = listed
        .ttl
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| unreadable("no TTL".into()))?;
    let records = listed
        .resource_records
        .iter()
        .map(|r| parse_value(rtype, &r.value).map_err(|e| unreadable(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ResourceRecordSet::new(&name, rtype, ttl, records))
}

/// Every record set of the zone, in the API's (canonical) order.
fn list_sets(client: &Client, zone_id: &str) -> Result<Vec<Listed>, CliError> {
    let mut sets = Vec::new();
    each_record_set(client, zone_id, None, |raw, listed| {
        sets.push(Listed {
            set: to_model(&listed)?,
            raw,
        });
        Ok(true)
    })?;
    Ok(sets)
}

/// One value in the text the API reads back into the same data. The zone-file writer's form
/// is preferred; hickory's `Display` is the fallback, since the API parses values with hickory
/// for most types. Neither reading back the same is refused rather than sent altered.
fn value_text(set: &ResourceRecordSet, rdata: &RData) -> Result<String, CliError> {
    let candidates = [zonefile::rdata_text(rdata), rdata.to_string()];
    candidates
        .into_iter()
        .find(|text| parse_value(set.rtype, text).is_ok_and(|back| &back == rdata))
        .ok_or_else(|| {
            CliError::Input(format!(
                "{} {}: the value {} cannot be sent through the API without being altered; import this zone into a stopped server's data directory instead (without --api)",
                set.name,
                type_name(set.rtype),
                zonefile::rdata_text(rdata)
            ))
        })
}

fn rrset_json(set: &ResourceRecordSet) -> Result<Value, CliError> {
    let values = set
        .records
        .iter()
        .map(|r| value_text(set, r).map(|v| json!({ "Value": v })))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!({
        "Name": route53_name(&set.name),
        "Type": type_name(set.rtype),
        "TTL": set.ttl,
        "ResourceRecords": values,
    }))
}

/// Same TTL and the same values in any order (an RRset is a set, RFC 2181 §5).
fn same_set(a: &ResourceRecordSet, b: &ResourceRecordSet) -> bool {
    a.ttl == b.ttl
        && a.records.len() == b.records.len()
        && a.records.iter().all(|r| b.records.contains(r))
}

/// The changes that make a zone with `current` hold `wanted`: deletions first, so that a name
/// turning from A into CNAME (or back) never conflicts with itself inside the batch.
fn plan_import(
    apex: &Name,
    current: &[Listed],
    wanted: &[ResourceRecordSet],
) -> Result<(Vec<Value>, usize, usize), CliError> {
    let wanted_keys: BTreeMap<RrKey, &ResourceRecordSet> =
        wanted.iter().map(|s| (s.key(), s)).collect();
    let current_keys: BTreeMap<RrKey, &ResourceRecordSet> =
        current.iter().map(|l| (l.set.key(), &l.set)).collect();
    let required =
        |k: &RrKey| &k.name == apex && matches!(k.rtype, RecordType::SOA | RecordType::NS);
    let mut changes = Vec::new();
    let mut deleted = 0;
    for listed in current {
        let key = listed.set.key();
        let is_alias = listed.set.alias.is_some();
        if !wanted_keys.contains_key(&key) && !required(&key) && !is_alias {
            changes.push(json!({ "Action": "DELETE", "ResourceRecordSet": listed.raw }));
            deleted += 1;
        }
    }
    let mut upserted = 0;
    for set in wanted {
        let unchanged = current_keys
            .get(&set.key())
            .is_some_and(|now| same_set(now, set));
        if !unchanged {
            changes.push(json!({ "Action": "UPSERT", "ResourceRecordSet": rrset_json(set)? }));
            upserted += 1;
        }
    }
    Ok((changes, upserted, deleted))
}

pub fn import(client: &Client, file: &Path, name: &str) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
    let origin = parse_name(name).map_err(|e| CliError::Input(format!("zone name {name}: {e}")))?;
    let parsed = zonefile::parse(&text, &origin, &file.display().to_string())
        .map_err(|e| CliError::Input(e.to_string()))?;
    let file_name = file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (zone, created) = match find_by_name(client, name)? {
        Some(zone) => (zone, false),
        None => {
            let (reply, _) = create_zone(
                client,
                &route53_name(&origin),
                Some(format!("imported from {file_name}")),
                None,
            )?;
            (reply.hosted_zone, true)
        }
    };
    let current = list_sets(client, zone.bare_id())?;
    let (changes, upserted, deleted) = plan_import(&origin, &current, &parsed.rrsets)?;
    let verb = if created { "created" } else { "updated" };
    if changes.is_empty() {
        return print(&format!(
            "{origin}: hosted zone {} already holds the {} record sets of {file_name}; nothing to change\n",
            zone.bare_id(),
            parsed.rrsets.len()
        ));
    }
    let body = submit_batch(
        client,
        zone.bare_id(),
        json!({ "Comment": format!("r53 zone import {file_name}"), "Changes": changes }),
    )?;
    let change: ChangeReply = decode("ChangeResourceRecordSets", &body)?;
    print(&format!(
        "{origin}: {verb} hosted zone {} from {file_name}: {upserted} record sets upserted, {deleted} deleted, {} unchanged (change {}, {})\n",
        zone.bare_id(),
        parsed.rrsets.len() - upserted,
        change.change_info.bare_id(),
        change.change_info.status
    ))
}

pub fn export(client: &Client, zone: &str) -> Result<(), CliError> {
    let zone = resolve(client, zone)?;
    let origin = parse_name(&zone.name).map_err(|e| {
        CliError::Unexpected(format!(
            "the API gave a zone name r53 cannot read ({}): {e}",
            zone.name
        ))
    })?;
    let sets: Vec<ResourceRecordSet> = list_sets(client, zone.bare_id())?
        .into_iter()
        .map(|l| l.set)
        .collect();
    print(&zonefile::emit(&origin, &sets))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(name: &str, rtype: RecordType, ttl: u32, values: &[&str]) -> ResourceRecordSet {
        ResourceRecordSet::new(
            &parse_name(name).unwrap(),
            rtype,
            ttl,
            values
                .iter()
                .map(|v| parse_value(rtype, v).unwrap())
                .collect(),
        )
    }

    fn listed(s: ResourceRecordSet) -> Listed {
        let raw = rrset_json(&s).unwrap();
        Listed { set: s, raw }
    }

    #[test]
    fn import_deletes_first_keeps_apex_and_skips_unchanged() {
        let apex = parse_name("example.com.").unwrap();
        let soa = "ns1.r53.test. hostmaster.example.com. 1 7200 900 1209600 86400";
        let current = vec![
            listed(set("example.com.", RecordType::SOA, 900, &[soa])),
            listed(set(
                "example.com.",
                RecordType::NS,
                172800,
                &["ns1.r53.test."],
            )),
            listed(set("www.example.com.", RecordType::A, 300, &["192.0.2.1"])),
            listed(set(
                "same.example.com.",
                RecordType::A,
                300,
                &["192.0.2.9", "192.0.2.8"],
            )),
            listed(set("gone.example.com.", RecordType::TXT, 300, &["\"bye\""])),
        ];
        let wanted = vec![
            set(
                "www.example.com.",
                RecordType::CNAME,
                300,
                &["same.example.com."],
            ),
            set(
                "same.example.com.",
                RecordType::A,
                300,
                &["192.0.2.8", "192.0.2.9"],
            ),
        ];
        let (changes, upserted, deleted) = plan_import(&apex, &current, &wanted).unwrap();
        assert_eq!((upserted, deleted), (1, 2));
        let summary: Vec<String> = changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {}",
                    c["Action"].as_str().unwrap(),
                    c["ResourceRecordSet"]["Name"].as_str().unwrap(),
                    c["ResourceRecordSet"]["Type"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "DELETE www.example.com. A",
                "DELETE gone.example.com. TXT",
                "UPSERT www.example.com. CNAME",
            ]
        );
    }

    #[test]
    fn values_are_sent_in_a_form_the_api_reads_back() {
        let txt = set(
            "t.example.com.",
            RecordType::TXT,
            60,
            &[r#""a \"quoted\" string" "\010""#],
        );
        let json = rrset_json(&txt).unwrap();
        let value = json["ResourceRecords"][0]["Value"].as_str().unwrap();
        assert_eq!(parse_value(RecordType::TXT, value).unwrap(), txt.records[0]);
    }
}
