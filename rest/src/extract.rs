//! Extractors that parse what a request carries once, strictly, and answer in the one error
//! body when they cannot.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use jiebanke_gateway::strict;
use serde::de::DeserializeOwned;

/// A JSON body read by the gateway's strict parser (`jiebanke_gateway::strict`): the same rules
/// as the socket's frames (structs only from objects, tags and names as strings, no numbers for
/// strings). 415 without `Content-Type: application/json`, 413 past the body limit, 400 for a
/// syntax error, 422 `invalid` for the wrong shape.
pub struct StrictJson<T>(pub T);

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S, T> FromRequest<S> for StrictJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected request with `Content-Type: application/json`",
            ));
        }
        // A body announced past the limit is refused before a byte of it is read.
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > crate::MAX_BODY_BYTES as u64) {
            return Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body too large"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body too large")
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "the request body could not be read")
            }
        })?;
        let value = strict::json_value(&bytes)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("invalid JSON: {e}")))?;
        // The path of the first bad field (`tags[2]`, `recipient.phone`) names it in `fields`.
        serde_path_to_error::deserialize::<_, T>(strict::Strict(&value)).map(StrictJson).map_err(|e| {
            let field = e.path().to_string();
            let problem = e.into_inner().to_string();
            if field.is_empty() || field == "." {
                ApiError::invalid(problem)
            } else {
                jiebanke_chat_core::CoreError::Fields(vec![jiebanke_chat_core::FieldProblem::new(field, problem)]).into()
            }
        })
    }
}
