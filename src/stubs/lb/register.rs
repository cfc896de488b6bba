//! Registration with `r53 serve`: the LB keeps its endpoint (`PUT /v1/endpoints/{DNSName}`)
//! registered with its addresses and health, renews the lease, and deregisters on shutdown.
//!
//! Talks to r53 only through its public API, as any registrant would; it shares no types with
//! `crate::api`. An unreachable r53 never stops the LB from serving: registration is retried in
//! the background with a warning each time.

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::health::describe;

/// One API call, answer included; a hung r53 must not hold up renewals or shutdown.
const API_TIMEOUT: Duration = Duration::from_secs(5);
/// The first retry after a failed registration; retries then back off to the renewal period.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// An API answer larger than this is not r53's.
const ANSWER_LIMIT: usize = 1 << 20;

/// What is registered, and where.
#[derive(Debug, Clone)]
pub struct Registration {
    /// `http://host:port` (any path prefix kept), no trailing slash.
    pub api: String,
    pub token: Option<String>,
    /// Fully qualified, e.g. `web.elb.r53.internal.`.
    pub dns_name: String,
    pub addresses: Vec<IpAddr>,
    pub ttl: u32,
    pub lease: Duration,
    /// How long the first registration waits for a target to pass its first check (which
    /// runs at start), so that an LB whose targets are up does not first register as unhealthy.
    pub settle: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("r53's API at {url} cannot be reached: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("r53's API at {url} did not answer within {API_TIMEOUT:?}")]
    Timeout { url: String },
    #[error("r53 refused {method} {url}: {status} {code}: {message}")]
    Refused {
        method: Method,
        url: String,
        status: StatusCode,
        code: String,
        message: String,
    },
    #[error("bad API URL {url}: {cause}")]
    BadUrl { url: String, cause: String },
}

/// `PUT /v1/endpoints/{DNSName}`'s body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct PutEndpoint {
    kind: &'static str,
    addresses: Vec<EndpointAddress>,
    #[serde(rename = "TTL")]
    ttl: u32,
    lease_seconds: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointAddress {
    address: IpAddr,
    healthy: bool,
}

/// The parts of r53's answer worth logging; anything else in it is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    endpoint: Option<AnswerEndpoint>,
    error: Option<AnswerError>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerEndpoint {
    hosted_zone_id: Option<String>,
    lease_expires_at: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AnswerError {
    code: Option<String>,
    message: Option<String>,
}

struct Api {
    client: Client<HttpConnector, Full<Bytes>>,
    registration: Registration,
    url: String,
}

impl Api {
    fn new(registration: Registration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(API_TIMEOUT));
        let url = format!(
            "{}/v1/endpoints/{}",
            registration.api, registration.dns_name
        );
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            registration,
            url,
        }
    }

    async fn put(&self, healthy: bool) -> Result<Answer, RegistrationError> {
        let r = &self.registration;
        let body = PutEndpoint {
            kind: "load-balancer",
            addresses: r
                .addresses
                .iter()
                .map(|&address| EndpointAddress { address, healthy })
                .collect(),
            ttl: r.ttl,
            lease_seconds: r.lease.as_secs(),
        };
        // Serializing plain strings, numbers and addresses cannot fail.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        self.call(Method::PUT, Some(json)).await
    }

    async fn delete(&self) -> Result<Answer, RegistrationError> {
        self.call(Method::DELETE, None).await
    }

