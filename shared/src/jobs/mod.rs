//! One domain function per Lambda, taking ports rather than clients.

pub mod sync;
