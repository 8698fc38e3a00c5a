//! The session engine's calls of the server's HTTP API
//! ([`ServerCall`], docs/PROTOCOL.md "HTTP API") as requests, and what an
//! answer means, sans-IO: a driver sends the [`HttpCall`] (with `fetch`,
//! or any HTTP client) and hands the status and body to [`read_answer`];
//! the result goes to the engine's `handle_call_result`.

use serde_json::Value;

use super::engine::{Failure, ServerCall};
use crate::core::error_text::decimal;

/// One HTTP request: `method` at `base + path`, a JSON body, and the
/// session's token as `Authorization: Bearer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// `POST` or `DELETE`.
    pub method: &'static str,
    /// The path under the server's base URL (`/v1/sessions/...`).
    pub path: String,
    /// The JSON body, if any (sent as `application/json`).
    pub body: Option<String>,
    /// The bearer token, if any.
    pub token: Option<String>,
    /// What the call is, for messages (`creating a session`, ...).
    pub what: &'static str,
}

/// The request for `call`.
pub fn http_call(call: &ServerCall) -> HttpCall {
    let at = |id: &str, tail: &str| ["/v1/sessions/", id, tail].concat();
    match call {
        ServerCall::Create { body } => HttpCall {
            method: "POST",
            path: "/v1/sessions".into(),
            body: Some(serde_json::to_string(body).unwrap_or_default()),
            token: None,
            what: "creating a session",
        },
        ServerCall::Extend { session, seconds } => HttpCall {
            method: "POST",
            path: at(&session.id, "/extend"),
            body: Some(["{\"seconds\":", &decimal(*seconds), "}"].concat()),
            token: Some(session.token.clone()),
            what: "extending the session",
        },
        ServerCall::Validate { session } => HttpCall {
            method: "POST",
            path: at(&session.id, "/validate"),
            body: None,
            token: Some(session.token.clone()),
            what: "validating the session",
        },
        ServerCall::End { session } => HttpCall {
            method: "DELETE",
            path: at(&session.id, ""),
            body: None,
            token: Some(session.token.clone()),
            what: "ending the session",
        },
    }
}

/// The request could not be made or answered at all (no network, the
/// server down): the retryable `SERVER_UNREACHABLE`.
pub fn unreachable(base: &str) -> Failure {
    let message = ["the sessile server at ", base, " could not be reached"].concat();
    Failure::new("SERVER_UNREACHABLE", &message, true)
}

/// What an answer with HTTP `status` and body `text` means for `call`: the
/// JSON answer of a 2xx; otherwise the server's error (`{code, message,
/// retryable}`), or `PROTOCOL_ERROR` naming the status when it gave none
/// (retryable from 500 on).
pub fn read_answer(call: &HttpCall, status: u16, text: &str) -> Result<Value, Failure> {
    let answer: Value = serde_json::from_slice(text.as_bytes()).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(answer);
    }
    let field = |key: &str| answer.get(key).and_then(Value::as_str);
    let message = match field("message") {
        Some(m) => m.to_string(),
        None => [call.what, " answered HTTP ", &decimal(u64::from(status))].concat(),
    };
    let retryable = answer
        .get("retryable")
        .and_then(Value::as_bool)
        .unwrap_or(status >= 500);
    Err(Failure::new(
        field("code").unwrap_or("PROTOCOL_ERROR"),
        &message,
        retryable,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::session::engine::ServerSession;

    fn session() -> ServerSession {
        ServerSession {
            id: "ab".repeat(16),
            token: "t0k".into(),
        }
    }

    #[test]
    fn each_call_is_its_request() {
        let create = http_call(&ServerCall::Create {
            body: json!({"state": {"a": 1}, "ttlSeconds": 90}),
        });
        assert_eq!(
            (create.method, create.path.as_str()),
            ("POST", "/v1/sessions")
        );
        assert_eq!(
            serde_json::from_str::<Value>(create.body.as_deref().unwrap()).unwrap(),
            json!({"state": {"a": 1}, "ttlSeconds": 90})
        );
        assert_eq!(create.token, None);
        let id = "ab".repeat(16);
        let extend = http_call(&ServerCall::Extend {
            session: session(),
            seconds: 600,
        });
        assert_eq!(extend.path, ["/v1/sessions/", &id, "/extend"].concat());
        assert_eq!(extend.body.as_deref(), Some("{\"seconds\":600}"));
        assert_eq!(extend.token.as_deref(), Some("t0k"));
        let validate = http_call(&ServerCall::Validate { session: session() });
        assert_eq!(
            (
                validate.method,
                validate.path.as_str(),
                validate.body.as_deref()
            ),
            (
                "POST",
                ["/v1/sessions/", &id, "/validate"].concat().as_str(),
                None
            )
        );
        let end = http_call(&ServerCall::End { session: session() });
        assert_eq!(
            (end.method, end.path.as_str()),
            ("DELETE", ["/v1/sessions/", &id].concat().as_str())
        );
    }

    #[test]
    fn answers_are_the_json_or_the_servers_error() {
        let call = http_call(&ServerCall::Validate { session: session() });
        assert_eq!(
            read_answer(&call, 200, r#"{"valid":true}"#),
            Ok(json!({"valid": true}))
        );
        assert_eq!(read_answer(&call, 201, "not json"), Ok(Value::Null));
        let refused = r#"{"type":"error","code":"SESSION_EXPIRED","message":"session expired","retryable":false}"#;
        assert_eq!(
            read_answer(&call, 410, refused),
            Err(Failure::new("SESSION_EXPIRED", "session expired", false))
        );
        assert_eq!(
            read_answer(&call, 404, ""),
            Err(Failure::new(
                "PROTOCOL_ERROR",
                "validating the session answered HTTP 404",
                false
            ))
        );
        assert!(
            read_answer(&call, 503, "{}").unwrap_err().retryable,
            "a 5xx without a word may work later"
        );
        let down = unreachable("http://shop.example");
        assert_eq!(
            (down.code.as_str(), down.retryable),
            ("SERVER_UNREACHABLE", true)
        );
        assert_eq!(
            down.to_string(),
            "SERVER_UNREACHABLE: the sessile server at http://shop.example could not be reached"
        );
    }
}
