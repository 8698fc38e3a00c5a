//! The BroadcastChannel message between tabs of a namespace, as the
//! TypeScript store sent it: `{ tab, version, slot, generation, schema,
//! json }` after a stored write, `{ tab, version, cleared: true }` after a
//! clear; this build adds `includes` (the stored head's). The browser
//! driver converts it to and from a JS object; what it means is
//! [`TabMessage`]'s.

use serde::{Deserialize, Serialize};

use super::types::{ClientId, TabMessage};
use crate::core::slots::SlotId;

/// One message as it crosses the channel.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TabWire {
    /// The sending tab's client id.
    pub tab: String,
    /// The stored head (or tombstone) version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<f64>,
    /// `true` for a clear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared: Option<bool>,
    /// `"a"` or `"b"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<String>,
    /// The slot's generation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<f64>,
    /// The state's schema version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<f64>,
    /// The state as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<String>,
    /// The changes the stored state includes, `[client, seq]` pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub includes: Option<Vec<(String, f64)>>,
}

/// A whole number a JS number stands for, if it is one.
fn whole(n: Option<f64>) -> Option<u64> {
    n.filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v <= 9_007_199_254_740_991.0)
        .map(|v| v as u64)
}

impl TabWire {
    /// The wire form of `message`.
    pub fn from_message(message: &TabMessage) -> Self {
        match message {
            TabMessage::Stored {
                from,
                version,
                slot,
                generation,
                schema,
                state,
                includes,
            } => Self {
                tab: from.0.clone(),
                version: Some(*version as f64),
                slot: Some(slot.name().into()),
                generation: Some(f64::from(*generation)),
                schema: Some(f64::from(*schema)),
                json: Some(serde_json::to_string(state).unwrap_or_else(|_| "null".into())),
                includes: Some(
                    includes
                        .iter()
                        .map(|(c, s)| (c.0.clone(), *s as f64))
                        .collect(),
                ),
                ..Self::default()
            },
            TabMessage::Cleared { from, version } => Self {
                tab: from.0.clone(),
                version: Some(*version as f64),
                cleared: Some(true),
                ..Self::default()
            },
        }
    }

    /// What the message says, as the TypeScript store read it: a clear, or
    /// a stored state whose JSON parses (a missing schema is 0, a slot that
    /// is not `"b"` is `a`, the generation is taken modulo 2^16). `None`
    /// for anything else, which is ignored.
    pub fn into_message(self) -> Option<TabMessage> {
        let from = ClientId(self.tab);
        let version = whole(self.version)?;
        if self.cleared == Some(true) {
            return Some(TabMessage::Cleared { from, version });
        }
        let state = serde_json::from_slice(self.json.as_deref()?.as_bytes()).ok()?;
        let slot = if self.slot.as_deref() == Some("b") {
            SlotId::B
        } else {
            SlotId::A
        };
        let includes = self
            .includes
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(c, s)| Some((ClientId(c), whole(Some(s))?)))
            .take(super::MAX_INCLUDES)
            .collect();
        Some(TabMessage::Stored {
            from,
            version,
            slot,
            generation: (whole(self.generation).unwrap_or(0) & 0xffff) as u16,
            schema: whole(self.schema).map_or(0, |s| s.min(u64::from(u32::MAX)) as u32),
            state,
            includes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> ClientId {
        ClientId("c".repeat(32))
    }

    #[test]
    fn a_stored_write_round_trips_in_the_typescript_shape() {
        let message = TabMessage::Stored {
            from: me(),
            version: 7,
            slot: SlotId::B,
            generation: 3,
            schema: 2,
            state: json!({"step": "cart"}),
            includes: vec![(me(), 4)],
        };
        let wire = TabWire::from_message(&message);
        let text = serde_json::to_value(&wire).unwrap();
        assert_eq!(
            text,
            json!({"tab": "c".repeat(32), "version": 7.0, "slot": "b", "generation": 3.0,
                   "schema": 2.0, "json": "{\"step\":\"cart\"}", "includes": [["c".repeat(32), 4.0]]})
        );
        assert_eq!(wire.into_message(), Some(message));
    }

    #[test]
    fn a_clear_round_trips() {
        let message = TabMessage::Cleared {
            from: me(),
            version: 9,
        };
        let wire = TabWire::from_message(&message);
        assert_eq!(
            serde_json::to_value(&wire).unwrap(),
            json!({"tab": "c".repeat(32), "version": 9.0, "cleared": true})
        );
        assert_eq!(wire.into_message(), Some(message));
    }

    #[test]
    fn a_typescript_message_is_read_as_it_read_it() {
        let wire: TabWire = serde_json::from_value(
            json!({"tab": "1f2e", "version": 2, "slot": "x", "generation": 65537, "json": "[1]"}),
        )
        .unwrap();
        assert_eq!(
            wire.into_message(),
            Some(TabMessage::Stored {
                from: ClientId("1f2e".into()),
                version: 2,
                slot: SlotId::A,
                generation: 1,
                schema: 0,
                state: json!([1]),
                includes: vec![],
            })
        );
    }

    #[test]
    fn messages_without_a_version_or_a_parsable_state_are_ignored() {
        for bad in [
            json!({"tab": "x", "json": "{}"}),
            json!({"tab": "x", "version": 1.5, "json": "{}"}),
            json!({"tab": "x", "version": -1, "json": "{}"}),
            json!({"tab": "x", "version": 3}),
            json!({"tab": "x", "version": 3, "json": "{oops"}),
        ] {
            let wire: TabWire = serde_json::from_value(bad.clone()).unwrap();
            assert_eq!(wire.into_message(), None, "{bad}");
        }
    }
}
