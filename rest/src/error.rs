//! The REST shell's one error type: every failure is an HTTP status plus a JSON body
//! `{"code": "<stable snake_case>", "message": "..."}`. Internal details are logged, never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use jiebanke_chat_core::CoreError;
// The one error body, shared with the gateway's upgrade refusals and the listener's answers.
pub use jiebanke_gateway::error_body::{ErrorBody, FieldProblemBody};


#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_ms: Option<u64>,
    /// Every bad field of a 422, when the failure is about named fields.
    pub fields: Vec<jiebanke_chat_core::FieldProblem>,
    /// Only on the 403 `banned` of a login: the one-purpose token for `POST /api/v1/appeals`.
    pub appeal_token: Option<String>,
    /// Only on a 409 `conflict` about a thing's state (an order): where it stands now.
    pub state: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), retry_after_ms: None, fields: Vec::new(), appeal_token: None, state: None }
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = match &e {
            CoreError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            CoreError::NotFound(_) => StatusCode::NOT_FOUND,
            CoreError::Conflict(_) => StatusCode::CONFLICT,
            CoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            CoreError::Banned => StatusCode::FORBIDDEN,
            CoreError::Fields(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CoreError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::OutOfStock(_) | CoreError::StateConflict { .. } => StatusCode::CONFLICT,
        };
        let message = match &e {
            CoreError::Unavailable(_) => "temporarily unavailable, retry later".to_owned(),
            other => other.to_string(),
        };
        let fields = match &e {
            CoreError::Fields(f) => f.clone(),
            _ => Vec::new(),
        };
        let message = if fields.is_empty() { message } else { "some fields are not acceptable (字段无效)".to_owned() };
        let retry_after_ms = match &e {
            CoreError::RateLimited { retry_after_ms } => Some((*retry_after_ms).max(1)),
            _ => None,
        };
        let state = match &e {
            CoreError::StateConflict { state, .. } => Some(*state),
            _ => None,
        };
        ApiError { status, code: e.code(), message, retry_after_ms, fields, appeal_token: None, state }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => Self::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()),
            JsonRejection::MissingJsonContentType(e) => {
                Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", e.body_text())
            }
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", "request body too large")
            }
            other => Self::new(other.status(), "bad_request", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        }
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
            fields: (!self.fields.is_empty()).then(|| {
                self.fields.into_iter().map(|f| FieldProblemBody { field: f.field, problem: f.problem }).collect()
            }),
            retry_after_ms: self.retry_after_ms,
            appeal_token: self.appeal_token,
            state: self.state.map(str::to_owned),
        };
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(ms) = self.retry_after_ms {
            // Whole seconds, rounded up: HTTP's own form of the hint.
            resp.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(ms.div_ceil(1000).max(1)));
        }
        resp
    }
}
