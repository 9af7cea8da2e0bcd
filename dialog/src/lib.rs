//! voxbridge dialog scripts.
//!
//! This crate will own the YAML call-flow format, its validator and a sans-IO
//! interpreter (events in, commands out). Until that lands the engine runs its
//! built-in flow (`voxbridge_engine::flow::DefaultFlow`); nothing here is wired
//! in yet, on purpose, so no caller depends on behaviour that does not exist.
