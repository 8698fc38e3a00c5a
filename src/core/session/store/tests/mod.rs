//! Tests of the store engine against a fake storage that executes its
//! commands: the cases of the TypeScript store's tests, the rebase of a
//! synced tab's changes, and a seeded property test of two tabs.

mod harness;
#[cfg(not(target_arch = "wasm32"))]
mod key_tests;
mod open_tests;
mod prop_tests;
mod tabs_tests;
mod write_tests;
