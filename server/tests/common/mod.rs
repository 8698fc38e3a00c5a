//! Helpers shared by the integration tests: the real server on a free
//! loopback port with a temporary SQLite file (or, with
//! `SESSILE_TEST_DATABASE=postgres`, a database of a throwaway PostgreSQL
//! cluster: `pg.rs`), the real binary as a child process (`binary.rs`), a
//! raw HTTP/1.1 client, a WebSocket client speaking the protocol, and direct
//! reads of the database.
#![allow(dead_code)]

pub mod binary;
pub mod pg;
pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sessile::core::protocol::{decode, encode, Hello, Message, Op, OpId, PROTOCOL_VERSION};
use sessile_server::{app, bind, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The admin token the test servers use.
pub const ADMIN: &str = "test-admin-token-0123456789";

/// A running server and the directory of its database.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its SQLite file (with PostgreSQL: the path that stands for its
    /// database, for [`sql`] and [`Server::restart`]).
    pub db: PathBuf,
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The PostgreSQL cluster holding its database, when one does.
    pub pg: Option<std::sync::Arc<pg::Cluster>>,
}

/// The test configuration: free port, the database in `db` (or the
/// PostgreSQL database `db` stands for), admin token set, no periodic
/// sweeper (tests sweep on purpose).
pub fn config(db: &Path) -> Config {
    Config {
        database_url: pg::lookup(db).map(|(cluster, name)| cluster.url(&name)),
        port: 0,
        www: "/nonexistent-www".into(),
        pkg: "/nonexistent-pkg".into(),
        js: "/nonexistent-js".into(),
        db: db.to_path_buf(),
        admin_token: Some(ADMIN.into()),
        sweep_every_secs: 0,
        ..Config::default()
    }
}

/// Starts `config` in this process on a real loopback socket.
pub async fn serve(config: Config) -> SocketAddr {
    let (listener, addr) = bind(&config).await.unwrap();
    let router = app(&config).unwrap();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    addr
}

/// A server with a fresh database; `tweak` adjusts its configuration.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessile.db");
    let pg = pg::selected().then(|| {
        let cluster = pg::shared();
        let name = cluster.create_db();
        pg::register(&db, &cluster, &name);
        cluster
    });
    let mut cfg = config(&db);
    tweak(&mut cfg);
    let addr = serve(cfg).await;
    Server { addr, db, dir, pg }
}

impl Server {
    /// A second server on the same database: a restart, as far as the
    /// sessions are concerned (nothing cached, everything read from SQLite).
    pub async fn restart(&self) -> SocketAddr {
        serve(config(&self.db)).await
    }
}

/// An HTTP answer.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Header lines, lowercased.
    pub head: String,
    /// Body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    /// The body's `code` field.
    /// The value of response header `name` (lowercase), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.head
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map(str::trim)
    }

    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_string()
    }
}

/// Sends one request with extra header lines (a `Host` among them replaces
/// the default, the server's address) and returns the answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {addr}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (a 413, say) and close before reading a body it
    // refuses: the write then fails with a broken pipe and the answer is
    // still there to read, up to a reset that may end the read early.
    let _ = s.write_all(body).await;
    let mut resp = Vec::new();
    if let Err(e) = s.read_to_end(&mut resp).await {
        assert!(!resp.is_empty(), "no answer from the server: {e}");
    }
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    Answer {
        status,
        head,
        body: resp[split + 4..].to_vec(),
    }
}

/// `Authorization` header value for `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A created session's id and token.
#[derive(Clone, Debug)]
pub struct Sess {
    /// Id.
    pub id: String,
    /// Token.
    pub token: String,
}

