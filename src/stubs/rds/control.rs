//! The control port: `POST /failover` (a reboot with failover) and `GET /status`.
//!
//! Small and local on purpose (loopback by default, no auth): it changes roles, nothing else.
//! Errors come in the same `{"Error": {"Type", "Code", "Message"}}` shape as r53's API.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::cluster::Registration;
use super::Shared;

/// How long `POST /failover` waits for r53 to acknowledge the new writer before answering, so
/// that a client told "failed over" can rely on the very next DNS answer.
const ACK_WAIT: Duration = Duration::from_secs(3);

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/failover", post(failover))
        .route("/status", get(status))
        .fallback(unknown)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

/// Serves the control port until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"Error": {"Type": "Sender", "Code": code, "Message": message.into()}});
    (status, Json(body)).into_response()
}

async fn unknown(request: axum::extract::Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "UnknownOperation",
        format!(
            "{} {} is not an operation of r53 rds's control port (POST /failover, GET /status)",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: axum::extract::Request) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Promotes the standby now. 200 with the new roles, 409 when there is no healthy standby.
async fn failover(State(shared): State<Arc<Shared>>) -> Response {
    let result = shared.force_failover();
    let (failover, writer) = match result {
        Ok(ok) => ok,
        Err(e) => {
            return error(
                StatusCode::CONFLICT,
                "InvalidDBInstanceState",
                e.to_string(),
            )
        }
    };
    let registered = wait_for_writer(&shared, writer).await;
    let body = json!({
        "WriterEndpoint": shared.names.writer,
        "Writer": {
            "Instance": failover.writer,
            "Address": failover.writer_addr.map(|a| a.ip().to_string()),
        },
        "Standby": {"Instance": failover.standby},
        "Registered": registered,
    });
    (StatusCode::OK, Json(body)).into_response()
}

/// Whether r53 acknowledged `writer` within [`ACK_WAIT`].
async fn wait_for_writer(shared: &Shared, writer: Option<Registration>) -> bool {
    let Some(writer) = writer else {
        return false;
    };
    let mut acknowledged = shared.acknowledged.clone();
    let acked = tokio::time::timeout(
        ACK_WAIT,
        acknowledged.wait_for(|a| a.writer.as_ref() == Some(&writer)),
    )
    .await;
    matches!(acked, Ok(Ok(_)))
}

fn addresses_json(registration: Option<&Registration>) -> Value {
    let addresses: Vec<Value> = registration
        .map(|r| r.addresses.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|(ip, healthy)| json!({"Address": ip.to_string(), "Healthy": healthy}))
        .collect();
    Value::Array(addresses)
}

/// Roles, health, and what r53 holds.
async fn status(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let (instances, failovers) = shared.with_cluster(|c| (c.instances_json(), c.failovers()));
    let desired = shared.desired.borrow().clone();
    let acknowledged = shared.acknowledged.borrow().clone();
    let endpoint = |name: &str, want: Option<&Registration>, ack: Option<&Registration>| {
        json!({
            "DNSName": name,
            "Addresses": addresses_json(want),
            "Registered": want.is_some() && want == ack,
        })
    };
    Json(json!({
        "Writer": endpoint(
            &shared.names.writer,
            desired.writer.as_ref(),
            acknowledged.writer.as_ref(),
        ),
        "Reader": endpoint(
            &shared.names.reader,
            desired.reader.as_ref(),
            acknowledged.reader.as_ref(),
        ),
        "Instances": instances,
        "Failovers": failovers,
        "RegistrationError": acknowledged.error,
    }))
}
