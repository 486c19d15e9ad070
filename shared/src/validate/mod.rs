//! Verdicts on backups: whether what the clouds hold is recent, complete and downloadable.

pub mod backup;
