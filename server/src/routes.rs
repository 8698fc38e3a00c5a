//! The router: health, snapshot verification with the core's decoder, the
//! session API and WebSocket (behind the origin check), the admin endpoints
//! and the health page (`/admin`),
//! and the static files of the demo (`/`), the wasm package (`/pkg/`) and
//! the JS wrapper (`/js/`); every error of the API as the JSON error body
//! (`http_errors.rs`). Starting it opens the store, the engine thread and
//! the periodic sweeper.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{middleware, Json, Router};
use serde_json::json;
use sessile::core::envelope::{self, EnvelopeConfig, HEADER_LEN};
use sessile::core::error::SessileError;
use tower_http::services::ServeDir;

use crate::engine::Engine;
use crate::maintenance::SweepOptions;
use crate::sessions::{Limits, Sessions};
use crate::store::{PostgresStore, SqliteStore, Store};
use crate::{AppState, Config};

/// Largest snapshot accepted for verification: the largest state plus its header.
pub(crate) const MAX_SNAPSHOT_BODY: usize = envelope::DEFAULT_MAX_RAW_BYTES + HEADER_LEN;
/// Where snapshots are verified.
pub(crate) const VERIFY_PATH: &str = "/v1/snapshots/verify";

/// The server for `config`: opens the store (PostgreSQL when
/// `config.database_url` is set, else the SQLite file), starts the engine
/// thread and (when `sweep_every_secs` > 0) the sweeper. Call it inside a
/// tokio runtime.
pub fn app(config: &Config) -> Result<Router, SessileError> {
    app_and_engine(config).map(|(router, _)| router)
}

/// [`app`] and the handle of its engine thread, for tests that run jobs on
/// the engine directly (a job that panics, one that holds the engine up).
#[doc(hidden)]
pub fn app_and_engine(config: &Config) -> Result<(Router, Engine), SessileError> {
    let instance = crate::ids::instance_id();
    let store: Box<dyn Store> = match &config.database_url {
        Some(url) => Box::new(PostgresStore::open_blocking(url)?.with_origin(&instance)),
        None => Box::new(SqliteStore::open_with(&config.db, config.journal_from)?),
    };
    let mut sessions = Sessions::new(store, Limits::of(config));
    sessions.instance = instance.clone();
    let engine = Engine::start(sessions, config.queue_jobs);
    if let Some(url) = &config.database_url {
        // Other servers on the same database: their commits reach this
        // server's clients (fanout.rs).
        crate::fanout::start(url, instance.clone(), engine.clone())?;
    }
    if config.sweep_every_secs > 0 {
        let (engine, every) = (engine.clone(), config.sweep_every_secs);
        let clock = config.clock.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(every));
            loop {
                tick.tick().await;
                let opts = SweepOptions::default();
                // A failed sweep is retried at the next tick; health reports
                // what is left, the sweep log its error. One server of those
                // sharing a database sweeps; the others log nothing.
                let (at, started) = (clock.now_ms(), std::time::Instant::now());
                let outcome = engine.call(move |s| s.periodic_sweep(&opts, at)).await;
                let took = started.elapsed();
                match outcome {
                    Ok(Some(report)) => {
                        engine.metrics.sweeps.record("timer", at, took, &Ok(report))
                    }
                    Ok(None) => {}
                    Err(e) => engine.metrics.sweeps.record("timer", at, took, &Err(e)),
                }
            }
        });
    }
    let state = AppState {
        limits: crate::limits::Limits::new(config, engine.metrics.clone()),
        engine: engine.clone(),
        config: std::sync::Arc::new(config.clone()),
        instance: instance.into(),
    };
    let sessions = crate::api::routes()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::api::check_origin,
        ))
        .layer(DefaultBodyLimit::max(
            config.max_frame_bytes.saturating_mul(2),
        ));
    let not_found = any(crate::http_errors::route_not_found);
    let router = Router::new()
        .route("/healthz", get(health))
        .route(
            VERIFY_PATH,
            post(verify_snapshot).layer(DefaultBodyLimit::max(MAX_SNAPSHOT_BODY)),
        )
        .merge(sessions)
        .merge(crate::admin::routes())
        .merge(crate::admin_page::routes())
        .route("/v1", not_found.clone())
        .route("/v1/", not_found.clone())
        .route("/v1/{*rest}", not_found)
        // Last: every error answer above is the JSON error body.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http_errors::json_errors,
        ))
        .with_state(state)
        .nest_service("/pkg", ServeDir::new(&config.pkg))
        .nest_service("/js", ServeDir::new(&config.js))
        .fallback_service(ServeDir::new(&config.www));
    Ok((router, engine))
}

/// How long `/healthz` waits for the engine thread to run a no-op job.
const HEALTH_PROBE: Duration = Duration::from_secs(2);

/// Liveness that tells the truth: a no-op job goes through the engine (its
/// queue, a batch, a commit); 200 `ok` when it comes back within
/// [`HEALTH_PROBE`], else 503 `unavailable` with the reason. Both carry the
/// count of jobs that panicked on the engine thread.
async fn health(State(st): State<AppState>) -> Response {
    let probe = tokio::time::timeout(HEALTH_PROBE, st.engine.call(|_| Ok(()))).await;
    let problem = match probe {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(format!(
            "the engine refused a no-op job: {} ({e})",
            e.code()
        )),
        Err(_) => Some(format!(
            "the engine did not answer a no-op job within {} s",
            HEALTH_PROBE.as_secs()
        )),
    };
    let mut body = json!({
        "status": if problem.is_some() { "unavailable" } else { "ok" },
        "service": "sessile-server",
        "version": env!("CARGO_PKG_VERSION"),
        "snapshotFormat": envelope::FORMAT_VERSION,
        "instance": &*st.instance,
        "enginePanics": st.engine.metrics.engine_panics.load(Ordering::Relaxed),
    });
    let status = match problem {
        Some(reason) => {
            body["reason"] = reason.into();
            StatusCode::SERVICE_UNAVAILABLE
        }
        None => StatusCode::OK,
    };
    (status, Json(body)).into_response()
}

/// Decodes the body as a snapshot with the same code the browser runs and
/// answers its figures, or 422 with the error body (plus `ok: false`).
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
            Json(json!({
                "type": "error",
                "ok": false,
                "code": e.code(),
                "message": e.to_string(),
                "retryable": false,
            })),
        )
            .into_response(),
    }
}
