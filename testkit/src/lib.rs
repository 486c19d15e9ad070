//! Test support for backup-bridge: local stand-ins for the clouds the functions talk to.

pub mod fake_oss;
pub mod fake_rds;
