//! The recognise -> act loop.

pub mod artifacts;
pub mod classify;
pub mod explain;
pub mod guard;
pub mod pairing;
pub mod reading;
pub mod snapshot;
