//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer and it is not
//! draining).

use crate::RestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<RestState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`.
    status: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReadyBody {
    /// `ready`, `degraded` (a non-critical dependency is down), `unavailable`, `draining`.
    status: String,
    /// Each dependency: `ok` or `down`.
    checks: BTreeMap<String, String>,
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = HealthBody)))]
async fn healthz() -> Json<HealthBody> {
    Json(HealthBody { status: "ok".into() })
}

/// Whether this node should get traffic: 503 while draining or without its database.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = ReadyBody), (status = 503, body = ReadyBody)))]
async fn readyz(State(state): State<RestState>) -> (StatusCode, Json<ReadyBody>) {
    let checks = (state.readiness)().await;
    let deps = checks.iter().map(|c| (c.name.to_owned(), if c.ok { "ok" } else { "down" }.to_owned())).collect();
    let draining = state.draining.is_cancelled();
    let critical_down = checks.iter().any(|c| c.critical && !c.ok);
    let any_down = checks.iter().any(|c| !c.ok);
    // Unready (503): draining, or a dependency without which nothing works (the database).
    // Degraded (200): serving this node's users without a non-critical one (Redis): taking the
    // node out of the load balancer would not help, every node shares that dependency.
    let (code, status) = if draining {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if critical_down {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    } else if any_down {
        (StatusCode::OK, "degraded")
    } else {
        (StatusCode::OK, "ready")
    };
    (code, Json(ReadyBody { status: status.into(), checks: deps }))
}
