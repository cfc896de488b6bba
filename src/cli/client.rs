//! The blocking HTTP client of the API: one request, one JSON answer or one [`CliError`].
//!
//! Knows URLs, the bearer token and Route 53's error shape; knows nothing of zones or records.
//! Plain HTTP only: the API is meant for loopback or a private network, and leaving TLS out
//! keeps the binary free of a TLS stack it does not serve with either.

use std::io;
use std::time::Duration;

use serde_json::Value;
use ureq::Agent;

use super::CliError;
use crate::config::ApiArgs;

/// Route 53's API version, the first segment of every operation's path.
pub const VERSION_PATH: &str = "/2013-04-01";

/// Large enough for a full page of the largest record sets (300 sets of 400 values), small
/// enough that a wrong URL answering with an endless body cannot exhaust memory.
const BODY_LIMIT: u64 = 256 << 20;

pub struct Client {
    agent: Agent,
    base: String,
    token: Option<String>,
}

/// What the API answered to a successful request.
#[derive(Debug)]
pub struct Reply {
    pub body: Value,
    /// The `Location` header (CreateHostedZone sets it).
    pub location: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl Client {
    pub fn new(api: &ApiArgs) -> Result<Self, CliError> {
        let base = base_url(api.url())?;
        let config = Agent::config_builder()
            // Route 53 errors come with a JSON body worth reading; status is checked here.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            // A change is acknowledged only once it is durable, which takes a disk flush;
            // a large import can take a while, a dead server should not hang a script forever.
            .timeout_global(Some(Duration::from_secs(300)))
            .user_agent(format!("r53-cli/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Self {
            agent: config.into(),
            base,
            token: api.api_token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// The API's base URL, as requests are sent to it.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one request; `operation` is Route 53's name for it, used in error messages.
    pub fn send(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, CliError> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let result = match (method, body) {
            (Method::Post, body) => {
                let mut request = self
                    .agent
                    .post(&url)
                    .header("content-type", "application/json");
                for (k, v) in query {
                    request = request.query(*k, *v);
                }
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.send(body.map(Value::to_string).unwrap_or_default())
            }
            (Method::Get | Method::Delete, _) => {
                let mut request = match method {
                    Method::Delete => self.agent.delete(&url),
                    _ => self.agent.get(&url),
                };
                for (k, v) in query {
                    request = request.query(*k, *v);
                }
                if let Some(auth) = &auth {
                    request = request.header("authorization", auth);
                }
                request.call()
            }
        };
        let mut response = result.map_err(|e| self.transport_error(method, &url, e))?;
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| {
                CliError::Unexpected(format!(
                    "reading the answer to {} {url}: {e}",
                    method.as_str()
                ))
            })?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            let body = parsed.ok_or_else(|| {
                CliError::Unexpected(format!(
                    "{} {url} answered HTTP {status} with a body that is not JSON: {}",
                    method.as_str(),
                    snippet(&text)
                ))
            })?;
            return Ok(Reply { body, location });
        }
        match parsed.as_ref().and_then(route53_error) {
            Some((code, message)) => Err(CliError::Service {
                operation,
                code,
                message,
            }),
            None => Err(CliError::Unexpected(format!(
                "{} {url} answered HTTP {status}, not a Route 53 error: {}. Is {} an r53 API?",
                method.as_str(),
                snippet(&text),
                self.base
            ))),
        }
    }

    pub fn get(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Value, CliError> {
        self.send(operation, Method::Get, path, query, None)
            .map(|r| r.body)
    }

    fn transport_error(&self, method: Method, url: &str, e: ureq::Error) -> CliError {
        let cause = match &e {
            ureq::Error::Io(io) => match io.kind() {
                io::ErrorKind::ConnectionRefused => Some("connection refused".to_owned()),
                io::ErrorKind::AddrNotAvailable
                | io::ErrorKind::NetworkUnreachable
                | io::ErrorKind::HostUnreachable
                | io::ErrorKind::TimedOut => Some(io.to_string()),
                _ => None,
            },
            ureq::Error::HostNotFound => Some("host not found".to_owned()),
            ureq::Error::ConnectionFailed => Some("connection failed".to_owned()),
            ureq::Error::Timeout(t) => Some(format!("timed out ({t})")),
            _ => None,
        };
        match cause {
            Some(cause) => CliError::Connection {
                url: self.base.clone(),
                cause,
            },
            None => CliError::Unexpected(format!("{} {url} failed: {e}", method.as_str())),
        }
    }
}

/// `{"Error": {"Code": …, "Message": …}}` → (code, message).
fn route53_error(body: &Value) -> Option<(String, String)> {
    let error = body.get("Error")?;
    let code = error.get("Code")?.as_str()?.to_owned();
    let message = error
        .get("Message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some((code, message))
}

/// The start of a body, on one line, for an error message.
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else if one_line.is_empty() {
        "(empty)".to_owned()
    } else {
        one_line
    }
}

/// Normalizes `--api`: `host:port` means `http://host:port`; no trailing slash.
fn base_url(raw: &str) -> Result<String, CliError> {
    let raw = raw.trim().trim_end_matches('/');
    if raw.is_empty() {
        return Err(CliError::Input("--api (R53_API) is empty".into()));
    }
    match raw.split_once("://") {
        None => Ok(format!("http://{raw}")),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") && !rest.is_empty() => {
            Ok(format!("http://{rest}"))
        }
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => Err(CliError::Input(format!(
            "--api {raw}: this client speaks plain HTTP only (r53 serves its API without TLS); use http://"
        ))),
        Some(_) => Err(CliError::Input(format!(
            "--api {raw}: not an http:// URL"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_urls_are_normalized() {
        assert_eq!(base_url("127.0.0.1:8053").unwrap(), "http://127.0.0.1:8053");
        assert_eq!(base_url("http://h:1/").unwrap(), "http://h:1");
        assert_eq!(base_url("HTTP://h:1").unwrap(), "http://h:1");
        assert!(base_url("https://h").is_err());
        assert!(base_url("ftp://h").is_err());
        assert!(base_url(" ").is_err());
    }

    #[test]
    fn route53_errors_are_read() {
        let body = json!({"Error": {"Type": "Sender", "Code": "NoSuchHostedZone", "Message": "No hosted zone found with ID: Z1"}});
        assert_eq!(
            route53_error(&body),
            Some((
                "NoSuchHostedZone".into(),
                "No hosted zone found with ID: Z1".into()
            ))
        );
        assert_eq!(route53_error(&json!({"message": "x"})), None);
    }

    #[test]
    fn connection_refused_names_the_url_and_r53_serve() {
        // Port 1 on loopback: nothing listens there on a test machine.
        let client = Client::new(&ApiArgs {
            api: Some("http://127.0.0.1:1".into()),
            api_token: None,
        })
        .unwrap();
        let e = client.get("ListHostedZones", "/x", &[]).unwrap_err();
        assert_eq!(e.exit_code(), super::super::exit::OTHER);
        let text = e.to_string();
        assert!(text.contains("http://127.0.0.1:1"), "{text}");
        assert!(text.contains("r53 serve"), "{text}");
    }
}
