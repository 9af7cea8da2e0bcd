//! The leg of a call we placed, as the call shell sees it: the SIP dialog
//! is already answered (the callee sent 200, the stack ACKed it), so the
//! core's "ring" and "answer" have nothing left to send; everything else
//! (events, BYE, REFER) is the SIP leg's. It holds the call's admission slot.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;

use crate::admission::CallSlot;
use crate::call::leg::{Leg, LegControl, LegError, LegEvent};
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

    fn events(&mut self) -> UnboundedReceiver<LegEvent> {
        self.sip.events()
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
