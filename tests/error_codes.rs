//! The error codes of the npm package come from Rust: js/src/errors.ts's
//! `SESSILE_ERROR_CODES` must be `SessileError::CODES` (src/core/error.rs),
//! in its order, without the codes the link answers itself, followed by the
//! few codes only the package's JavaScript can raise. A code added to or
//! removed from either side fails here until the other side follows.
#![cfg(not(target_arch = "wasm32"))]

use sessile::SessileError;

/// Codes of `SessileError` that never reach a page as an error, each with
/// what the link does instead (docs/PROTOCOL.md).
const NOT_ON_THE_PAGE: [(&str, &str); 4] = [
    ("VERSION_CONFLICT", "becomes a `conflict` event"),
    ("VERSION_AHEAD", "a resync from version 0"),
    ("OP_OUT_OF_ORDER", "a resync"),
    (
        "SESSION_LIMIT_REACHED",
        "answered only to a backend that creates sessions with a `key`",
    ),
];

/// Codes only the package's JavaScript raises, each with why.
const PACKAGE_ONLY: [(&str, &str); 3] = [
    (
        "SERVER_UNREACHABLE",
        "the TypeScript link's fetch to create a session failed",
    ),
    (
        "WASM_LOAD_FAILED",
        "the module could not load, so no Rust runs",
    ),
    (
        "HANDLER_FAILED",
        "one of the page's own event handlers threw",
    ),
];

/// The quoted strings of `SESSILE_ERROR_CODES = [ ... ]` in errors.ts.
fn package_codes() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/js/src/errors.ts");
    let text = std::fs::read_to_string(path).expect("js/src/errors.ts");
    let start = text
        .find("SESSILE_ERROR_CODES = [")
        .expect("errors.ts declares SESSILE_ERROR_CODES = [");
    let list = &text[start..];
    let list = &list[list.find('[').unwrap() + 1..list.find(']').expect("the list ends")];
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or_else(|| panic!("not a quoted code: {s}"))
                .to_string()
        })
        .collect()
}

#[test]
fn the_package_lists_the_codes_of_rust() {
    let skipped: Vec<&str> = NOT_ON_THE_PAGE.iter().map(|(c, _)| *c).collect();
    let mut expected: Vec<&str> = SessileError::CODES
        .iter()
        .copied()
        .filter(|c| !skipped.contains(c))
        .collect();
    expected.extend(PACKAGE_ONLY.iter().map(|(c, _)| *c));
    assert_eq!(
        package_codes(),
        expected,
        "js/src/errors.ts SESSILE_ERROR_CODES must be SessileError::CODES \
         (src/core/error.rs) without NOT_ON_THE_PAGE, then PACKAGE_ONLY"
    );
}

#[test]
fn the_exceptions_are_real() {
    for (code, _) in NOT_ON_THE_PAGE {
        assert!(SessileError::CODES.contains(&code), "{code} is a Rust code");
    }
    for (code, _) in PACKAGE_ONLY {
        assert!(
            !SessileError::CODES.contains(&code),
            "{code} is not (yet) a Rust code"
        );
    }
}
