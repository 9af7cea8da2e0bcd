//! The connectors: one module per system.

pub mod embedded;
pub mod rest;
