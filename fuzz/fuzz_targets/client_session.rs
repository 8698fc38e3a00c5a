#![no_main]
// The checks and what they assert: fuzz/checks/src (docs/FUZZING.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| sessile_fuzz_checks::client_session::check(data));
