//! What listens to a call's audio: the recorder, the endpointer and, on a
//! call we placed, the answering-machine detector, set up when the call is
//! answered.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::sync::Arc;

use tokio::sync::mpsc::{self, UnboundedReceiver};
use tracing::warn;
use voxbridge_media::session::AudioSink;

use super::core::MachineCheck;
use super::machine_sink::MachineSink;
use super::CallContext;
use crate::sip::CallInfo;
use crate::speech::sink::{EarlyControl, SpeechEvent, SpeechSink};

/// The recorder for this call and its file, when recording is on and the
/// file opens.
pub fn recorder(ctx: &CallContext, info: &CallInfo) -> Option<(Box<dyn AudioSink>, PathBuf)> {
    let rec = &ctx.config.recording;
    if !rec.enabled {
        return None;
    }
    let started_ms = info
        .received_at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let path = rec
        .dir
        .join(crate::recording::file_name(&info.call_id, started_ms));
    match crate::recording::CallRecorder::create(&path, rec.mode) {
        Ok(r) => Some((Box::new(r), path)),
        Err(e) => {
            // The call goes on unrecorded rather than not at all.
            warn!(path = %path.display(), error = %e, "cannot record call");
            None
        }
    }
}

/// The endpointer for this call and its events, when speech is on and it
/// starts; the atomics are how the shell tells it whether anyone listens,
/// about prompts, the silence the open question wants and the prompt's
/// barge-in rule; `early` the pause rule and cuts (`speech::early`).
pub fn speech_sink(
    ctx: &CallContext,
    listening: Arc<AtomicBool>,
    prompt_playing: Arc<AtomicBool>,
    end_silence_ms: Arc<AtomicU32>,
    barge_in_ms: Arc<AtomicU32>,
    early: Arc<EarlyControl>,
) -> Option<(Box<dyn AudioSink>, UnboundedReceiver<SpeechEvent>)> {
    let speech = ctx.speech.as_ref()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let config = speech.endpoint_config();
    let sink = SpeechSink::new(config, tx, listening, prompt_playing, end_silence_ms)
        .map(|s| s.with_barge_in_rule(barge_in_ms).with_early_control(early));
    match sink {
        Ok(sink) => Some((Box::new(sink), rx)),
        Err(e) => {
            // Keys still work; the operator learns why speech does not.
            warn!(error = %e, "endpointer did not start; keys only");
            None
        }
    }
}

/// The answering-machine detector for a call we placed and its events;
/// `None` (logged) when it cannot start, and the call core then takes the
/// callee for a person at its deadline.
pub fn machine_sink(
    check: &MachineCheck,
) -> Option<(
    Box<dyn AudioSink>,
    UnboundedReceiver<voxbridge_models::amd::AmdEvent>,
)> {
    let (tx, rx) = mpsc::unbounded_channel();
    match MachineSink::new(check.amd.clone(), tx) {
        Ok(sink) => Some((Box::new(sink), rx)),
        Err(e) => {
            warn!(error = %e, "answering-machine detector did not start");
            None
        }
    }
}
