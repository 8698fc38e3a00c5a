//! The session engine's calls of the server's HTTP API made with `fetch`:
//! the request and the meaning of its answer are
//! `core::session::server_api`'s; a request that fails at the network level
//! is its retryable `SERVER_UNREACHABLE`.

use serde_json::Value;
use wasm_bindgen::JsValue;
use web_sys::{Headers, RequestCache, RequestInit};

use crate::core::session::engine::{Failure, ServerCall};
use crate::core::session::server_api::{http_call, read_answer, unreachable};
use crate::web::link::http::fetch_text;

/// Makes `call` to the API at `base` (absolute, no trailing slash).
pub(crate) async fn make(base: &str, call: &ServerCall) -> Result<Value, Failure> {
    let request = http_call(call);
    let init = RequestInit::new();
    init.set_method(request.method);
    init.set_cache(RequestCache::NoStore);
    if let Ok(h) = Headers::new() {
        let _ = h.set("content-type", "application/json");
        if let Some(token) = &request.token {
            let _ = h.set("authorization", &["Bearer ", token].concat());
        }
        init.set_headers(&h);
    }
    if let Some(body) = &request.body {
        init.set_body(&JsValue::from_str(body));
    }
    let url = [base, &request.path].concat();
    match fetch_text(&url, &init).await {
        Some((status, text)) => read_answer(&request, status, &text),
        None => Err(unreachable(base)),
    }
}
