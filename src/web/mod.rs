//! The WebAssembly side of sessile: thin drivers over browser APIs and the
//! `#[wasm_bindgen]` surface that `js/` wraps. Compiled only for wasm32; all
//! logic lives in `crate::core`.

mod convert;
pub mod crypt;
pub mod link;
pub mod session;
pub mod session_api;
#[cfg(feature = "size-probe")]
mod size_probe;
pub mod snapshot_api;
pub mod store;
pub mod store_api;

pub use self::crypt::EncryptionKey;
pub use self::link::{Link, LinkOptions};
pub use self::session::{ServerOptions, Session, SessionOptions};
pub use self::store::{Store, StoreOptions};

/// The heap of the wasm module: talc takes fewer bytes of wasm than Rust's
/// default dlmalloc (docs/PERFORMANCE.md). The module is single-threaded.
#[cfg(not(target_feature = "atomics"))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Prints Rust panics to the browser console (only with the `panic-hook`
/// feature: it costs size, and sessile's own paths return errors instead).
#[cfg(feature = "panic-hook")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn install_panic_hook() {
    console_error_panic_hook::set_once();
}
