//! `r53 record list|upsert|delete` and `r53 change`: record sets through
//! ListResourceRecordSets and ChangeResourceRecordSets.

use std::path::Path;

use hickory_proto::rr::{Name, RecordType};
use serde_json::{json, Value};

use super::client::{Client, Method, VERSION_PATH};
use super::output::{display_name, json_text, print, Table};
use super::responses::{decode, ChangeReply, RecordSet, RecordSetPage};
use super::zones::{change_table, resolve};
use super::CliError;
use crate::config::Output;
use crate::model::{parse_name, parse_type, route53_name, type_name, SPF};

/// The most record sets ListResourceRecordSets gives in one page.
const PAGE: &str = "300";

/// Reads an owner name as the user typed it: `@` is the apex; a name ending in a dot, or
/// already ending with the zone's name, is taken as it is; anything else is relative to the
/// zone.
pub fn owner_name(zone: &Name, typed: &str) -> Result<Name, CliError> {
    let typed = typed.trim();
    let invalid = |e: crate::model::InvalidInput| CliError::Input(format!("name {typed}: {e}"));
    if typed == "@" {
        return Ok(zone.clone());
    }
    let absolute = parse_name(typed).map_err(invalid)?;
    if typed.ends_with('.') || zone.zone_of(&absolute) {
        return Ok(absolute);
    }
    parse_name(&format!("{typed}.{}", route53_name(zone))).map_err(invalid)
}

/// The zone's name as a model name.
fn zone_name(name: &str) -> Result<Name, CliError> {
    parse_name(name).map_err(|e| {
        CliError::Unexpected(format!(
            "the API gave a zone name r53 cannot read ({name}): {e}"
        ))
    })
}

fn record_type(typed: &str) -> Result<RecordType, CliError> {
    parse_type(typed.trim()).ok_or_else(|| {
        CliError::Input(format!(
            "unknown or unsupported record type {typed}; r53 serves A, AAAA, CAA, CNAME, DS, HTTPS, MX, NAPTR, NS, PTR, SOA, SPF, SRV, SSHFP, SVCB, TLSA and TXT"
        ))
    })
}

/// Calls `visit` with every record set of the zone from `start` on (name, then optionally
/// type), page after page, until it returns false or the zone ends.
pub fn each_record_set(
    client: &Client,
    zone_id: &str,
    start: Option<(&Name, Option<RecordType>)>,
    mut visit: impl FnMut(Value, RecordSet) -> Result<bool, CliError>,
) -> Result<(), CliError> {
    let path = format!("{VERSION_PATH}/hostedzone/{zone_id}/rrset");
    let mut next: Option<(String, Option<String>, Option<String>)> =
        start.map(|(name, rtype)| (route53_name(name), rtype.map(type_name), None));
    loop {
        let mut query = vec![("maxitems", PAGE.to_owned())];
        if let Some((name, rtype, identifier)) = &next {
            query.push(("name", name.clone()));
            if let Some(t) = rtype {
                query.push(("type", t.clone()));
            }
            if let Some(i) = identifier {
                query.push(("identifier", i.clone()));
            }
        }
        let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let body = client.get("ListResourceRecordSets", &path, &query)?;
        let page: RecordSetPage = decode("ListResourceRecordSets", &body)?;
        for raw in page.resource_record_sets {
            let set: RecordSet = decode("ListResourceRecordSets", &raw)?;
            if !visit(raw, set)? {
                return Ok(());
            }
        }
        let following = match (page.is_truncated, page.next_record_name) {
            (true, Some(name)) => Some((name, page.next_record_type, page.next_record_identifier)),
            _ => return Ok(()),
        };
        // A position that does not move would page forever.
        if following == next {
            return Err(CliError::Unexpected(
                "ListResourceRecordSets answered the same next record twice".into(),
            ));
        }
        next = following;
    }
}

