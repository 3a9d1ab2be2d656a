//! The loop `bench --formats` times, run a fixed number of times, so that
//! `valgrind --tool=callgrind` gives a repeatable instruction count per
//! document (run once with `N=0` for the set-up cost and subtract):
//!
//! ```sh
//! N=200 FIXTURE=court/handover.notice.xml valgrind --tool=callgrind \
//!     target/release/examples/formatsloop
//! ```
//!
//! `FIXTURE` is a path below `tests/fixtures/native/` (default: the court
//! notice); the dialect is its directory.
use corrections_gateway::config::Settings;
use corrections_gateway::formats::Dialect;
use corrections_gateway::tools::Engines;
use std::path::Path;

// The gateway binary's allocator (src/main.rs), so the count is the bench's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture =
        std::env::var("FIXTURE").unwrap_or_else(|_| "court/handover.notice.xml".to_owned());
    let n: u32 = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let dialect = fixture
        .split('/')
        .next()
        .and_then(Dialect::parse)
        .expect("FIXTURE starts with a dialect directory");
    let engines = Engines::load(&Settings::for_dir(root)).expect("engines");
    let bytes = std::fs::read(root.join("tests/fixtures/native").join(&fixture)).expect("fixture");
    let mut ok = 0u32;
    for _ in 0..n {
        // Exactly the work `bench --formats` times per document.
        let doc = engines.check(dialect, &bytes).ok();
        if doc
            .and_then(|d| engines.formats.encode(dialect, &d).ok())
            .is_some()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, n, "every run must translate cleanly");
    println!("{fixture}: {n} translations");
}
