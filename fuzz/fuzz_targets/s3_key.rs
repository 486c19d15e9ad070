//! The S3 event key decoder on arbitrary text: it must return a key or an error naming the raw
//! key, never panic, and a decoded key is never longer than the raw one.
#![no_main]

use backup_bridge::events::decode_s3_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    match decode_s3_key(raw) {
        Ok(key) => assert!(key.len() <= raw.len()),
        Err(error) => assert_eq!(error.raw, raw),
    }
});
