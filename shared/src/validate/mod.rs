//! Verdicts on backups and snapshots, as structured results for the alerting code.

pub mod backup;
pub mod snapshot;
