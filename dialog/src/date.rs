//! Calendar dates without a clock: the engine passes "today" in, and date
//! slots ("tomorrow", "Monday", "12月3日") are resolved against it. The type
//! is `voxbridge-entities`' (one `Date` for slots and entities alike); this
//! module keeps the `voxbridge_dialog::date::Date` path.

pub use voxbridge_entities::Date;
