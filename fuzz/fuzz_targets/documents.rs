//! CLI input (`mcpguard check -f`, `mcpguard mutate -f`): multi-document YAML, JSON streams
//! and `kind: List`. Splitting must answer Ok or Err, never panic, and every object it
//! returns must have a string `kind`, as the CLI relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpguard_core::documents;

fn split(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(objects) = documents::split(text, "fuzz") {
        for object in &objects {
            assert!(object.index >= 1, "document index is 1-based");
            assert!(
                object.object.get("kind").is_some_and(|k| k.is_string()),
                "split returned an object without a string kind"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| split(data));
