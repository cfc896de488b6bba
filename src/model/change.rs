//! Change batches and Route 53's rules for them.
//!
//! [`plan`] checks a whole batch against a zone's current record sets and either returns the
//! writes to make or every reason the batch is refused, worded as Route 53 words them. It is
//! pure: the service runs it under its writer lock and commits the result.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::{RData, RecordType};
use rand::Rng;

use hickory_proto::rr::Name;

use super::{
    route53_name, type_name, AliasTarget, EndpointKind, EndpointZones, HostedZone, RecordSets,
    ResourceRecordSet, RrKey,
};

/// Route 53's per-batch limits (ChangeResourceRecordSets quotas).
pub const MAX_RECORDS_PER_BATCH: usize = 1000;
pub const MAX_VALUE_CHARS_PER_BATCH: usize = 32000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Delete,
    Upsert,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "CREATE",
            Action::Delete => "DELETE",
            Action::Upsert => "UPSERT",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Change {
    pub action: Action,
    pub rrset: ResourceRecordSet,
    /// The characters of the values as submitted, for the batch character limit.
    pub value_chars: usize,
}

#[derive(Debug, Clone)]
pub struct ChangeBatch {
    pub comment: Option<String>,
    pub changes: Vec<Change>,
}

/// A committed change, as GetChange reports it. r53 applies changes before acknowledging
/// them, so the status is always INSYNC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInfo {
    pub id: String,
    pub submitted_at: SystemTime,
    pub comment: Option<String>,
}

impl ChangeInfo {
    pub fn new(comment: Option<String>) -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut rng = rand::rng();
        let mut id = String::from("C");
        for _ in 0..20 {
            id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
        }
        Self {
            id,
            submitted_at: SystemTime::now(),
            comment,
        }
    }
}

/// What a valid batch does to the zone.
#[derive(Debug, Default)]
pub struct Plan {
    pub put: Vec<Arc<ResourceRecordSet>>,
    pub delete: Vec<RrKey>,
}

fn describe(set: &ResourceRecordSet) -> String {
    format!(
        "[name='{}', type='{}']",
        route53_name(&set.name),
        type_name(set.rtype)
    )
}

