//! The work a call hands to tasks: the result-or-fallback reply, making
//! prompts, and dialling the target of a followed REFER.

use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};
use voxbridge_media::{MediaHandle, MediaSession, Prompt, PromptFiles};

use super::core::{Done, PromptSource};
use super::shell::Finished;
use super::CallContext;
use crate::sdp::{self, SessionOrigin};
use crate::sip::{CallLeg, DialError};

/// Sends a task's result exactly once: if the task is dropped first (it
/// panicked or was aborted), its fallback goes instead, so the core never
/// waits for work that will not come back.
pub struct Reply {
    tx: UnboundedSender<Finished>,
    fallback: Option<Done>,
}

impl Reply {
    pub fn send(mut self, done: Done) {
        self.fallback = None;
        let _ = self.tx.send(Finished::Core(Box::new(done)));
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(done) = self.fallback.take() {
            let _ = self.tx.send(Finished::Core(Box::new(done)));
        }
    }
}

impl Reply {
    pub fn new(tx: UnboundedSender<Finished>, fallback: Done) -> Reply {
        Reply {
            tx,
            fallback: Some(fallback),
        }
    }
}

/// A task's way to hand its result back.
pub struct ReplyTo(pub Reply);

impl ReplyTo {
    pub fn send(self, done: Done) {
        self.0.send(done);
    }
}

/// The boxed future type the shell's tasks are.
pub type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// A prompt's samples: TTS (cached by the TTS front end) or a WAV file
/// (cached in `files`); either way shared, not copied, between calls.
pub fn make_prompt(
    tts: Option<&voxbridge_models::tts::Tts>,
    files: &PromptFiles,
    source: PromptSource,
) -> Result<Prompt, String> {
    match source {
        PromptSource::File(path) => files.load(&path).map_err(|e| e.to_string()),
        PromptSource::Speak {
            text,
            language,
            voice,
        } => {
            let tts = tts.ok_or("no TTS configured; a `say` was skipped")?;
            let language = language
                .parse::<voxbridge_models::Language>()
                .unwrap_or(voxbridge_models::Language::En);
            let samples = match voice {
                Some(v) => tts.speak_with_voice(&text, &v),
                None => tts.speak(&text, language),
            };
            samples
                .map(Prompt::from_samples)
                .map_err(|e| format!("TTS failed: {e}"))
        }
    }
}

/// Call `target` with our offer; the answered leg, its running media and
/// RTP port, or the status for the final NOTIFY.
pub async fn dial(ctx: &CallContext, target: &str) -> Result<(CallLeg, MediaHandle, u16), u16> {
    let socket = ctx.ports.bind().map_err(|_| 503u16)?;
    let port = socket.local_addr().map_err(|_| 500u16)?.port();
    let prefs: Vec<_> = ctx.config.sip.codecs.iter().map(|c| c.codec()).collect();
    let origin = SessionOrigin::new(rand::random::<u32>() as u64);
    let offer = sdp::offer(&prefs, ctx.config.advertised_ip(), port, origin);
    let (mut leg, answer) = match ctx.dialer.invite(target, offer).await {
        Ok(answered) => answered,
        Err(DialError::Status(code)) => return Err(code),
        Err(DialError::Failed(why)) => {
            warn!(error = %why, "INVITE to the REFER target failed");
            return Err(503);
        }
    };
    let negotiated = match sdp::parse(&answer).and_then(|o| sdp::negotiate(&o, &prefs)) {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %e, "unusable SDP answer from the REFER target");
            let _ = tokio::time::timeout(super::signalling::BYE_WAIT, leg.hangup()).await;
            return Err(488);
        }
    };
    let params = super::core::media_params(&ctx.config, &negotiated);
    match MediaSession::start(socket, params) {
        Ok(media) => {
            debug!("REFER target answered");
            Ok((leg, media, port))
        }
        Err(e) => {
            warn!(error = %e, "media for the new call did not start");
            let _ = tokio::time::timeout(super::signalling::BYE_WAIT, leg.hangup()).await;
            Err(500)
        }
    }
}
