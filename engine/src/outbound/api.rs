//! `POST /calls` on the admin endpoint: place one call without a campaign
//! and answer, once it is over, with its disposition and the script's
//! result. `voxbridge dial` is its command-line client.
//!
//! ```text
//! POST /calls {"number": "+15550123", "script": "scripts/follow-up.yaml",
//!              "via": "trunk-1", "caller_id": "+15550100",
//!              "ring_timeout_secs": 25, "customer_id": "c-7", "fields": {…}}
//! 200 {"disposition": "answered", "sip_status": 200, "script": {…}}
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::dialing::{DialOutcome, DialRequest, Dialer, MachinePolicy};

/// The dialler, set once the engine's calls can run (the admin endpoint
/// starts first).
pub type DialerCell = Arc<OnceLock<Arc<dyn Dialer>>>;

/// Longest ring timeout a request may ask for.
const MAX_RING: Duration = Duration::from_secs(300);

/// The body of `POST /calls`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceRequest {
    /// E.164 number (with `via`) or a SIP URI (direct).
    pub number: String,
    /// The script the answered call runs (a path the engine can read).
    pub script: PathBuf,
    #[serde(default)]
    pub via: Option<String>,
    /// From / P-Asserted-Identity; default `voxbridge`.
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default = "default_ring")]
    pub ring_timeout_secs: u64,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

fn default_ring() -> u64 {
    25
}

/// The answer of `POST /calls`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct PlaceResponse {
    pub disposition: String,
    pub sip_status: Option<u16>,
    pub script: Option<ScriptView>,
}

/// [`crate::dialing::ScriptResult`] as JSON.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct ScriptView {
    pub call_id: String,
    pub intents: Vec<String>,
    pub slots: BTreeMap<String, String>,
    pub transcript: Vec<String>,
    pub score: Option<f64>,
    /// The follow-up tasks' subjects.
    pub tasks: Vec<String>,
    pub stop_calling: bool,
}

impl From<DialOutcome> for PlaceResponse {
    fn from(o: DialOutcome) -> Self {
        PlaceResponse {
            disposition: o.disposition.label().to_string(),
            sip_status: o.sip_status,
            script: o.script.map(|s| ScriptView {
                call_id: s.call_id,
                intents: s.intents,
                slots: s.slots,
                transcript: s.transcript,
                score: s.score,
                tasks: s.tasks.into_iter().map(|t| t.subject).collect(),
                stop_calling: s.stop_calling,
            }),
        }
    }
}

/// The `/calls` route, to merge into the admin router.
pub fn routes(dialer: DialerCell) -> Router {
    Router::new()
        .route("/calls", post(place))
        .with_state(dialer)
}

async fn place(
    State(cell): State<DialerCell>,
    Json(body): Json<PlaceRequest>,
) -> Result<Json<PlaceResponse>, (StatusCode, String)> {
    let Some(dialer) = cell.get().cloned() else {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine is not taking calls yet\n".into(),
        ));
    };
    let ring = Duration::from_secs(body.ring_timeout_secs);
    if ring.is_zero() || ring > MAX_RING {
        return Err((
            StatusCode::BAD_REQUEST,
            format!("ring_timeout_secs must be 1..={}\n", MAX_RING.as_secs()),
        ));
    }
    let request = DialRequest {
        campaign: String::new(),
        contact_id: String::new(),
        attempt: 1,
        number: body.number,
        caller_id: body.caller_id.unwrap_or_else(|| "voxbridge".to_string()),
        via: body.via,
        ring_timeout: ring,
        script: body.script,
        customer_id: body.customer_id,
        fields: body.fields,
        machine: MachinePolicy::Ignore,
        machine_message: None,
        invite_rate: None,
    };
    Ok(Json(dialer.dial(request).await.into()))
}
