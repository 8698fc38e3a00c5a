//! The WebAssembly side of sessile: thin drivers over browser APIs and the
//! `#[wasm_bindgen]` surface that `js/` wraps. Compiled only for wasm32; all
//! logic lives in `crate::core`.

mod convert;
mod locks;
mod migrate;
mod page;
pub mod snapshot_api;
mod storage;
mod store;
pub mod store_api;
mod store_options;
mod store_restore;
mod store_write;
mod tabs;

/// Prints Rust panics to the browser console (only with the `panic-hook`
/// feature: it costs size, and sessile's own paths return errors instead).
#[cfg(feature = "panic-hook")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn install_panic_hook() {
    console_error_panic_hook::set_once();
}
