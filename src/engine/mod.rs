//! The recognise -> act loop.

pub mod classify;
pub mod artifacts;
pub mod pairing;
