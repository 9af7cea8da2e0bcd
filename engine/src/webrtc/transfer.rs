//! What a script's transfer does on a browser call: there is no SIP dialog
//! to send a REFER on and no PSTN path from the page, so it is refused
//! locally and the script's transfer-failure path runs, the caller hearing
//! it like a SIP caller whose REFER was rejected. Decided here; the leg
//! that will apply it is still TODO (see mod.rs).

/// The verdict the browser leg returns for a transfer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferVerdict {
    /// Run the script's transfer-failure branch; the call stays up.
    RefusedRunFailurePath,
}

/// Every transfer target is refused on a browser call, whatever it is.
pub fn on_transfer(_target: &str) -> TransferVerdict {
    TransferVerdict::RefusedRunFailurePath
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_refused_and_the_failure_path_runs() {
        for t in ["sip:agent@127.0.0.1", "tel:+15551234567", ""] {
            assert_eq!(on_transfer(t), TransferVerdict::RefusedRunFailurePath);
        }
    }
}
