//! Replays every file of `fuzz/corpus/<target>/` through that target's
//! check, as a regression test: the inputs the fuzzer kept (and every input
//! that once crashed a target) must keep passing. Runs under `cargo test`
//! with the stable compiler; no libFuzzer is involved.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use sessile_fuzz_checks::TARGETS;

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus file of `target`; fails listing each file that panics.
fn replay(target: &str) {
    let (_, check) = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target");
    let files = corpus_files(target);
    assert!(!files.is_empty(), "fuzz/corpus/{target}/ is empty");
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable corpus file");
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} fail: {failed:#?}",
        failed.len(),
        files.len()
    );
}

macro_rules! replay_tests {
    ($($target:ident),* $(,)?) => {
        $(
            #[test]
            fn $target() {
                replay(stringify!($target));
            }
        )*

        #[test]
        fn every_target_is_replayed() {
            let replayed = [$(stringify!($target)),*];
            let targets: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(targets, replayed);
        }
    };
}

replay_tests!(
    snapshot_decode,
    frame_to_server,
    frame_to_client,
    merge_patch,
    declared_flow,
    slot_restore,
    session_engine,
    link_engine,
    client_session,
);