    async fn call(
        &self,
        method: Method,
        json: Option<Vec<u8>>,
    ) -> Result<Answer, RegistrationError> {
        let url = &self.url;
        let uri: Uri =
            url.parse().map_err(
                |e: hyper::http::uri::InvalidUri| RegistrationError::BadUrl {
                    url: url.clone(),
                    cause: e.to_string(),
                },
            )?;
        let mut builder = Request::builder().method(method.clone()).uri(uri).header(
            header::USER_AGENT,
            concat!("r53-lb/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(token) = &self.registration.token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                RegistrationError::BadUrl {
                    url: url.clone(),
                    cause: "the API token is not a valid header value".into(),
                }
            })?;
            builder = builder.header(header::AUTHORIZATION, value);
        }
        if json.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(json.unwrap_or_default())))
            .map_err(|e| RegistrationError::BadUrl {
                url: url.clone(),
                cause: e.to_string(),
            })?;
        let exchange =
            async {
                let response = self.client.request(request).await.map_err(|e| {
                    RegistrationError::Unreachable {
                        url: url.clone(),
                        cause: describe(&e),
                    }
                })?;
                let status = response.status();
                let body = Limited::new(response.into_body(), ANSWER_LIMIT)
                    .collect()
                    .await
                    .map_err(|e| RegistrationError::Unreachable {
                        url: url.clone(),
                        cause: format!("reading the answer: {e}"),
                    })?
                    .to_bytes();
                let answer: Answer = serde_json::from_slice(&body).unwrap_or_default();
                if status.is_success() {
                    return Ok(answer);
                }
                let error = answer.error.unwrap_or_default();
                Err(RegistrationError::Refused {
                    method: method.clone(),
                    url: url.clone(),
                    status,
                    code: error.code.unwrap_or_else(|| "-".into()),
                    message: error
                        .message
                        .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_owned()),
                })
            };
        tokio::time::timeout(API_TIMEOUT, exchange)
            .await
            .map_err(|_| RegistrationError::Timeout { url: url.clone() })?
    }
}

/// Keeps the endpoint registered until `shutdown`, then deregisters it.
///
/// Sends the registration at once, again every lease/3 (so two renewals can be lost before the
/// lease runs out), and at once whenever `any_healthy` changes.
pub async fn maintain(
    registration: Registration,
    mut any_healthy: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    let renew_every = registration.lease / 3;
    let api = Api::new(registration);
    let name = api.registration.dns_name.clone();
    let mut registered: Option<bool> = None;
    let mut retry = FIRST_RETRY;
    let mut health_watch_open = true;
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(api.registration.settle) => {}
        _ = any_healthy.wait_for(|healthy| *healthy) => {}
    }
    loop {
        let healthy = *any_healthy.borrow_and_update();
        // Not raced against `shutdown`: dropping a PUT midway could let it land after the
        // DELETE below and register the endpoint again.
        let wait = match api.put(healthy).await {
            Ok(answer) => {
                let endpoint = answer.endpoint.unwrap_or_default();
                if registered != Some(healthy) {
                    info!(
                        endpoint.name = %name,
                        endpoint.healthy = healthy,
                        endpoint.addresses = ?api.registration.addresses,
                        hosted_zone.id = %endpoint.hosted_zone_id.as_deref().unwrap_or("-"),
                        lease.expires_at = %endpoint.lease_expires_at.as_deref().unwrap_or("-"),
                        "registered with r53"
                    );
                } else {
                    debug!(endpoint.name = %name, lease.expires_at = %endpoint.lease_expires_at.as_deref().unwrap_or("-"), "lease renewed");
                }
                registered = Some(healthy);
                retry = FIRST_RETRY;
                renew_every
            }
            Err(e) => {
                warn!(endpoint.name = %name, error = %e, retry_in_ms = retry.as_millis() as u64, "cannot register with r53; still serving, will retry");
                // Forget what was registered so the next success is logged at info again.
                registered = None;
                let wait = retry;
                retry = (retry * 2).min(renew_every.max(FIRST_RETRY));
                wait
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
            changed = any_healthy.changed(), if health_watch_open => {
                // The pool only goes away at shutdown; keep renewing until then.
                health_watch_open = changed.is_ok();
            }
        }
    }
    match api.delete().await {
        Ok(_) => info!(endpoint.name = %name, "deregistered from r53"),
        Err(e) => {
            warn!(endpoint.name = %name, error = %e, "cannot deregister from r53; the endpoint goes when its lease runs out")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registration_body_is_the_api_contract() {
        let body = PutEndpoint {
            kind: "load-balancer",
            addresses: vec![EndpointAddress {
                address: "127.0.0.4".parse().unwrap(),
                healthy: true,
            }],
            ttl: 60,
            lease_seconds: 15,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"Kind":"load-balancer","Addresses":[{"Address":"127.0.0.4","Healthy":true}],"TTL":60,"LeaseSeconds":15}"#
        );
    }

    #[test]
    fn errors_are_read_from_routes_53_shape() {
        let answer: Answer = serde_json::from_str(
            r#"{"Error": {"Type": "Sender", "Code": "InvalidInput", "Message": "bad name"}}"#,
        )
        .unwrap();
        let error = answer.error.unwrap();
        assert_eq!(error.code.as_deref(), Some("InvalidInput"));
        assert_eq!(error.message.as_deref(), Some("bad name"));
    }
}
