//! The session's status and expiry as the page learns or sets them, and
//! what a tab keeps for the next load: `<name>:lifecycle` (`{session,
//! status, expiresAt}`, so a reload or a new tab starts at the last known
//! status, even offline; before a server session exists `{session: null,
//! status, steps}`, the steps still to send), `<name>:server` (the server session) and
//! `<name>:fallback` (a refused WebSocket, remembered by the origin for a
//! while).

use serde_json::json;

use super::types::{Scope, ServerSession, SessionCommand};
use super::SessionEngine;
use crate::core::session::link::stored;
use crate::core::session::link::LinkEvent;

impl SessionEngine {
    /// Takes a status (the page's or the server's) and keeps it for the
    /// next load.
    pub(super) fn life_status(&mut self, status: &str) {
        if self.life.set_status(status, &mut self.events) {
            self.remember_lifecycle();
        }
    }

    /// Takes an expiry the server says and keeps it for the next load.
    pub(super) fn life_expires(&mut self, at: u64, now: u64) {
        if self.life.set_expires_at(at) {
            self.remember_lifecycle();
            self.check_expiry(now);
        }
    }

    /// `<name>:lifecycle` = `{session, status, expiresAt}`, so a reload or a
    /// new tab starts at the last known status, even offline; with no
    /// server session yet, `{session: null, status, steps}`.
    pub(super) fn remember_lifecycle(&mut self) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        if sync.stopped {
            return;
        }
        let value = match sync.server.as_ref() {
            Some(server) => json!({
                "session": server.id, "status": self.life.status(), "expiresAt": self.life.expires_at(),
            }),
            // No server session yet: the steps to the status, sent once
            // one is created (a reload before that keeps them).
            None => json!({
                "session": null, "status": self.life.status(), "steps": sync.steps,
            }),
        };
        let key = self.key(":lifecycle");
        self.commands.push_back(SessionCommand::Remember {
            scope: Scope::Local,
            key,
            value: Some(super::json_text(&value)),
        });
    }

    /// `<name>:server` = `{id, token}`, or removed.
    pub(super) fn remember_session(&mut self, server: Option<&ServerSession>) {
        let value = server.map(|s| super::json_text(&json!({"id": s.id, "token": s.token})));
        let key = self.key(":server");
        self.commands.push_back(SessionCommand::Remember {
            scope: Scope::Local,
            key,
            value,
        });
    }

    /// A refused WebSocket is remembered by the origin (localStorage) for a
    /// while, so the next page load goes to HTTP at once (and probes the
    /// WebSocket later); a WebSocket that carries the link again forgets it.
    pub(super) fn remember_fallback(&mut self, event: &LinkEvent, now: u64) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        let ms = sync.cfg.remember_fallback_ms;
        let Some(value) = stored::remember_after(event, now, ms) else {
            return;
        };
        let key = self.key(":fallback");
        self.commands.push_back(SessionCommand::Remember {
            scope: Scope::Local,
            key,
            value,
        });
    }
}