/// Checks `batch` against the zone's current record sets, in order, as Route 53 does: each
/// change sees the effect of the ones before it (a loop is also looked for in the zone as the
/// whole batch leaves it). All or nothing: any message refuses the whole batch.
///
/// `endpoint_zones` names the zones endpoints are registered under, and `endpoint_exists`
/// says whether an endpoint of that kind is registered under that name (Alias targets that
/// are load balancers or databases).
pub fn plan(
    zone: &HostedZone,
    current: &impl RecordSets,
    batch: &ChangeBatch,
    endpoint_zones: &EndpointZones,
    endpoint_exists: &dyn Fn(&Name, EndpointKind) -> bool,
) -> Result<Plan, Vec<String>> {
    let mut messages = Vec::new();
    let records: usize = batch
        .changes
        .iter()
        .map(|c| c.rrset.records.len() * if c.action == Action::Upsert { 2 } else { 1 })
        .sum();
    if records > MAX_RECORDS_PER_BATCH {
        messages.push(format!(
            "Number of records limit of {MAX_RECORDS_PER_BATCH} exceeded."
        ));
    }
    let chars: usize = batch
        .changes
        .iter()
        .map(|c| c.value_chars * if c.action == Action::Upsert { 2 } else { 1 })
        .sum();
    if chars > MAX_VALUE_CHARS_PER_BATCH {
        messages.push(format!(
            "Number of characters limit of {MAX_VALUE_CHARS_PER_BATCH} exceeded."
        ));
    }
    if !messages.is_empty() {
        return Err(messages);
    }

    // Route 53 refuses a batch that touches one record set twice (deleting it twice, say),
    // but for a DELETE followed by a CREATE, the way record sets were replaced before UPSERT.
    let mut seen: BTreeMap<RrKey, Vec<Action>> = BTreeMap::new();
    for change in &batch.changes {
        let key = change.rrset.key();
        let before = seen.entry(key.clone()).or_default();
        let replaced = before.as_slice() == [Action::Delete] && change.action == Action::Create;
        let repeated = !before.is_empty() && !replaced;
        before.push(change.action);
        if repeated {
            messages.push(format!(
                "The request contains an invalid set of changes for a resource record set '{} {}'",
                type_name(key.rtype),
                route53_name(&key.name)
            ));
        }
    }
    if !messages.is_empty() {
        return Err(messages);
    }

    // Work on a view of the zone that later changes see.
    let mut view: BTreeMap<RrKey, Option<&ResourceRecordSet>> = BTreeMap::new();
    // And on the zone as the whole batch would leave it, every change applied as written
    // (whether or not it is refused for something else), for loops only: Route 53 judges an
    // Alias target's existence in order (an Alias listed before the set it targets is "not
    // found", DNSControl #937, octodns #366), but a loop closed by a later change of the same
    // batch (a to b, then b to a) is as much a loop as one closed by a later batch, and is
    // refused in the same words, for each change on it.
    let mut written: BTreeMap<RrKey, Option<&ResourceRecordSet>> = BTreeMap::new();
    for change in &batch.changes {
        let set = &change.rrset;
        written.insert(set.key(), (change.action != Action::Delete).then_some(set));
    }
    fn lookup<'a>(
        view: &BTreeMap<RrKey, Option<&'a ResourceRecordSet>>,
        current: &'a impl RecordSets,
        key: &RrKey,
    ) -> Option<Cow<'a, ResourceRecordSet>> {
        match view.get(key) {
            Some(set) => set.map(Cow::Borrowed),
            None => current.record_set(key),
        }
    }
    for change in &batch.changes {
        let set = &change.rrset;
        let key = set.key();
        if !zone.name.zone_of(&set.name) {
            messages.push(format!(
                "RRSet with DNS name {} is not permitted in zone {}",
                route53_name(&set.name),
                route53_name(&zone.name)
            ));
            continue;
        }
        let existing = lookup(&view, current, &key);
        match change.action {
            Action::Create if existing.is_some() => {
                messages.push(format!(
                    "Tried to create resource record set {} but it already exists",
                    describe(set)
                ));
                continue;
            }
            Action::Delete => {
                match existing {
                    None => messages.push(format!(
                        "Tried to delete resource record set {} but it was not found",
                        describe(set)
                    )),
                    Some(old) if !same_values(&old, set) => messages.push(format!(
                        "Tried to delete resource record set {} but the values provided do not match the current values",
                        describe(set)
                    )),
                    // The apex SOA and NS may be deleted and created again in one batch: what
                    // the zone must hold is judged once the whole batch is applied, below.
                    Some(_) => {
                        view.insert(key, None);
                    }
                }
                continue;
            }
            _ => {}
        }
        // Route 53 reports every rule a change breaks, not the first ("[RRSet of type CNAME
        // ... conflicts with other records ..., RRSet of type CNAME ... creates a CNAME or
        // alias loop in the zone.]").
        let mut refused: Vec<String> =
            check_placement(zone, set, |k| lookup(&view, current, k).is_some())
                .into_iter()
                .collect();
        if let Some(alias) = &set.alias {
            let target_exists = |k: &RrKey| lookup(&view, current, k).is_some();
            refused.extend(check_alias(
                zone,
                set,
                alias,
                target_exists,
                endpoint_zones,
                endpoint_exists,
            ));
        }
        let loops = creates_loop(zone, set, |k| lookup(&view, current, k))
            || creates_loop(zone, set, |k| lookup(&written, current, k));
        // A set refused only as a loop stays in place for the changes after it: the loop is
        // the batch's doing, so b to a, after a to b, finds a and is told of the loop rather
        // than that a was not found, as it is when a to b came in an earlier batch.
        let only_a_loop = loops && refused.is_empty();
        if loops {
            refused.push(format!(
                "RRSet of type {} with DNS name {} is not permitted as it creates a CNAME or alias loop in the zone.",
                type_name(set.rtype),
                route53_name(&set.name)
            ));
        }
        if !refused.is_empty() {
            messages.extend(refused);
            if !only_a_loop {
                continue;
            }
        }
        view.insert(key, Some(set));
    }
    // Route 53's words say what the zone must hold after the batch, not that the apex SOA or
    // NS cannot be deleted: DELETE and CREATE of either in one batch replaces it.
    // Only a batch that deletes one is judged, so that a zone imported without apex NS can
    // still be changed.
    let deletes = |rtype| {
        batch.changes.iter().any(|c| {
            c.action == Action::Delete && c.rrset.rtype == rtype && c.rrset.name == zone.name
        })
    };
    let gone = |rtype| lookup(&view, current, &RrKey::new(&zone.name, rtype)).is_none();
    if deletes(RecordType::SOA) && gone(RecordType::SOA) {
        messages.push("A HostedZone must contain exactly one SOA record.".into());
    }
    if deletes(RecordType::NS) && gone(RecordType::NS) {
        messages
            .push("A HostedZone must contain at least one NS record for the zone itself.".into());
    }
    if !messages.is_empty() {
        return Err(messages);
    }
    let mut plan = Plan::default();
    for (key, after) in view {
        match after {
            Some(set) => plan.put.push(Arc::new(set.clone())),
            None => plan.delete.push(key),
        }
    }
    Ok(plan)
}

