//! voxbridge CRM/ERP bridge.
//!
//! This crate will own the connector trait and its connectors (generic REST,
//! Tryton, Request Tracker, vendor CRMs, an embedded SQLite CRM), the
//! request-path resilience (timeouts, retries, circuit breaker, cache) and the
//! durable outbox that writes every call back to the CRM. It is empty until
//! that work lands; the engine does not call it yet.