/// Creates a session with `body` (JSON); panics unless 201.
pub async fn create(addr: SocketAddr, body: Value) -> Sess {
    let a = request(
        addr,
        "POST",
        "/v1/sessions",
        &[],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    Sess {
        id: v["id"].as_str().unwrap().into(),
        token: v["token"].as_str().unwrap().into(),
    }
}

/// Calls an endpoint with `token` as bearer and `body` (JSON; null: empty).
pub async fn with_token(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> Answer {
    let auth = bearer(token);
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    request(
        addr,
        method,
        path,
        &[("Authorization", &auth)],
        body.as_bytes(),
    )
    .await
}

/// Calls a session endpoint with the session's token.
pub async fn call(addr: SocketAddr, method: &str, path: &str, s: &Sess, body: &Value) -> Answer {
    with_token(addr, method, path, &s.token, body).await
}

/// Calls an admin endpoint with the admin token.
pub async fn admin(addr: SocketAddr, method: &str, path: &str, body: &Value) -> Answer {
    with_token(addr, method, path, ADMIN, body).await
}

/// `GET /v1/sessions/{id}`.
pub async fn view(addr: SocketAddr, s: &Sess) -> Answer {
    call(
        addr,
        "GET",
        &format!("/v1/sessions/{}", s.id),
        s,
        &Value::Null,
    )
    .await
}

/// `DELETE /v1/sessions/{id}`: ends the session.
pub async fn end(addr: SocketAddr, s: &Sess) -> Answer {
    call(
        addr,
        "DELETE",
        &format!("/v1/sessions/{}", s.id),
        s,
        &Value::Null,
    )
    .await
}

/// A fixed client id for tests.
pub fn client_id(n: u8) -> String {
    format!("{:032x}", 0xc0ffee_u128 * 1000 + n as u128)
}

/// An op message.
pub fn op(client: &str, seq: u64, base: u64, patch: Value, to: Option<&str>) -> Message {
    Message::Op(Op {
        id: OpId {
            client: client.into(),
            seq,
        },
        base,
        patch,
        to: to.map(str::to_string),
    })
}

/// Sends an op over HTTP.
pub async fn http_op(addr: SocketAddr, s: &Sess, msg: &Message) -> Answer {
    let auth = bearer(&s.token);
    let path = format!("/v1/sessions/{}/ops", s.id);
    request(
        addr,
        "POST",
        &path,
        &[("Authorization", &auth)],
        encode(msg).as_bytes(),
    )
    .await
}

/// A WebSocket connection speaking the protocol.
pub struct Ws {
    /// The socket.
    pub inner: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// Opens `/v1/ws`.
    pub async fn connect(addr: SocketAddr) -> Ws {
        let (inner, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws"))
            .await
            .unwrap();
        Ws { inner }
    }
    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) {
        self.inner.send(WsMessage::Text(text.into())).await.unwrap();
    }
    /// Sends a message.
    pub async fn send(&mut self, m: &Message) {
        self.send_text(encode(m)).await;
    }
    /// The next protocol message (5 s at most); `None` when the server closed.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), self.inner.next())
                .await
                .expect("no frame within 5 s");
            match next {
                Some(Ok(WsMessage::Text(t))) => {
                    return Some(decode(t.as_bytes(), usize::MAX).unwrap())
                }
                Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }
    /// The close code the server ends with, after any messages.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.inner.next())
                .await
                .expect("no close within 5 s")
            {
                Some(Ok(WsMessage::Close(f))) => return f.map(|f| u16::from(f.code)),
                None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }
    /// Connects and says hello; returns the connection and the welcome.
    pub async fn hello(addr: SocketAddr, s: &Sess, client: &str, have: u64) -> (Ws, Message) {
        let mut ws = Ws::connect(addr).await;
        ws.send(&hello_msg(s, client, have)).await;
        let welcome = ws.recv().await.expect("closed instead of welcome");
        (ws, welcome)
    }
}

/// A `hello` for session `s`.
pub fn hello_msg(s: &Sess, client: &str, have: u64) -> Message {
    Message::Hello(Hello {
        protocol: PROTOCOL_VERSION.into(),
        session: s.id.clone(),
        token: s.token.clone(),
        client: client.into(),
        have_version: have,
    })
}

/// Runs `sql` on the server's SQLite file (a separate connection), or on
/// the PostgreSQL database the path stands for.
pub fn sql(db: &Path, sql: &str) {
    if let Some((cluster, name)) = pg::lookup(db) {
        cluster.psql(&name, sql);
        return;
    }
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(sql).unwrap();
}

/// One integer from `sql`.
pub fn sql_count(db: &Path, sql: &str) -> i64 {
    if let Some((cluster, name)) = pg::lookup(db) {
        let out = cluster.psql(&name, sql);
        return out
            .parse()
            .unwrap_or_else(|_| panic!("not an integer from `{sql}`: {out}"));
    }
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// A JSON object `{key: value}`.
pub fn obj(key: &str, value: Value) -> Value {
    json!({ key: value })
}

/// A WebSocket client that writes frames byte by byte, to send what a
/// well-behaved library never would (bad UTF-8, unmasked or reserved frames).
pub struct RawWs {
    /// The TCP connection, past the upgrade.
    pub stream: TcpStream,
}

/// A frame the server sent: its first header byte and its payload.
#[derive(Debug)]
pub struct RawFrame {
    /// FIN, RSV and opcode bits.
    pub head: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The opcode (low four bits).
    pub fn opcode(&self) -> u8 {
        self.head & 0x0f
    }
}

impl RawWs {
    /// Opens `/v1/ws` with a hand-written upgrade request; panics unless 101.
    pub async fn connect(addr: SocketAddr) -> RawWs {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Byte by byte: nothing after the head may be swallowed.
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            got.push(stream.read_u8().await.unwrap());
        }
        let text = String::from_utf8_lossy(&got).to_string();
        assert!(text.starts_with("HTTP/1.1 101"), "{text}");
        RawWs { stream }
    }

    /// Writes one frame: `head` is the first byte (FIN, RSV, opcode); the
    /// payload is masked with a fixed key when `masked`.
    pub async fn send_frame(&mut self, head: u8, payload: &[u8], masked: bool) {
        let mut out = vec![head];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(mask_bit | n as u8),
            n if n <= 0xffff => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        if masked {
            let key = [0x37, 0xfa, 0x21, 0x3d];
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        } else {
            out.extend_from_slice(payload);
        }
        self.stream.write_all(&out).await.unwrap();
    }

    /// Sends a protocol message as a proper (final, masked) text frame.
    pub async fn send(&mut self, m: &Message) {
        self.send_frame(0x81, encode(m).as_bytes(), true).await;
    }

    /// The next frame from the server (5 s at most); `None` at end of stream.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        tokio::time::timeout(Duration::from_secs(5), async {
            let head = self.stream.read_u8().await.ok()?;
            let len = match self.stream.read_u8().await.ok()? & 0x7f {
                126 => u64::from(self.stream.read_u16().await.ok()?),
                127 => self.stream.read_u64().await.ok()?,
                n => u64::from(n),
            };
            let mut payload = vec![0; len as usize];
            self.stream.read_exact(&mut payload).await.ok()?;
            Some(RawFrame { head, payload })
        })
        .await
        .expect("no frame within 5 s")
    }

    /// The next protocol message (a text frame), skipping control frames.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let f = self.read_frame().await?;
            match f.opcode() {
                1 => return Some(decode(&f.payload, usize::MAX).unwrap()),
                8 => return None,
                _ => continue,
            }
        }
    }

    /// The text messages before the close frame, and the close frame's code
    /// and reason (`None` when the stream ended without one).
    pub async fn until_close(&mut self) -> (Vec<Message>, Option<(u16, String)>) {
        let mut texts = Vec::new();
        while let Some(f) = self.read_frame().await {
            match f.opcode() {
                1 => texts.push(decode(&f.payload, usize::MAX).unwrap()),
                8 if f.payload.len() >= 2 => {
                    let code = u16::from_be_bytes([f.payload[0], f.payload[1]]);
                    let reason = String::from_utf8_lossy(&f.payload[2..]).to_string();
                    return (texts, Some((code, reason)));
                }
                8 => return (texts, None),
                _ => {}
            }
        }
        (texts, None)
    }
}