pub fn list(
    client: &Client,
    output: Output,
    zone: &str,
    name: Option<&str>,
    rtype: Option<&str>,
) -> Result<(), CliError> {
    let hosted_zone = resolve(client, zone)?;
    let apex = zone_name(&hosted_zone.name)?;
    let name = name.map(|n| owner_name(&apex, n)).transpose()?;
    let rtype = rtype.map(record_type).transpose()?;
    let mut sets = Vec::new();
    // With a name, the listing starts there (ListResourceRecordSets' start position) and
    // stops at the first set of another name; a type alone filters the whole zone.
    let start = name.as_ref().map(|n| (n, rtype));
    each_record_set(client, hosted_zone.bare_id(), start, |raw, set| {
        let set_name = parse_name(&set.name).ok();
        if let Some(wanted) = &name {
            if set_name.as_ref() != Some(wanted) {
                return Ok(false);
            }
        }
        if rtype.is_none_or(|t| parse_type(&set.rtype) == Some(t)) {
            sets.push((raw, set));
        }
        Ok(true)
    })?;
    match output {
        Output::Json => {
            let raw: Vec<Value> = sets.into_iter().map(|(raw, _)| raw).collect();
            print(&json_text(&json!({ "ResourceRecordSets": raw })))
        }
        Output::Table => {
            let mut table = Table::new(&["NAME", "TYPE", "TTL", "VALUE"]);
            for (_, set) in &sets {
                let ttl = set.ttl.map(|t| t.to_string()).unwrap_or_default();
                let name = display_name(&set.name);
                if let Some(alias) = &set.alias_target {
                    let target = alias.get("DNSName").and_then(Value::as_str).unwrap_or("?");
                    table.row(vec![
                        name.clone(),
                        set.rtype.clone(),
                        ttl.clone(),
                        format!("ALIAS {target}"),
                    ]);
                }
                for record in &set.resource_records {
                    table.row(vec![
                        name.clone(),
                        set.rtype.clone(),
                        ttl.clone(),
                        record.value.clone(),
                    ]);
                }
            }
            print(&table.render())
        }
    }
}

/// What `r53 record upsert` was asked to do.
pub struct Upsert<'a> {
    pub zone: &'a str,
    pub name: &'a str,
    pub rtype: &'a str,
    pub ttl: u32,
    pub values: &'a [String],
    pub comment: Option<String>,
}

pub fn upsert(client: &Client, output: Output, request: Upsert<'_>) -> Result<(), CliError> {
    let hosted_zone = resolve(client, request.zone)?;
    let apex = zone_name(&hosted_zone.name)?;
    let name = owner_name(&apex, request.name)?;
    let rtype = record_type(request.rtype)?;
    let values: Vec<Value> = request
        .values
        .iter()
        .map(|v| {
            let value = if matches!(rtype, RecordType::TXT | SPF) {
                quote_character_strings(v)
            } else {
                v.clone()
            };
            json!({ "Value": value })
        })
        .collect();
    let mut batch = json!({
        "Changes": [{
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": route53_name(&name),
                "Type": type_name(rtype),
                "TTL": request.ttl,
                "ResourceRecords": values,
            }
        }]
    });
    if let Some(comment) = request.comment {
        batch["Comment"] = Value::String(comment);
    }
    submit(client, output, hosted_zone.bare_id(), batch)
}

