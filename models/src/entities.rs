//! Entities in what the caller said or typed, in English and Chinese:
//! digit strings, numbers, order ids, yes/no/unsure and dates.
//!
//! The reader is `voxbridge-entities`, the workspace's one copy (the dialog
//! interpreter fills its slots with the same functions); it is re-exported
//! here so `voxbridge_models::entities::…` keeps working for the engine.

pub use voxbridge_entities::*;