/// DELETE must name the current values exactly (order does not matter) and the same TTL, or
/// the same Alias target.
fn same_values(old: &ResourceRecordSet, new: &ResourceRecordSet) -> bool {
    match (&old.alias, &new.alias) {
        (Some(a), Some(b)) => {
            a.dns_name == b.dns_name
                && a.evaluate_target_health == b.evaluate_target_health
                && bare_zone_id(&a.hosted_zone_id) == bare_zone_id(&b.hosted_zone_id)
        }
        (None, None) => {
            old.ttl == new.ttl
                && old.records.len() == new.records.len()
                && new.records.iter().all(|r| old.records.contains(r))
        }
        _ => false,
    }
}

fn bare_zone_id(id: &str) -> &str {
    id.strip_prefix("/hostedzone/").unwrap_or(id)
}

/// An Alias targets a registered endpoint (A or AAAA only) or another record set of the same
/// type in the same hosted zone (never NS or SOA; one that leads back to itself is a loop, see
/// [`creates_loop`]). Returns every reason to refuse it, in Route 53's words and order: a
/// target name outside the target zone is also a target that was not found, and Route 53 says
/// both ("... but the alias target name does not lie within the target zone, ... but that
/// target was not found").
fn check_alias(
    zone: &HostedZone,
    set: &ResourceRecordSet,
    alias: &AliasTarget,
    target_exists: impl Fn(&RrKey) -> bool,
    endpoint_zones: &EndpointZones,
    endpoint_exists: &dyn Fn(&Name, EndpointKind) -> bool,
) -> Vec<String> {
    let rtype = type_name(set.rtype);
    let target_zone = bare_zone_id(&alias.hosted_zone_id);
    let tried = || {
        format!(
            "Tried to create an alias that targets {}, type {rtype} in zone {target_zone}",
            route53_name(&alias.dns_name)
        )
    };
    let outside = || {
        format!(
            "{}, but the alias target name does not lie within the target zone",
            tried()
        )
    };
    let not_found = || format!("{}, but that target was not found", tried());
    if matches!(set.rtype, RecordType::NS | RecordType::SOA) {
        return vec![format!(
            "RRSet of type {rtype} with DNS name {} cannot be an alias",
            route53_name(&set.name)
        )];
    }
    if let Some(kind) = EndpointZones::kind_of_zone(target_zone) {
        if !matches!(set.rtype, RecordType::A | RecordType::AAAA) {
            return vec![format!(
                "Tried to create an alias of type {rtype} that targets {}, but an alias to a {} must be of type A or AAAA",
                route53_name(&alias.dns_name),
                kind.as_str()
            )];
        }
        if !endpoint_zones.suffix(kind).zone_of(&alias.dns_name) {
            return vec![outside(), not_found()];
        }
        return if endpoint_exists(&alias.dns_name, kind) {
            Vec::new()
        } else {
            vec![not_found()]
        };
    }
    if target_zone != zone.id.as_str() {
        return vec![format!(
            "{}, but an alias can only target a record set in the same hosted zone ({}) or a registered endpoint",
            tried(), zone.id
        )];
    }
    if !zone.name.zone_of(&alias.dns_name) {
        return vec![outside(), not_found()];
    }
    if target_exists(&RrKey::new(&alias.dns_name, set.rtype)) {
        Vec::new()
    } else {
        vec![not_found()]
    }
}

