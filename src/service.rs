//! The operations every front end shares (zone files at start, the CLI, the API): check,
//! store, swap the serving snapshot.
//!
//! One writer at a time holds `state`, the authoritative in-memory copy of what is stored.
//! A change is decided against it, encoded and queued for the store, then applied to `state`;
//! the writer lets go and waits until a group commit ([`crate::commit`]: one transaction and
//! one flush for every change queued before it began) has made the change durable, and the
//! catalog published by that group carries it. So a refused change leaves nothing behind, DNS
//! never serves a change that is not durable, and an acknowledged change is visible to the
//! next query. At shutdown [`Service::close`] refuses every later change, flushes, and has the
//! store write its start-up snapshot of the zones (unless the one on disk still stands), which
//! the next `open` reads if it can. While serving, [`Service::live_snapshot`] writes the same
//! snapshot once the zones have been quiet for a moment, without closing anything: the store
//! drops it with the next write to a zone or record set.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use tokio::sync::Mutex;

use crate::catalog::{Catalog, Endpoints, SharedCatalog, ZoneIndex};
use crate::commit::GroupCommit;
use hickory_proto::rr::rdata::{NS, SOA};
use hickory_proto::rr::{RData, RecordType};

use crate::model::{
    normalize_name, plan, ChangeBatch, ChangeInfo, Endpoint, EndpointZones, HostedZone,
    HostedZoneId, ResourceRecordSet, RrKey, Vpc, VpcAssociation,
};
use crate::resolver::ForwardingRule;
use crate::store::{Batch, EncodedSets, ShutdownSnapshot, Store, StoreError, StoredZone, Write};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("No hosted zone found with ID: {0}")]
    NoSuchHostedZone(String),
    #[error("No change found with ID: {0}")]
    NoSuchChange(String),
    #[error("{}", .0.join(", "))]
    InvalidChangeBatch(Vec<String>),
    #[error("A hosted zone has already been created with the specified caller reference.")]
    HostedZoneAlreadyExists,
    #[error("The specified hosted zone contains non-required resource record sets and so cannot be deleted.")]
    HostedZoneNotEmpty,
    #[error("No endpoint is registered with the DNS name {0}")]
    NoSuchEndpoint(String),
    #[error("{0}")]
    InvalidEndpoint(String),
    #[error("The VPC ID '{0}' is not valid, or no VPC with that ID is defined in r53.")]
    InvalidVpcId(String),
    #[error("The VPC {0} is associated with hosted zones; disassociate them first.")]
    VpcInUse(String),
    #[error("A public hosted zone cannot be associated with a VPC.")]
    PublicZoneVpcAssociation,
    #[error("The specified VPC and hosted zone are not currently associated.")]
    VpcAssociationNotFound,
    #[error("The VPC that you're trying to disassociate from the private hosted zone is the last VPC that is associated with the hosted zone. Amazon Route 53 doesn't support disassociating the last VPC from a hosted zone.")]
    LastVpcAssociation,
    #[error("The hosted zone is already associated with the VPC {0}.")]
    ConflictingVpcAssociation(String),
    /// Route 53's words for a VPC that already sees a private zone of the same name.
    #[error("The VPC {vpc_id} in region {region} has already been associated with the hosted zone {zone} with the same domain name.")]
    SameNameInVpc {
        vpc_id: String,
        region: String,
        zone: HostedZoneId,
    },
    #[error("No forwarding rule for the domain {0}")]
    NoSuchRule(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Refuses a VPC a second private zone named `name` (any but `except`): Route 53 lets a VPC
/// see one private zone of a name (ConflictingDomainExists).
fn one_zone_of_a_name_per_vpc(
    zones: &BTreeMap<HostedZoneId, ZoneState>,
    name: &Name,
    vpc: &VpcAssociation,
    except: Option<&HostedZoneId>,
) -> Result<(), ServiceError> {
    let other = zones.values().map(ZoneState::zone).find(|z| {
        Some(&z.id) != except
            && z.private
            && z.name == *name
            && z.vpcs.iter().any(|a| a.vpc_id == vpc.vpc_id)
    });
    match other {
        Some(z) => Err(ServiceError::SameNameInVpc {
            vpc_id: vpc.vpc_id.clone(),
            region: vpc.region.clone(),
            zone: z.id.clone(),
        }),
        None => Ok(()),
    }
}

/// What CreateHostedZone asks for.
#[derive(Debug, Clone)]
pub struct NewHostedZone {
    pub name: Name,
    pub caller_reference: String,
    pub comment: Option<String>,
    /// The zone's name servers, first one in the SOA.
    pub name_servers: Vec<Name>,
    /// For a private zone, the VPC it is first associated with.
    pub vpc: Option<VpcAssociation>,
}

/// A zone's SOA and NS as Route 53 creates them: NS TTL 172800; SOA TTL 900 with refresh
/// 7200, retry 900, expire 1209600 and negative TTL 86400.
pub fn default_apex_records(zone: &Name, name_servers: &[Name]) -> Vec<ResourceRecordSet> {
    let mname = name_servers
        .first()
        .cloned()
        .unwrap_or_else(|| zone.clone());
    let rname = Name::from_ascii("hostmaster")
        .and_then(|h| h.append_domain(zone))
        .unwrap_or_else(|_| zone.clone());
    let soa = SOA::new(mname, rname, 1, 7200, 900, 1_209_600, 86400);
    vec![
        ResourceRecordSet::new(zone, RecordType::SOA, 900, vec![RData::SOA(soa)]),
        ResourceRecordSet::new(
            zone,
            RecordType::NS,
            172_800,
            name_servers
                .iter()
                .map(|n| RData::NS(NS(n.clone())))
                .collect(),
        ),
    ]
}

/// A hosted zone and its record sets. The record sets are the zone's DNS index, shared with
/// the catalog: one copy in memory, and cloning a `ZoneState` costs nothing whatever the
/// zone's size.
#[derive(Debug, Clone)]
pub struct ZoneState {
    pub rrsets: Arc<ZoneIndex>,
}

impl ZoneState {
    fn new(zone: HostedZone, rrsets: impl IntoIterator<Item = Arc<ResourceRecordSet>>) -> Self {
        Self {
            rrsets: Arc::new(ZoneIndex::build(zone, rrsets)),
        }
    }

    /// A stored zone, its record sets as the store keeps them.
    fn load(zone: HostedZone, rrsets: &EncodedSets) -> Result<Self, StoreError> {
        Ok(Self {
            rrsets: Arc::new(ZoneIndex::from_encoded(zone, rrsets)?),
        })
    }

    /// The hosted zone itself (the index carries it, for the catalog too).
    pub fn zone(&self) -> &HostedZone {
        &self.rrsets.zone
    }
}

/// Each zone's stored form, encoded as it is asked for: one zone's encoding at a time.
fn encode_zones(
    zones: &[Arc<ZoneIndex>],
) -> impl Iterator<Item = Result<StoredZone, StoreError>> + '_ {
    zones.iter().map(|index| {
        Ok(StoredZone {
            zone: index.zone.clone(),
            rrsets: index.encoded()?,
        })
    })
}

