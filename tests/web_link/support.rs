//! What the link's browser tests share: the fixture (js/test/link_fixture.mjs:
//! the real server, proxies whose faults a test switches, the audit log),
//! whose URL scripts/test passes at compile time in SESSILE_TEST_SERVER;
//! sessions made and read through the server's HTTP API; waiting with a
//! deadline; IndexedDB read and written directly.

use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use gloo_timers::future::TimeoutFuture;
use js_sys::{Object, Promise, Reflect, Uint8Array};
use serde_json::{json, Value};
use sessile::web::link::{Link, LinkEvent, LinkOptions};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbTransactionMode};

/// The fixture's control URL, given at compile time.
pub fn fixture() -> &'static str {
    match option_env!("SESSILE_TEST_SERVER") {
        Some(url) => url,
        None => panic!(
            "SESSILE_TEST_SERVER is not set: these tests run against the real server. \
             scripts/test starts `node js/test/link_fixture.mjs` and builds them with \
             SESSILE_TEST_SERVER=<the URL it prints>"
        ),
    }
}

/// `method url` with an optional JSON body and bearer token: (status, JSON).
pub async fn call(
    method: &str,
    url: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> (u16, Value) {
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_cache(web_sys::RequestCache::NoStore);
    let headers = web_sys::Headers::new().unwrap();
    if let Some(t) = token {
        headers
            .set("authorization", &format!("Bearer {t}"))
            .unwrap();
    }
    if let Some(b) = body {
        headers.set("content-type", "application/json").unwrap();
        init.set_body(&JsValue::from_str(&b.to_string()));
    }
    init.set_headers(&headers);
    let window = web_sys::window().unwrap();
    let res: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .unwrap_or_else(|e| panic!("{method} {url} failed: {e:?}"))
        .dyn_into()
        .unwrap();
    let text = JsFuture::from(res.text().unwrap())
        .await
        .unwrap()
        .as_string()
        .unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (res.status(), value)
}

async fn control(method: &str, path: &str) -> Value {
    let (status, v) = call(method, &format!("{}{path}", fixture()), None, None).await;
    assert_eq!(status, 200, "fixture {method} {path}: {v}");
    v
}

/// The server's own URL (no proxy).
pub async fn server_url() -> String {
    control("GET", "").await["server"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Kills the server with SIGKILL (a crash).
pub async fn kill_server() {
    control("POST", "server/kill").await;
}

/// Starts the server again on the same port and SQLite file.
pub async fn start_server() {
    control("POST", "server/start").await;
}

/// One loopback proxy in front of the server; closed when dropped.
pub struct Proxy {
    id: String,
    /// Its URL: the link's server.
    pub url: String,
}

impl Proxy {
    pub async fn new() -> Proxy {
        let v = control("POST", "proxies").await;
        Proxy {
            id: v["id"].as_str().unwrap().into(),
            url: v["url"].as_str().unwrap().into(),
        }
    }

    /// `pass`, `block-websocket`, `down` or `stall`.
    pub async fn mode(&self, mode: &str) {
        control("POST", &format!("proxies/{}/mode/{mode}", self.id)).await;
    }

    /// Drops every open WebSocket without a close frame.
    pub async fn kill_websockets(&self) {
        control("POST", &format!("proxies/{}/kill-websockets", self.id)).await;
    }

    /// Leaves every open WebSocket open but silent both ways (one that
    /// died while the page was frozen, with no close reaching the page).
    pub async fn freeze_websockets(&self) {
        control("POST", &format!("proxies/{}/freeze-websockets", self.id)).await;
    }

    /// Upgrades refused so far (`block-websocket`).
    pub async fn refused_upgrades(&self) -> u64 {
        self.count("refusedUpgrades").await
    }

    /// One of the proxy's counters (`upgrades`, `slowUpgrades`, ...).
    pub async fn count(&self, name: &str) -> u64 {
        let v = control("GET", &format!("proxies/{}", self.id)).await;
        v["counts"][name].as_u64().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let path = format!("proxies/{}", self.id);
        wasm_bindgen_futures::spawn_local(async move {
            let _ = call("DELETE", &format!("{}{path}", fixture()), None, None).await;
        });
    }
}

/// A server session.
pub struct Session {
    pub id: String,
    pub token: String,
    pub server: String,
    /// The state it was created with, at version 1.
    pub created: Value,
}

/// Creates a session holding `state` on the server.
pub async fn create_session(state: Value) -> Session {
    let server = server_url().await;
    let (status, v) = call(
        "POST",
        &format!("{server}v1/sessions"),
        Some(&json!({"state": state})),
        None,
    )
    .await;
    assert_eq!(status, 201, "create: {v}");
    Session {
        id: v["id"].as_str().unwrap().into(),
        token: v["token"].as_str().unwrap().into(),
        server,
        created: state,
    }
}

impl Session {
    /// The session as the server stores it: `{version, status, state, ...}`.
    pub async fn stored(&self) -> Value {
        let (status, v) = call(
            "GET",
            &format!("{}v1/sessions/{}", self.server, self.id),
            None,
            Some(&self.token),
        )
        .await;
        assert_eq!(status, 200, "GET session: {v}");
        v
    }

    /// The ops the server applied: (client, seq) in order, from its audit log.
    pub async fn applied_ops(&self) -> Vec<(String, u64)> {
        let audit = control("GET", &format!("sessions/{}/audit", self.id)).await;
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "op")
            .map(|e| {
                (
                    e["actor"].as_str().unwrap().to_string(),
                    e["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// An op of another client (a back office) made on `base`, over HTTP.
    pub async fn other_client_op(&self, base: u64, patch: Value) -> Value {
        let op = json!({"type": "op", "id": {"client": client_id(), "seq": 1}, "base": base, "patch": patch});
        let url = format!("{}v1/sessions/{}/ops", self.server, self.id);
        call("POST", &url, Some(&op), Some(&self.token)).await.1
    }

    /// Ends the session (DELETE).
    pub async fn end(&self) {
        let url = format!("{}v1/sessions/{}", self.server, self.id);
        let (status, v) = call("DELETE", &url, None, Some(&self.token)).await;
        assert_eq!(status, 200, "DELETE: {v}");
    }
}

/// Asserts the server applied exactly `seqs` of `client`, each once.
pub async fn assert_applied_once(s: &Session, client: &str, seqs: &[u64]) {
    let ops = s.applied_ops().await;
    let mine: Vec<u64> = ops
        .iter()
        .filter(|(c, _)| c == client)
        .map(|(_, q)| *q)
        .collect();
    assert_eq!(mine, seqs, "ops applied, in order, each once: {ops:?}");
}

/// A new random client id.
pub fn client_id() -> String {
    sessile::web::link::random_client_id().unwrap()
}

/// A namespace no other test uses.
pub fn namespace(test: &str) -> String {
    format!("link-{test}-{}", &client_id()[..8])
}

/// Options for a link of `s` through `proxy`, tuned so each case takes
/// seconds: heartbeat 500 ms, backoff from 50 ms to 500 ms. It starts from
/// the state the session was created with (version 1), as the page that
/// created it does.
pub fn options(proxy: &Proxy, s: &Session, namespace: &str, client: &str) -> LinkOptions {
    let mut o = LinkOptions::new(&proxy.url, namespace, &s.id, &s.token, client);
    o.version = 1;
    o.confirmed = s.created.clone();
    o.engine.heartbeat_ms = 500;
    o.engine.backoff_base_ms = 50;
    o.engine.backoff_cap_ms = 500;
    o.engine.connect_timeout_ms = 2_000;
    o.engine.ack_timeout_ms = 5_000;
    o.engine.ws_probe_ms = 60_000;
    o
}

/// `fut`'s output, or `None` after `ms`.
pub async fn deadline<T>(ms: u32, fut: impl Future<Output = T>) -> Option<T> {
    let mut fut = pin!(fut);
    let mut timer = pin!(TimeoutFuture::new(ms));
    poll_fn(|cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|_| None)
    })
    .await
}

/// `fut`, or a panic naming `what` after `ms`.
pub async fn within<T>(ms: u32, what: &str, fut: impl Future<Output = T>) -> T {
    deadline(ms, fut)
        .await
        .unwrap_or_else(|| panic!("not within {ms} ms: {what}"))
}

/// Waits until `pred` holds (checked every 10 ms), at most `ms`.
pub async fn until(ms: u32, what: &str, mut pred: impl FnMut() -> bool) {
    within(ms, what, async {
        while !pred() {
            TimeoutFuture::new(10).await;
        }
    })
    .await;
}

/// Reads the link's events until one matches `pred` (at most `ms`); the
/// events before it are returned too, the match last. A timeout says what
/// was seen and where the link stands.
pub async fn event(
    link: &Link,
    ms: u32,
    what: &str,
    pred: impl Fn(&LinkEvent) -> bool,
) -> Vec<LinkEvent> {
    let seen = RefCell::new(Vec::new());
    let found = deadline(ms, async {
        while let Some(e) = link.next_event().await {
            let done = pred(&e);
            seen.borrow_mut().push(e);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    let seen = seen.into_inner();
    if found != Some(true) {
        panic!(
            "{what}: not within {ms} ms (closed: {}); events {seen:?}; state {:?}; {:?}",
            found.is_some(),
            link.state(),
            link.diagnostics()
        );
    }
    seen
}

pub async fn sleep(ms: u32) {
    TimeoutFuture::new(ms).await;
}

/// Fires a page event (`online`, `offline`) on `window`, as the browser does.
pub fn page_event(kind: &str) {
    let e = web_sys::Event::new(kind).unwrap();
    web_sys::window().unwrap().dispatch_event(&e).unwrap();
}

/// Dispatches `pageshow` with `persisted` true on the window: what the
/// browser fires when it brings the page back from the back/forward cache.
pub fn page_shown_from_cache() {
    let window = web_sys::window().unwrap();
    let class: js_sys::Function = Reflect::get(&window, &"PageTransitionEvent".into())
        .unwrap()
        .dyn_into()
        .unwrap();
    let init = Object::new();
    Reflect::set(&init, &"persisted".into(), &true.into()).unwrap();
    let args = js_sys::Array::of2(&"pageshow".into(), &init);
    let e: web_sys::Event = Reflect::construct(&class, &args).unwrap().unchecked_into();
    window.dispatch_event(&e).unwrap();
}

async fn settle(target: &JsValue, ok: &str, fail: &[&str]) -> Result<JsValue, JsValue> {
    let target = target.clone();
    let (ok, fail): (String, Vec<String>) =
        (ok.into(), fail.iter().map(|s| s.to_string()).collect());
    let p = Promise::new(&mut |resolve, reject| {
        Reflect::set(&target, &format!("on{ok}").into(), &resolve).unwrap();
        for f in &fail {
            Reflect::set(&target, &format!("on{f}").into(), &reject).unwrap();
        }
    });
    JsFuture::from(p).await
}

/// Deletes IndexedDB database `name` (what eviction does to it; used by
/// tests/web_session.rs).
#[allow(dead_code)]
pub async fn idb_delete(name: &str) {
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let req = factory.delete_database(name).unwrap();
    settle(&req, "success", &["error", "blocked"])
        .await
        .expect("indexedDB.deleteDatabase");
}

/// Opens database `name` at `version`, as another tab's upgrade would
/// (creating nothing): `Err` when it was blocked (a connection of this
/// page held on) or failed.
pub async fn idb_upgrade(name: &str, version: u32) -> Result<IdbDatabase, JsValue> {
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let req: IdbOpenDbRequest = factory.open_with_u32(name, version).unwrap();
    settle(&req, "success", &["error", "blocked"]).await?;
    Ok(req.result().unwrap().dyn_into().unwrap())
}

/// Opens IndexedDB database `name` (creating its `slots` store).
pub async fn idb_open(name: &str) -> IdbDatabase {
    let factory = web_sys::window().unwrap().indexed_db().unwrap().unwrap();
    let req: IdbOpenDbRequest = factory.open_with_u32(name, 1).unwrap();
    let up = wasm_bindgen::closure::Closure::<dyn FnMut(web_sys::Event)>::new({
        let req = req.clone();
        move |_: web_sys::Event| {
            let db: IdbDatabase = req.result().unwrap().dyn_into().unwrap();
            if !db.object_store_names().contains("slots") {
                db.create_object_store("slots").unwrap();
            }
        }
    });
    req.set_onupgradeneeded(Some(up.as_ref().unchecked_ref()));
    settle(&req, "success", &["error", "blocked"])
        .await
        .expect("indexedDB.open");
    req.result().unwrap().dyn_into().unwrap()
}

/// Slots `a` and `b` (bytes) and the head's version of database `name`.
pub async fn idb_read(name: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>, u64) {
    let db = idb_open(name).await;
    let tx = db
        .transaction_with_str_and_mode("slots", IdbTransactionMode::Readonly)
        .unwrap();
    let store = tx.object_store("slots").unwrap();
    let reqs: Vec<IdbRequest> = ["a", "b", "head"]
        .iter()
        .map(|k| store.get(&(*k).into()).unwrap())
        .collect();
    settle(&tx, "complete", &["abort", "error"]).await.unwrap();
    let bytes = |r: &IdbRequest| {
        r.result()
            .ok()
            .and_then(|v| v.dyn_into::<Uint8Array>().ok())
            .map(|a| a.to_vec())
    };
    let head = Reflect::get(&reqs[2].result().unwrap(), &"version".into())
        .ok()
        .and_then(|v| v.as_f64())
        .unwrap_or(0.0) as u64;
    db.close();
    (bytes(&reqs[0]), bytes(&reqs[1]), head)
}

/// Writes `bytes` into slot `slot` and `{version}` as the head.
pub async fn idb_write(name: &str, slot: &str, bytes: &[u8], version: u64) {
    let db = idb_open(name).await;
    let tx: IdbTransaction = db
        .transaction_with_str_and_mode("slots", IdbTransactionMode::Readwrite)
        .unwrap();
    let store = tx.object_store("slots").unwrap();
    store
        .put_with_key(&Uint8Array::from(bytes), &slot.into())
        .unwrap();
    let head = Object::new();
    Reflect::set(&head, &"version".into(), &(version as f64).into()).unwrap();
    store.put_with_key(&head, &"head".into()).unwrap();
    settle(&tx, "complete", &["abort", "error"]).await.unwrap();
    db.close();
}
