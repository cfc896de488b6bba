//! Keeping r53's endpoint registry in step with the cluster: `PUT /v1/endpoints/{DNSName}` at
//! once when the writer or the reader changes and every lease/3 to renew, retries while r53 is
//! unreachable, `DELETE` of both on shutdown.
//!
//! Knows the registry's URLs and JSON and nothing of health checks or roles: it is handed the
//! [`Desired`] registrations through a watch channel and reports back, through another, what
//! r53 has acknowledged.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use ureq::Agent;

use super::cluster::{Desired, Registration};

/// Why a request to the registry did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// r53 could not be reached (refused, timed out, no such host): retried.
    #[error("r53 at {url} is unreachable: {cause}")]
    Unreachable { url: String, cause: String },
    /// r53 answered with a Route 53-style error.
    #[error("{method} {url} was refused with HTTP {status} {code}: {message}")]
    Refused {
        method: &'static str,
        url: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("{method} {url}: {detail}")]
    Unexpected {
        method: &'static str,
        url: String,
        detail: String,
    },
}

/// The blocking client of the endpoint registry. Calls block: run them in `spawn_blocking`.
#[derive(Debug)]
pub struct RegistryClient {
    agent: Agent,
    base: String,
    token: Option<String>,
    ttl: u32,
    lease_seconds: u64,
}

impl RegistryClient {
    /// `base` is r53's API URL (`http://host:port`, or `host:port`).
    pub fn new(base: &str, token: Option<String>, ttl: u32, lease_seconds: u64) -> Self {
        let config = Agent::config_builder()
            // Error bodies are Route 53-shaped JSON worth reading; the status is checked here.
            .http_status_as_error(false)
            // Short: a failover must reach r53 quickly, and a request stuck on a dead r53 would
            // delay the next one. Failed requests are retried.
            .timeout_connect(Some(Duration::from_secs(2)))
            .timeout_global(Some(Duration::from_secs(5)))
            .user_agent(format!("r53-rds/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
            base: base_url(base),
            token: token.filter(|t| !t.is_empty()),
            ttl,
            lease_seconds,
        }
    }

    fn url(&self, dns_name: &str) -> String {
        format!("{}/v1/endpoints/{dns_name}", self.base)
    }

    /// The body of `PUT /v1/endpoints/{DNSName}`.
    pub fn body(&self, registration: &Registration) -> Value {
        let addresses: Vec<Value> = registration
            .addresses
            .iter()
            .map(|(ip, healthy)| json!({"Address": ip.to_string(), "Healthy": healthy}))
            .collect();
        json!({
            "Kind": "database",
            "Addresses": addresses,
            "TTL": self.ttl,
            "LeaseSeconds": self.lease_seconds,
        })
    }

    /// Registers, replaces or renews one endpoint.
    pub fn put(&self, registration: &Registration) -> Result<(), RegistryError> {
        let url = self.url(&registration.dns_name);
        let mut request = self.agent.put(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let result = request.send_json(self.body(registration));
        self.check("PUT", &url, result, &[200, 201])
    }

    /// Deregisters one endpoint; one that is not registered is fine.
    pub fn delete(&self, dns_name: &str) -> Result<(), RegistryError> {
        let url = self.url(dns_name);
        let mut request = self.agent.delete(&url);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let result = request.call();
        self.check("DELETE", &url, result, &[200, 204, 404])
    }

    fn check(
        &self,
        method: &'static str,
        url: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        ok: &[u16],
    ) -> Result<(), RegistryError> {
        let mut response = result.map_err(|e| self.transport_error(method, url, e))?;
        let status = response.status().as_u16();
        if ok.contains(&status) {
            return Ok(());
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .unwrap_or_default();
        let error = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
            let e = v.get("Error")?;
            Some((
                e.get("Code")?.as_str()?.to_owned(),
                e.get("Message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            ))
        });
        Err(match error {
            Some((code, message)) => RegistryError::Refused {
                method,
                url: url.to_owned(),
                status,
                code,
                message,
            },
            None => RegistryError::Unexpected {
                method,
                url: url.to_owned(),
                detail: format!(
                    "HTTP {status}, not a Route 53 error (is {} an r53 API?)",
                    self.base
                ),
            },
        })
    }

    fn transport_error(&self, method: &'static str, url: &str, e: ureq::Error) -> RegistryError {
        let unreachable = match &e {
            ureq::Error::Io(io) => matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::NetworkUnreachable
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::TimedOut
            ),
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_) => {
                true
            }
            _ => false,
        };
        if unreachable {
            RegistryError::Unreachable {
                url: self.base.clone(),
                cause: e.to_string(),
            }
        } else {
            RegistryError::Unexpected {
                method,
                url: url.to_owned(),
                detail: e.to_string(),
            }
        }
    }
}

/// `host:port` means `http://host:port`; no trailing slash.
fn base_url(raw: &str) -> String {
    let raw = raw.trim().trim_end_matches('/');
    if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    }
}

/// What r53 has acknowledged: the last registration of the writer and of the reader that a
/// `PUT` succeeded with (`None`: not registered, or the last attempt failed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acknowledged {
    pub writer: Option<Registration>,
    pub reader: Option<Registration>,
    /// The last error, while registration is failing.
    pub error: Option<String>,
}

