//! The session API over HTTP: create, get, op, delete (end), validate,
//! extend and the changes long-poll under `/v1/sessions`, the token in `Authorization: Bearer`; the
//! origin allow-list (with CORS for allowed cross-origin pages); errors as
//! protocol `error` messages with an HTTP status that fits the code.

use axum::body::Bytes;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sessile::core::error::SessileError;
use sessile::core::protocol::{self, CatchUp, ErrorFrame, Hello, Message, PROTOCOL_VERSION};
use tokio::time::Instant;

use crate::limits::Peer;
use crate::sessions::{CreateRequest, Sessions};
use crate::AppState;

/// A [`SessileError`] answered over HTTP.
pub struct ApiError(pub SessileError);

impl From<SessileError> for ApiError {
    fn from(e: SessileError) -> Self {
        ApiError(e)
    }
}

/// The HTTP status for an error code.
pub fn status_of(e: &SessileError) -> StatusCode {
    use SessileError as E;
    match e {
        E::SessionNotFound | E::RouteNotFound { .. } => StatusCode::NOT_FOUND,
        E::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        E::InvalidToken => StatusCode::UNAUTHORIZED,
        E::OriginNotAllowed { .. } => StatusCode::FORBIDDEN,
        E::SessionExpired | E::SessionClosed { .. } => StatusCode::GONE,
        E::InvalidTransition { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::VersionConflict { .. } | E::VersionAhead { .. } | E::OpOutOfOrder { .. } => {
            StatusCode::CONFLICT
        }
        E::StateTooLarge { .. } | E::FrameTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        E::SessionLimitReached { .. } | E::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        E::ServerBusy | E::ServerStorage { .. } => StatusCode::SERVICE_UNAVAILABLE,
        E::InternalError { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = protocol::encode(&Message::Error(ErrorFrame::from(&self.0)));
        let mut resp = json_response(status_of(&self.0), body);
        if let SessileError::RateLimited {
            retry_after_secs, ..
        } = &self.0
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
        }
        resp
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

type ApiResult<T> = Result<T, ApiError>;

/// The session routes (the WebSocket endpoint included).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/sessions", post(create))
        .route("/v1/sessions/{id}", get(read).delete(end))
        .route("/v1/sessions/{id}/ops", post(op))
        .route("/v1/sessions/{id}/changes", get(changes))
        .route("/v1/sessions/{id}/validate", post(validate))
        .route("/v1/sessions/{id}/extend", post(extend))
        .route("/v1/ws", get(crate::ws::upgrade))
}

/// The bearer token of a request, `INVALID_TOKEN` when there is none.
pub fn bearer(headers: &HeaderMap) -> Result<String, SessileError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or(SessileError::InvalidToken)
}

/// Parses a JSON body of at most `max` bytes (empty: `{}`).
pub fn parse_body<T: DeserializeOwned>(body: &[u8], max: usize) -> Result<T, SessileError> {
    if body.len() > max {
        return Err(SessileError::FrameTooLarge {
            size: body.len() as u64,
            limit: max as u64,
        });
    }
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| SessileError::ProtocolError {
        reason: format!("request body: {e}"),
    })
}

