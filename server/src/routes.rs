//! HTTP routes: health, snapshot verification with the core's decoder, and the
//! static files of the demo (`/`), the wasm package (`/pkg/`) and the JS
//! wrapper (`/js/`).

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sessile::core::envelope::{self, EnvelopeConfig, HEADER_LEN};
use tower_http::services::ServeDir;

use crate::Config;

/// Largest request body accepted: a snapshot of the largest state plus its header.
const MAX_BODY: usize = envelope::DEFAULT_MAX_RAW_BYTES + HEADER_LEN;

/// The server's routes for `config`.
pub fn app(config: &Config) -> Router {
    Router::new()
        .route("/healthz", get(health))
        .route(
            "/v1/snapshots/verify",
            post(verify_snapshot).layer(DefaultBodyLimit::max(MAX_BODY)),
        )
        .nest_service("/pkg", ServeDir::new(&config.pkg))
        .nest_service("/js", ServeDir::new(&config.js))
        .fallback_service(ServeDir::new(&config.www))
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "service": "sessile-server",
        "version": env!("CARGO_PKG_VERSION"),
        "snapshotFormat": envelope::FORMAT_VERSION,
    }))
}

/// Decodes the body as a snapshot with the same code the browser runs and
/// answers its figures, or 422 with the error's stable code.
async fn verify_snapshot(body: Bytes) -> Response {
    match envelope::decode(&body, &EnvelopeConfig::default()) {
        Ok(s) => Json(json!({
            "ok": true,
            "schemaVersion": s.meta.schema_version,
            "stateVersion": s.meta.state_version,
            "modifiedAt": s.meta.modified_at_ms,
            "rawBytes": s.json.len(),
            "storedBytes": s.stored_len,
            "compressed": s.compressed,
            "checksum": format!("{:08x}", s.checksum),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "ok": false, "code": e.code(), "message": e.to_string() })),
        )
            .into_response(),
    }
}