/// Builds each stored zone's index.
fn load_zones(stored: Vec<StoredZone>) -> Result<BTreeMap<HostedZoneId, ZoneState>, StoreError> {
    let mut zones = BTreeMap::new();
    for stored in stored {
        let zone = ZoneState::load(stored.zone, &stored.rrsets)?;
        zones.insert(zone.zone().id.clone(), zone);
    }
    Ok(zones)
}

struct State {
    zones: BTreeMap<HostedZoneId, ZoneState>,
    endpoint_zones: EndpointZones,
    endpoints: BTreeMap<Name, Endpoint>,
    /// The registry as the catalog carries it, rebuilt when an endpoint changes.
    endpoint_snapshot: Arc<Endpoints>,
    vpcs: BTreeMap<String, Vpc>,
    vpc_snapshot: Arc<Vec<Vpc>>,
    rules: BTreeMap<Name, ForwardingRule>,
    /// Count of changes applied (queued for the store or written, durable or not): a change's
    /// sequence number.
    applied: u64,
}

impl State {
    /// The catalog serves one public zone per name: of several public hosted zones with one
    /// name (Route 53 allows that), the oldest answers.
    fn catalog(&self) -> Catalog {
        let mut chosen: HashMap<&Name, &ZoneState> = HashMap::new();
        for z in self.zones.values().filter(|z| !z.zone().private) {
            chosen
                .entry(&z.zone().name)
                .and_modify(|c| {
                    if (z.zone().created_at, &z.zone().id) < (c.zone().created_at, &c.zone().id) {
                        *c = z;
                    }
                })
                .or_insert(z);
        }
        // Private zones: all of them (one name may have several, for different VPCs), oldest
        // first so that it answers where two are seen from one VPC.
        let mut private: Vec<&ZoneState> =
            self.zones.values().filter(|z| z.zone().private).collect();
        private.sort_by(|a, b| {
            (a.zone().created_at, &a.zone().id).cmp(&(b.zone().created_at, &b.zone().id))
        });
        Catalog::new(
            chosen
                .values()
                .copied()
                .chain(private)
                .map(|z| z.rrsets.clone()),
            self.vpc_snapshot.clone(),
            self.endpoint_snapshot.clone(),
        )
    }

    /// Records a change to the VPCs as applied and returns its sequence number.
    fn stage_vpcs(&mut self) -> u64 {
        self.vpc_snapshot = Arc::new(self.vpcs.values().cloned().collect());
        self.applied += 1;
        self.applied
    }

