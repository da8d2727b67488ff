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
    for (name, ok) in &checks {
        deps.insert((*name).to_owned(), Value::from(if *ok { "ok" } else { "down" }));
    }
    let draining = state.draining.is_cancelled();
    let ready = !draining && checks.iter().all(|(_, ok)| *ok);
    let status = if draining { "draining" } else if ready { "ready" } else { "degraded" };
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(json!({ "status": status, "checks": deps })))
}