/// Where a record set sends a query on inside `zone`: an Alias to a record set of the same
/// hosted zone sends it to the set of its type at its DNSName, a CNAME whose target is in the
/// zone to the CNAME there (an Alias of type CNAME included).
fn next_in_zone(zone: &HostedZone, set: &ResourceRecordSet) -> Option<RrKey> {
    let name = match &set.alias {
        Some(alias) if bare_zone_id(&alias.hosted_zone_id) == zone.id.as_str() => &alias.dns_name,
        Some(_) => return None,
        None => match set.records.first() {
            Some(RData::CNAME(cname)) => &cname.0,
            _ => return None,
        },
    };
    zone.name.zone_of(name).then(|| RrKey::new(name, set.rtype))
}

/// Whether `set`, once in place, leads back to itself through Aliases and CNAMEs of the zone
/// (`a` to `a`, or `a` to `b` to `a`): Route 53 refuses it ("RRSet of type CNAME with DNS name
/// ... is not permitted as it creates a CNAME or alias loop in the zone."). `lookup` reads the
/// zone as the batch has changed it (so far, or as a whole). A loop the chain runs into that does not pass
/// through `set` (one a zone file brought in) is not this change's doing.
fn creates_loop<'a>(
    zone: &HostedZone,
    set: &ResourceRecordSet,
    lookup: impl Fn(&RrKey) -> Option<Cow<'a, ResourceRecordSet>>,
) -> bool {
    let start = set.key();
    let mut seen = std::collections::BTreeSet::new();
    let mut next = next_in_zone(zone, set);
    while let Some(key) = next {
        if key == start {
            return true;
        }
        if !seen.insert(key.clone()) {
            return false;
        }
        next = lookup(&key).and_then(|target| next_in_zone(zone, &target));
    }
    false
}

/// The rules on where a record set may stand: CNAME alone at its name and never at the apex;
/// SOA only at the apex; NS never at a wildcard.
fn check_placement(
    zone: &HostedZone,
    set: &ResourceRecordSet,
    exists: impl Fn(&RrKey) -> bool,
) -> Option<String> {
    let at_apex = set.name == zone.name;
    match set.rtype {
        RecordType::CNAME if at_apex => Some(format!(
            "RRSet of type CNAME with DNS name {} is not permitted at apex in zone {}",
            route53_name(&set.name), route53_name(&zone.name)
        )),
        RecordType::SOA if !at_apex => Some(format!(
            "RRSet of type SOA with DNS name {} is not permitted because a SOA record is only permitted at the zone apex",
            route53_name(&set.name)
        )),
        // Route 53: "You can't use the * wildcard for resource records sets that have a type of
        // NS" (RFC 4592 §4.2 leaves a wildcard NS's meaning undefined).
        RecordType::NS if set.name.is_wildcard() => Some(format!(
            "RRSet of type NS with DNS name {} is not permitted because the * wildcard can't be used for records of type NS",
            route53_name(&set.name)
        )),
        RecordType::CNAME => {
            let others = ALL_TYPES
                .iter()
                .filter(|t| **t != RecordType::CNAME)
                .any(|t| exists(&RrKey::new(&set.name, *t)));
            others.then(|| {
                format!(
                    "RRSet of type CNAME with DNS name {} is not permitted as it conflicts with other records with the same DNS name in zone {}",
                    route53_name(&set.name), route53_name(&zone.name)
                )
            })
        }
        // Route 53 words the other side of the rule differently: the CNAME is named.
        other => exists(&RrKey::new(&set.name, RecordType::CNAME)).then(|| {
            format!(
                "RRSet of type {} with DNS name {} is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists in zone {}",
                type_name(other),
                route53_name(&set.name),
                route53_name(&zone.name)
            )
        }),
    }
}

