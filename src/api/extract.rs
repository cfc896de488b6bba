//! What handlers take from a request and how they reply, with every rejection in the API's
//! error shape: JSON bodies decoded with the failing field named
//! (`ChangeBatch.Changes[0].Action: unknown variant ...`), a struct given as an array refused
//! where it is (`ObjectsOnly`), query strings and path segments
//! refused as InvalidInput rather than with axum's plain-text 400.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::ApiError;
use super::objects::ObjectsOnly;

/// A JSON request body, or a 400 that names what is wrong and where.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::InvalidInput(format!("Could not read the request body: {e}"))
                }
            })?;
        // Every request body is a JSON object, and so is every struct inside one: see
        // `ObjectsOnly` for why serde alone would read an array there.
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(ObjectsOnly(&mut de)).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path.is_empty() || path == "." {
                ApiError::InvalidInput(format!("Malformed request body: {inner}"))
            } else {
                ApiError::InvalidInput(format!("Malformed request body at '{path}': {inner}"))
            }
        })?;
        // Only whitespace may follow the object (what serde_json::from_slice checks): reading
        // stops at its closing brace, and `{...} trailing` was taken.
        de.end()
            .map_err(|e| ApiError::InvalidInput(format!("Malformed request body: {e}")))?;
        Ok(JsonBody(value))
    }
}

/// A JSON response with a status.
pub fn reply<T: Serialize>(status: StatusCode, body: &T) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Query-string parameters.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Params(v))
            .map_err(|e| ApiError::InvalidInput(format!("Invalid query string: {}", e.body_text())))
    }
}

/// The one `{id}` segment of a route.
pub struct PathId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PathId(id))
            .map_err(|e| ApiError::InvalidInput(format!("Invalid path: {}", e.body_text())))
    }
}
