//! The health page `/admin`: one HTML page, its script and its style sheet,
//! compiled into the binary (`server/admin/`). The page holds no data and
//! needs no token to load; it asks for the admin token, keeps it in the
//! tab's sessionStorage and reads everything from the token-protected JSON
//! endpoints (`admin.rs`). Served with a Content-Security-Policy that allows
//! this origin only, and never cached.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::AppState;

const HTML: &str = include_str!("../admin/index.html");
const SCRIPT: &str = include_str!("../admin/admin.js");
const STYLE: &str = include_str!("../admin/admin.css");

/// The page's Content-Security-Policy: its own script, style and requests
/// only; no inline code, no frames, no forms sent anywhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/admin",
            get(|| async { file(HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/admin/admin.js",
            get(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/admin/admin.css",
            get(|| async { file(STYLE, "text/css; charset=utf-8") }),
        )
}

fn file(body: &'static str, kind: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::SCRIPT;
    use crate::maintenance::MAX_SWEEP_IDS;

    #[test]
    fn the_page_cuts_a_cleanup_into_sweeps_the_server_takes() {
        let decl = "const MAX_SWEEP_IDS = ";
        let at = SCRIPT.find(decl).expect("admin.js declares MAX_SWEEP_IDS") + decl.len();
        let value: String = SCRIPT[at..]
            .chars()
            .take_while(|c| *c != ';')
            .filter(|c| *c != '_')
            .collect();
        assert_eq!(value.parse::<usize>(), Ok(MAX_SWEEP_IDS));
    }
}
