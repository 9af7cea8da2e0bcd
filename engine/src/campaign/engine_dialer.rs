//! The dialler campaigns run with: the engine's outbound SIP dialler, which
//! exists only once SIP listens (it starts last, see `app.rs`), while the
//! campaign manager is built before the admin server. Until it is there an
//! attempt places no call, says so in the log, and counts as failed with no
//! SIP status, so nobody is led to think a call happened.

use async_trait::async_trait;
use tracing::warn;

use crate::dialing::{DialOutcome, DialRequest, Dialer, Disposition};
use crate::outbound::api::DialerCell;

/// Hands each attempt to the engine's dialler once it is set.
#[derive(Clone)]
pub struct EngineDialer(pub DialerCell);

#[async_trait]
impl Dialer for EngineDialer {
    async fn dial(&self, request: DialRequest) -> DialOutcome {
        if let Some(dialer) = self.0.get().cloned() {
            return dialer.dial(request).await;
        }
        warn!(
            campaign = %request.campaign,
            contact = %request.contact_id,
            attempt = request.attempt,
            "the engine is not placing calls yet: attempt refused, no call placed"
        );
        DialOutcome {
            disposition: Disposition::Failed,
            sip_status: None,
            script: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_attempt_before_the_dialler_exists_is_failed_not_placed() {
        let out = EngineDialer(Default::default())
            .dial(DialRequest {
                campaign: "c".into(),
                contact_id: "1".into(),
                attempt: 1,
                number: "+15550100".into(),
                caller_id: "+15550199".into(),
                via: None,
                ring_timeout: std::time::Duration::from_secs(1),
                script: "s.yaml".into(),
                customer_id: None,
                fields: Default::default(),
                machine: Default::default(),
                machine_message: None,
                invite_rate: None,
            })
            .await;
        assert_eq!(out.disposition, Disposition::Failed);
        assert_eq!(out.sip_status, None);
    }
}
