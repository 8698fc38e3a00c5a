//! The BroadcastChannel message between tabs of a namespace, as the
//! TypeScript store sent it: `{ tab, version, slot, generation, schema,
//! json }` after a stored write, `{ tab, version, cleared: true }` after a
//! clear; this build adds `includes` (the stored head's). The browser
//! driver converts it to and from a JS object; what it means is
//! [`TabMessage`]'s. The driver reads and writes it as JSON
//! ([`TabWire::from_json`], [`TabWire::to_json`]); the serde derive is the
//! reference they are tested against.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

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

/// `Some(None)` for an absent or `null` field, `Some(Some(x))` when `read`
/// takes its value, `None` (the whole message refused) when it does not:
/// serde's rules for an `Option` field.
fn optional<T>(field: Option<Value>, read: impl Fn(Value) -> Option<T>) -> Option<Option<T>> {
    match field {
        None | Some(Value::Null) => Some(None),
        Some(v) => read(v).map(Some),
    }
}

fn string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn number(v: Value) -> Option<f64> {
    v.as_f64()
}

/// `[client, seq]` pairs, as serde reads a `Vec<(String, T)>`: an array
/// of arrays of exactly a string and a number `seq` takes; `None` if any
/// is not.
pub(super) fn read_pairs<T>(
    v: Value,
    seq: impl Fn(&Value) -> Option<T>,
) -> Option<Vec<(String, T)>> {
    let Value::Array(items) = v else { return None };
    items
        .into_iter()
        .map(|pair| {
            let Value::Array(pair) = pair else {
                return None;
            };
            let [c, s]: [Value; 2] = pair.try_into().ok()?;
            Some((string(c)?, seq(&s)?))
        })
        .collect()
}

/// `[client, seq]` pairs as serde writes a `Vec<(String, T)>`.
pub(super) fn write_pairs<T: Copy + Into<Value>>(pairs: &[(String, T)]) -> Value {
    pairs
        .iter()
        .map(|(c, s)| Value::from(vec![Value::from(c.clone()), (*s).into()]))
        .collect()
}

/// A whole number a JS number stands for, if it is one.
fn whole(n: Option<f64>) -> Option<u64> {
    n.filter(|v| *v >= 0.0 && v.fract() == 0.0 && *v <= 9_007_199_254_740_991.0)
        .map(|v| v as u64)
}

impl TabWire {
    /// A message heard on the channel, from its JSON, read by hand with the
    /// rules of the serde derive above (tested against it): every field may
    /// be absent, `null` is absent for the optional ones, a field of the
    /// wrong type refuses the whole message (`None`), fields it does not
    /// know are ignored. serde_json's derive for it costs the wasm module
    /// about 3 KB more (docs/PERFORMANCE.md).
    pub fn from_json(value: Value) -> Option<Self> {
        let Value::Object(mut o) = value else {
            return None;
        };
        let mut field = |name: &str| o.remove(name);
        Some(Self {
            tab: match field("tab") {
                None => String::new(),
                Some(v) => string(v)?,
            },
            version: optional(field("version"), number)?,
            cleared: optional(field("cleared"), |v| v.as_bool())?,
            slot: optional(field("slot"), string)?,
            generation: optional(field("generation"), number)?,
            schema: optional(field("schema"), number)?,
            json: optional(field("json"), string)?,
            includes: optional(field("includes"), |v| read_pairs(v, Value::as_f64))?,
        })
    }

    /// As JSON, the fields in the order and shape the serde derive writes
    /// them (tested against it).
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("tab".into(), self.tab.clone().into());
        let mut put = |name: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(name.into(), v);
            }
        };
        put("version", self.version.map(Value::from));
        put("cleared", self.cleared.map(Value::from));
        put("slot", self.slot.clone().map(Value::from));
        put("generation", self.generation.map(Value::from));
        put("schema", self.schema.map(Value::from));
        put("json", self.json.clone().map(Value::from));
        put("includes", self.includes.as_deref().map(write_pairs));
        Value::Object(o)
    }

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

    fn stored() -> TabMessage {
        TabMessage::Stored {
            from: me(),
            version: 7,
            slot: SlotId::B,
            generation: 3,
            schema: 2,
            state: json!({"step": "cart"}),
            includes: vec![(me(), 4)],
        }
    }

    #[test]
    fn a_stored_write_round_trips_in_the_typescript_shape() {
        let message = stored();
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

    #[test]
    fn the_hand_reader_and_writer_follow_the_derive() {
        let id = "c".repeat(32);
        for input in [
            json!({"tab": id, "version": 7, "slot": "b", "generation": 3, "schema": 2,
                   "json": "{}", "includes": [[id, 4], ["d", 5.5]]}),
            json!({"tab": id, "version": 9, "cleared": true, "extra": [1]}),
            json!({}),
            json!({"tab": "x", "version": null, "cleared": null, "slot": null, "generation": null,
                   "schema": null, "json": null, "includes": null}),
            json!({"tab": null}),
            json!({"tab": 3}),
            json!({"tab": "x", "version": "7"}),
            json!({"tab": "x", "cleared": 1}),
            json!({"tab": "x", "slot": 2}),
            json!({"tab": "x", "generation": true}),
            json!({"tab": "x", "schema": {}}),
            json!({"tab": "x", "json": 1}),
            json!({"tab": "x", "includes": {}}),
            json!({"tab": "x", "includes": [["a"]]}),
            json!({"tab": "x", "includes": [["a", 1, 2]]}),
            json!({"tab": "x", "includes": [[1, 1]]}),
            json!({"tab": "x", "includes": [["a", "1"]]}),
            json!({"tab": "x", "includes": [null]}),
            json!([1, 2]),
            json!("text"),
            json!(null),
        ] {
            let derived = serde_json::from_value::<TabWire>(input.clone()).ok();
            assert_eq!(TabWire::from_json(input.clone()), derived, "{input}");
            if let Some(wire) = derived {
                assert_eq!(
                    wire.to_json(),
                    serde_json::to_value(&wire).unwrap(),
                    "{input}"
                );
            }
        }
        let stored = TabWire::from_message(&stored());
        assert_eq!(stored.to_json(), serde_json::to_value(&stored).unwrap());
        assert_eq!(
            serde_json::to_string(&stored.to_json()).unwrap(),
            serde_json::to_string(&stored).unwrap()
        );
    }
}
