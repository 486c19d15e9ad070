//! Local stand-ins for AWS and Aliyun used by tests and `make demo`.

pub mod fake_rds;
