//! What every call shares: configuration, ports, metrics, the flow
//! factory, the CRM, speech and the records the calls write.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use voxbridge_media::{PortPool, PromptFiles};

use crate::cdr::CdrWriter;
use crate::config::Config;
use crate::flow::CallFlow;
use crate::live_calls::LiveCalls;
use crate::metrics::Metrics;
use crate::sip::Dialer;
use crate::speech::Speech;

/// What a flow knows when the call is answered.
pub struct FlowStart {
    /// The caller's number (or SIP user) from the From URI.
    pub caller: String,
    /// The CRM profile, when the lookup found one.
    pub customer: Option<voxbridge_crm::model::Customer>,
}

/// Builds the flow of each new call.
pub type FlowFactory = Box<dyn Fn(&FlowStart) -> Box<dyn CallFlow> + Send + Sync>;

/// What every call task shares.
pub struct CallContext {
    pub config: Arc<Config>,
    pub ports: Arc<PortPool>,
    pub metrics: Arc<Metrics>,
    /// Builds the flow for a new call.
    pub new_flow: Arc<FlowFactory>,
    /// Call records go here when a call ends.
    pub cdr: Arc<CdrWriter>,
    /// Fired when the drain timeout passes: every call hangs up.
    pub hangup_all: CancellationToken,
    /// Places calls when a peer REFERs us elsewhere.
    pub dialer: Dialer,
    /// The CRM, when one is configured.
    pub crm: Option<Arc<crate::crm::CrmLink>>,
    /// Text to speech for scripts' `say`.
    pub tts: Option<Arc<voxbridge_models::tts::Tts>>,
    /// Recognisers and the intent model for scripts' questions.
    pub speech: Option<Arc<Speech>>,
    /// Transcripts so far, for the admin endpoint.
    pub live: Arc<LiveCalls>,
    /// A hidden switch for the panic-containment test: the call task
    /// panics when the caller presses this key
    /// (`VOXBRIDGE_INJECT_PANIC_ON_KEY`). Never set in production.
    pub panic_on_key: Option<char>,
    /// The scripts' WAV prompts, read once and shared by every call.
    pub prompt_files: Arc<PromptFiles>,
}

/// Bytes of samples the WAV prompt cache keeps (about 35 minutes of audio).
const PROMPT_FILES_BYTES: usize = 32 << 20;

impl CallContext {
    /// An empty WAV prompt cache of the default size.
    pub fn prompt_files() -> Arc<PromptFiles> {
        Arc::new(PromptFiles::new(PROMPT_FILES_BYTES))
    }

    /// The hidden fault switch, from the environment.
    pub fn panic_on_key_from_env() -> Option<char> {
        std::env::var("VOXBRIDGE_INJECT_PANIC_ON_KEY")
            .ok()
            .and_then(|v| v.chars().next())
    }
}
