//! The domain's one error type. Each variant maps to one stable wire code at the edges.

/// What went wrong in a use case. `Unavailable` means nothing was decided: the caller may retry.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// The input is well-formed but not acceptable (too long, empty, wrong member list...).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The caller may not do this (not a member, not the owner).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing named does not exist (or the caller may not know that it does).
    #[error("not found: {0}")]
    NotFound(String),
    /// A uniqueness rule was broken (for example a client message id reused elsewhere).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Storage or another dependency failed; nothing was acknowledged.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The token is missing, malformed, expired or forged.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The user is banned: no login, no session.
    #[error("banned: this account is banned")]
    Banned,
    /// Too many failed logins from this client: it may try again in `retry_after_ms`.
    #[error("登录失败次数过多，请稍后再试 (too many failed logins, retry later)")]
    RateLimited { retry_after_ms: u64 },
    /// Named fields of the input are not acceptable (each with what is wrong with it).
    #[error("invalid: {}", fields_text(.0))]
    Fields(Vec<FieldProblem>),
    /// Not enough of a product (or no free slot of an animal) is left.
    #[error("out of stock: {0}")]
    OutOfStock(String),
    /// The thing's state does not allow what was asked; `state` is where it stands now.
    #[error("conflict: {message}")]
    StateConflict { state: &'static str, message: String },
}

/// One bad field of an input and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

impl FieldProblem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldProblem { field: field.into(), problem: problem.into() }
    }
}

fn fields_text(f: &[FieldProblem]) -> String {
    f.iter().map(|p| format!("{}: {}", p.field, p.problem)).collect::<Vec<_>>().join("; ")
}

impl CoreError {
    /// The stable snake_case code the wire uses for this error.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Invalid(_) => "invalid",
            CoreError::Forbidden(_) => "forbidden",
            CoreError::NotFound(_) => "not_found",
            CoreError::Conflict(_) => "conflict",
            CoreError::Unavailable(_) => "unavailable",
            CoreError::Unauthorized(_) => "unauthorized",
            CoreError::Banned => "banned",
            CoreError::Fields(_) => "invalid",
            CoreError::RateLimited { .. } => "rate_limited",
            CoreError::OutOfStock(_) => "out_of_stock",
            CoreError::StateConflict { .. } => "conflict",
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        CoreError::Invalid(msg.into())
    }
    pub fn unavailable(msg: impl std::fmt::Display) -> Self {
        CoreError::Unavailable(msg.to_string())
    }
}

pub type Result<T, E = CoreError> = std::result::Result<T, E>;
