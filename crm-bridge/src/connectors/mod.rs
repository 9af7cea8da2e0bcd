//! The connectors: one module per system.

pub mod call_text;
pub mod embedded;
pub mod hubspot;
pub mod odoo;
pub mod rest;
pub mod rt;
pub mod salesforce;
pub mod tryton;
pub mod vendor;
pub mod zendesk;
