//! Any bytes as a policy file: `parse_str` must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(file) = czero_policy::parse_str("fuzz.yml", &text) {
        // Validated policies must serialise and report their needs without panicking.
        for p in &file.policies {
            let _ = p.needs();
            let _ = p.resource_ids(&p.raw);
        }
    }
});
