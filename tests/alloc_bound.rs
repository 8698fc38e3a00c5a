//! Decoding never allocates more than it must: a counting global allocator
//! records the largest single allocation while hostile fixtures are decoded.
//! (One test in this binary, so no other test's allocations interfere.)
#![cfg(not(target_arch = "wasm32"))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use sessile::core::envelope::{decode, EnvelopeConfig};

struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

fn largest_allocation_while(f: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::Relaxed);
    f();
    LARGEST.load(Ordering::Relaxed)
}

#[test]
fn hostile_snapshots_cannot_make_the_decoder_allocate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1/corrupt");
    let bomb = std::fs::read(format!("{dir}/zip-bomb.snap")).unwrap();
    let liar = std::fs::read(format!("{dir}/declares-6mib.snap")).unwrap();
    let cfg = EnvelopeConfig::default();

    // Inflates to 1 MiB, declares 1 KiB: output is capped at 1 KiB and one
    // byte (the byte that tells overflow from damage); the largest block is
    // the inflater's own state (its 32 KiB window and tables, about 43 KB).
    let peak = largest_allocation_while(|| {
        assert_eq!(decode(&bomb, &cfg).unwrap_err().code(), "INFLATE_OVERFLOW");
    });
    assert!(peak <= 64 * 1024, "largest allocation {peak} B");

    // Declares 6 MiB over a 5 MiB limit: refused before allocating the output.
    let peak = largest_allocation_while(|| {
        assert_eq!(decode(&liar, &cfg).unwrap_err().code(), "STATE_TOO_LARGE");
    });
    assert!(peak <= 64 * 1024, "largest allocation {peak} B");

    // The same 6 MiB snapshot under a 7 MiB limit does allocate 6 MiB (the
    // counter works), and then finds the stream too short.
    let roomy = EnvelopeConfig {
        max_raw_bytes: 7 * 1024 * 1024,
        ..cfg
    };
    let peak = largest_allocation_while(|| {
        assert!(decode(&liar, &roomy).is_err());
    });
    assert!(peak >= 6 * 1024 * 1024, "largest allocation {peak} B");
}
