//! Runs one target's check on files, without libFuzzer or a nightly
//! compiler: `cargo run -p sessile-fuzz-checks --example replay -- TARGET
//! FILE...` (with `SESSILE_FUZZ_TRACE=1`, the session engine prints each
//! call and answer). A panic shows the invariant that failed.

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay TARGET FILE...");
    let (_, check) = sessile_fuzz_checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("unknown target {target}"));
    for file in args {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
        check(&data);
        println!("{file}: ok");
    }
}
