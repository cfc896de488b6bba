//! The cluster's state and rules: which instance holds which role, how healthy each one is,
//! when the standby is promoted, and what the writer and reader endpoints should say.
//!
//! Pure logic, no IO and no clock: the checker feeds it check results, the control port asks it
//! to fail over, and both read back the [`Desired`] registrations. That is what lets every
//! failover rule be tested without sockets.

use std::net::{IpAddr, SocketAddr};

use serde_json::{json, Value};

/// How many consecutive results it takes to change an instance's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub healthy: u32,
    pub unhealthy: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No verdict yet: started, and not yet passed a check or failed enough of them.
    Unknown,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Standby,
    Replica,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Standby => "standby",
            Role::Replica => "replica",
        }
    }
}

/// What one check of one instance found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Where its `host:port` resolved this time; `None` when resolution failed.
    pub addr: Option<SocketAddr>,
    /// A TCP connection was accepted within the timeout.
    pub ok: bool,
}

/// One database instance as given on the command line.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `host:port` as given.
    pub target: String,
    /// Where it last resolved. Kept when a later resolution fails, so a DNS hiccup does not
    /// take an address out of an endpoint.
    pub addr: Option<SocketAddr>,
    pub health: Health,
    successes: u32,
    failures: u32,
}

impl Instance {
    fn new(target: String) -> Self {
        Self {
            // An IP literal needs no resolving; a hostname is resolved by the first check.
            addr: target.parse().ok(),
            target,
            health: Health::Unknown,
            successes: 0,
            failures: 0,
        }
    }

    /// Counts one result; returns the new health when it changed.
    fn record(&mut self, ok: bool, t: Thresholds) -> Option<Health> {
        if ok {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
        }
        let next = match self.health {
            // Nothing to recover from at start: one success is enough, as a database that
            // answers now is as good as one that answered twice. Failures still need the
            // threshold, so a slow start does not fail the primary over at once.
            Health::Unknown if ok => Health::Healthy,
            Health::Unknown | Health::Healthy if self.failures >= t.unhealthy => Health::Unhealthy,
            Health::Unhealthy if self.successes >= t.healthy => Health::Healthy,
            same => same,
        };
        (next != self.health).then(|| {
            self.health = next;
            next
        })
    }

    fn ip(&self) -> Option<IpAddr> {
        self.addr.map(|a| a.ip())
    }

    fn healthy(&self) -> bool {
        self.health == Health::Healthy
    }
}

/// Something [`Cluster`] decided that is worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    HealthChanged {
        target: String,
        role: Role,
        health: Health,
    },
    /// The standby was promoted: `to` is the new primary, `from` the new standby.
    FailedOver {
        from: String,
        to: String,
        forced: bool,
    },
    /// The primary is unhealthy and nothing can take its place.
    PrimaryDownNoStandby { primary: String },
}

/// Why a forced failover was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    #[error("there is no standby to promote (start r53 rds with --standby for Multi-AZ)")]
    NoStandby,
    #[error("the standby {target} is {health} and cannot be promoted", health = health.as_str())]
    StandbyNotHealthy { target: String, health: Health },
}

/// The result of a failover: the new roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failover {
    pub writer: String,
    pub writer_addr: Option<SocketAddr>,
    /// The old primary.
    pub standby: String,
}

impl Failover {
    fn event(&self, forced: bool) -> Event {
        Event::FailedOver {
            from: self.standby.clone(),
            to: self.writer.clone(),
            forced,
        }
    }
}

/// One endpoint's registration as r53 should hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub dns_name: String,
    /// Each address once, with its health.
    pub addresses: Vec<(IpAddr, bool)>,
}

/// The writer and reader registrations; `None` until the address is known (a hostname that has
/// never resolved).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Desired {
    pub writer: Option<Registration>,
    pub reader: Option<Registration>,
}

