//! Writes the golden snapshot fixtures of format v1 into tests/fixtures/v1/.
//! Golden files never change once released: this tool only adds files that
//! do not exist yet and leaves every existing one as it is.
//!
//! `cargo run --example write_golden_fixtures`

use std::fs;
use std::path::Path;

use sessile::core::checksum::crc32;
use sessile::core::envelope::{
    encode, EnvelopeConfig, SnapshotMeta, DEFAULT_MAX_RAW_BYTES, FLAG_COMPRESSED, FLAG_ENCRYPTED,
    HEADER_LEN,
};

const DIR: &str = "tests/fixtures/v1";
const META: SnapshotMeta = SnapshotMeta {
    generation: 0,
    schema_version: 1,
    state_version: 1,
    modified_at_ms: 1_790_000_000_000,
};

fn checkout(target_len: usize) -> String {
    let mut items = Vec::new();
    let mut i = 0;
    loop {
        let item = format!(
            r#"{{"sku":"SKU-{i:05}","name":"Product {i}","qty":{},"price":{}.{:02}}}"#,
            i % 3 + 1,
            9 + i % 40,
            i % 100
        );
        let next = format!(
            r#"{{"step":"checkout","items":[{}]}}"#,
            [items.join(","), item.clone()].join(",")
        );
        if next.len() > target_len {
            break;
        }
        items.push(item);
        i += 1;
    }
    let base = format!(
        r#"{{"step":"checkout","items":[{}],"note":""}}"#,
        items.join(",")
    );
    let pad = target_len.saturating_sub(base.len());
    format!(
        r#"{{"step":"checkout","items":[{}],"note":"{}"}}"#,
        items.join(","),
        "n".repeat(pad)
    )
}

/// Recomputes the checksum after a deliberate header edit.
fn reseal(b: &mut [u8]) {
    let mut covered = b[..36].to_vec();
    covered.extend_from_slice(&b[HEADER_LEN..]);
    let sum = crc32(&covered);
    b[36..40].copy_from_slice(&sum.to_le_bytes());
}

/// A sealed snapshot of META with these flags, raw length and payload, which
/// the encoder would not write (hand-built deflate streams, bad text).
fn sealed(flags: u8, raw_len: u32, payload: &[u8]) -> Vec<u8> {
    let mut b = encode("", &META, &EnvelopeConfig::default()).unwrap();
    b[5] = flags;
    b[28..32].copy_from_slice(&raw_len.to_le_bytes());
    b[32..36].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    reseal(&mut b);
    b
}

/// A raw deflate stored block (RFC 1951 3.2.4) holding `data`.
fn stored_block(is_final: bool, data: &[u8]) -> Vec<u8> {
    let len = data.len() as u16;
    let mut block = vec![u8::from(is_final)];
    block.extend_from_slice(&len.to_le_bytes());
    block.extend_from_slice(&(!len).to_le_bytes());
    block.extend_from_slice(data);
    block
}

/// A final fixed-Huffman block (RFC 1951 3.2.6): the literal `a`, a match of
/// length 3 at distance 2 (one byte before the start of the output), the end
/// of block.
fn block_with_distance_before_start() -> Vec<u8> {
    let mut bits: Vec<bool> = Vec::new();
    let mut push = |code: u32, n: u32, msb_first: bool| {
        for i in 0..n {
            let at = if msb_first { n - 1 - i } else { i };
            bits.push(code >> at & 1 == 1);
        }
    };
    push(1, 1, false); // BFINAL
    push(1, 2, false); // BTYPE 01: fixed Huffman codes
    push(0x30 + u32::from(b'a'), 8, true); // literal `a`
    push(1, 7, true); // symbol 257: length 3
    push(1, 5, true); // distance code 1: distance 2
    push(0, 7, true); // symbol 256: end of block
    bits.chunks(8)
        .map(|byte| {
            byte.iter()
                .rev()
                .fold(0u8, |acc, &b| acc << 1 | u8::from(b))
        })
        .collect()
}

/// Block header of a final block of the reserved type 3: invalid.
const BAD_BLOCK: u8 = 0b111;

