//! pairing-worker: logs restaurants back into delivery-platform merchant portals with a real
//! browser, and says exactly what broke and how to fix it.
//!
//! Data flows one way: provider spec + browser -> engine -> [`outcome::Outcome`] -> caller.
//! docs/architecture.md draws the layers; tests/layers.rs holds every import to them.

pub mod alerts;
pub mod api;
pub mod browser;
pub mod codes;
pub mod digits;
pub mod engine;
#[cfg(feature = "kit")]
pub mod kit;
pub mod metrics;
pub mod outcome;
pub mod provider;
pub mod queue;
pub mod reach;
pub mod secret;
pub mod webhook_delivery;
pub mod worker;
