//! One domain function per Lambda; each takes ports, never SDK clients.

pub mod export_poll;
pub mod export_start;
pub mod pull;
pub mod reconcile;
pub mod sync;