    /// Records a change to the endpoint registry as applied and returns its sequence number.
    fn stage_endpoints(&mut self) -> u64 {
        self.endpoint_snapshot = Arc::new(Endpoints::new(
            self.endpoint_zones.clone(),
            self.endpoints.values().cloned(),
        ));
        self.applied += 1;
        self.applied
    }

    /// Whether a live endpoint of `kind` is registered as `name`.
    fn endpoint_exists(&self, name: &Name, kind: crate::model::EndpointKind) -> bool {
        self.endpoints
            .get(name)
            .is_some_and(|e| e.kind == kind && e.is_live(std::time::SystemTime::now()))
    }

    /// Records a change of some record sets of zone `id` as applied, patching its index
    /// rather than rebuilding it (the cost follows the change, not the zone's size).
    fn stage_patch(
        &mut self,
        id: &HostedZoneId,
        delete: &[RrKey],
        put: &[Arc<ResourceRecordSet>],
    ) -> u64 {
        if let Some(z) = self.zones.get_mut(id) {
            z.rrsets = Arc::new(z.rrsets.patch(delete, put));
        }
        self.stage()
    }

    /// Records a change to the zones as applied and returns its sequence number.
    fn stage(&mut self) -> u64 {
        self.applied += 1;
        self.applied
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    catalog: SharedCatalog,
    state: Mutex<State>,
    /// Writes queued changes to the store, flushes, publishes the catalog.
    commits: GroupCommit,
    /// Set (under the writer lock) by [`Service::close`]: every change is refused from then
    /// on, so the state stays what the start-up snapshot holds.
    closed: AtomicBool,
}

impl Service {
    /// Loads everything from the store and builds the first snapshot, with endpoints under
    /// the default suffixes.
    pub fn open(store: Arc<dyn Store>) -> Result<Self, ServiceError> {
        Self::open_with(store, EndpointZones::default())
    }

    /// Loads everything from the store and builds the first snapshot.
    pub fn open_with(
        store: Arc<dyn Store>,
        endpoint_zones: EndpointZones,
    ) -> Result<Self, ServiceError> {
        let endpoints: BTreeMap<Name, Endpoint> = store
            .load_endpoints()?
            .into_iter()
            .map(|e| (e.dns_name.clone(), e))
            .collect();
        let vpcs: BTreeMap<String, Vpc> = store
            .load_vpcs()?
            .into_iter()
            .map(|v| (v.id.clone(), v))
            .collect();
        let mut state = State {
            zones: BTreeMap::new(),
            vpc_snapshot: Arc::new(vpcs.values().cloned().collect()),
            vpcs,
            rules: store
                .load_rules()?
                .into_iter()
                .map(|r| (r.domain.clone(), r))
                .collect(),
            endpoint_snapshot: Arc::new(Endpoints::new(
                endpoint_zones.clone(),
                endpoints.values().cloned(),
            )),
            endpoint_zones,
            endpoints,
            applied: 0,
        };
        let started = std::time::Instant::now();
        // The start-up snapshot when the store kept a valid one (the store checked that it is
        // whole and that nothing was written since); otherwise the store itself.
        let snapshot = store.take_snapshot().and_then(|snapshot| {
            load_zones(snapshot)
                // Checksummed, so this is a bug rather than a damaged disk; still, the store
                // has everything.
                .map_err(|e| tracing::warn!(error = %e, "the start-up snapshot's record sets do not decode; reading the store"))
                .ok()
        });
        let (zones, from, read) = match snapshot {
            // The snapshot was read when the store opened.
            Some(zones) => (zones, "snapshot", std::time::Duration::ZERO),
            None => {
                let loaded = store.load()?;
                let read = started.elapsed();
                (load_zones(loaded)?, "store", read)
            }
        };
        let record_sets = zones.values().map(|z| z.rrsets.len()).sum::<usize>();
        state.zones = zones;
        // Loading allocates and frees far more than it keeps (decoded values, the build map);
        // hand the freed pages back rather than let them count as resident for good.
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only releases free heap memory; it touches no live allocation.
        unsafe {
            libc::malloc_trim(0);
        }
        tracing::info!(
            zones = state.zones.len(),
            record_sets,
            from = %from,
            read_ms = read.as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "hosted zones loaded"
        );
        let catalog = Arc::new(ArcSwap::from_pointee(state.catalog()));
        Ok(Self {
            commits: GroupCommit::new(store.clone(), catalog.clone()),
            store,
            catalog,
            state: Mutex::new(state),
            closed: AtomicBool::new(false),
        })
    }

    /// The snapshot the DNS path reads.
    pub fn catalog(&self) -> SharedCatalog {
        self.catalog.clone()
    }

    /// Every zone with its record set count, in id order (ListHostedZones).
    pub async fn zone_summaries(&self) -> Vec<(HostedZone, usize)> {
        let state = self.read().await;
        state
            .zones
            .values()
            .map(|z| (z.zone().clone(), z.rrsets.len()))
            .collect()
    }