/// The instances and their roles. Instance 0 starts as the primary, 1 as the standby when
/// there is one; the rest are replicas. Failover swaps the primary and standby; replicas
/// keep their role.
#[derive(Debug, Clone)]
pub struct Cluster {
    instances: Vec<Instance>,
    primary: usize,
    standby: Option<usize>,
    replicas: Vec<usize>,
    thresholds: Thresholds,
    failovers: u64,
    /// Whether the "primary down, nothing to promote" error has been reported for this outage,
    /// so it is logged once rather than on every check.
    stranded: bool,
}

impl Cluster {
    pub fn new(
        primary: String,
        standby: Option<String>,
        replicas: Vec<String>,
        thresholds: Thresholds,
    ) -> Self {
        let mut instances = vec![Instance::new(primary)];
        let standby = standby.map(|s| {
            instances.push(Instance::new(s));
            1
        });
        let first_replica = instances.len();
        instances.extend(replicas.into_iter().map(Instance::new));
        Self {
            replicas: (first_replica..instances.len()).collect(),
            instances,
            primary: 0,
            standby,
            thresholds,
            failovers: 0,
            stranded: false,
        }
    }

    /// Every instance's `host:port`, indexed as [`Cluster::apply`] expects its outcomes.
    pub fn targets(&self) -> Vec<String> {
        self.instances.iter().map(|i| i.target.clone()).collect()
    }

    pub fn role(&self, index: usize) -> Role {
        if index == self.primary {
            Role::Primary
        } else if Some(index) == self.standby {
            Role::Standby
        } else {
            Role::Replica
        }
    }

    pub fn primary(&self) -> &Instance {
        &self.instances[self.primary]
    }

    #[cfg(test)]
    pub fn standby(&self) -> Option<&Instance> {
        self.standby.map(|s| &self.instances[s])
    }

    /// Records one round of checks (`(index, outcome)`), then promotes the standby if the
    /// primary has failed its checks and the standby is healthy. Evaluated every round, not only
    /// when the primary turns unhealthy, so a standby that recovers later is still promoted.
    pub fn apply(&mut self, outcomes: &[(usize, CheckOutcome)]) -> Vec<Event> {
        let mut events = Vec::new();
        for &(index, outcome) in outcomes {
            let thresholds = self.thresholds;
            let role = self.role(index);
            let Some(instance) = self.instances.get_mut(index) else {
                continue;
            };
            if outcome.addr.is_some() {
                instance.addr = outcome.addr;
            }
            if let Some(health) = instance.record(outcome.ok, thresholds) {
                events.push(Event::HealthChanged {
                    target: instance.target.clone(),
                    role,
                    health,
                });
            }
        }
        if self.primary().health == Health::Unhealthy {
            match self.promote() {
                Ok(failover) => {
                    self.stranded = false;
                    events.push(failover.event(false));
                }
                Err(_) if !self.stranded => {
                    self.stranded = true;
                    events.push(Event::PrimaryDownNoStandby {
                        primary: self.primary().target.clone(),
                    });
                }
                Err(_) => {}
            }
        } else {
            self.stranded = false;
        }
        events
    }

    /// A failover asked for (`POST /failover`, like a reboot with failover): the healthy
    /// standby becomes the primary whatever the primary's health, and the old primary becomes
    /// the standby. There is no automatic fail-back: the roles stay swapped until the next
    /// failover.
    pub fn force_failover(&mut self) -> Result<(Failover, Event), FailoverError> {
        let failover = self.promote()?;
        let event = failover.event(true);
        Ok((failover, event))
    }

    /// Swaps the primary and a healthy standby.
    fn promote(&mut self) -> Result<Failover, FailoverError> {
        let standby = self.standby.ok_or(FailoverError::NoStandby)?;
        let candidate = &self.instances[standby];
        if !candidate.healthy() {
            return Err(FailoverError::StandbyNotHealthy {
                target: candidate.target.clone(),
                health: candidate.health,
            });
        }
        let old = self.primary;
        self.primary = standby;
        self.standby = Some(old);
        self.failovers += 1;
        Ok(Failover {
            writer: self.instances[standby].target.clone(),
            writer_addr: self.instances[standby].addr,
            standby: self.instances[old].target.clone(),
        })
    }

