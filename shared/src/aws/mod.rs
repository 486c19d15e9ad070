//! Amazon RDS: snapshot lookup, snapshot export tasks and their identifiers.

pub mod export_id;
pub mod rds;
pub mod rds_client;
mod rds_error;
