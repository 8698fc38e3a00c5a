//! The session's status and expiry as the page learns or sets them, and
//! what a tab keeps for the next load: `<name>:lifecycle` (`{session,
//! status, expiresAt}`, so a reload or a new tab starts at the last known
//! status, even offline), `<name>:server` (the server session) and, in
//! this tab's sessionStorage, `<name>:fallback` (a fallback to HTTP,
//! remembered for a while).

use serde_json::json;

use super::types::{Scope, ServerSession, SessionCommand};
use super::SessionEngine;
use crate::core::session::link::stored;
use crate::core::session::link::{LinkEvent, Transport};

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
    /// new tab starts at the last known status, even offline.
    pub(super) fn remember_lifecycle(&mut self) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        let Some(server) = sync.server.as_ref().filter(|_| !sync.stopped) else {
            return;
        };
        let value = json!({
            "session": server.id, "status": self.life.status(), "expiresAt": self.life.expires_at(),
        });
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

    /// A fallback to HTTP is remembered by this tab for a while, so a
    /// reload does not fail three times on WebSocket first.
    pub(super) fn remember_fallback(&mut self, transport: Transport, now: u64) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        // The link driver's rule (`stored::remember_after`), for a connection on `transport`.
        let connected = LinkEvent::ConnectionRestored { transport };
        let ms = sync.cfg.remember_fallback_ms;
        let Some(value) = stored::remember_after(&connected, now, ms) else {
            return;
        };
        let key = self.key(":fallback");
        self.commands.push_back(SessionCommand::Remember {
            scope: Scope::Tab,
            key,
            value,
        });
    }
}
