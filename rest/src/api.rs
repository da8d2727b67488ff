//! What every endpoint shares on the wire: the error body, cursor pages, and the OpenAPI
//! document built from the handlers' own types (`/openapi.json`, browsable at `/docs`).

use crate::error::ApiError;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

// The error body is the error type's own (error.rs); it is re-exported here, where the
// other shared wire types are.
pub use crate::error::{ErrorBody, FieldProblemBody};

/// A report or an appeal as its sender sees it: it went to the moderation queue (the answer
/// of every area's reports).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedBody {
    /// The moderation item's id.
    pub item: String,
}

/// One page of a list: `next_cursor` is `null` on the last page, else what `?cursor=` takes to
/// read on.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the page before; absent for the first page.
    pub cursor: Option<String>,
}

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

const CURSOR: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A parsed page request: how many, and the key of the last item seen (keyset paging).
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<i64>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let mut bad = Vec::new();
        let limit = match self.limit {
            None => DEFAULT_LIMIT,
            Some(n) if (1..=MAX_LIMIT as i64).contains(&n) => n as u32,
            Some(_) => {
                bad.push(jiebanke_chat_core::FieldProblem::new("limit", format!("must be 1-{MAX_LIMIT}")));
                DEFAULT_LIMIT
            }
        };
        let after = match &self.cursor {
            None => None,
            Some(c) => match decode_cursor(c) {
                Some(k) => Some(k),
                None => {
                    bad.push(jiebanke_chat_core::FieldProblem::new("cursor", "is not a cursor this server gave"));
                    None
                }
            },
        };
        if !bad.is_empty() {
            return Err(jiebanke_chat_core::CoreError::Fields(bad).into());
        }
        Ok(PageRequest { limit, after })
    }
}

/// An opaque cursor for the key of the last item of a page.
pub fn encode_cursor(key: i64) -> String {
    CURSOR.encode(format!("k1:{key}"))
}

fn decode_cursor(c: &str) -> Option<i64> {
    let raw = CURSOR.decode(c).ok()?;
    let text = std::str::from_utf8(&raw).ok()?;
    let n: i64 = text.strip_prefix("k1:")?.parse().ok()?;
    (n > 0 && text == format!("k1:{n}")).then_some(n)
}

impl<T: ToSchema> Page<T> {
    /// A page from up to `limit + 1` items read: the extra one only says that more follow.
    pub fn from_probe(mut items: Vec<T>, limit: u32, key: impl Fn(&T) -> i64) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next_cursor = if more { items.last().map(|i| encode_cursor(key(i))) } else { None };
        Page { items, next_cursor }
    }
}

/// Adds the bearer scheme and, on every operation, the error body as the `default` answer
/// (every status an operation does not list answers in that shape).
struct Common;

impl Modify for Common {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        apply_common(openapi)
    }
}

/// What `Common` does, callable on the document once every router's paths are in it.
pub fn apply_common(openapi: &mut utoipa::openapi::OpenApi) {
    {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        let error = ResponseBuilder::new()
            .description("An error, in the one error shape")
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build();
        for item in openapi.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head]
                .into_iter()
                .flatten()
            {
                op.responses.responses.entry("default".to_owned()).or_insert_with(|| RefOr::T(error.clone()));
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Jiebanke (结伴客) REST API",
        description = "The REST half of Jiebanke. Ids are decimal strings, money is integer fen, times are UTC milliseconds. Every error answers `{\"code\",\"message\"}` (plus `fields` on 422, `retry_after_ms` on 429). Lists are cursor pages `{\"items\",\"next_cursor\"}`. The WebSocket protocol is in docs/protocol.md.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Common),
    components(schemas(ErrorBody, FieldProblemBody)),
    tags(
        (name = "auth", description = "Logins and tokens"),
        (name = "users", description = "Accounts, privacy settings, blocks, personal data"),
        (name = "uploads", description = "Photos"),
        (name = "conversations", description = "Chat conversations and history"),
        (name = "alerts", description = "Merchants' order alerts"),
        (name = "merchants", description = "Becoming a merchant, merchants' pages, the website's leads"),
        (name = "shop", description = "Flowers and farm animals: the catalog"),
        (name = "admin", description = "Staff: reviews, moderation, roles, the audit log (operators and admins; some admins only)"),
        (name = "health", description = "Probes")
    )
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        for bad in ["", "abc", "azE6MDQy", &CURSOR.encode("k1:-5"), &CURSOR.encode("k1:007"), &CURSOR.encode("k2:5")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
