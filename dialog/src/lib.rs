//! voxbridge dialog scripts: the YAML call-flow format, its validator, and a
//! sans-IO interpreter (events in, commands out).

pub mod analysis;
pub mod chat;
pub mod cli;
pub mod convtest;
pub mod date;
pub mod demo;
pub mod diag;
pub mod expr;
pub mod extract;
pub mod format;
pub mod graph;
pub mod interp;
pub mod load;
pub mod nlu;
pub mod schema;
pub mod sim;
pub mod source;
pub mod template;
pub mod validate;
pub mod value;
