//! The leg of a call we placed, as the call shell sees it: the SIP dialog
//! is already answered (the callee sent 200, the stack ACKed it), so the
//! core's "ring" and "answer" have nothing left to send; everything else
//! (events, BYE, REFER) is the SIP leg's. It holds the call's admission slot.

use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedReceiver};
use tracing::Instrument;

use crate::admission::CallSlot;
use crate::call::leg::{Leg, LegControl, LegEnd, LegError, LegEvent, LegInput};
use crate::sip::CallLeg;

pub struct OutboundLeg {
    sip: CallLeg,
    slot: Option<CallSlot>,
}

impl OutboundLeg {
    pub fn new(sip: CallLeg, slot: CallSlot) -> OutboundLeg {
        OutboundLeg {
            sip,
            slot: Some(slot),
        }
    }
}

impl Leg for OutboundLeg {
    fn call_id(&self) -> &str {
        self.sip.info().call_id.as_str()
    }

    fn ring(&self) -> Result<(), LegError> {
        Ok(())
    }

    /// Our offer went with the INVITE and the callee's answer came back in
    /// its 200: the session is agreed already.
    fn answer(&self, _sdp: String) -> Result<(), LegError> {
        Ok(())
    }

    /// The callee answered with something we cannot use (its SDP): end the
    /// answered dialog.
    fn reject(&mut self, _code: u16) -> Result<(), LegError> {
        let control = self.sip.control();
        tokio::spawn(async move {
            let _ = control.hangup().await;
        });
        Ok(())
    }

    /// The SIP leg names a dialog's end by who sent BYE, the UAC or the
    /// UAS; on a call we placed we are the UAC, so its "remote" and "local"
    /// BYE are the other way round.
    fn events(&mut self) -> UnboundedReceiver<LegEvent> {
        let mut inner = self.sip.events();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(
            async move {
                while let Some(event) = inner.recv().await {
                    let event = match event {
                        LegEvent::Input(LegInput::Ended(LegEnd::RemoteBye)) => {
                            LegEvent::Input(LegInput::Ended(LegEnd::LocalBye))
                        }
                        LegEvent::Input(LegInput::Ended(LegEnd::LocalBye)) => {
                            LegEvent::Input(LegInput::Ended(LegEnd::RemoteBye))
                        }
                        other => other,
                    };
                    if tx.send(event).is_err() {
                        return;
                    }
                }
            }
            .in_current_span(),
        );
        rx
    }

    fn control(&self) -> Arc<dyn LegControl> {
        self.sip.control()
    }

    fn take_slot_from(&mut self, other: &mut dyn Leg) {
        if let Some(slot) = other.release_slot() {
            self.slot = Some(slot);
        }
    }

    fn release_slot(&mut self) -> Option<CallSlot> {
        self.slot.take()
    }
}
