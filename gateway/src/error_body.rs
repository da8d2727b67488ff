//! The one error body of every HTTP answer that refuses, wherever it is made: REST's
//! `ApiError`, the gateway's refusals of an upgrade (`refuse`), and the root crate's listener
//! (over capacity, a body too large, timeouts). Defined once, here at the edge both HTTP
//! halves share; the OpenAPI document takes its schema from it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The one error body. `fields` names every bad field of a 422; `retry_after_ms` comes with a
/// 429 (beside a `Retry-After` header).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// A stable snake_case code: `invalid`, `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `rate_limited`, `banned`, `too_large`, `bad_request`, `timeout`,
    /// `unsupported_media_type`, `method_not_allowed`, `unavailable`, `overloaded`,
    /// `out_of_stock`.
    pub code: String,
    /// What went wrong, for people (may be Chinese).
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<FieldProblemBody>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Only on the 403 `banned` answer of a login: a token good for one thing, appealing the
    /// ban (`POST /api/v1/appeals`), for 7 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeal_token: Option<String>,
    /// Only on a 409 `conflict` about an order's state: the state it is in now (`created`,
    /// `paid`, `fulfilled`, `completed`, `cancelled`, `refunding`, `refunded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FieldProblemBody {
    /// The field's name as the request spelled it (`tags[2]` for an element of a list).
    pub field: String,
    pub problem: String,
}

impl ErrorBody {
    /// A body of `code` and `message` alone.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody { code: code.into(), message: message.into(), fields: None, retry_after_ms: None, appeal_token: None, state: None }
    }
    /// With the wait a 429 or 503 asks for.
    pub fn retry_after(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_carries_only_what_is_set() {
        let plain = serde_json::to_value(ErrorBody::new("unauthorized", "missing token")).unwrap();
        assert_eq!(plain, serde_json::json!({"code": "unauthorized", "message": "missing token"}));
        let wait = serde_json::to_value(ErrorBody::new("rate_limited", "slow down").retry_after(Some(1500))).unwrap();
        assert_eq!(wait, serde_json::json!({"code": "rate_limited", "message": "slow down", "retry_after_ms": 1500}));
    }
}