/// The record types r53 accepts.
pub const ALL_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::CAA,
    RecordType::CNAME,
    RecordType::DS,
    RecordType::HTTPS,
    RecordType::MX,
    RecordType::NAPTR,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SOA,
    super::SPF,
    RecordType::SRV,
    RecordType::SSHFP,
    RecordType::SVCB,
    RecordType::TLSA,
    RecordType::TXT,
];

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::{Name, RData};
    use std::str::FromStr;

    fn zone() -> HostedZone {
        HostedZone::new(&Name::from_str("example.com.").unwrap(), "ref", None)
    }

    fn set(name: &str, rtype: RecordType, ttl: u32, values: &[&str]) -> ResourceRecordSet {
        ResourceRecordSet::new(
            &Name::from_str(name).unwrap(),
            rtype,
            ttl,
            values
                .iter()
                .map(|v| RData::try_from_str(rtype, v).unwrap())
                .collect(),
        )
    }

    fn change(action: Action, rrset: ResourceRecordSet) -> Change {
        Change {
            action,
            rrset,
            value_chars: 0,
        }
    }

    fn current() -> BTreeMap<RrKey, ResourceRecordSet> {
        [
            set("www.example.com.", RecordType::A, 300, &["192.0.2.1"]),
            set(
                "example.com.",
                RecordType::NS,
                172800,
                &["ns1.example.net."],
            ),
        ]
        .into_iter()
        .map(|s| (s.key(), s))
        .collect()
    }

    fn messages(changes: Vec<Change>) -> Vec<String> {
        let batch = ChangeBatch {
            comment: None,
            changes,
        };
        plan(
            &zone(),
            &current(),
            &batch,
            &EndpointZones::default(),
            &|_, _| false,
        )
        .unwrap_err()
    }

    #[test]
    fn create_of_existing_set_is_refused() {
        let m = messages(vec![change(
            Action::Create,
            set("www.example.com.", RecordType::A, 300, &["192.0.2.9"]),
        )]);
        assert_eq!(
            m,
            ["Tried to create resource record set [name='www.example.com.', type='A'] but it already exists"]
        );
    }

    #[test]
    fn delete_needs_matching_values() {
        let m = messages(vec![change(
            Action::Delete,
            set("www.example.com.", RecordType::A, 300, &["192.0.2.9"]),
        )]);
        assert_eq!(m, ["Tried to delete resource record set [name='www.example.com.', type='A'] but the values provided do not match the current values"]);
        let m = messages(vec![change(
            Action::Delete,
            set("nope.example.com.", RecordType::A, 300, &["192.0.2.9"]),
        )]);
        assert_eq!(m, ["Tried to delete resource record set [name='nope.example.com.', type='A'] but it was not found"]);
    }

    /// Route 53 names a wildcard `\052` in its messages, as in its listings.
    #[test]
    fn messages_write_names_as_route53_does() {
        let m = messages(vec![change(
            Action::Delete,
            set("*.example.com.", RecordType::A, 300, &["192.0.2.9"]),
        )]);
        assert_eq!(m, ["Tried to delete resource record set [name='\\052.example.com.', type='A'] but it was not found"]);
    }

    #[test]
    fn cname_conflicts_and_apex_cname_are_refused() {
        let m = messages(vec![change(
            Action::Create,
            set(
                "www.example.com.",
                RecordType::CNAME,
                300,
                &["example.net."],
            ),
        )]);
        assert_eq!(m, ["RRSet of type CNAME with DNS name www.example.com. is not permitted as it conflicts with other records with the same DNS name in zone example.com."]);
        let m = messages(vec![change(
            Action::Create,
            set("example.com.", RecordType::CNAME, 300, &["example.net."]),
        )]);
        assert_eq!(m, ["RRSet of type CNAME with DNS name example.com. is not permitted at apex in zone example.com."]);
    }

    #[test]
    fn ns_at_a_wildcard_is_refused() {
        let m = messages(vec![change(
            Action::Upsert,
            set("*.example.com.", RecordType::NS, 300, &["ns1.example.net."]),
        )]);
        assert_eq!(m, ["RRSet of type NS with DNS name \\052.example.com. is not permitted because the * wildcard can't be used for records of type NS"]);
    }

    #[test]
    fn data_beside_a_cname_names_the_cname() {
        let mut current = current();
        let cname = set("c.example.com.", RecordType::CNAME, 300, &["example.net."]);
        current.insert(cname.key(), cname);
        let batch = ChangeBatch {
            comment: None,
            changes: vec![change(
                Action::Create,
                set("c.example.com.", RecordType::TXT, 300, &["\"x\""]),
            )],
        };
        let m = plan(
            &zone(),
            &current,
            &batch,
            &EndpointZones::default(),
            &|_, _| false,
        )
        .unwrap_err();
        assert_eq!(m, ["RRSet of type TXT with DNS name c.example.com. is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists in zone example.com."]);
    }

    #[test]
    fn later_changes_see_earlier_ones() {
        let batch = ChangeBatch {
            comment: None,
            changes: vec![
                change(
                    Action::Delete,
                    set("www.example.com.", RecordType::A, 300, &["192.0.2.1"]),
                ),
                change(
                    Action::Create,
                    set(
                        "www.example.com.",
                        RecordType::CNAME,
                        300,
                        &["example.net."],
                    ),
                ),
            ],
        };
        let plan = plan(
            &zone(),
            &current(),
            &batch,
            &EndpointZones::default(),
            &|_, _| false,
        )
        .unwrap();
        assert_eq!(plan.delete.len(), 1);
        assert_eq!(plan.put.len(), 1);
    }

    #[test]
    fn same_set_twice_in_one_batch_is_refused() {
        let s = set("new.example.com.", RecordType::A, 300, &["192.0.2.1"]);
        let m = messages(vec![
            change(Action::Create, s.clone()),
            change(Action::Upsert, s),
        ]);
        assert_eq!(m, ["The request contains an invalid set of changes for a resource record set 'A new.example.com.'"]);
        let www = set("www.example.com.", RecordType::A, 300, &["192.0.2.1"]);
        let m = messages(vec![
            change(Action::Delete, www.clone()),
            change(Action::Delete, www),
        ]);
        assert_eq!(m, ["The request contains an invalid set of changes for a resource record set 'A www.example.com.'"]);
    }

    #[test]
    fn names_outside_the_zone_are_refused() {
        let m = messages(vec![change(
            Action::Create,
            set("www.example.org.", RecordType::A, 300, &["192.0.2.1"]),
        )]);
        assert_eq!(
            m,
            ["RRSet with DNS name www.example.org. is not permitted in zone example.com."]
        );
    }

    #[test]
    fn apex_ns_can_be_replaced_in_one_batch() {
        let old = set(
            "example.com.",
            RecordType::NS,
            172800,
            &["ns1.example.net."],
        );
        let new = set("example.com.", RecordType::NS, 3600, &["ns2.example.net."]);
        let batch = ChangeBatch {
            comment: None,
            changes: vec![change(Action::Delete, old), change(Action::Create, new)],
        };
        let plan = plan(
            &zone(),
            &current(),
            &batch,
            &EndpointZones::default(),
            &|_, _| false,
        )
        .unwrap();
        assert_eq!(plan.put.len(), 1);
        assert_eq!(plan.put[0].ttl, 3600);
        assert!(plan.delete.is_empty());
    }

    fn alias(name: &str, rtype: RecordType, zone_id: &str, target: &str) -> ResourceRecordSet {
        ResourceRecordSet::alias(
            &Name::from_str(name).unwrap(),
            rtype,
            AliasTarget {
                hosted_zone_id: zone_id.into(),
                dns_name: Name::from_str(target).unwrap(),
                evaluate_target_health: false,
            },
        )
    }

    /// What `plan` says of `changes` made to `zone`, holding `current()` and `also`.
    fn refused(zone: &HostedZone, also: &[ResourceRecordSet], changes: Vec<Change>) -> Vec<String> {
        let mut current = current();
        current.extend(also.iter().map(|s| (s.key(), s.clone())));
        let batch = ChangeBatch {
            comment: None,
            changes,
        };
        let registered = Name::from_str("web.elb.r53.internal.").unwrap();
        let exists = |name: &Name, kind| name == &registered && kind == EndpointKind::LoadBalancer;
        match plan(zone, &current, &batch, &EndpointZones::default(), &exists) {
            Ok(_) => Vec::new(),
            Err(messages) => messages,
        }
    }

    /// Route 53 says both: "[Tried to create an alias that targets s0-....elb.amazonaws.com.,
    /// type A in zone Z3KY18NSN0TRRC, but the alias target name does not lie within the target
    /// zone, Tried to create an alias that targets ..., but that target was not found]".
    #[test]
    fn an_alias_target_outside_the_target_zone_is_also_not_found() {
        let zone = zone();
        let id = zone.id.as_str().to_owned();
        let m = refused(
            &zone,
            &[],
            vec![change(
                Action::Create,
                alias(
                    "a.example.com.",
                    RecordType::A,
                    &id,
                    "web.elb.r53.internal.",
                ),
            )],
        );
        assert_eq!(
            m,
            [
                format!("Tried to create an alias that targets web.elb.r53.internal., type A in zone {id}, but the alias target name does not lie within the target zone"),
                format!("Tried to create an alias that targets web.elb.r53.internal., type A in zone {id}, but that target was not found"),
            ]
        );
        // An endpoint zone's id with a name outside that endpoint zone: the wrong zone id
        // for the name, as with an ELB's name given a CloudFront zone id.
        let m = refused(
            &zone,
            &[],
            vec![change(
                Action::Create,
                alias(
                    "a.example.com.",
                    RecordType::A,
                    "ZR53RDSENDPOINTS",
                    "web.elb.r53.internal.",
                ),
            )],
        );
        assert_eq!(
            m,
            [
                "Tried to create an alias that targets web.elb.r53.internal., type A in zone ZR53RDSENDPOINTS, but the alias target name does not lie within the target zone",
                "Tried to create an alias that targets web.elb.r53.internal., type A in zone ZR53RDSENDPOINTS, but that target was not found",
            ]
        );
        // Within the zone but missing, or there but of another type: not found alone.
        let m = refused(
            &zone,
            &[],
            vec![change(
                Action::Create,
                alias("a.example.com.", RecordType::AAAA, &id, "www.example.com."),
            )],
        );
        assert_eq!(
            m,
            [format!("Tried to create an alias that targets www.example.com., type AAAA in zone {id}, but that target was not found")]
        );
        let ok = refused(
            &zone,
            &[],
            vec![
                change(
                    Action::Create,
                    alias(
                        "a.example.com.",
                        RecordType::A,
                        &format!("/hostedzone/{id}"),
                        "www.example.com.",
                    ),
                ),
                change(
                    Action::Create,
                    alias(
                        "b.example.com.",
                        RecordType::A,
                        "ZR53ELBENDPOINTS",
                        "web.elb.r53.internal.",
                    ),
                ),
            ],
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    fn loop_message(name: &str, rtype: &str) -> String {
        format!("RRSet of type {rtype} with DNS name {name} is not permitted as it creates a CNAME or alias loop in the zone.")
    }

    /// Route 53 refuses a record set that leads back to itself, with every other reason the
    /// change is refused before it: "[Tried to create an alias that targets
    /// test-islandora.domain.net., type CNAME in zone Z3DL0V8AMVI8MN, but that target was not
    /// found, RRSet of type CNAME with DNS name test-islandora.domain.net. is not permitted as
    /// it creates a CNAME or alias loop in the zone.]"
    #[test]
    fn aliases_and_cnames_that_loop_are_refused() {
        let zone = zone();
        let id = zone.id.as_str().to_owned();
        let m = refused(
            &zone,
            &[],
            vec![change(
                Action::Create,
                alias(
                    "self.example.com.",
                    RecordType::CNAME,
                    &id,
                    "self.example.com.",
                ),
            )],
        );
        assert_eq!(
            m,
            [
                format!("Tried to create an alias that targets self.example.com., type CNAME in zone {id}, but that target was not found"),
                loop_message("self.example.com.", "CNAME"),
            ]
        );
        // A CNAME to its own name beside an A: both rules, as Route 53 words them.
        let m = refused(
            &zone,
            &[],
            vec![change(
                Action::Create,
                set(
                    "www.example.com.",
                    RecordType::CNAME,
                    300,
                    &["www.example.com."],
                ),
            )],
        );
        assert_eq!(
            m,
            [
                "RRSet of type CNAME with DNS name www.example.com. is not permitted as it conflicts with other records with the same DNS name in zone example.com.".to_owned(),
                loop_message("www.example.com.", "CNAME"),
            ]
        );
        // www made an Alias to b, which is an Alias to www: a loop through two sets.
        let b = alias("b.example.com.", RecordType::A, &id, "www.example.com.");
        let m = refused(
            &zone,
            std::slice::from_ref(&b),
            vec![change(
                Action::Upsert,
                alias("www.example.com.", RecordType::A, &id, "b.example.com."),
            )],
        );
        assert_eq!(m, [loop_message("www.example.com.", "A")]);
        // The same through CNAMEs, one of them created earlier in the batch.
        let m = refused(
            &zone,
            &[],
            vec![
                change(
                    Action::Create,
                    set(
                        "c1.example.com.",
                        RecordType::CNAME,
                        60,
                        &["c2.example.com."],
                    ),
                ),
                change(
                    Action::Create,
                    set(
                        "c2.example.com.",
                        RecordType::CNAME,
                        60,
                        &["C1.example.com."],
                    ),
                ),
            ],
        );
        // Both changes are on the loop the batch closes.
        assert_eq!(
            m,
            [
                loop_message("c1.example.com.", "CNAME"),
                loop_message("c2.example.com.", "CNAME"),
            ]
        );
        // A chain is not a loop: a to b to www, and a CNAME out of the zone.
        let ok = refused(
            &zone,
            &[b],
            vec![
                change(
                    Action::Create,
                    alias("a.example.com.", RecordType::A, &id, "b.example.com."),
                ),
                change(
                    Action::Create,
                    set("c.example.com.", RecordType::CNAME, 60, &["c.example.net."]),
                ),
            ],
        );
        assert!(ok.is_empty(), "{ok:?}");
    }

    /// A loop closed by a later change of the same batch is refused in the words a loop closed
    /// by a later batch gets, for each change on it; Alias targets are still looked for in
    /// order, so an Alias listed before the set it targets is "not found" (as in Route 53:
    /// DNSControl #937, "if I add the CNAME first, and then add the R53_ALIAS it runs fine").
    #[test]
    fn a_loop_closed_within_one_batch_is_refused_for_each_change_on_it() {
        let zone = zone();
        let id = zone.id.as_str().to_owned();
        let a_to_b = || alias("a.example.com.", RecordType::A, &id, "b.example.com.");
        let b_to_a = || alias("b.example.com.", RecordType::A, &id, "a.example.com.");
        let b_to_www = || alias("b.example.com.", RecordType::A, &id, "www.example.com.");
        let not_found = |target: &str| {
            format!("Tried to create an alias that targets {target}, type A in zone {id}, but that target was not found")
        };
        // b already an Alias to www: each change finds its target, and both are on the loop.
        let m = refused(
            &zone,
            &[b_to_www()],
            vec![
                change(Action::Upsert, a_to_b()),
                change(Action::Upsert, b_to_a()),
            ],
        );
        assert_eq!(
            m,
            [
                loop_message("a.example.com.", "A"),
                loop_message("b.example.com.", "A")
            ]
        );
        // Across two batches, the second change alone says the same of itself.
        let m = refused(
            &zone,
            &[a_to_b(), b_to_www()],
            vec![change(Action::Upsert, b_to_a())],
        );
        assert_eq!(m, [loop_message("b.example.com.", "A")]);
        // Both new: a's target comes later in the batch (not found, in order), a refused
        // change is not in the view later ones see, and both are on the loop.
        let m = refused(
            &zone,
            &[],
            vec![
                change(Action::Create, a_to_b()),
                change(Action::Create, b_to_a()),
            ],
        );
        assert_eq!(
            m,
            [
                not_found("b.example.com."),
                loop_message("a.example.com.", "A"),
                not_found("a.example.com."),
                loop_message("b.example.com.", "A"),
            ]
        );
        // A pair that ends at a real set is taken when the target comes first, and is "not
        // found" the other way round, as Route 53 answers it.
        let ok = refused(
            &zone,
            &[],
            vec![
                change(Action::Create, b_to_www()),
                change(Action::Create, a_to_b()),
            ],
        );
        assert!(ok.is_empty(), "{ok:?}");
        let m = refused(
            &zone,
            &[],
            vec![
                change(Action::Create, a_to_b()),
                change(Action::Create, b_to_www()),
            ],
        );
        assert_eq!(m, [not_found("b.example.com.")]);
        // Re-pointing: a loop the batch passes through but does not leave behind is refused
        // as before (in order, a to b meets b to a).
        let m = refused(
            &zone,
            &[b_to_a()],
            vec![
                change(Action::Upsert, a_to_b()),
                change(Action::Upsert, b_to_www()),
            ],
        );
        assert_eq!(m, [loop_message("a.example.com.", "A")]);
    }

    #[test]
    fn apex_ns_cannot_be_deleted() {
        let m = messages(vec![change(
            Action::Delete,
            set(
                "example.com.",
                RecordType::NS,
                172800,
                &["ns1.example.net."],
            ),
        )]);
        assert_eq!(
            m,
            ["A HostedZone must contain at least one NS record for the zone itself."]
        );
    }
}
