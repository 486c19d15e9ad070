//! The S3 notification parser on arbitrary JSON: every record gets a result of its own.
#![no_main]

use backup_bridge::events::{S3Notification, parse_s3_notification};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let listed = event
        .get("Records")
        .and_then(serde_json::Value::as_array)
        .map(Vec::len);
    if let Ok(S3Notification::Records(records)) = parse_s3_notification(event) {
        assert_eq!(Some(records.len()), listed);
    }
});
