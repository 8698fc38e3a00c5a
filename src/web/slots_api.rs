//! The two-slot rules exported to JS (`crate::core::slots`): which stored
//! copy a restore takes, and where the next write goes, for a page that
//! keeps its own two slots of snapshot bytes. The package's store uses the
//! same rules inside the module (`crate::web::store`).

use js_sys::{Array, Object, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::core::error::SessileError;
use crate::core::slots::{self, Restore, SlotId, SlotProblem, SlotRead};

use super::convert::{error_summary, get, integer, object, set, to_js_error};
use super::snapshot_api::{decode_config, decoded_snapshot};

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** A stored copy: one of the two alternating slots, or the page-hide rescue copy. */
export type SlotName = "a" | "b" | "rescue";
/** A slot whose bytes were refused, and why. */
export interface SkippedSlot { slot: SlotName; error: { code: string; message: string } }
/** What restoreSlots found. */
export type RestoreResult =
  | { outcome: "restored"; from: "a" | "b"; snapshot: DecodedSnapshot; skipped: SkippedSlot[] }
  | { outcome: "fresh" }
  | { outcome: "unreadable"; skipped: SkippedSlot[] };
/** Where the next write goes. */
export interface WritePlan { slot: "a" | "b"; generation: number }
"#;

fn slot_read(value: &Option<Uint8Array>) -> Option<Vec<u8>> {
    value.as_ref().map(Uint8Array::to_vec)
}

fn skipped(problems: &[SlotProblem]) -> Array {
    problems
        .iter()
        .map(|p| -> JsValue {
            object(&[
                ("slot", p.slot.name().into()),
                ("error", error_summary(&p.error)),
            ])
            .into()
        })
        .collect()
}

/// Decodes the bytes of slots `a` and `b` (`undefined`: nothing stored
/// there) and picks the newest valid copy: the higher state version, then
/// the later generation. Every copy that held bytes but could
/// not be used is listed in `skipped` with its error. Throws only
/// `INVALID_OPTIONS`.
///
/// ```ts
/// const found = restoreSlots(bytesA, bytesB, { maxBytes: 5 << 20 });
/// if (found.outcome === "restored") JSON.parse(found.snapshot.json);
/// ```
#[wasm_bindgen(js_name = restoreSlots, unchecked_return_type = "RestoreResult")]
pub fn restore_slots(
    a: Option<Uint8Array>,
    b: Option<Uint8Array>,
    #[wasm_bindgen(unchecked_param_type = "DecodeOptions | undefined")] options: JsValue,
) -> Result<Object, JsValue> {
    let cfg = decode_config(&options).map_err(to_js_error)?;
    let bytes = [slot_read(&a), slot_read(&b)];
    let reads: Vec<(SlotId, SlotRead<'_>)> = [SlotId::A, SlotId::B]
        .iter()
        .zip(bytes.iter())
        .map(|(slot, b)| (*slot, b.as_deref().into()))
        .collect();
    Ok(match slots::restore(&reads, &cfg) {
        Restore::Restored {
            snapshot,
            slot,
            skipped: problems,
        } => object(&[
            ("outcome", "restored".into()),
            ("from", slot.name().into()),
            ("snapshot", decoded_snapshot(&snapshot).into()),
            ("skipped", skipped(&problems).into()),
        ]),
        Restore::Unreadable { problems } => object(&[
            ("outcome", "unreadable".into()),
            ("skipped", skipped(&problems).into()),
        ]),
        _ => object(&[("outcome", "fresh".into())]),
    })
}

/// Plans the write after the last good one (`{ slot, generation }` of the
/// copy restored or last written, or `undefined` before the first write):
/// the other slot, one generation later; slot `a`, generation 1 when nothing
/// was written. A rescue copy counts as slot `b`'s neighbour (the next write
/// goes to `a`). Throws `INVALID_OPTIONS` for another slot name or a
/// generation outside 0-65535.
#[wasm_bindgen(js_name = nextWrite, unchecked_return_type = "WritePlan")]
pub fn next_write(
    #[wasm_bindgen(unchecked_param_type = "{ slot: SlotName; generation: number } | undefined")]
    last: JsValue,
) -> Result<Object, JsValue> {
    let last_good = if last.is_object() {
        let slot = match get(&last, "slot").and_then(|s| s.as_string()).as_deref() {
            Some("a") => SlotId::A,
            Some("b") => SlotId::B,
            Some("rescue") => SlotId::Rescue,
            _ => {
                return Err(to_js_error(SessileError::InvalidOptions {
                    option: "slot",
                    reason: "must be \"a\", \"b\" or \"rescue\"".into(),
                }))
            }
        };
        let generation = integer(&last, "generation", u64::from(u16::MAX))
            .map_err(to_js_error)?
            .unwrap_or(0.0) as u16;
        Some((slot, generation))
    } else {
        None
    };
    let plan = slots::next_write(last_good);
    let obj = Object::new();
    set(&obj, "slot", &plan.slot.name().into());
    set(&obj, "generation", &JsValue::from(plan.generation));
    Ok(obj)
}
