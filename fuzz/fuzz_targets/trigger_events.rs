//! The trigger parsers of the pull and export functions on arbitrary JSON: each returns a
//! trigger or an error, never panics.
#![no_main]

use backup_bridge::events::rds::{parse_export_poll, parse_export_start, parse_rds_event};
use backup_bridge::jobs::pull::PullTrigger;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = parse_rds_event(&event);
    let _ = parse_export_start(&event);
    let _ = parse_export_poll(&event);
    let _ = PullTrigger::from_event(&event);
});