/// TXT and SPF values are quoted character-strings on the wire of the API; a value typed
/// without quotes is quoted here (split into strings of at most 255 octets, RFC 1035 §3.3),
/// so `r53 record upsert … TXT 300 v=spf1 -all` does what it says.
fn quote_character_strings(value: &str) -> String {
    if value.trim_start().starts_with('"') {
        return value.to_owned();
    }
    let mut strings = Vec::new();
    let mut current = String::new();
    let mut octets = 0;
    for c in value.chars() {
        if octets + c.len_utf8() > 255 {
            strings.push(std::mem::take(&mut current));
            octets = 0;
        }
        octets += c.len_utf8();
        if matches!(c, '"' | '\\') {
            current.push('\\');
        }
        current.push(c);
    }
    strings.push(current);
    strings
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Deletes the record set of that name and type with exactly the TTL and values it has now,
/// as Route 53 requires of a DELETE.
pub fn delete(
    client: &Client,
    output: Output,
    zone: &str,
    name: &str,
    rtype: &str,
) -> Result<(), CliError> {
    let hosted_zone = resolve(client, zone)?;
    let apex = zone_name(&hosted_zone.name)?;
    let name = owner_name(&apex, name)?;
    let rtype = record_type(rtype)?;
    let mut current = None;
    each_record_set(
        client,
        hosted_zone.bare_id(),
        Some((&name, Some(rtype))),
        |raw, set| {
            if parse_name(&set.name).is_ok_and(|n| n == name)
                && parse_type(&set.rtype) == Some(rtype)
            {
                current = Some(raw);
            }
            // The listing starts at (name, type): only its first set can be the one.
            Ok(false)
        },
    )?;
    let Some(current) = current else {
        return Err(CliError::NotFound(format!(
            "No {} record set named {name} in hosted zone {} ({})",
            type_name(rtype),
            hosted_zone.name,
            hosted_zone.bare_id()
        )));
    };
    let batch = json!({
        "Changes": [{ "Action": "DELETE", "ResourceRecordSet": current }]
    });
    submit(client, output, hosted_zone.bare_id(), batch)
}

/// `r53 change ZONE --file batch.json`: the file is what the aws CLI takes as
/// `--change-batch file://batch.json`, `{"Comment": …, "Changes": [...]}`.
pub fn change(client: &Client, output: Output, zone: &str, file: &Path) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Input(format!("cannot read {}: {e}", file.display())))?;
    let batch: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Input(format!("{} is not valid JSON: {e}", file.display())))?;
    if !batch.is_object() {
        return Err(CliError::Input(format!(
            "{} must hold a JSON object, {{\"Changes\": [...]}}",
            file.display()
        )));
    }
    // Also take a whole request body, {"ChangeBatch": {...}}, rather than wrap it twice.
    let batch = match batch.get("ChangeBatch") {
        Some(inner) => inner.clone(),
        None => batch,
    };
    let hosted_zone = resolve(client, zone)?;
    submit(client, output, hosted_zone.bare_id(), batch)
}

/// ChangeResourceRecordSets with `batch`; prints the ChangeInfo.
fn submit(client: &Client, output: Output, zone_id: &str, batch: Value) -> Result<(), CliError> {
    let body = submit_batch(client, zone_id, batch)?;
    match output {
        Output::Json => print(&json_text(&body)),
        Output::Table => print(&change_table(&decode("ChangeResourceRecordSets", &body)?)),
    }
}

/// ChangeResourceRecordSets; returns the API's answer.
pub fn submit_batch(client: &Client, zone_id: &str, batch: Value) -> Result<Value, CliError> {
    let reply = client.send(
        "ChangeResourceRecordSets",
        Method::Post,
        &format!("{VERSION_PATH}/hostedzone/{zone_id}/rrset"),
        &[],
        Some(&json!({ "ChangeBatch": batch })),
    )?;
    let _: ChangeReply = decode("ChangeResourceRecordSets", &reply.body)?;
    Ok(reply.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        parse_name("example.com.").unwrap()
    }

    #[test]
    fn owner_names_are_relative_to_the_zone() {
        let name = |typed: &str| owner_name(&zone(), typed).unwrap().to_ascii();
        assert_eq!(name("@"), "example.com.");
        assert_eq!(name("www"), "www.example.com.");
        assert_eq!(name("WWW.Example.COM"), "www.example.com.");
        assert_eq!(name("example.com"), "example.com.");
        assert_eq!(name("www.other.net."), "www.other.net.");
        assert_eq!(name("*"), "*.example.com.");
        // A label that merely ends like the zone is still relative.
        assert_eq!(name("myexample.com"), "myexample.com.example.com.");
        assert!(owner_name(&zone(), "a..b").is_err());
    }

    #[test]
    fn unquoted_txt_is_quoted_and_split() {
        assert_eq!(quote_character_strings("v=spf1 -all"), "\"v=spf1 -all\"");
        assert_eq!(quote_character_strings("\"as is\""), "\"as is\"");
        assert_eq!(quote_character_strings("a\"b\\c"), "\"a\\\"b\\\\c\"");
        let long = "x".repeat(300);
        let quoted = quote_character_strings(&long);
        assert_eq!(
            quoted,
            format!("\"{}\" \"{}\"", "x".repeat(255), "x".repeat(45))
        );
        assert!(crate::model::parse_value(RecordType::TXT, &quoted).is_ok());
    }

    #[test]
    fn unknown_types_are_input_errors() {
        assert_eq!(record_type("a").unwrap(), RecordType::A);
        assert_eq!(record_type("spf").unwrap(), SPF);
        assert_eq!(record_type("BOGUS").unwrap_err().exit_code(), 252);
    }
}
