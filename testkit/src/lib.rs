//! Local stand-ins for the clouds backup-bridge talks to, used by tests and `make demo`.

pub mod fake_wecom;
