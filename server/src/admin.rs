//! Admin endpoints, each requiring the admin token (`SESSILE_ADMIN_TOKEN`)
//! as `Authorization: Bearer`: sweep (with dry run), the sweeper's last
//! runs, health report, statistics (a scan of every session on the engine
//! thread), the live figures (counters only, no engine call: what the health
//! page polls), a session's audit log, and Prometheus `/metrics`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sessile::core::error::SessileError;

use crate::api::{bearer, parse_body, ApiError};
use crate::ids::secret_eq;
use crate::maintenance::{prometheus, SweepOptions};
use crate::AppState;

/// Newest audit entries returned for a session.
const AUDIT_LIMIT: u64 = 10_000;

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/sweep", post(sweep))
        .route("/v1/admin/sweeps", get(sweeps))
        .route("/v1/admin/health", get(health))
        .route("/v1/admin/stats", get(stats))
        .route("/v1/admin/live", get(live))
        .route("/v1/admin/sessions/{id}/audit", get(audit))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::map_response(no_store))
}

/// Admin answers are never cached: each read is the server's now.
async fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    resp
}

fn admin(st: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = bearer(headers)?;
    match &st.config.admin_token {
        Some(t) if secret_eq(&given, t) => Ok(()),
        _ => Err(SessileError::InvalidToken.into()),
    }
}

async fn sweep(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let opts: SweepOptions = parse_body(&body, st.config.max_frame_bytes)?;
    let (now, dry_run) = (st.now(), opts.dry_run);
    opts.check(now)?;
    let started = std::time::Instant::now();
    let outcome = st.engine.call(move |s| s.sweep(&opts, now)).await;
    if !dry_run {
        let took = started.elapsed();
        st.engine
            .metrics
            .sweeps
            .record("admin", now, took, &outcome);
    }
    Ok(Json(outcome?).into_response())
}

/// The sweeper's last runs (timer and admin, dry runs left out), newest
/// first, and how often the timer sweeps (0: never).
async fn sweeps(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    Ok(Json(serde_json::json!({
        "everySecs": st.config.sweep_every_secs,
        "runs": st.engine.metrics.sweeps.runs(),
    }))
    .into_response())
}

async fn health(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let now = st.now();
    let report = st.engine.call(move |s| s.health(now)).await?;
    Ok(Json(report).into_response())
}

async fn stats(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let now = st.now();
    Ok(Json(st.engine.call(move |s| s.stats(now)).await?).into_response())
}

/// The counters' figures and when they were read: no engine call, no scan.
async fn live(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let mut figures = crate::observe::live_figures(&st.engine.metrics);
    figures.insert("atMs".into(), st.now().into());
    figures.insert("instance".into(), (*st.instance).into());
    Ok(Json(serde_json::Value::Object(figures)).into_response())
}

async fn audit(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let entries = st
        .engine
        .call(move |s| s.store().audit(&id, AUDIT_LIMIT))
        .await?;
    Ok(Json(entries).into_response())
}

async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    admin(&st, &headers)?;
    let now = st.now();
    let text = st
        .engine
        .call(move |s| Ok(prometheus(&s.stats(now)?, &s.health(now)?)))
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}
