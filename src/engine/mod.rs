//! The recognise -> act loop.

pub mod artifacts;
pub mod classify;
pub mod pairing;