/// A good file whose JSON is an existing file or a hand-built snapshot;
/// `extra` is appended to its manifest entry (`"parse"`, `"js"`).
fn good_bytes(
    name: &str,
    json_file: &str,
    bytes: &[u8],
    meta: SnapshotMeta,
    extra: &str,
    manifest: &mut Vec<String>,
) {
    write(name, bytes, manifest, "ok");
    let entry = manifest.pop().unwrap();
    manifest.push(entry.replace(
        " }",
        &format!(
            r#", "json": "{json_file}", "schemaVersion": {}, "stateVersion": {}, "modifiedAt": {}, "compressed": {}{extra} }}"#,
            meta.schema_version,
            meta.state_version,
            meta.modified_at_ms,
            bytes[5] & 1 == 1
        ),
    ));
}

/// Writes `json` as `name` unless that file exists.
fn write_json(name: &str, json: &str) {
    let path = Path::new(DIR).join(name);
    if !path.exists() {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, json).unwrap();
    }
}

fn write(name: &str, bytes: &[u8], manifest: &mut Vec<String>, expect: &str) {
    let path = Path::new(DIR).join(name);
    if path.exists() {
        println!("kept    {name} (golden files never change)");
    } else {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        println!("wrote   {name} ({} bytes)", bytes.len());
    }
    manifest.push(format!(r#"  {{ "file": "{name}", "expect": "{expect}" }}"#));
}

fn good(
    name: &str,
    json: &str,
    meta: SnapshotMeta,
    cfg: &EnvelopeConfig,
    manifest: &mut Vec<String>,
) {
    let json_path = Path::new(DIR).join(format!("{name}.json"));
    if !json_path.exists() {
        fs::create_dir_all(json_path.parent().unwrap()).unwrap();
        fs::write(&json_path, json).unwrap();
    }
    let bytes = encode(json, &meta, cfg).unwrap();
    write(&format!("{name}.snap"), &bytes, manifest, "ok");
    let entry = manifest.pop().unwrap();
    manifest.push(entry.replace(
        " }",
        &format!(
            r#", "json": "{name}.json", "schemaVersion": {}, "stateVersion": {}, "modifiedAt": {}, "compressed": {} }}"#,
            meta.schema_version,
            meta.state_version,
            meta.modified_at_ms,
            bytes[5] & 1 == 1
        ),
    ));
}

fn main() {
    let cfg = EnvelopeConfig::default();
    let mut m = Vec::new();
    good("small", r#"{"step":"cart","items":[]}"#, META, &cfg, &mut m);
    good("empty-object", "{}", META, &cfg, &mut m);
    good(
        "unicode",
        r#"{"name":"Zoë Ødegård","city":"東京","note":"🛒 ✓"}"#,
        META,
        &cfg,
        &mut m,
    );
    let max = SnapshotMeta {
        generation: 0,
        schema_version: u32::MAX,
        state_version: u64::MAX,
        modified_at_ms: u64::MAX,
    };
    good("max-versions", r#"{"step":"success"}"#, max, &cfg, &mut m);
    let entry = m.pop().unwrap();
    m.push(entry.replace(
        " }",
        r#", "js": { "stateVersion": 18446744073709551616, "modifiedAt": 18446744073709551616 } }"#,
    ));
    good(
        "at-threshold",
        &checkout(cfg.compress_above),
        META,
        &cfg,
        &mut m,
    );
    good(
        "above-threshold",
        &checkout(cfg.compress_above + 1),
        META,
        &cfg,
        &mut m,
    );
    good("checkout-100k", &checkout(100 * 1024), META, &cfg, &mut m);

    let base = encode(r#"{"step":"cart","items":[]}"#, &META, &cfg).unwrap();
    let mut b = base.clone();
    b[0] = b'X';
    write("corrupt/bad-magic.snap", &b, &mut m, "BAD_MAGIC");
    let mut b = base.clone();
    b[4] = 2;
    reseal(&mut b);
    write(
        "corrupt/format-v2.snap",
        &b,
        &mut m,
        "UNSUPPORTED_FORMAT_VERSION",
    );
    let mut b = base.clone();
    b[5] = FLAG_ENCRYPTED;
    reseal(&mut b);
    write(
        "corrupt/encrypted-flag.snap",
        &b,
        &mut m,
        "UNSUPPORTED_FLAGS",
    );
    let mut b = base.clone();
    b[HEADER_LEN + 5] ^= 0x01;
    write("corrupt/flipped-bit.snap", &b, &mut m, "CHECKSUM_MISMATCH");
    write("corrupt/empty.snap", &[], &mut m, "TRUNCATED");
    write(
        "corrupt/truncated-header.snap",
        &base[..20],
        &mut m,
        "TRUNCATED",
    );
    write(
        "corrupt/truncated-payload.snap",
        &base[..base.len() - 3],
        &mut m,
        "TRUNCATED",
    );
    let mut b = base.clone();
    b.extend_from_slice(b"\n\n");
    write("corrupt/trailing-bytes.snap", &b, &mut m, "LENGTH_MISMATCH");

    let squeeze = EnvelopeConfig {
        compress_above: 0,
        compression_level: 9,
        ..cfg
    };
    let bomb_json = format!("\"{}\"", "0".repeat(1024 * 1024));
    let mut b = encode(&bomb_json, &META, &squeeze).unwrap();
    b[28..32].copy_from_slice(&1024u32.to_le_bytes());
    reseal(&mut b);
    write("corrupt/zip-bomb.snap", &b, &mut m, "INFLATE_OVERFLOW");
    let mut b = b.clone();
    b[28..32].copy_from_slice(&(6 * 1024 * 1024u32).to_le_bytes());
    reseal(&mut b);
    write("corrupt/declares-6mib.snap", &b, &mut m, "STATE_TOO_LARGE");
    let mut b = encode(&checkout(12_000), &META, &cfg).unwrap();
    for x in &mut b[HEADER_LEN..HEADER_LEN + 8] {
        *x = 0xFF;
    }
    reseal(&mut b);
    write("corrupt/bad-deflate.snap", &b, &mut m, "CORRUPT_PAYLOAD");

    let mut b = base.clone();
    b[HEADER_LEN + 2] = 0xFF; // never valid in UTF-8
    reseal(&mut b);
    write("corrupt/not-utf8.snap", &b, &mut m, "CORRUPT_PAYLOAD");
    let json = checkout(12_000);
    let mut b = encode(&json, &META, &cfg).unwrap();
    let cut = (b.len() - HEADER_LEN) / 2;
    b.truncate(HEADER_LEN + cut);
    b[32..36].copy_from_slice(&(cut as u32).to_le_bytes());
    reseal(&mut b);
    write(
        "corrupt/deflate-ends-short.snap",
        &b,
        &mut m,
        "LENGTH_MISMATCH",
    );

    // Old schema versions of one checkout state, for migration tests: schema 1
    // called the e-mail `mail` and had no step; schema 2 added the step;
    // schema 3 (current in the tests) renames `mail` to `email`.
    let schema = |v: u32, json: &str, m: &mut Vec<String>| {
        let meta = SnapshotMeta {
            schema_version: v,
            state_version: 4,
            ..META
        };
        good(&format!("schema/checkout-schema{v}"), json, meta, &cfg, m);
    };
    schema(
        1,
        r#"{"mail":"a@example.com","items":[{"sku":"TEE-1","qty":2}]}"#,
        &mut m,
    );
    schema(
        2,
        r#"{"mail":"a@example.com","step":"checkout","items":[{"sku":"TEE-1","qty":2}]}"#,
        &mut m,
    );
    schema(
        3,
        r#"{"email":"a@example.com","step":"checkout","items":[{"sku":"TEE-1","qty":2}]}"#,
        &mut m,
    );
    schema(
        4,
        r#"{"email":"a@example.com","step":"checkout","items":[],"currency":"EUR"}"#,
        &mut m,
    );

    more_rules(&cfg, &mut m);

    // The manifest only lists files; it is rewritten, the files above are not.
    let manifest = format!("[\n{}\n]\n", m.join(",\n"));
    fs::write(Path::new(DIR).join("manifest.json"), manifest).unwrap();
    println!("wrote   manifest.json ({} files)", m.len());
}

/// The files for rules that FORMAT.md states and the first files did not
/// check (issue 15): the order of the checks, each deflate outcome of step 9,
/// text that is not strict UTF-8 or not JSON, numbers beyond 2^53, the
/// 5 MiB limit, and streams the encoder would never write.
fn more_rules(cfg: &EnvelopeConfig, m: &mut Vec<String>) {
    let small = r#"{"step":"cart","items":[]}"#;
    let base = encode(small, &META, cfg).unwrap();
    let raw = small.len() as u32;

    // Steps 1 to 3: magic, version, then length.
    let mut b = base.clone();
    b[4] = 0;
    reseal(&mut b);
    write("corrupt/format-v0.snap", &b, m, "BAD_MAGIC");
    write("corrupt/short-not-magic.snap", b"SX", m, "BAD_MAGIC");
    write("corrupt/short-magic-prefix.snap", b"SSN", m, "TRUNCATED");
    write("corrupt/magic-only.snap", b"SSNP", m, "TRUNCATED");
    write(
        "corrupt/format-v2-short.snap",
        b"SSNP\x02",
        m,
        "UNSUPPORTED_FORMAT_VERSION",
    );
    let mut b = base.clone();
    b[4] = 2;
    reseal(&mut b);
    b.extend_from_slice(b"\n\n");
    write(
        "corrupt/format-v2-trailing-bytes.snap",
        &b,
        m,
        "UNSUPPORTED_FORMAT_VERSION",
    );
    let mut b = base.clone();
    b[0] = b'X';
    b[4] = 2;
    write("corrupt/bad-magic-format-v2.snap", &b, m, "BAD_MAGIC");

    // Steps 5 to 8: checksum, flags, limit, uncompressed length.
    let mut b = base.clone();
    b[5] = 0x80;
    reseal(&mut b);
    write("corrupt/unknown-flag.snap", &b, m, "UNSUPPORTED_FLAGS");
    let mut b = base.clone();
    b[5] = 0x80;
    write(
        "corrupt/unknown-flag-bad-checksum.snap",
        &b,
        m,
        "CHECKSUM_MISMATCH",
    );
    let mut b = base.clone();
    b[5] = FLAG_ENCRYPTED;
    b[28..32].copy_from_slice(&(6 * 1024 * 1024u32).to_le_bytes());
    reseal(&mut b);
    write(
        "corrupt/encrypted-declares-6mib.snap",
        &b,
        m,
        "UNSUPPORTED_FLAGS",
    );
    let mut b = base.clone();
    b[28..32].copy_from_slice(&(6 * 1024 * 1024u32).to_le_bytes());
    reseal(&mut b);
    write(
        "corrupt/uncompressed-declares-6mib.snap",
        &b,
        m,
        "STATE_TOO_LARGE",
    );
    let limit = DEFAULT_MAX_RAW_BYTES as u32;
    let over = sealed(
        FLAG_COMPRESSED,
        limit + 1,
        &[stored_block(true, small.as_bytes())].concat(),
    );
    write(
        "corrupt/declares-5mib-plus-1.snap",
        &over,
        m,
        "STATE_TOO_LARGE",
    );
    let mut b = base.clone();
    b[28..32].copy_from_slice(&(raw - 6).to_le_bytes());
    reseal(&mut b);
    write("corrupt/raw-length-differs.snap", &b, m, "LENGTH_MISMATCH");

    // Step 9: each way a deflate stream can disagree with the raw length.
    let whole = stored_block(true, small.as_bytes());
    let open = stored_block(false, small.as_bytes());
    let deflated =
        |raw_len: u32, parts: &[&[u8]]| sealed(FLAG_COMPRESSED, raw_len, &parts.concat());
    let cases: [(&str, Vec<u8>, &str); 10] = [
        ("deflate-empty", deflated(raw, &[]), "LENGTH_MISMATCH"),
        ("deflate-empty-raw-0", deflated(0, &[]), "CORRUPT_PAYLOAD"),
        (
            "deflate-complete-short",
            deflated(raw + 1, &[&whole]),
            "LENGTH_MISMATCH",
        ),
        (
            "deflate-trailing-bytes",
            deflated(raw, &[&whole, &[0]]),
            "CORRUPT_PAYLOAD",
        ),
        (
            "deflate-short-and-trailing-bytes",
            deflated(raw + 1, &[&whole, &[0]]),
            "LENGTH_MISMATCH",
        ),
        (
            "deflate-ends-at-raw-length",
            deflated(raw, &[&open]),
            "CORRUPT_PAYLOAD",
        ),
        (
            "deflate-breaks-at-raw-length",
            deflated(raw, &[&open, &[BAD_BLOCK]]),
            "CORRUPT_PAYLOAD",
        ),
        (
            "deflate-breaks-before-raw-length",
            deflated(raw + 1, &[&open, &[BAD_BLOCK]]),
            "CORRUPT_PAYLOAD",
        ),
        (
            "deflate-overflow-then-breaks",
            deflated(raw - 1, &[&open, &[BAD_BLOCK]]),
            "INFLATE_OVERFLOW",
        ),
        (
            "deflate-distance-before-start",
            deflated(4, &[&block_with_distance_before_start()]),
            "CORRUPT_PAYLOAD",
        ),
    ];
    for (name, bytes, expect) in cases {
        write(&format!("corrupt/{name}.snap"), &bytes, m, expect);
    }

    // Step 10: strict UTF-8.
    let texts: [(&str, &[u8]); 5] = [
        ("utf8-surrogate", b"\xED\xA0\x80"),
        ("utf8-overlong-2", b"\xC0\xAF"),
        ("utf8-overlong-3", b"\xE0\x80\xAF"),
        ("utf8-above-max", b"\xF4\x90\x80\x80"),
        ("utf8-cut", b"\xE2\x82"),
    ];
    for (name, bad) in texts {
        let text = [br#"{"s":""#.as_slice(), bad, br#""}"#].concat();
        let b = sealed(0, text.len() as u32, &text);
        write(&format!("corrupt/{name}.snap"), &b, m, "CORRUPT_PAYLOAD");
    }

    // Good files the first ones did not cover.
    let edges = "{\"s\":\"\u{7F}\u{80}\u{7FF}\u{800}\u{FEFF}\u{FFFF}\u{10000}\u{10FFFF}\"}";
    write_json("utf8-edges.json", edges);
    good_bytes(
        "utf8-edges.snap",
        "utf8-edges.json",
        &encode(edges, &META, cfg).unwrap(),
        META,
        "",
        m,
    );
    let bom = "\u{FEFF}{\"step\":\"cart\"}";
    write_json("bom.json", bom);
    good_bytes(
        "bom.snap",
        "bom.json",
        &encode(bom, &META, cfg).unwrap(),
        META,
        r#", "parse": "INVALID_STATE""#,
        m,
    );
    let big = SnapshotMeta {
        state_version: (1 << 53) + 1,
        modified_at_ms: (1 << 53) - 1,
        ..META
    };
    good_bytes(
        "beyond-safe-integer.snap",
        "small.json",
        &encode(small, &big, cfg).unwrap(),
        big,
        r#", "js": { "stateVersion": 9007199254740992, "modifiedAt": 9007199254740991 }"#,
        m,
    );
    let level9 = EnvelopeConfig {
        compression_level: 9,
        ..*cfg
    };
    let json = checkout(cfg.compress_above + 1);
    good_bytes(
        "deflate-level9.snap",
        "above-threshold.json",
        &encode(&json, &META, &level9).unwrap(),
        META,
        "",
        m,
    );
    let (head, tail) = small.as_bytes().split_at(10);
    let blocks = [
        stored_block(false, head),
        stored_block(false, tail),
        stored_block(false, b""),
        stored_block(true, b""),
    ]
    .concat();
    good_bytes(
        "deflate-stored-blocks.snap",
        "small.json",
        &sealed(FLAG_COMPRESSED, raw, &blocks),
        META,
        "",
        m,
    );
    let pad = DEFAULT_MAX_RAW_BYTES - r#"{"pad":""}"#.len();
    let json = format!(r#"{{"pad":"{}"}}"#, "a".repeat(pad));
    write_json("exactly-5mib.json", &json);
    good_bytes(
        "exactly-5mib.snap",
        "exactly-5mib.json",
        &encode(&json, &META, &level9).unwrap(),
        META,
        "",
        m,
    );
}