/// How often to renew and retry.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// lease/3: two renewals can be lost before the lease runs out.
    pub renew_every: Duration,
    /// After a failed request; short, so r53 coming back is noticed soon.
    pub retry_after: Duration,
}

/// Per endpoint: what was last sent, and when to send again even if unchanged.
#[derive(Debug, Default)]
struct Slot {
    attempted: Option<Registration>,
    due: Option<Instant>,
}

/// Runs until `shutdown`, then deregisters `names` (writer and reader) and returns.
pub async fn run(
    client: Arc<RegistryClient>,
    mut desired: watch::Receiver<Desired>,
    acknowledged: watch::Sender<Acknowledged>,
    names: [String; 2],
    schedule: Schedule,
    shutdown: CancellationToken,
) {
    let mut slots = [Slot::default(), Slot::default()];
    // Log a failure when it starts or changes, not on every retry.
    let mut last_error: Option<String> = None;
    loop {
        let want = desired.borrow_and_update().clone();
        let now = Instant::now();
        // The writer first: after a failover it is the one clients are waiting for.
        for (index, wanted) in [want.writer, want.reader].into_iter().enumerate() {
            let Some(wanted) = wanted else { continue };
            let slot = &mut slots[index];
            let changed = slot.attempted.as_ref() != Some(&wanted);
            if !changed && slot.due.is_some_and(|due| now < due) {
                continue;
            }
            let result = {
                let client = client.clone();
                let wanted = wanted.clone();
                tokio::task::spawn_blocking(move || client.put(&wanted))
                    .await
                    .unwrap_or_else(|e| {
                        Err(RegistryError::Unexpected {
                            method: "PUT",
                            url: String::new(),
                            detail: format!("the request task failed: {e}"),
                        })
                    })
            };
            slot.attempted = Some(wanted.clone());
            match result {
                Ok(()) => {
                    slot.due = Some(Instant::now() + schedule.renew_every);
                    if last_error.take().is_some() {
                        info!(endpoint = %wanted.dns_name, "registered with r53 again");
                    }
                    debug!(endpoint = %wanted.dns_name, addresses = ?wanted.addresses, "registered");
                    acknowledged.send_modify(|a| {
                        a.error = None;
                        let ack = if index == 0 {
                            &mut a.writer
                        } else {
                            &mut a.reader
                        };
                        *ack = Some(wanted);
                    });
                }
                Err(e) => {
                    slot.due = Some(Instant::now() + schedule.retry_after);
                    let text = e.to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        warn!(endpoint = %wanted.dns_name, error = %text, "cannot register with r53; retrying");
                        last_error = Some(text.clone());
                    }
                    acknowledged.send_modify(|a| {
                        a.error = Some(text);
                        let ack = if index == 0 {
                            &mut a.writer
                        } else {
                            &mut a.reader
                        };
                        *ack = None;
                    });
                }
            }
        }
        let next = slots.iter().filter_map(|s| s.due).min();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = desired.changed() => {
                if changed.is_err() {
                    // The cluster is gone: nothing more will change; wait for shutdown.
                    shutdown.cancelled().await;
                    break;
                }
            }
            _ = sleep_until(next) => {}
        }
    }
    deregister(&client, names).await;
    acknowledged.send_replace(Acknowledged::default());
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Deletes both endpoints, so clients stop being sent to this cluster now rather than when the
/// lease runs out.
async fn deregister(client: &Arc<RegistryClient>, names: [String; 2]) {
    for name in names {
        let c = client.clone();
        let n = name.clone();
        match tokio::task::spawn_blocking(move || c.delete(&n)).await {
            Ok(Ok(())) => info!(endpoint = %name, "deregistered from r53"),
            Ok(Err(e)) => {
                warn!(endpoint = %name, error = %e, "cannot deregister; it drops out when its lease runs out")
            }
            Err(e) => warn!(endpoint = %name, error = %e, "the deregistration task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use axum::extract::{Path, State};
    use axum::http::{Method, StatusCode};
    use axum::routing::put;
    use axum::Router;

    /// One request the fake registry received.
    struct Logged {
        method: Method,
        name: String,
        body: Option<Value>,
        auth: Option<String>,
    }

    /// A stand-in registry that records requests and fails the first `fail_first` of them.
    #[derive(Clone, Default)]
    struct Fake {
        log: Arc<Mutex<Vec<Logged>>>,
        fail_first: Arc<Mutex<usize>>,
    }

    async fn handle(
        State(fake): State<Fake>,
        method: Method,
        headers: axum::http::HeaderMap,
        Path(name): Path<String>,
        body: Option<axum::Json<Value>>,
    ) -> (StatusCode, String) {
        fake.log.lock().unwrap().push(Logged {
            method: method.clone(),
            name,
            body: body.map(|b| b.0),
            auth: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        let mut fail = fake.fail_first.lock().unwrap();
        if *fail > 0 {
            *fail -= 1;
            return (
                StatusCode::BAD_REQUEST,
                json!({"Error": {"Type": "Sender", "Code": "InvalidInput", "Message": "not now"}})
                    .to_string(),
            );
        }
        if method == Method::DELETE {
            (StatusCode::NO_CONTENT, String::new())
        } else {
            (StatusCode::OK, json!({"Endpoint": {}}).to_string())
        }
    }

    async fn start_fake(fail_first: usize) -> (Fake, String, CancellationToken) {
        let fake = Fake::default();
        *fake.fail_first.lock().unwrap() = fail_first;
        let app = Router::new()
            .route("/v1/endpoints/{name}", put(handle).delete(handle))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { s.cancelled().await })
                .await
                .unwrap();
        });
        (fake, format!("http://{addr}"), stop)
    }

    fn registration(name: &str, ip: &str) -> Registration {
        Registration {
            dns_name: name.into(),
            addresses: vec![(ip.parse().unwrap(), true)],
        }
    }

    fn desired(writer_ip: &str) -> Desired {
        Desired {
            writer: Some(registration("db.rds.r53.internal.", writer_ip)),
            reader: Some(registration("db-ro.rds.r53.internal.", "127.0.0.21")),
        }
    }

    fn names() -> [String; 2] {
        [
            "db.rds.r53.internal.".into(),
            "db-ro.rds.r53.internal.".into(),
        ]
    }

    async fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn the_body_is_the_registry_contract() {
        let client = RegistryClient::new("127.0.0.1:8053", None, 5, 15);
        assert_eq!(client.base, "http://127.0.0.1:8053");
        assert_eq!(
            client.body(&registration("db.", "127.0.0.5")),
            json!({"Kind": "database", "Addresses": [{"Address": "127.0.0.5", "Healthy": true}], "TTL": 5, "LeaseSeconds": 15})
        );
        assert_eq!(
            client.url("db.rds.r53.internal."),
            "http://127.0.0.1:8053/v1/endpoints/db.rds.r53.internal."
        );
    }

    #[tokio::test]
    async fn registers_renews_follows_changes_retries_and_deregisters() {
        // Two refusals first: the registrar must keep retrying.
        let (fake, url, stop) = start_fake(2).await;
        let client = Arc::new(RegistryClient::new(&url, Some("t0k".into()), 5, 15));
        let (desired_tx, desired_rx) = watch::channel(desired("127.0.0.11"));
        let (ack_tx, ack_rx) = watch::channel(Acknowledged::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            client,
            desired_rx,
            ack_tx,
            names(),
            Schedule {
                renew_every: Duration::from_millis(100),
                retry_after: Duration::from_millis(20),
            },
            shutdown.clone(),
        ));
        let puts = |name: &str, ip: &str| {
            fake.log
                .lock()
                .unwrap()
                .iter()
                .filter(|l| {
                    l.method == Method::PUT
                        && l.name == name
                        && l.body
                            .as_ref()
                            .is_some_and(|b| b["Addresses"][0]["Address"] == ip)
                })
                .count()
        };
        wait_for(
            || ack_rx.borrow().writer.is_some() && ack_rx.borrow().reader.is_some(),
            "registration after the refusals",
        )
        .await;
        // Renewals: the same registration sent again and again.
        wait_for(
            || puts("db.rds.r53.internal.", "127.0.0.11") >= 4,
            "renewals",
        )
        .await;
        // A change is sent at once, not at the next renewal.
        let before = puts("db-ro.rds.r53.internal.", "127.0.0.21");
        desired_tx.send_replace(desired("127.0.0.12"));
        wait_for(
            || puts("db.rds.r53.internal.", "127.0.0.12") >= 1,
            "the new writer",
        )
        .await;
        assert_eq!(
            ack_rx.borrow().writer.as_ref().unwrap().addresses[0].0,
            "127.0.0.12".parse::<std::net::IpAddr>().unwrap()
        );
        assert!(
            puts("db-ro.rds.r53.internal.", "127.0.0.21") <= before + 1,
            "an unchanged reader is not sent with the writer's change"
        );
        shutdown.cancel();
        task.await.unwrap();
        let log = fake.log.lock().unwrap();
        let deletes: Vec<&str> = log
            .iter()
            .filter(|l| l.method == Method::DELETE)
            .map(|l| l.name.as_str())
            .collect();
        assert!(
            log.iter().all(|l| l.auth.as_deref() == Some("Bearer t0k")),
            "every request carries the token"
        );
        assert_eq!(deletes, ["db.rds.r53.internal.", "db-ro.rds.r53.internal."]);
        assert_eq!(*ack_rx.borrow(), Acknowledged::default());
        stop.cancel();
    }

    #[tokio::test]
    async fn an_unreachable_r53_is_an_error_naming_it() {
        // Bind and drop: nothing listens on the port afterwards.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = Arc::new(RegistryClient::new(&addr.to_string(), None, 5, 15));
        let e = tokio::task::spawn_blocking(move || client.put(&registration("db.", "127.0.0.5")))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, RegistryError::Unreachable { url, .. } if url == &format!("http://{addr}")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_refusal_carries_the_route53_code_and_message() {
        let (_fake, url, stop) = start_fake(1).await;
        let client = Arc::new(RegistryClient::new(&url, None, 5, 15));
        let e = tokio::task::spawn_blocking(move || client.put(&registration("db.", "127.0.0.5")))
            .await
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, RegistryError::Refused { status: 400, code, message, .. } if code == "InvalidInput" && message == "not now"),
            "{e:?}"
        );
        stop.cancel();
    }
}
