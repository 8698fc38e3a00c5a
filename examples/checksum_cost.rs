//! Measures what the snapshot checksum costs: sessile's CRC-32 (slice-by-8,
//! tables built at first use), a plain byte-table CRC-32, and the 64-bit
//! hashes xxh64 and xxh3-64, on a 100 KB and a 10 KB checkout JSON.
//! Native, release build; the browser figures come from `make bench`.
//!
//! `cargo run --release --example checksum_cost`

use std::hint::black_box;
use std::time::Instant;

use sessile::core::checksum::crc32;

fn crc32_bytewise(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| {
        (c >> 8) ^ t[((c ^ b as u32) & 0xFF) as usize]
    })
}

fn checkout(len: usize) -> Vec<u8> {
    let mut s = String::from("{\"items\":[");
    let mut i = 0;
    while s.len() < len - 2 {
        s.push_str(&format!(
            "{{\"sku\":\"SKU-{i:05}\",\"qty\":{},\"price\":{}.99}},",
            i % 4 + 1,
            i % 90
        ));
        i += 1;
    }
    let mut v = s.into_bytes();
    v.truncate(len);
    v
}

/// Median microseconds of `f` over 301 runs after 50 warm-up runs.
fn median_us(mut f: impl FnMut() -> u64) -> f64 {
    for _ in 0..50 {
        black_box(f());
    }
    let mut times: Vec<f64> = (0..301)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    println!(
        "{:<28} {:>12} {:>12} {:>10}",
        "checksum", "100 KB (us)", "10 KB (us)", "GB/s"
    );
    let big = checkout(100 * 1024);
    let small = checkout(10 * 1024);
    type Hash = fn(&[u8]) -> u64;
    let rows: [(&str, Hash); 4] = [
        ("CRC-32 slice-by-8 (sessile)", |d| u64::from(crc32(d))),
        ("CRC-32 byte table", |d| u64::from(crc32_bytewise(d))),
        ("xxh64", |d| xxhash_rust::xxh64::xxh64(d, 0)),
        ("xxh3-64", xxhash_rust::xxh3::xxh3_64),
    ];
    for (name, hash) in rows {
        let b = median_us(|| hash(black_box(&big)));
        let s = median_us(|| hash(black_box(&small)));
        println!(
            "{name:<28} {b:>12.2} {s:>12.2} {:>10.2}",
            big.len() as f64 / b / 1e3
        );
    }
}