async fn create(State(st): State<AppState>, Peer(ip): Peer, body: Bytes) -> ApiResult<Response> {
    st.limits.create(ip)?;
    let req: CreateRequest = parse_body(&body, st.config.max_frame_bytes)?;
    let clock = st.config.clock.clone();
    let created = st
        .engine
        .call(move |s| s.create(req.clone(), clock.now_ms()))
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Runs `f` on the engine with the path's session id, the request's token
/// and the time, and answers its result as JSON.
async fn with_token<T, F>(
    st: &AppState,
    id: String,
    headers: &HeaderMap,
    f: F,
) -> ApiResult<Response>
where
    T: serde::Serialize + Send + 'static,
    F: Fn(&mut Sessions, &str, &str, u64) -> Result<T, SessileError> + Send + Sync + 'static,
{
    let token = bearer(headers)?;
    let clock = st.config.clock.clone();
    let out = st
        .engine
        .call(move |s| f(s, &id, &token, clock.now_ms()))
        .await?;
    Ok(Json(out).into_response())
}

async fn read(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    with_token(&st, id, &headers, |s, id, token, now| s.get(id, token, now)).await
}

async fn op(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let token = bearer(&headers)?;
    let Message::Op(op) = protocol::decode(&body, st.config.max_frame_bytes)? else {
        return Err(SessileError::ProtocolError {
            reason: "expected an `op` message".into(),
        }
        .into());
    };
    let clock = st.config.clock.clone();
    let started = std::time::Instant::now();
    let answer = st
        .engine
        .call(move |s| {
            let now = clock.now_ms();
            s.usable(&id, &token, now)?;
            s.op(&id, op.clone(), now)
        })
        .await?;
    st.engine.metrics.ack_latency.record(started.elapsed(), 1);
    let status = match &answer {
        Message::Reject(r) if matches!(r.code.as_str(), "VERSION_CONFLICT" | "VERSION_AHEAD") => {
            StatusCode::CONFLICT
        }
        Message::Reject(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    Ok(json_response(status, protocol::encode(&answer)))
}

/// Longest a long-poll waits for a change.
const MAX_POLL: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ChangesQuery {
    /// The version the client holds.
    since: u64,
    /// How long to wait for a change when there is none yet (ms, at most 30 s).
    #[serde(default)]
    wait_ms: u64,
    /// The client's id, for `appliedSeq`.
    client: Option<String>,
}

/// The HTTP fallback's long-poll: a `welcome` (what the client missed since
/// `since`, and its `appliedSeq`), at once when something changed, else when
/// something does or after `waitMs`.
async fn changes(
    State(st): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Query(q) = query.map_err(|e| SessileError::ProtocolError {
        reason: format!("query: {}", e.body_text()),
    })?;
    let hello = Hello {
        protocol: PROTOCOL_VERSION.into(),
        session: id.clone(),
        token: bearer(&headers)?,
        client: q
            .client
            .filter(|c| protocol::is_id(c))
            .unwrap_or_else(|| "0".repeat(32)),
        have_version: q.since,
    };
    let deadline = Instant::now() + Duration::from_millis(q.wait_ms).min(MAX_POLL);
    // Open from the first look until answered, or dropped with its client.
    let _open = crate::observe::LongPoll::open(&st.engine.metrics);
    // Subscribe only once the token is checked, and look again after
    // subscribing so that a change in between is not missed.
    let mut pushes = None;
    loop {
        let (h, clock) = (hello.clone(), st.config.clock.clone());
        let welcome = st.engine.call(move |s| s.hello(&h, clock.now_ms())).await?;
        if welcome.catch_up != CatchUp::UpToDate || Instant::now() >= deadline {
            return Ok(json_response(
                StatusCode::OK,
                protocol::encode(&Message::Welcome(welcome)),
            ));
        }
        match &mut pushes {
            None => pushes = Some(st.engine.hub.subscribe(&id)),
            Some(rx) => {
                // A push, a lag or the deadline: look again either way.
                let _ = tokio::time::timeout_at(deadline, rx.recv()).await;
            }
        }
    }
}

async fn validate(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let token = bearer(&headers).unwrap_or_default();
    let clock = st.config.clock.clone();
    let v = st
        .engine
        .call(move |s| s.validate(&id, &token, clock.now_ms()))
        .await?;
    Ok(Json(v).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendBody {
    seconds: u64,
}

async fn extend(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let ExtendBody { seconds } = parse_body(&body, st.config.max_frame_bytes)?;
    with_token(&st, id, &headers, move |s, id, token, now| {
        let at = s.extend_with_token(id, token, seconds, now)?;
        Ok(serde_json::json!({ "expiresAt": at }))
    })
    .await
}

async fn end(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    with_token(&st, id, &headers, |s, id, token, now| {
        Ok(serde_json::json!({ "status": s.end(id, token, now)? }))
    })
    .await
}

/// Whether `origin` may call the session API: on the allow-list; with no
/// list, a loopback page (never "the same host as `Host`", which a
/// rebound DNS name satisfies); anything with `--allow-any-origin`.
fn origin_allowed(st: &AppState, origin: &str) -> bool {
    if st.config.allow_any_origin {
        true
    } else if st.config.allow_origins.is_empty() {
        is_loopback_origin(origin)
    } else {
        st.config.allow_origins.iter().any(|o| o == origin)
    }
}

/// Whether `origin` is `http(s)://` + `localhost`, an address in
/// 127.0.0.0/8 or `[::1]`, with an optional port and nothing else.
pub fn is_loopback_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((h, p)) if !p.contains(']') => (h, Some(p)),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    let host_ok = host.eq_ignore_ascii_case("localhost")
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback());
    port_ok && host_ok
}

/// Middleware: refuses requests from browser origins not allowed, answers
/// CORS preflights and marks allowed cross-origin answers.
pub async fn check_origin(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let text = origin.to_str().unwrap_or_default().to_string();
    if !origin_allowed(&st, &text) {
        return ApiError(SessileError::OriginNotAllowed { origin: text }).into_response();
    }
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    resp.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::is_loopback_origin;

    #[test]
    fn loopback_origins_are_exactly_localhost_127_and_ipv6_one() {
        for o in [
            "http://localhost",
            "https://LOCALHOST:8443",
            "http://127.0.0.1:8787",
            "http://127.255.0.9",
            "http://[::1]",
            "http://[::1]:3000",
        ] {
            assert!(is_loopback_origin(o), "{o}");
        }
        for o in [
            "http://localhost.evil.example",
            "http://evil.example",
            "http://128.0.0.1",
            "http://127.0.0.1.nip.io",
            "http://127.0.0.1:",
            "http://127.0.0.1:99999",
            "http://localhost/path",
            "http://user@localhost",
            "http://[::2]",
            "ws://localhost",
            "null",
            "",
        ] {
            assert!(!is_loopback_origin(o), "{o}");
        }
    }
}