    pub async fn zone(&self, id: &HostedZoneId) -> Option<ZoneState> {
        self.read().await.zones.get(id).cloned()
    }

    /// The oldest hosted zone of that name, the one DNS answers from.
    pub async fn zone_by_name(&self, name: &Name) -> Option<ZoneState> {
        let name = normalize_name(name);
        let state = self.read().await;
        state
            .zones
            .values()
            .filter(|z| z.zone().name == name)
            .min_by(|a, b| {
                (a.zone().created_at, &a.zone().id).cmp(&(b.zone().created_at, &b.zone().id))
            })
            .cloned()
    }

    /// Creates a hosted zone with its initial record sets, in one commit.
    pub async fn create_zone(
        &self,
        zone: HostedZone,
        rrsets: Vec<ResourceRecordSet>,
    ) -> Result<HostedZone, ServiceError> {
        let created = ZoneState::new(zone.clone(), rrsets.into_iter().map(Arc::new));
        let mut state = self.state.lock().await;
        self.refuse_if_closed()?;
        let store = self.store.clone();
        let (stored, sets) = (zone.clone(), created.rrsets.values().collect::<Vec<_>>());
        tokio::task::spawn_blocking(move || store.create_zone(&stored, &sets))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
        state.zones.insert(zone.id.clone(), created);
        let seq = state.stage();
        drop(state);
        self.wait_durable(seq).await?;
        Ok(zone)
    }

    /// CreateHostedZone: a new zone with Route 53's SOA and NS. Reusing a caller reference
    /// for the same name returns the zone made the first time; for anything else it is
    /// HostedZoneAlreadyExists.
    pub async fn create_hosted_zone(
        &self,
        request: NewHostedZone,
    ) -> Result<(ZoneState, ChangeInfo), ServiceError> {
        let name = normalize_name(&request.name);
        let mut state = self.state.lock().await;
        if let Some(existing) = state
            .zones
            .values()
            .find(|z| z.zone().caller_reference == request.caller_reference)
        {
            // A retry is the same request: same name, comment and (for a private zone) VPC.
            let same_vpc = match &request.vpc {
                None => !existing.zone().private,
                Some(vpc) => existing.zone().private && existing.zone().vpcs.first() == Some(vpc),
            };
            if existing.zone().name == name
                && existing.zone().comment == request.comment
                && same_vpc
            {
                let change = ChangeInfo {
                    id: format!("C{}", existing.zone().id.as_str().trim_start_matches('Z')),
                    submitted_at: existing.zone().created_at,
                    comment: None,
                };
                return Ok((existing.clone(), change));
            }
            return Err(ServiceError::HostedZoneAlreadyExists);
        }
        let mut zone = HostedZone::new(&name, request.caller_reference, request.comment);
        if let Some(vpc) = request.vpc {
            if !state.vpcs.contains_key(&vpc.vpc_id) {
                return Err(ServiceError::InvalidVpcId(vpc.vpc_id));
            }
            one_zone_of_a_name_per_vpc(&state.zones, &name, &vpc, None)?;
            zone.private = true;
            zone.vpcs.push(vpc);
        }
        let created = ZoneState::new(
            zone.clone(),
            default_apex_records(&name, &request.name_servers)
                .into_iter()
                .map(Arc::new),
        );
        let change = ChangeInfo {
            id: format!("C{}", zone.id.as_str().trim_start_matches('Z')),
            submitted_at: zone.created_at,
            comment: None,
        };
        let mut writes = vec![
            Write::PutZone(zone.clone()),
            Write::PutChange(change.clone()),
        ];
        writes.extend(
            created
                .rrsets
                .values()
                .map(|s| Write::PutRrset(zone.id.clone(), s.clone())),
        );
        self.apply(Batch(writes)).await?;
        state.zones.insert(zone.id.clone(), created.clone());
        let seq = state.stage();
        drop(state);
        self.wait_durable(seq).await?;
        Ok((created, change))
    }

