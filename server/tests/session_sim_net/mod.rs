//! The network and the server's transport layer of the session simulation
//! (`../session_sim.rs`): frames queued with latency (sometimes twice),
//! connections that die silently, the real session engine answering each
//! client frame (`hello` first on a WebSocket, pings answered), its answers
//! and pushes committed in groups and sent to every welcomed connection but
//! the one whose op made them, as the WebSocket layer does.

use std::collections::VecDeque;

use sessile::core::protocol::{self, ErrorFrame, Extended, Message, Pong, DEFAULT_MAX_FRAME_BYTES};
use sessile::core::session::link::Transport;
use sessile_server::engine::Push;

use super::{Sim, T0};

/// One connection between a tab and the server.
pub struct Conn {
    pub id: u64,
    pub client: String,
    pub c2s: VecDeque<(u64, String)>,
    pub s2c: VecDeque<(u64, String)>,
    pub c2s_dead: bool,
    pub s2c_dead: bool,
    pub hello_done: bool,
    pub transport: Transport,
}

impl Sim {
    pub(super) fn send_on(&mut self, id: u64, frame: String, to_server: bool) {
        let at = self.now + self.lat();
        let dup = self.rng.chance(self.dup);
        let dup_at = self.now + self.lat();
        let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else {
            return;
        };
        let q = if to_server { &mut c.c2s } else { &mut c.s2c };
        let mut put = |t: u64, f: String| {
            let t = t.max(q.back().map_or(0, |b| b.0));
            q.push_back((t, f));
        };
        if dup {
            put(dup_at, frame.clone());
        }
        put(at, frame);
    }

    /// The server's answers to one client frame.
    pub(super) fn handle(&mut self, frame: &str, c: usize) -> Vec<Message> {
        let msg =
            protocol::decode(frame.as_bytes(), DEFAULT_MAX_FRAME_BYTES).expect("client frame");
        let at = T0 + self.now;
        let conn = &mut self.conns[c];
        match msg {
            Message::Hello(h) => {
                conn.hello_done = true;
                conn.client.clone_from(&h.client);
                vec![match self.server.sessions.hello(&h, at) {
                    Ok(w) => Message::Welcome(w),
                    Err(e) => Message::Error(ErrorFrame::from(&e)),
                }]
            }
            Message::Op(_) if !conn.hello_done && conn.transport == Transport::WebSocket => {
                vec![Message::Error(ErrorFrame {
                    code: "PROTOCOL_ERROR".into(),
                    message: "hello first".into(),
                    retryable: false,
                })]
            }
            Message::Op(op) => {
                let patch = op.patch.clone();
                let answer = match self.server.sessions.op(&self.server.session, op, at) {
                    Ok(m) => m,
                    Err(e) => Message::Error(ErrorFrame::from(&e)),
                };
                if matches!(&answer, Message::Ack(a) if !a.duplicate) {
                    self.applied.push(patch);
                }
                vec![answer]
            }
            Message::Ping(p) => vec![Message::Pong(Pong {
                ts: p.ts,
                server_ts: at,
            })],
            _ => Vec::new(),
        }
    }

    pub(super) fn push_to_all(&mut self, pushes: Vec<Push>) {
        for push in pushes {
            let (msg, from) = match push {
                Push::Patch(p) => {
                    let from = p.op.as_ref().map(|o| o.client.clone());
                    (Message::Patch(p), from)
                }
                Push::Extended { expires_at, .. } => {
                    (Message::Extended(Extended { expires_at }), None)
                }
                Push::Ended(e) => (Message::Ended(e), None),
            };
            let frame = protocol::encode(&msg);
            let ids: Vec<u64> = self
                .conns
                .iter()
                .filter(|c| c.hello_done && from.as_ref() != Some(&c.client))
                .map(|c| c.id)
                .collect();
            for id in ids {
                self.send_on(id, frame.clone(), false);
            }
        }
    }

    pub(super) fn deliver(&mut self) {
        let now = self.now;
        let mut answers = Vec::new();
        let mut handled = false;
        for c in 0..self.conns.len() {
            while self.conns[c].c2s.front().is_some_and(|f| f.0 <= now) {
                let (_, frame) = self.conns[c].c2s.pop_front().unwrap();
                if self.conns[c].c2s_dead || !self.server.up {
                    continue;
                }
                handled = true;
                for m in self.handle(&frame, c) {
                    answers.push((self.conns[c].id, m));
                }
            }
        }
        let pushes = if handled {
            self.server.commit()
        } else {
            Vec::new()
        };
        for (id, m) in answers {
            self.send_on(id, protocol::encode(&m), false);
        }
        self.push_to_all(pushes);
        let at = T0 + now;
        for i in 0..self.slots.len() {
            let Some(id) = self.slots[i].current else {
                continue;
            };
            let Some(c) = self.conns.iter_mut().find(|c| c.id == id) else {
                continue;
            };
            let mut inbound = Vec::new();
            while c.s2c.front().is_some_and(|f| f.0 <= now) {
                let (_, frame) = c.s2c.pop_front().unwrap();
                if !c.s2c_dead {
                    inbound.push(frame);
                }
            }
            for frame in inbound {
                let s = &mut self.slots[i];
                if let Some(tab) = s.tab.as_mut() {
                    tab.engine.handle_frame(frame.as_bytes(), at);
                    tab.run(&mut self.browser, &mut s.storage, at);
                }
                self.drain(i);
            }
        }
        // Frames on connections nobody listens to any more are dropped.
        for c in &mut self.conns {
            if !self.slots.iter().any(|s| s.current == Some(c.id)) {
                c.s2c.retain(|f| f.0 > now);
            }
        }
    }

    pub(super) fn blackhole(&mut self, i: usize, both: bool) {
        if let Some(id) = self.slots[i].current {
            if let Some(c) = self.conns.iter_mut().find(|c| c.id == id) {
                c.s2c_dead = true;
                c.c2s_dead |= both;
            }
        }
    }
}
