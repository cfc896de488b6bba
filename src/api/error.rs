//! The one error type of the API and how it goes on the wire: an HTTP status and Route 53's
//! error shape, `{"Error": {"Type": "Sender", "Code": "…", "Message": "…"}}` (with `Messages`
//! for InvalidChangeBatch). Internal causes are logged once here and never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::model::InvalidInput;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    InvalidDomainName(String),
    #[error("{}", .0.join(", "))]
    InvalidChangeBatch(Vec<String>),
    #[error("No hosted zone found with ID: {0}")]
    NoSuchHostedZone(String),
    #[error("Could not find resource with ID: {0}")]
    NoSuchChange(String),
    #[error("A hosted zone has already been created with the specified caller reference.")]
    HostedZoneAlreadyExists,
    #[error("The specified hosted zone contains non-required resource record sets and so cannot be deleted.")]
    HostedZoneNotEmpty,
    #[error("{0}")]
    InvalidVpcId(String),
    #[error("No endpoint is registered with the DNS name {0}")]
    NoSuchEndpoint(String),
    #[error("Missing or invalid bearer token; send Authorization: Bearer <token>")]
    Unauthorized,
    #[error("The request body is larger than this API accepts")]
    PayloadTooLarge,
    #[error("Unknown operation {0}")]
    UnknownOperation(String),
    #[error("The method is not allowed on this resource: {0}")]
    MethodNotAllowed(String),
    /// Other Route 53 errors: a code and a message, by status.
    #[error("{1}")]
    BadRequest(&'static str, String),
    #[error("{1}")]
    NotFound(&'static str, String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "InvalidInput"),
            ApiError::InvalidDomainName(_) => (StatusCode::BAD_REQUEST, "InvalidDomainName"),
            ApiError::InvalidChangeBatch(_) => (StatusCode::BAD_REQUEST, "InvalidChangeBatch"),
            ApiError::NoSuchHostedZone(_) => (StatusCode::NOT_FOUND, "NoSuchHostedZone"),
            ApiError::NoSuchChange(_) => (StatusCode::NOT_FOUND, "NoSuchChange"),
            ApiError::HostedZoneAlreadyExists => (StatusCode::CONFLICT, "HostedZoneAlreadyExists"),
            ApiError::HostedZoneNotEmpty => (StatusCode::BAD_REQUEST, "HostedZoneNotEmpty"),
            ApiError::InvalidVpcId(_) => (StatusCode::BAD_REQUEST, "InvalidVPCId"),
            ApiError::NoSuchEndpoint(_) => (StatusCode::NOT_FOUND, "NoSuchEndpoint"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "AccessDenied"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            ApiError::UnknownOperation(_) => (StatusCode::NOT_FOUND, "UnknownOperationException"),
            ApiError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, code),
            ApiError::NotFound(code, _) => (StatusCode::NOT_FOUND, code),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, code),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
        }
    }
}

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        ApiError::InvalidInput(e.0)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NoSuchHostedZone(id) => ApiError::NoSuchHostedZone(id),
            ServiceError::NoSuchChange(id) => ApiError::NoSuchChange(id),
            ServiceError::InvalidChangeBatch(m) => ApiError::InvalidChangeBatch(m),
            ServiceError::HostedZoneAlreadyExists => ApiError::HostedZoneAlreadyExists,
            ServiceError::HostedZoneNotEmpty => ApiError::HostedZoneNotEmpty,
            ServiceError::NoSuchEndpoint(name) => ApiError::NoSuchEndpoint(name),
            ServiceError::InvalidEndpoint(message) => ApiError::InvalidInput(message),
            e @ ServiceError::InvalidVpcId(_) => ApiError::InvalidVpcId(e.to_string()),
            e @ ServiceError::VpcInUse(_) => {
                ApiError::Conflict("VPCAssociationExists", e.to_string())
            }
            e @ ServiceError::PublicZoneVpcAssociation => {
                ApiError::BadRequest("PublicZoneVPCAssociation", e.to_string())
            }
            e @ ServiceError::VpcAssociationNotFound => {
                ApiError::NotFound("VPCAssociationNotFound", e.to_string())
            }
            e @ ServiceError::LastVpcAssociation => {
                ApiError::BadRequest("LastVPCAssociation", e.to_string())
            }
            e @ ServiceError::NoSuchRule(_) => ApiError::NotFound("NoSuchRule", e.to_string()),
            // A 400 in Route 53, unlike r53's own VPCAssociationExists.
            e @ (ServiceError::ConflictingVpcAssociation(_)
            | ServiceError::SameNameInVpc { .. }) => {
                ApiError::BadRequest("ConflictingDomainExists", e.to_string())
            }
            other @ (ServiceError::Store(_) | ServiceError::Internal(_)) => {
                ApiError::Internal(other.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let (kind, message) = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %cause, "internal error answering an API request");
                (
                    "Receiver",
                    "We encountered an internal error. Please try again.".to_owned(),
                )
            }
            // The aws CLI shows InvalidChangeBatch messages as a bracketed list.
            ApiError::InvalidChangeBatch(messages) => {
                ("Sender", format!("[{}]", messages.join(", ")))
            }
            other => ("Sender", other.to_string()),
        };
        let mut error = json!({ "Type": kind, "Code": code, "Message": message });
        if let ApiError::InvalidChangeBatch(messages) = &self {
            error["Messages"] = json!(messages);
        }
        (status, axum::Json(json!({ "Error": error }))).into_response()
    }
}
