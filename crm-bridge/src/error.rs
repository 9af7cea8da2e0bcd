//! What can go wrong talking to a CRM, as one enum the dialog and the outbox
//! can act on.
//!
//! Errors are `Clone` because one failed lookup can be handed to several
//! coalesced callers, and they carry only text (never the request body) so
//! they cannot leak a caller's data into a log line by accident.

use thiserror::Error;

use crate::connector::Operation;

/// A failure of one operation against one system.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum CrmError {
    /// No reply within the operation's time budget.
    #[error("{system}: timed out after {after_ms} ms")]
    Timeout { system: String, after_ms: u64 },
    /// The connection could not be made or broke off.
    #[error("{system}: cannot reach the server: {message}")]
    Connect { system: String, message: String },
    /// A 5xx or 429: the server is there but not serving.
    #[error("{system}: HTTP {status} from {endpoint}: {snippet}")]
    Unavailable {
        system: String,
        status: u16,
        endpoint: String,
        snippet: String,
    },
    /// A 4xx other than 401/403/404: the request itself is wrong, so sending
    /// it again will not help.
    #[error("{system}: request rejected with HTTP {status} by {endpoint}: {snippet}")]
    Rejected {
        system: String,
        status: u16,
        endpoint: String,
        snippet: String,
    },
    /// Credentials missing, wrong or expired (401/403, a failed login).
    #[error("{system}: authentication failed: {message}")]
    Auth { system: String, message: String },
    /// A 200 carrying an HTML page where JSON was expected: typically a
    /// single-sign-on login page in front of the API.
    #[error("{system}: answered with an HTML page instead of JSON (a login page? check the URL and credentials): {snippet}")]
    Html { system: String, snippet: String },
    /// The body claimed to be JSON but does not parse.
    #[error("{system}: malformed JSON in the reply at line {line} column {column}: {message}")]
    MalformedJson {
        system: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// The body exceeded the configured limit and was not read further.
    #[error("{system}: reply larger than the {limit}-byte limit")]
    TooLarge { system: String, limit: usize },
    /// Valid JSON of the wrong shape, or an error reported inside a 200
    /// (JSON-RPC errors, SOAP-style faults).
    #[error("{system}: unexpected reply: {message}")]
    Protocol { system: String, message: String },
    /// The circuit breaker is open: the system failed repeatedly and is
    /// given time to recover before it is called again.
    #[error("{system}: circuit open after repeated failures, next try in {retry_in_ms} ms")]
    CircuitOpen { system: String, retry_in_ms: u64 },
    /// The connector does not implement this operation.
    #[error("{system}: `{op}` is not supported by this connector")]
    Unsupported { system: String, op: Operation },
    /// No system is configured for this operation.
    #[error("no system is configured for `{0}`")]
    NotConfigured(Operation),
    /// The embedded database failed.
    #[error("{system}: storage error: {message}")]
    Storage { system: String, message: String },
    /// The data handed to the connector cannot be sent (an unmappable
    /// field, an invalid phone number, a template naming an unknown value).
    #[error("{system}: {message}")]
    Invalid { system: String, message: String },
}

impl CrmError {
    /// The system the error came from, if any.
    pub fn system(&self) -> Option<&str> {
        use CrmError::*;
        match self {
            Timeout { system, .. }
            | Connect { system, .. }
            | Unavailable { system, .. }
            | Rejected { system, .. }
            | Auth { system, .. }
            | Html { system, .. }
            | MalformedJson { system, .. }
            | TooLarge { system, .. }
            | Protocol { system, .. }
            | CircuitOpen { system, .. }
            | Unsupported { system, .. }
            | Storage { system, .. }
            | Invalid { system, .. } => Some(system),
            NotConfigured(_) => None,
        }
    }

    /// Whether the same request may succeed if sent again later. The outbox
    /// keeps retrying these; anything else goes to the dead letters at once.
    pub fn is_transient(&self) -> bool {
        use CrmError::*;
        matches!(
            self,
            Timeout { .. }
                | Connect { .. }
                | Unavailable { .. }
                | Html { .. }
                | MalformedJson { .. }
                | TooLarge { .. }
                | CircuitOpen { .. }
                | Storage { .. }
                | Auth { .. }
        )
    }

    /// Whether this error says something about the health of the system
    /// (and so counts towards opening its circuit breaker). A rejected
    /// request or an unsupported operation says nothing about the server.
    pub fn is_system_failure(&self) -> bool {
        use CrmError::*;
        matches!(
            self,
            Timeout { .. }
                | Connect { .. }
                | Unavailable { .. }
                | Html { .. }
                | MalformedJson { .. }
                | TooLarge { .. }
                | Protocol { .. }
                | Auth { .. }
        )
    }

    /// Whether a read that failed this way is worth retrying at once (with
    /// backoff) inside the caller's time budget.
    pub fn is_retryable_read(&self) -> bool {
        use CrmError::*;
        matches!(self, Timeout { .. } | Connect { .. } | Unavailable { .. })
    }

    /// A short machine-friendly name of the error kind, for metrics labels.
    pub fn kind(&self) -> &'static str {
        use CrmError::*;
        match self {
            Timeout { .. } => "timeout",
            Connect { .. } => "connect",
            Unavailable { .. } => "unavailable",
            Rejected { .. } => "rejected",
            Auth { .. } => "auth",
            Html { .. } => "html",
            MalformedJson { .. } => "malformed_json",
            TooLarge { .. } => "too_large",
            Protocol { .. } => "protocol",
            CircuitOpen { .. } => "circuit_open",
            Unsupported { .. } => "unsupported",
            NotConfigured(_) => "not_configured",
            Storage { .. } => "storage",
            Invalid { .. } => "invalid",
        }
    }
}