    pub fn failovers(&self) -> u64 {
        self.failovers
    }

    /// The writer and reader endpoints as r53 should hold them now.
    ///
    /// Writer: the primary's address, with its health. Reader: every replica's address with its
    /// health when at least one is healthy (r53 answers the healthy ones); when none is, the
    /// writer's address alone, so reads go to the writer rather than r53 failing open to
    /// replicas that are down.
    pub fn desired(&self, writer_name: &str, reader_name: &str) -> Desired {
        let primary = self.primary();
        let writer_address = primary.ip().map(|ip| (ip, primary.healthy()));
        let writer = writer_address.map(|a| Registration {
            dns_name: writer_name.to_owned(),
            addresses: vec![a],
        });
        // Several replicas may share an IP (different ports): DNS carries no port, so the IP is
        // listed once and is healthy if any replica behind it is.
        let mut replicas: Vec<(IpAddr, bool)> = Vec::new();
        for instance in self.replicas.iter().map(|&r| &self.instances[r]) {
            let Some(ip) = instance.ip() else { continue };
            match replicas.iter_mut().find(|(seen, _)| *seen == ip) {
                Some((_, healthy)) => *healthy |= instance.healthy(),
                None => replicas.push((ip, instance.healthy())),
            }
        }
        let reader_addresses = if replicas.iter().any(|(_, healthy)| *healthy) {
            Some(replicas)
        } else {
            writer_address.map(|a| vec![a])
        };
        let reader = reader_addresses.map(|addresses| Registration {
            dns_name: reader_name.to_owned(),
            addresses,
        });
        Desired { writer, reader }
    }

    /// Roles and health, as `GET /status` shows them.
    pub fn instances_json(&self) -> Value {
        let instances: Vec<Value> = self
            .instances
            .iter()
            .enumerate()
            .map(|(index, i)| {
                json!({
                    "Instance": i.target,
                    "Role": self.role(index).as_str(),
                    "Address": i.ip().map(|ip| ip.to_string()),
                    "Health": i.health.as_str(),
                })
            })
            .collect();
        Value::Array(instances)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        healthy: 2,
        unhealthy: 3,
    };

    fn up(addr: &str) -> CheckOutcome {
        CheckOutcome {
            addr: Some(addr.parse().unwrap()),
            ok: true,
        }
    }

    fn down(addr: &str) -> CheckOutcome {
        CheckOutcome {
            addr: Some(addr.parse().unwrap()),
            ok: false,
        }
    }

    const P: &str = "127.0.0.11:5432";
    const S: &str = "127.0.0.12:5432";
    const R1: &str = "127.0.0.21:5432";
    const R2: &str = "127.0.0.22:5432";

    fn cluster(replicas: &[&str]) -> Cluster {
        Cluster::new(
            P.into(),
            Some(S.into()),
            replicas.iter().map(|r| r.to_string()).collect(),
            T,
        )
    }

