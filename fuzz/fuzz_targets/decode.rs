//! Every dialect's decoder on arbitrary bytes: must never panic, and a
//! rejection must always say why. The first byte picks the dialect.
#![no_main]

use std::sync::OnceLock;

use corrections_gateway::formats::{Dialect, Formats};
use libfuzzer_sys::fuzz_target;

fn formats() -> &'static Formats {
    static F: OnceLock<Formats> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings");
        Formats::load(&dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let dialect = Dialect::ALL[usize::from(pick) % Dialect::ALL.len()];
    match formats().decode(dialect, bytes, None) {
        Ok(doc) => {
            let _ = formats().encode(dialect, &doc);
        }
        Err(v) => assert!(!v.is_empty() && v.iter().all(|v| !v.code.is_empty())),
    }
});
