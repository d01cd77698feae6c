//! The developer kit: what adapter developers and tests use, and the product never does — the
//! recorded pages and their loader, the sandbox portals, held-out corpus scoring, the checklist,
//! fixture promotion and the sandbox's mail delivery. Layers point one way: `kit` imports the
//! product; `provider`, `engine`, `queue`, `worker`, `api`, `codes`, `browser` never import `kit`
//! (`tests/layers.rs`).

pub mod alerts_demo;
pub mod checklist;
pub mod corpus;
pub mod fixtures;
pub mod mailbox;
pub mod promote;
pub mod sandbox;