    /// One round in which primary and standby answer `p` and `s`, replicas `r`.
    fn round(c: &mut Cluster, p: bool, s: bool, r: &[bool]) -> Vec<Event> {
        let targets = c.targets();
        let outcomes: Vec<(usize, CheckOutcome)> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let ok = match c.role(i) {
                    Role::Primary => {
                        if c.primary().target == P {
                            p
                        } else {
                            s
                        }
                    }
                    Role::Standby => {
                        if c.standby().unwrap().target == S {
                            s
                        } else {
                            p
                        }
                    }
                    Role::Replica => r[i - 2],
                };
                (i, if ok { up(t) } else { down(t) })
            })
            .collect();
        c.apply(&outcomes)
    }

    fn writer_ip(c: &Cluster) -> String {
        let d = c.desired("w.", "r.");
        d.writer.unwrap().addresses[0].0.to_string()
    }

    fn reader(c: &Cluster) -> Vec<(String, bool)> {
        let d = c.desired("w.", "r.");
        d.reader
            .unwrap()
            .addresses
            .iter()
            .map(|(ip, h)| (ip.to_string(), *h))
            .collect()
    }

    #[test]
    fn one_success_makes_a_new_instance_healthy() {
        let mut i = Instance::new(P.into());
        assert_eq!(i.health, Health::Unknown);
        assert_eq!(i.record(true, T), Some(Health::Healthy));
    }

    #[test]
    fn health_changes_only_after_the_thresholds() {
        let mut i = Instance::new(P.into());
        i.record(true, T);
        assert_eq!(i.record(false, T), None);
        assert_eq!(i.record(false, T), None);
        // A success in between starts the count again.
        assert_eq!(i.record(true, T), None);
        assert_eq!(i.record(false, T), None);
        assert_eq!(i.record(false, T), None);
        assert_eq!(i.record(false, T), Some(Health::Unhealthy));
        assert_eq!(i.record(true, T), None);
        assert_eq!(i.record(false, T), None);
        assert_eq!(i.record(true, T), None);
        assert_eq!(i.record(true, T), Some(Health::Healthy));
    }

    #[test]
    fn a_new_instance_that_never_answers_needs_the_threshold_to_be_unhealthy() {
        let mut i = Instance::new(P.into());
        assert_eq!(i.record(false, T), None);
        assert_eq!(i.record(false, T), None);
        assert_eq!(i.health, Health::Unknown);
        assert_eq!(i.record(false, T), Some(Health::Unhealthy));
    }

    #[test]
    fn the_standby_is_promoted_after_unhealthy_threshold_failed_checks() {
        let mut c = cluster(&[]);
        round(&mut c, true, true, &[]);
        assert_eq!(writer_ip(&c), "127.0.0.11");
        for _ in 0..T.unhealthy - 1 {
            assert_eq!(
                round(&mut c, false, true, &[])
                    .iter()
                    .filter(|e| matches!(e, Event::FailedOver { .. }))
                    .count(),
                0
            );
            assert_eq!(writer_ip(&c), "127.0.0.11");
        }
        let events = round(&mut c, false, true, &[]);
        assert!(
            events.contains(&Event::FailedOver {
                from: P.into(),
                to: S.into(),
                forced: false
            }),
            "{events:?}"
        );
        assert_eq!(writer_ip(&c), "127.0.0.12");
        assert_eq!(c.standby().unwrap().target, P);
        assert_eq!(c.failovers(), 1);
    }

    #[test]
    fn a_recovered_old_primary_stays_standby() {
        let mut c = cluster(&[]);
        round(&mut c, true, true, &[]);
        for _ in 0..T.unhealthy {
            round(&mut c, false, true, &[]);
        }
        assert_eq!(writer_ip(&c), "127.0.0.12");
        for _ in 0..10 {
            round(&mut c, true, true, &[]);
        }
        assert_eq!(writer_ip(&c), "127.0.0.12");
        assert_eq!(c.standby().unwrap().health, Health::Healthy);
        assert_eq!(c.failovers(), 1);
    }

    #[test]
    fn no_failover_to_an_unhealthy_standby_until_it_recovers() {
        let mut c = cluster(&[]);
        round(&mut c, true, true, &[]);
        for _ in 0..T.unhealthy {
            round(&mut c, true, false, &[]);
        }
        let mut stranded = 0;
        for _ in 0..T.unhealthy + 3 {
            stranded += round(&mut c, false, false, &[])
                .iter()
                .filter(|e| matches!(e, Event::PrimaryDownNoStandby { .. }))
                .count();
        }
        assert_eq!(stranded, 1, "reported once per outage");
        assert_eq!(writer_ip(&c), "127.0.0.11");
        let d = c.desired("w.", "r.");
        assert!(
            !d.writer.unwrap().addresses[0].1,
            "the writer is reported unhealthy"
        );
        // The standby comes back: promoted as soon as it is healthy again.
        round(&mut c, false, true, &[]);
        assert_eq!(writer_ip(&c), "127.0.0.11");
        round(&mut c, false, true, &[]);
        assert_eq!(writer_ip(&c), "127.0.0.12");
    }

    #[test]
    fn without_a_standby_the_primary_stays_the_writer() {
        let mut c = Cluster::new(P.into(), None, vec![], T);
        for _ in 0..5 {
            c.apply(&[(0, down(P))]);
        }
        assert_eq!(writer_ip(&c), "127.0.0.11");
        assert_eq!(c.force_failover().unwrap_err(), FailoverError::NoStandby);
    }

    #[test]
    fn forced_failover_swaps_at_once_and_needs_a_healthy_standby() {
        let mut c = cluster(&[]);
        // Before any check the standby's health is unknown: not promotable.
        assert!(matches!(
            c.force_failover(),
            Err(FailoverError::StandbyNotHealthy {
                health: Health::Unknown,
                ..
            })
        ));
        round(&mut c, true, true, &[]);
        let (f, event) = c.force_failover().unwrap();
        assert_eq!(f.writer, S);
        assert_eq!(f.standby, P);
        assert_eq!(
            event,
            Event::FailedOver {
                from: P.into(),
                to: S.into(),
                forced: true
            }
        );
        assert_eq!(writer_ip(&c), "127.0.0.12");
        // And back: the old primary is a healthy standby.
        let (f, _) = c.force_failover().unwrap();
        assert_eq!(f.writer, P);
        assert_eq!(c.failovers(), 2);
    }

    #[test]
    fn the_reader_lists_replicas_with_health_and_falls_back_to_the_writer() {
        let mut c = cluster(&[R1, R2]);
        round(&mut c, true, true, &[true, true]);
        assert_eq!(
            reader(&c),
            vec![("127.0.0.21".into(), true), ("127.0.0.22".into(), true)]
        );
        for _ in 0..T.unhealthy {
            round(&mut c, true, true, &[true, false]);
        }
        assert_eq!(
            reader(&c),
            vec![("127.0.0.21".into(), true), ("127.0.0.22".into(), false)]
        );
        for _ in 0..T.unhealthy {
            round(&mut c, true, true, &[false, false]);
        }
        assert_eq!(reader(&c), vec![("127.0.0.11".into(), true)]);
        // The fallback follows the writer through a failover.
        c.force_failover().unwrap();
        assert_eq!(reader(&c), vec![("127.0.0.12".into(), true)]);
    }

    #[test]
    fn without_replicas_the_reader_is_the_writer() {
        let c = cluster(&[]);
        let d = c.desired("w.", "r.");
        assert_eq!(d.reader.unwrap().addresses, d.writer.unwrap().addresses);
    }

    #[test]
    fn replicas_sharing_an_ip_are_listed_once() {
        let mut c = cluster(&["127.0.0.21:1", "127.0.0.21:2"]);
        round(&mut c, true, true, &[false, true]);
        assert_eq!(reader(&c), vec![("127.0.0.21".into(), true)]);
    }

    #[test]
    fn a_hostname_has_no_address_until_it_resolves_and_keeps_the_last_one() {
        let mut c = Cluster::new("db.example:5432".into(), None, vec![], T);
        assert_eq!(c.desired("w.", "r."), Desired::default());
        c.apply(&[(0, up("10.0.0.5:5432"))]);
        assert_eq!(writer_ip(&c), "10.0.0.5");
        c.apply(&[(
            0,
            CheckOutcome {
                addr: None,
                ok: false,
            },
        )]);
        assert_eq!(writer_ip(&c), "10.0.0.5");
        // It moved: the endpoint follows.
        c.apply(&[(0, up("10.0.0.6:5432"))]);
        assert_eq!(writer_ip(&c), "10.0.0.6");
    }
}
