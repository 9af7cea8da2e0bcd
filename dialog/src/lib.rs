//! voxbridge dialog scripts: the YAML call-flow format a contact-centre
//! engineer edits, its validator, and a sans-IO interpreter the engine
//! drives with events and whose commands it carries out.
//!
//! - [`format`](mod@format): the script types (and, generated from them, [`schema`]).
//! - [`load`] reads files (imports included) with `file:line:column` errors;
//!   [`validate`] finds everything wrong before a call.
//! - [`interp`]: [`Program`] (a validated script, shared by calls) and
//!   [`Interpreter`] (one call): [`Event`]s in, [`Command`]s out, a
//!   transcript and a [`CallRecord`] at the end.
//! - [`cli`]: `check`, `graph`, `chat`, `test-dialog` for the binary, built
//!   on [`graph`], [`chat`], [`convtest`] and [`sim`].
//!
//! See REFERENCE.md in this crate for the script format.

// The format and reading it.
pub mod diag;
pub mod format;
pub mod load;
pub mod schema;
pub mod source;
pub mod value;

// What scripts compute with.
pub mod date;
pub mod expr;
pub mod extract;
pub mod template;

// Checking and running.
pub mod analysis;
pub mod interp;
pub mod validate;

// Tools around a script.
pub mod chat;
pub mod cli;
pub mod convtest;
pub mod demo;
pub mod graph;
pub mod nlu;
pub mod sim;

pub use interp::{CallRecord, CallStart, Command, Event, Heard, Interpreter, Listen, Program};
