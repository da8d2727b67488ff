//! `GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer and it is not
//! draining).

use crate::RestState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

pub fn router() -> Router<RestState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<RestState>) -> (StatusCode, Json<Value>) {
    let checks = (state.readiness)().await;
    let mut deps = Map::new();
    for c in &checks {
        deps.insert(c.name.to_owned(), Value::from(if c.ok { "ok" } else { "down" }));
    }
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
    (code, Json(json!({ "status": status, "checks": deps })))
}
