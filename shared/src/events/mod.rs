//! Trigger events: what starts each job, parsed into plain types.

pub mod rds;