    /// ChangeResourceRecordSets: the whole batch or nothing, durable and visible to DNS
    /// before this returns.
    pub async fn change_rrsets(
        &self,
        id: &HostedZoneId,
        batch: ChangeBatch,
    ) -> Result<ChangeInfo, ServiceError> {
        let mut state = self.state.lock().await;
        let current = state
            .zones
            .get(id)
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))?;
        let exists = |name: &Name, kind| state.endpoint_exists(name, kind);
        let plan = plan(
            current.zone(),
            &*current.rrsets,
            &batch,
            &state.endpoint_zones,
            &exists,
        )
        .map_err(ServiceError::InvalidChangeBatch)?;
        let change = ChangeInfo::new(batch.comment);
        let mut writes: Vec<Write> = plan
            .delete
            .iter()
            .map(|k| Write::DeleteRrset(id.clone(), k.clone()))
            .collect();
        writes.extend(
            plan.put
                .iter()
                .map(|s| Write::PutRrset(id.clone(), s.clone())),
        );
        writes.push(Write::PutChange(change.clone()));
        self.apply(Batch(writes)).await?;
        let seq = state.stage_patch(id, &plan.delete, &plan.put);
        drop(state);
        self.wait_durable(seq).await?;
        Ok(change)
    }

    /// GetChange.
    pub async fn change(&self, id: &str) -> Result<ChangeInfo, ServiceError> {
        let bare = id.strip_prefix("/change/").unwrap_or(id).to_owned();
        let store = self.store.clone();
        let lookup = bare.clone();
        tokio::task::spawn_blocking(move || store.change(&lookup))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??
            .ok_or(ServiceError::NoSuchChange(bare))
    }

    /// DeleteHostedZone: refused while the zone holds more than its apex SOA and NS.
    pub async fn delete_hosted_zone(
        &self,
        id: &HostedZoneId,
    ) -> Result<(HostedZone, ChangeInfo), ServiceError> {
        let mut state = self.state.lock().await;
        let current = state
            .zones
            .get(id)
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))?;
        let required = |s: &ResourceRecordSet| {
            s.name == current.zone().name && matches!(s.rtype, RecordType::SOA | RecordType::NS)
        };
        if !current.rrsets.values().all(|s| required(&s)) {
            return Err(ServiceError::HostedZoneNotEmpty);
        }
        let change = ChangeInfo::new(None);
        let (zone, seq) = self
            .delete_locked(&mut state, id, Some(change.clone()))
            .await?;
        drop(state);
        self.wait_durable(seq).await?;
        Ok((zone, change))
    }

    /// Replaces every record set of a zone with `rrsets`, in one commit (a zone-file reload).
    pub async fn replace_records(
        &self,
        id: &HostedZoneId,
        rrsets: Vec<ResourceRecordSet>,
    ) -> Result<(), ServiceError> {
        let mut state = self.state.lock().await;
        let current = state
            .zones
            .get(id)
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))?;
        let incoming = ZoneState::new(current.zone().clone(), rrsets.into_iter().map(Arc::new));
        let mut writes: Vec<Write> = current
            .rrsets
            .values()
            .map(|s| s.key())
            .filter(|k| incoming.rrsets.get(k).is_none())
            .map(|k| Write::DeleteRrset(id.clone(), k))
            .collect();
        writes.extend(
            incoming
                .rrsets
                .values()
                .map(|s| Write::PutRrset(id.clone(), s)),
        );
        self.apply(Batch(writes)).await?;
        state.zones.insert(id.clone(), incoming);
        let seq = state.stage();
        drop(state);
        self.wait_durable(seq).await
    }

    /// Deletes a zone and everything in it.
    pub async fn delete_zone(&self, id: &HostedZoneId) -> Result<HostedZone, ServiceError> {
        let mut state = self.state.lock().await;
        let (zone, seq) = self.delete_locked(&mut state, id, None).await?;
        drop(state);
        self.wait_durable(seq).await?;
        Ok(zone)
    }

    async fn delete_locked(
        &self,
        state: &mut State,
        id: &HostedZoneId,
        change: Option<ChangeInfo>,
    ) -> Result<(HostedZone, u64), ServiceError> {
        let current = state
            .zones
            .get(id)
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))?;
        let mut writes: Vec<Write> = current
            .rrsets
            .values()
            .map(|s| Write::DeleteRrset(id.clone(), s.key()))
            .collect();
        writes.push(Write::DeleteZone(id.clone()));
        writes.extend(change.map(Write::PutChange));
        self.apply(Batch(writes)).await?;
        let removed = state.zones.remove(id).map(|z| z.zone().clone());
        let seq = state.stage();
        removed
            .map(|z| (z, seq))
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))
    }

    /// The resolver's forwarding rules, as stored.
    pub async fn rules(&self) -> Vec<ForwardingRule> {
        self.read().await.rules.values().cloned().collect()
    }

    /// Creates or replaces a forwarding rule (durably); returns every rule.
    pub async fn put_rule(
        &self,
        rule: ForwardingRule,
    ) -> Result<Vec<ForwardingRule>, ServiceError> {
        let mut state = self.state.lock().await;
        self.apply(Batch(vec![Write::PutRule(rule.clone())]))
            .await?;
        state.rules.insert(rule.domain.clone(), rule);
        state.applied += 1;
        let (seq, rules) = (state.applied, state.rules.values().cloned().collect());
        drop(state);
        self.wait_durable(seq).await?;
        Ok(rules)
    }

    /// Deletes a forwarding rule; returns every rule left.
    pub async fn delete_rule(&self, domain: &Name) -> Result<Vec<ForwardingRule>, ServiceError> {
        let domain = normalize_name(domain);
        let mut state = self.state.lock().await;
        if !state.rules.contains_key(&domain) {
            return Err(ServiceError::NoSuchRule(domain.to_string()));
        }
        self.apply(Batch(vec![Write::DeleteRule(domain.clone())]))
            .await?;
        state.rules.remove(&domain);
        state.applied += 1;
        let (seq, rules) = (state.applied, state.rules.values().cloned().collect());
        drop(state);
        self.wait_durable(seq).await?;
        Ok(rules)
    }

    /// Every VPC.
    pub async fn vpcs(&self) -> Vec<Vpc> {
        self.read().await.vpcs.values().cloned().collect()
    }

    /// Creates or replaces a VPC; clients in its CIDRs see its private zones from the next query.
    pub async fn put_vpc(&self, vpc: Vpc) -> Result<Vpc, ServiceError> {
        let mut state = self.state.lock().await;
        self.apply(Batch(vec![Write::PutVpc(vpc.clone())])).await?;
        state.vpcs.insert(vpc.id.clone(), vpc.clone());
        let seq = state.stage_vpcs();
        drop(state);
        self.wait_durable(seq).await?;
        Ok(vpc)
    }

    /// Deletes a VPC, refused while a hosted zone is associated with it.
    pub async fn delete_vpc(&self, id: &str) -> Result<Vpc, ServiceError> {
        let mut state = self.state.lock().await;
        if !state.vpcs.contains_key(id) {
            return Err(ServiceError::InvalidVpcId(id.to_owned()));
        }
        if state
            .zones
            .values()
            .any(|z| z.zone().vpcs.iter().any(|a| a.vpc_id == id))
        {
            return Err(ServiceError::VpcInUse(id.to_owned()));
        }
        self.apply(Batch(vec![Write::DeleteVpc(id.to_owned())]))
            .await?;
        let removed = state.vpcs.remove(id);
        let seq = state.stage_vpcs();
        drop(state);
        self.wait_durable(seq).await?;
        removed.ok_or_else(|| ServiceError::InvalidVpcId(id.to_owned()))
    }

    /// AssociateVPCWithHostedZone / DisassociateVPCFromHostedZone.
    pub async fn set_vpc_association(
        &self,
        id: &HostedZoneId,
        vpc: VpcAssociation,
        associate: bool,
    ) -> Result<ChangeInfo, ServiceError> {
        let state = self.state.lock().await;
        if associate && !state.vpcs.contains_key(&vpc.vpc_id) {
            return Err(ServiceError::InvalidVpcId(vpc.vpc_id));
        }
        let current = state
            .zones
            .get(id)
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))?;
        if !current.zone().private {
            return Err(ServiceError::PublicZoneVpcAssociation);
        }
        let mut zone = current.zone().clone();
        let position = zone.vpcs.iter().position(|a| a.vpc_id == vpc.vpc_id);
        if associate && position.is_none() {
            one_zone_of_a_name_per_vpc(&state.zones, &zone.name, &vpc, Some(id))?;
        }
        match (associate, position) {
            (true, Some(_)) => return Err(ServiceError::ConflictingVpcAssociation(vpc.vpc_id)),
            (true, None) => zone.vpcs.push(vpc),
            (false, None) => return Err(ServiceError::VpcAssociationNotFound),
            (false, Some(_)) if zone.vpcs.len() == 1 => {
                return Err(ServiceError::LastVpcAssociation)
            }
            (false, Some(i)) => {
                zone.vpcs.remove(i);
            }
        }
        let change = ChangeInfo::new(None);
        self.put_zone(state, zone, Some(change.clone())).await?;
        Ok(change)
    }

    /// UpdateHostedZoneComment: the zone's comment becomes `comment` (none removes it). The
    /// zone and its record set count as they are after.
    pub async fn update_comment(
        &self,
        id: &HostedZoneId,
        comment: Option<String>,
    ) -> Result<(HostedZone, usize), ServiceError> {
        let state = self.state.lock().await;
        let current = state
            .zones
            .get(id)
            .ok_or_else(|| ServiceError::NoSuchHostedZone(id.to_string()))?;
        let count = current.rrsets.len();
        let mut zone = current.zone().clone();
        zone.comment = comment;
        self.put_zone(state, zone.clone(), None).await?;
        Ok((zone, count))
    }

    /// Writes a hosted zone's new description (and the change that records it, when there is
    /// one), puts it in the state, lets go of the writer lock and waits until it is durable.
    async fn put_zone(
        &self,
        mut state: tokio::sync::MutexGuard<'_, State>,
        zone: HostedZone,
        change: Option<ChangeInfo>,
    ) -> Result<(), ServiceError> {
        let mut writes = vec![Write::PutZone(zone.clone())];
        writes.extend(change.map(Write::PutChange));
        self.apply(Batch(writes)).await?;
        if let Some(z) = state.zones.get_mut(&zone.id) {
            z.rrsets = Arc::new(z.rrsets.with_zone(zone));
        }
        let seq = state.stage();
        drop(state);
        self.wait_durable(seq).await
    }

    /// The private zones associated with a VPC (ListHostedZonesByVPC).
    pub async fn zones_by_vpc(&self, vpc_id: &str) -> Vec<HostedZone> {
        let state = self.read().await;
        state
            .zones
            .values()
            .filter(|z| z.zone().vpcs.iter().any(|a| a.vpc_id == vpc_id))
            .map(|z| z.zone().clone())
            .collect()
    }

    /// Every registered endpoint, expired leases included until they are swept.
    pub async fn endpoints(&self) -> Vec<Endpoint> {
        self.read().await.endpoints.values().cloned().collect()
    }

    pub async fn endpoint(&self, name: &Name) -> Option<Endpoint> {
        self.read()
            .await
            .endpoints
            .get(&normalize_name(name))
            .cloned()
    }

    /// Registers or replaces an endpoint (renewing its lease). Its name must lie under its
    /// kind's suffix.
    pub async fn put_endpoint(&self, endpoint: Endpoint) -> Result<Endpoint, ServiceError> {
        let mut state = self.state.lock().await;
        let suffix = state.endpoint_zones.suffix(endpoint.kind);
        if !(suffix.zone_of(&endpoint.dns_name) && suffix != &endpoint.dns_name) {
            return Err(ServiceError::InvalidEndpoint(format!(
                "The DNS name of a {} endpoint must lie under {suffix}, and {} does not",
                endpoint.kind.as_str(),
                endpoint.dns_name
            )));
        }
        self.apply(Batch(vec![Write::PutEndpoint(endpoint.clone())]))
            .await?;
        state
            .endpoints
            .insert(endpoint.dns_name.clone(), endpoint.clone());
        let seq = state.stage_endpoints();
        drop(state);
        self.wait_durable(seq).await?;
        Ok(endpoint)
    }

    /// Deregisters an endpoint.
    pub async fn delete_endpoint(&self, name: &Name) -> Result<Endpoint, ServiceError> {
        let name = normalize_name(name);
        let mut state = self.state.lock().await;
        if !state.endpoints.contains_key(&name) {
            return Err(ServiceError::NoSuchEndpoint(name.to_string()));
        }
        self.apply(Batch(vec![Write::DeleteEndpoint(name.clone())]))
            .await?;
        let removed = state.endpoints.remove(&name);
        let seq = state.stage_endpoints();
        drop(state);
        self.wait_durable(seq).await?;
        removed.ok_or(ServiceError::NoSuchEndpoint(name.to_string()))
    }

    /// Removes endpoints whose lease ran out (DNS already ignores them; this forgets them).
    pub async fn expire_endpoints(&self) -> Result<usize, ServiceError> {
        let now = std::time::SystemTime::now();
        let mut state = self.state.lock().await;
        let expired: Vec<Name> = state
            .endpoints
            .values()
            .filter(|e| !e.is_live(now))
            .map(|e| e.dns_name.clone())
            .collect();
        if expired.is_empty() {
            return Ok(0);
        }
        let writes = expired.iter().cloned().map(Write::DeleteEndpoint).collect();
        self.apply(Batch(writes)).await?;
        for name in &expired {
            state.endpoints.remove(name);
            tracing::info!(endpoint.name = %name, "endpoint lease expired; deregistered");
        }
        let seq = state.stage_endpoints();
        drop(state);
        self.wait_durable(seq).await?;
        Ok(expired.len())
    }

    /// Writes what is queued and flushes the store (at shutdown).
    pub async fn flush(&self) -> Result<(), ServiceError> {
        Ok(self.commits.flush(|| self.snapshot()).await?)
    }

    /// At shutdown, once the front ends have stopped: refuses every change from now on, makes
    /// everything applied durable, then writes the start-up snapshot of every hosted zone, so
    /// that the next start need not scan the store; a snapshot that still stands for the store
    /// (read at this start or written live, no zone or record set written since) is left as
    /// it is. A flush that fails is an error; a snapshot that cannot be written is logged and
    /// left out (the next start reads the store).
    pub async fn close(&self) -> Result<(), ServiceError> {
        // Under the writer lock: a writer either queued its change before this (the flush
        // below covers it) or finds the service closed before it touches the state.
        {
            let _writer = self.state.lock().await;
            self.closed.store(true, Ordering::SeqCst);
        }
        self.flush().await?;
        let started = std::time::Instant::now();
        let zones: Vec<Arc<ZoneIndex>> = self
            .state
            .lock()
            .await
            .zones
            .values()
            .map(|z| z.rrsets.clone())
            .collect();
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            let record_sets = zones.iter().map(|z| z.len()).sum::<usize>();
            let bytes = store.write_snapshot(zones.len(), &mut encode_zones(&zones))?;
            Ok::<_, StoreError>((zones.len(), record_sets, bytes))
        })
        .await
        .unwrap_or_else(|e| Err(StoreError::Engine(e.to_string())));
        match written {
            Ok((_, _, ShutdownSnapshot::Unsupported)) => {}
            Ok((zones, record_sets, ShutdownSnapshot::Written(bytes))) => tracing::info!(
                zones,
                record_sets,
                bytes,
                duration_ms = started.elapsed().as_millis() as u64,
                "start-up snapshot written"
            ),
            Ok((zones, record_sets, ShutdownSnapshot::Current)) => tracing::info!(
                zones,
                record_sets,
                "start-up snapshot already current (no zone or record set written since it was made); left as it is"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the start-up snapshot was not written; the next start reads the store")
            }
        }
        Ok(())
    }

    /// While serving: once the store says one is due ([`Store::live_snapshot_due`]: none
    /// stands for the store as it is, no zone or record set has been written for `quiet`,
    /// not too soon after the last one) and none of the changes applied is still on its way
    /// to the store, writes a start-up snapshot without closing the store, so that a kill -9
    /// after a quiet moment starts from it too. Returns whether one was written. The store removes the snapshot's token with the next
    /// write to the zones or record sets (in that write's transaction), so the file never
    /// stands for a store that has changed since: a change racing the file's writing makes
    /// it stale, never wrong.
    pub async fn live_snapshot(&self, quiet: std::time::Duration) -> Result<bool, ServiceError> {
        let started = std::time::Instant::now();
        let (token, zones) = {
            // Under the writer lock: no change is being decided, queued or (a large zone)
            // written, so the state's zones are what the store holds once `durable` has
            // caught up with `applied`.
            let state = self.state.lock().await;
            if self.closed.load(Ordering::SeqCst) || self.commits.durable() < state.applied {
                return Ok(false);
            }
            if !self.store.live_snapshot_due(quiet) {
                return Ok(false);
            }
            // The indexes are immutable: holding them costs nothing, whatever changes next.
            let zones: Vec<Arc<ZoneIndex>> =
                state.zones.values().map(|z| z.rrsets.clone()).collect();
            let store = self.store.clone();
            let token = tokio::task::spawn_blocking(move || store.begin_snapshot())
                .await
                .map_err(|e| ServiceError::Internal(e.to_string()))??;
            (token, zones)
        };
        let Some(token) = token else {
            return Ok(false);
        };
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || {
            let record_sets = zones.iter().map(|z| z.len()).sum::<usize>();
            let bytes = store.write_snapshot_file(token, zones.len(), &mut encode_zones(&zones))?;
            drop(zones);
            // The encoding's buffers are freed; hand the pages back rather than keep them
            // resident while serving.
            #[cfg(target_env = "gnu")]
            // SAFETY: malloc_trim only releases free heap memory; it touches no live allocation.
            unsafe {
                libc::malloc_trim(0);
            }
            Ok::<_, StoreError>(bytes.map(|bytes| (record_sets, bytes)))
        })
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))??;
        match written {
            Some((record_sets, bytes)) => {
                tracing::info!(
                    record_sets,
                    bytes,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "live start-up snapshot written"
                );
                Ok(true)
            }
            None => {
                tracing::debug!("a change came before the live snapshot was written; skipped");
                Ok(false)
            }
        }
    }

    /// Refuses a change once [`Service::close`] has begun. Called with the writer lock held,
    /// before the change touches the state or the store.
    fn refuse_if_closed(&self) -> Result<(), ServiceError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(ServiceError::Internal(
                "r53 is shutting down; the change was not made".into(),
            ));
        }
        Ok(())
    }

    /// The state for reading, once everything applied so far is durable (and published): a
    /// reader never sees a change that could still be lost, or that DNS does not answer yet.
    async fn read(&self) -> tokio::sync::MutexGuard<'_, State> {
        loop {
            let state = self.state.lock().await;
            let applied = state.applied;
            if self.commits.durable() >= applied {
                return state;
            }
            drop(state);
            if let Err(e) = self.wait_durable(applied).await {
                // The flush failed: the writer that applied this change reports it; the
                // reader goes on with what is there rather than fail too.
                tracing::warn!(error = %e, "flush failed while waiting to read");
                return self.state.lock().await;
            }
        }
    }

    /// Queues a batch for the store, to be written with the next group commit. Called with
    /// `state` locked, before `state` records the change: encoding is the last step that can
    /// refuse it, so a refused batch leaves nothing behind. It waits for nothing; it is async
    /// only so that its callers read as they did when it did.
    async fn apply(&self, batch: Batch) -> Result<(), ServiceError> {
        self.refuse_if_closed()?;
        Ok(self.commits.queue(&batch)?)
    }

    /// Returns once change `seq` is durable, and by then published (see [`crate::commit`]).
    async fn wait_durable(&self, seq: u64) -> Result<(), ServiceError> {
        Ok(self.commits.wait(seq, || self.snapshot()).await?)
    }

    /// What a group commit publishes: the last change applied and the catalog as of it.
    async fn snapshot(&self) -> (u64, Catalog) {
        let state = self.state.lock().await;
        (state.applied, state.catalog())
    }
}
