
pub mod fake_rds_export;
