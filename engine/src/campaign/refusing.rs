//! The dialler a build without outbound SIP runs campaigns with: it places
//! no call, says so in the log, and reports every attempt as failed (with
//! no SIP status), so nobody is led to think a call happened.

use async_trait::async_trait;
use tracing::warn;

use crate::dialing::{DialOutcome, DialRequest, Dialer, Disposition};

/// Refuses every attempt.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotBuilt;

#[async_trait]
impl Dialer for NotBuilt {
    async fn dial(&self, request: DialRequest) -> DialOutcome {
        warn!(
            campaign = %request.campaign,
            contact = %request.contact_id,
            attempt = request.attempt,
            "outbound dialling not built: attempt refused, no call placed"
        );
        DialOutcome {
            disposition: Disposition::Failed,
            sip_status: None,
            script: None,
        }
    }
}
