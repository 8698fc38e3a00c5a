//! Every error the API answers is the documented JSON body
//! (`{"type":"error","code","message","retryable"}`), also the ones made by
//! the HTTP layer before any handler runs: a body over the read limit, an
//! unknown route under `/v1/`, a wrong method, a path or an upgrade that
//! does not parse. [`json_errors`] rewrites those; [`route_not_found`]
//! answers unknown `/v1/` paths.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;
use sessile::core::error::SessileError;
use sessile::core::protocol::{self, ErrorFrame, Message};

use crate::api::ApiError;
use crate::AppState;

/// Largest error body of the HTTP layer read to quote it in a message.
const QUOTE_BYTES: usize = 4096;

/// Answers a path under `/v1/` that no endpoint has: 404 `ROUTE_NOT_FOUND`.
pub async fn route_not_found(uri: Uri) -> ApiError {
    ApiError(SessileError::RouteNotFound {
        path: uri.path().to_string(),
    })
}

/// Middleware: an error answer (4xx, 5xx) that is not JSON (made by the
/// HTTP layer, not by a handler) becomes the error body with a code that
/// fits its status; its status and other headers (`Allow`) are kept.
pub async fn json_errors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let declared = declared_length(req.headers());
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(resp.headers()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let quoted = axum::body::to_bytes(body, QUOTE_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let limit = limit_of(&st, &path);
    let error = error_for(status, &method, path, declared, limit, quoted);
    let text = protocol::encode(&Message::Error(ErrorFrame::from(&error)));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(text))
}

/// The error an HTTP-layer answer of `status` stands for.
fn error_for(
    status: StatusCode,
    method: &Method,
    path: String,
    declared: Option<u64>,
    limit: u64,
    quoted: String,
) -> SessileError {
    match status {
        StatusCode::NOT_FOUND => SessileError::RouteNotFound { path },
        StatusCode::METHOD_NOT_ALLOWED => SessileError::MethodNotAllowed {
            method: method.to_string(),
            path,
        },
        // Refused while reading: the declared length, or (a body sent in
        // chunks, without one) more than the read limit, twice `limit`.
        StatusCode::PAYLOAD_TOO_LARGE => SessileError::FrameTooLarge {
            size: declared.unwrap_or_else(|| limit.saturating_mul(2).saturating_add(1)),
            limit,
        },
        StatusCode::SERVICE_UNAVAILABLE => SessileError::ServerBusy,
        s if s.is_server_error() => SessileError::InternalError {
            reason: format!("HTTP {}", s.as_u16()),
        },
        s => SessileError::ProtocolError {
            reason: if quoted.is_empty() {
                format!("HTTP {}", s.as_u16())
            } else {
                quoted
            },
        },
    }
}

/// The body limit the handlers of `path` enforce (what a 413 names).
fn limit_of(st: &AppState, path: &str) -> u64 {
    if path == crate::routes::VERIFY_PATH {
        crate::routes::MAX_SNAPSHOT_BODY as u64
    } else {
        st.config.max_frame_bytes as u64
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::status_of;

    #[test]
    fn every_code_has_a_status_that_fits() {
        let cases = [
            (
                SessileError::InvalidTransition {
                    from: "a".into(),
                    to: "b".into(),
                },
                422,
            ),
            (
                SessileError::VersionAhead {
                    have: 2,
                    current: 1,
                },
                409,
            ),
            (
                SessileError::VersionConflict {
                    base: 1,
                    current: 2,
                },
                409,
            ),
            (SessileError::RouteNotFound { path: "/".into() }, 404),
            (
                SessileError::MethodNotAllowed {
                    method: "PUT".into(),
                    path: "/".into(),
                },
                405,
            ),
            (SessileError::InternalError { reason: "x".into() }, 500),
            (SessileError::ServerBusy, 503),
            (SessileError::FrameTooLarge { size: 2, limit: 1 }, 413),
            (SessileError::SessionNotFound, 404),
        ];
        for (e, status) in cases {
            assert_eq!(status_of(&e).as_u16(), status, "{}", e.code());
        }
    }

    #[test]
    fn http_layer_answers_map_to_codes() {
        let code = |s: u16, declared| {
            error_for(
                StatusCode::from_u16(s).unwrap(),
                &Method::PUT,
                "/v1/x".into(),
                declared,
                100,
                "Failed to buffer".into(),
            )
        };
        assert_eq!(code(404, None).code(), "ROUTE_NOT_FOUND");
        assert_eq!(
            code(405, None).to_string(),
            "method PUT is not allowed at `/v1/x`"
        );
        assert_eq!(
            code(413, Some(500)).to_string(),
            "frame is 500 bytes, above the limit of 100 bytes"
        );
        assert_eq!(
            code(413, None).to_string(),
            "frame is 201 bytes, above the limit of 100 bytes"
        );
        assert_eq!(code(426, None).code(), "PROTOCOL_ERROR");
        assert_eq!(
            code(400, None).to_string(),
            "protocol error: Failed to buffer"
        );
        assert_eq!(code(502, None).code(), "INTERNAL_ERROR");
    }
}
