//! Writes the golden snapshot fixtures of format v1 into tests/fixtures/v1/.
//! Golden files never change once released: this tool only adds files that
//! do not exist yet and leaves every existing one as it is.
//!
//! `cargo run --example write_golden_fixtures`

use std::fs;
use std::path::Path;

use sessile::core::checksum::crc32;
use sessile::core::envelope::{encode, EnvelopeConfig, SnapshotMeta, FLAG_ENCRYPTED, HEADER_LEN};

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

    // The manifest only lists files; it is rewritten, the files above are not.
    let manifest = format!("[\n{}\n]\n", m.join(",\n"));
    fs::write(Path::new(DIR).join("manifest.json"), manifest).unwrap();
    println!("wrote   manifest.json ({} files)", m.len());
}
