//! Runs the page's schema migrations on a restored state: `migrate[v]` turns
//! a state of schema v into schema v + 1. A missing or throwing migration is
//! MIGRATION_FAILED and a newer stored schema SCHEMA_TOO_NEW; in both cases
//! nothing is written, so the stored copy stays as it was.

use js_sys::{Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::core::error::SessileError;
use crate::core::schema::migration_steps;

use super::convert::{js_message, json_to_state, state_to_json};

/// Returns the state's JSON at schema `current`, and whether it changed.
pub(crate) fn migrate(
    json: &str,
    stored: u32,
    current: u32,
    migrations: &JsValue,
) -> Result<(String, bool), SessileError> {
    let steps = migration_steps(stored, current)?;
    if steps.is_empty() {
        return Ok((json.to_owned(), false));
    }
    let mut state = json_to_state(json)?;
    for from in steps {
        let failed = |reason: String| SessileError::MigrationFailed { from, reason };
        let f: Function = Reflect::get(migrations, &JsValue::from(from))
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| failed(format!("no migration function migrate[{from}]")))?;
        state = f
            .call1(&JsValue::NULL, &state)
            .map_err(|e| failed(js_message(&e)))?;
        if state.is_undefined() {
            return Err(failed("the migration returned undefined".into()));
        }
    }
    Ok((state_to_json(&state)?, true))
}
