//! The voxbridge configuration: one YAML file, every key optional with a
//! documented default, secrets and deployment specifics overridable from the
//! environment.
//!
//! Unknown keys are errors, not warnings: a misspelt `max_digit:` that is
//! silently ignored is how an IVR ends up collecting 20 digits in production.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Everything wrong with a configuration, located in its file where possible.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed, has an unknown key or a value of the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
    },
    /// A value parsed but makes no sense (an empty port range, say).
    #[error("{path}:{line}: `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: u64,
        key: String,
        message: String,
    },
    /// An environment override could not be applied.
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub node: NodeConfig,
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub flow: FlowConfig,
    pub calls: CallsConfig,
    pub registration: RegistrationConfig,
    pub transfer: TransferConfig,
    pub trunk: TrunkConfig,
    pub recording: RecordingConfig,
    pub cdr: CdrConfig,
    pub crm: CrmLinkConfig,
    pub dialog: DialogConfig,
    pub speech: SpeechConfig,
    pub admin: AdminConfig,
    pub log: LogConfig,
    pub campaigns: CampaignsConfig,
    pub console: ConsoleConfig,
}

/// Capacity and shutdown.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// Calls handled at once; INVITEs beyond get 503 with Retry-After.
    pub max_calls: usize,
    /// Seconds put into Retry-After on a 503.
    pub retry_after_secs: u32,
    /// On SIGTERM, how long active calls may run on before the bot hangs up.
    pub drain_timeout_secs: u64,
    /// Measured load: while the async runtime runs tasks this much later
    /// than they asked (smoothed; see `load`), INVITEs get 503 with
    /// Retry-After. 0 turns the check off (`max_calls` still applies).
    pub max_scheduling_delay_ms: u32,
    /// The IANA time zone (e.g. `Europe/Berlin`) whose date a script's
    /// `today` is in live calls ("tomorrow", weekdays, `value >= today`);
    /// `null`: the machine's zone.
    pub time_zone: Option<String>,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            max_calls: 500,
            retry_after_secs: 30,
            drain_timeout_secs: 60,
            max_scheduling_delay_ms: crate::load::DEFAULT_MAX_DELAY_MS,
            time_zone: None,
        }
    }
}

/// Registration with a PBX or registrar, one account per DID or queue.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RegistrationConfig {
    pub accounts: Vec<AccountConfig>,
}

/// One account to REGISTER.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Registrar URI, e.g. `sip:pbx.example.com:5060` or `sip:10.0.0.5;transport=tcp`.
    pub registrar: String,
    /// User part of the address of record (and the digest user name).
    pub username: String,
    /// Digest user name when the PBX wants a different one.
    #[serde(default)]
    pub auth_username: Option<String>,
    /// Name of the environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// File holding the password (first line; for container secrets).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Registration lifetime asked for, in seconds; refreshed at 75 %.
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// The name outbound calls give as `via` (defaults to the username).
    #[serde(default)]
    pub name: Option<String>,
    /// Send outbound INVITEs here rather than to the registrar (a SIP URI).
    #[serde(default)]
    pub outbound_proxy: Option<String>,
    /// SRTP for calls to this account (the To user is its username):
    /// `off`, `optional` or `required`; unset: the trunk's or `sip.srtp`.
    #[serde(default)]
    pub srtp: Option<crate::sdp::SrtpPolicy>,
}

fn default_expires() -> u32 {
    300
}

impl AccountConfig {
    /// The name `via` picks this account by.
    pub fn via_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.username)
    }

    /// The password, read now from the environment or the file. Never logged.
    pub fn password(&self) -> Result<String, String> {
        if let Some(var) = &self.password_env {
            return std::env::var(var)
                .map_err(|_| format!("environment variable {var} is not set"));
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("password file {}: {e}", path.display()))?;
            return Ok(text.lines().next().unwrap_or("").trim_end().to_string());
        }
        Err("no password_env or password_file given".to_string())
    }
}

/// Transfers to a human by REFER.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TransferConfig {
    /// Give up on a transfer with no final NOTIFY after this long.
    pub timeout_secs: u64,
    /// Put the call context on the Refer-To URI as headers.
    pub context_in_uri: bool,
    /// Also send the context in a `User-to-User` header.
    pub user_to_user: bool,
    /// Prefix of the context header names.
    pub header_prefix: String,
    /// Most bytes of context attached.
    pub max_context_bytes: usize,
    /// Honour a REFER from the peer (PBX): call the Refer-To target, report
    /// by NOTIFY, and move the call there. Off: such REFERs get 603.
    pub accept_incoming_refer: bool,
    /// Names dialog scripts transfer to (`transfer: { to: agents }`) and
    /// the SIP URIs they stand for; a script may also name a URI itself.
    pub targets: std::collections::BTreeMap<String, String>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            timeout_secs: 30,
            context_in_uri: true,
            user_to_user: true,
            header_prefix: "X-VB-".to_string(),
            max_context_bytes: 256,
            accept_incoming_refer: false,
            targets: Default::default(),
        }
    }
}

/// Trunk mode: accept INVITEs only from these sources (no registration).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrunkConfig {
    /// Addresses or CIDRs (`192.0.2.10`, `10.1.0.0/16`, `::1`) allowed to
    /// send INVITEs. Empty: everyone may (registration or a closed network).
    pub allow: Vec<String>,
    /// SRTP for calls from `allow`'s sources: `off`, `optional` or
    /// `required`; unset: `sip.srtp`.
    pub srtp: Option<crate::sdp::SrtpPolicy>,
}

/// Per-call recording.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    pub enabled: bool,
    /// Folder the WAV files go to (created if missing).
    pub dir: PathBuf,
    /// `stereo`: caller left, bot right; `mixed`: one channel.
    pub mode: RecordingMode,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RecordingMode {
    Stereo,
    Mixed,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            enabled: false,
            dir: PathBuf::from("var/recordings"),
            mode: RecordingMode::Stereo,
        }
    }
}

/// Which node of a cluster this process is (docs/scaling.md).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// The node's name in call records, logs and metrics; `null`: the
    /// machine's host name.
    pub id: Option<String>,
}

impl NodeConfig {
    /// The configured id, else the host name, else `voxbridge`.
    pub fn name(&self) -> String {
        if let Some(id) = &self.id {
            return id.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && valid_node_id(h))
            .unwrap_or_else(|| "voxbridge".to_string())
    }
}

/// Letters, digits, `-`, `_`, `.`; 1 to 64 of them: safe in a log line, a
/// metric label and a file name.
fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Call detail records.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CdrConfig {
    /// SQLite database file (created if missing).
    pub path: PathBuf,
}

impl Default for CdrConfig {
    fn default() -> Self {
        CdrConfig {
            path: PathBuf::from("var/voxbridge.db"),
        }
    }
}

/// The operator console in the browser (docs/console.md), served by the
/// admin endpoint under `/console`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Off by default: the console shows personal data.
    pub enabled: bool,
    /// Who may log in.
    pub users: Vec<ConsoleUser>,
    /// A login for scripts and first set-up (`VOXBRIDGE_CONSOLE_TOKEN`
    /// only: a secret never sits in this file). It logs in as an admin,
    /// in the form's password field or as `Authorization: Bearer`.
    #[serde(skip)]
    pub token: Option<String>,
    /// How long a session lasts after its login.
    pub session_ttl_secs: u64,
    /// Failed logins from one address before it must wait.
    pub login_attempts: u32,
    /// The window those failures are counted over, and the wait.
    pub login_window_secs: u64,
    /// `/health`, `/ready` and `/metrics` answer without a login (for
    /// monitoring); `false`: they need a session or the token.
    pub open_monitoring: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: false,
            users: Vec::new(),
            token: None,
            session_ttl_secs: 8 * 3600,
            login_attempts: 5,
            login_window_secs: 60,
            open_monitoring: true,
        }
    }
}

/// One console user.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleUser {
    pub name: String,
    /// An argon2 PHC string (`voxbridge console hash-password`).
    pub password_hash: String,
    pub role: ConsoleRole,
}

/// What a console user may see and do.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleRole {
    /// Reads everything, numbers always masked.
    Viewer,
    /// Also sees numbers and may act (retry, purge, campaigns).
    Operator,
    Admin,
}

/// Outbound campaigns (docs/campaigns.md).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CampaignsConfig {
    /// SQLite file of campaign state: contacts, attempts, do-not-call list.
    pub store: PathBuf,
}

impl Default for CampaignsConfig {
    fn default() -> Self {
        CampaignsConfig {
            store: PathBuf::from("var/campaigns.db"),
        }
    }
}

/// The CRM bridge: caller lookup while ringing, call logs via the outbox.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CrmLinkConfig {
    /// The CRM configuration file (systems, routes, outbox; see the CRM
    /// connectors section). None: no lookups, no call logs.
    pub config: Option<PathBuf>,
    /// Longest the 200 OK waits for the caller lookup, counted from the INVITE.
    pub lookup_budget_ms: u64,
}

impl Default for CrmLinkConfig {
    fn default() -> Self {
        CrmLinkConfig {
            config: None,
            lookup_budget_ms: 500,
        }
    }
}

/// The dialog script calls run instead of the built-in flow.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DialogConfig {
    /// A YAML dialog script (see "Dialog scripts"); reloaded when the file
    /// changes. None: the built-in greet/digits/goodbye flow.
    pub script: Option<PathBuf>,
}

/// Speech in script calls: endpointing, recognisers, intent model, TTS.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpeechConfig {
    /// The intent model (ONNX, see "Models"); `null`: free speech is
    /// matched against the script's intent examples instead.
    pub intent_model: Option<PathBuf>,
    /// A whisper ggml model; prompts whose script asks for `asr: whisper`
    /// use it. `installed`: the tiny.en the install step converts
    /// (`<cache>/models/ggml-tiny.en.bin`, see `voxbridge models list`).
    /// `null`: they use the grammar engine (English only).
    pub whisper_model: Option<PathBuf>,
    /// Whisper workers (one model state each) and threads per worker.
    pub whisper_workers: usize,
    pub whisper_threads: usize,
    /// A fixed whisper encoder window (positions, 50 per second, 64–1500);
    /// `null`: 512 (10 s), more for longer utterances. Windows cut to short
    /// utterances make real weights repeat themselves.
    pub whisper_audio_ctx: Option<i32>,
    /// The PocketSphinx grammar engine (menus, yes/no, digits); needs the
    /// Debian `pocketsphinx-en-us` model. Defaults to on only in a build
    /// with the `sphinx` feature (where it can start).
    pub grammar: bool,
    pub grammar_workers: usize,
    /// Utterances waiting for a worker before a caller hears the fallback.
    pub asr_queue: usize,
    /// Longest wait for a transcript (queue and recognition).
    pub asr_timeout_ms: u64,
    /// Speech needed before an utterance starts.
    pub start_ms: u32,
    /// Silence that ends an utterance.
    pub end_silence_ms: u32,
    /// The same for questions the grammar engine answers (menus, yes/no,
    /// digits): short answers, so the bot can reply sooner.
    pub grammar_end_silence_ms: u32,
    /// A pause this long within an answer to a grammar question has the
    /// answer so far recognised; a complete answer ends the turn there
    /// (never a digit string short of `max_digits`). 0: off.
    pub grammar_early_end_ms: u32,
    /// A pause this long within free speech starts recognising it; when
    /// the caller says no more, the turn uses that result. 0: off.
    pub whisper_speculate_ms: u32,
    /// A result at such a pause that means one of the question's intents
    /// with at least this confidence ends the turn there, without waiting
    /// for the rest of `end_silence_ms` (questions with intents and no
    /// number or digits slot only: those may still grow). 0: off.
    pub whisper_early_end_confidence: f32,
    /// Voiced speech over a prompt needed to stop it (when the script
    /// allows; a script's `barge_in: {min_speech: …}` overrides it). Noise,
    /// coughs, in-band tones and the prompt's echo do not count.
    pub barge_in_ms: u32,
    /// Longest utterance; longer speech is cut and recognised.
    pub max_utterance_ms: u32,
    /// espeak-ng speaking rate (words per minute).
    pub tts_rate_wpm: u32,
    /// TTS cache budget in MB of 8 kHz audio.
    pub tts_cache_mb: usize,
}

impl Default for SpeechConfig {
    fn default() -> Self {
        SpeechConfig {
            intent_model: None,
            whisper_model: None,
            whisper_workers: 1,
            whisper_threads: 1,
            whisper_audio_ctx: None,
            grammar: cfg!(feature = "sphinx"),
            grammar_workers: 2,
            asr_queue: 32,
            asr_timeout_ms: 3_000,
            start_ms: 96,
            end_silence_ms: 500,
            grammar_end_silence_ms: 250,
            grammar_early_end_ms: 128,
            whisper_speculate_ms: 200,
            whisper_early_end_confidence: 0.9,
            barge_in_ms: 200,
            max_utterance_ms: 15_000,
            tts_rate_wpm: 160,
            tts_cache_mb: 64,
        }
    }
}

impl SpeechConfig {
    /// `whisper_model` as a file: `installed` is the model the install
    /// step converts.
    pub fn whisper_model_path(&self) -> Option<PathBuf> {
        self.whisper_model.as_ref().map(|p| {
            if p.as_os_str() == INSTALLED_WHISPER {
                voxbridge_models::manifest::installed_whisper_path()
            } else {
                p.clone()
            }
        })
    }
}

/// The `speech.whisper_model` value that names the installed model.
pub const INSTALLED_WHISPER: &str = "installed";

/// The admin HTTP endpoint: /health, /ready, /metrics.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Where it listens; `null` turns it off.
    pub listen: Option<SocketAddr>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 9060))),
        }
    }
}

/// SIP signalling.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// Address the UDP and TCP listeners bind to.
    pub listen: SocketAddr,
    /// Transports to listen on.
    pub transports: Vec<Transport>,
    /// Host put into Contact and SDP when the listen address is a wildcard or
    /// behind NAT; defaults to the listen IP.
    pub public_address: Option<IpAddr>,
    /// User-Agent / Server header value.
    pub user_agent: String,
    /// Time between 180 Ringing and 200 OK, in milliseconds.
    pub ring_ms: u64,
    /// Codecs offered in preference order; the first one the caller offers wins.
    pub codecs: Vec<CodecName>,
    /// Per-source request limits on the UDP listener (see `sip::ratelimit`).
    pub rate_limits: RateLimitsConfig,
    /// SRTP (SDES keys, RFC 4568) for inbound calls no trunk or account
    /// policy covers: `off` (plain RTP; an SRTP-only offer gets 488),
    /// `optional` (SRTP when offered), `required` (a plain offer gets 488).
    pub srtp: crate::sdp::SrtpPolicy,
    /// SIP over TLS (RFC 3261 §26, `sips:`): a TLS listener, and the CA
    /// outbound TLS connections (registrars, proxies) are verified against.
    /// Unset: no TLS listener, and outbound `sips:` has no trust anchors.
    pub tls: Option<SipTlsConfig>,
}

/// The TLS listener and the trust anchors for outbound TLS. Certificates and
/// keys are read from the named files at start-up (never logged).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SipTlsConfig {
    /// Address the TLS listener binds to (port 5061 by convention).
    pub listen: SocketAddr,
    /// PEM certificate chain the listener presents, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8 or PKCS#1) matching `cert_file`.
    pub key_file: PathBuf,
    /// PEM CA certificates outbound TLS peers must chain to; their name is
    /// checked against the host of the URI dialled. Unset: outbound TLS
    /// trusts nothing and fails.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Per-source SIP rate limits: a token bucket per source IP and kind of
/// request. Over a soft limit a request is answered 503 with Retry-After;
/// over `hard_limit` every datagram from the source is dropped unanswered.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    pub enabled: bool,
    pub invite: BucketConfig<20, 40>,
    pub register: BucketConfig<5, 10>,
    pub options: BucketConfig<10, 20>,
    /// Every request but ACK from a source outside `allow` (voxbridge does
    /// not challenge inbound requests, so none is authenticated).
    pub unauthenticated: BucketConfig<100, 200>,
    /// Every datagram from a source, ACKs and responses included.
    pub hard_limit: BucketConfig<400, 800>,
    /// Addresses or CIDRs never limited: the PBX, a proxy in front.
    pub allow: Vec<String>,
    /// Most sources tracked at once; beyond, new sources share one bucket.
    pub max_sources: usize,
    /// Most calls up at once from one source outside `allow` (0: no cap),
    /// so a flood the INVITE bucket lets through at its rate cannot fill
    /// `calls.max_calls`.
    pub max_calls_per_source: usize,
}

/// One token bucket: `rate` per second on average, `burst` at once. The
/// defaults are type parameters so each bucket keeps its own default for a
/// field left out (`invite: {rate: 50}` keeps the INVITE burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketConfig<const RATE: u32, const BURST: u32> {
    pub rate: u32,
    pub burst: u32,
}

/// A bucket as written, before the defaults of its place fill it in (serde's
/// derive cannot take defaults from const parameters).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketText {
    rate: Option<u32>,
    burst: Option<u32>,
}

impl<'de, const RATE: u32, const BURST: u32> Deserialize<'de> for BucketConfig<RATE, BURST> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = BucketText::deserialize(d)?;
        Ok(BucketConfig::new(
            text.rate.unwrap_or(RATE),
            text.burst.unwrap_or(BURST),
        ))
    }
}

impl<const RATE: u32, const BURST: u32> BucketConfig<RATE, BURST> {
    pub const fn new(rate: u32, burst: u32) -> Self {
        BucketConfig { rate, burst }
    }
}

impl<const RATE: u32, const BURST: u32> Default for BucketConfig<RATE, BURST> {
    fn default() -> Self {
        BucketConfig::new(RATE, BURST)
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        RateLimitsConfig {
            enabled: true,
            invite: BucketConfig::default(),
            register: BucketConfig::default(),
            options: BucketConfig::default(),
            unauthenticated: BucketConfig::default(),
            hard_limit: BucketConfig::default(),
            // A local proxy and the benches run on loopback.
            allow: vec!["127.0.0.1".to_string(), "::1".to_string()],
            max_sources: 16_384,
            max_calls_per_source: 32,
        }
    }
}

/// A SIP transport.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
}

/// A codec name as written in the config.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CodecName {
    Pcmu,
    Pcma,
}

impl CodecName {
    pub fn codec(self) -> voxbridge_media::Codec {
        match self {
            CodecName::Pcmu => voxbridge_media::Codec::Pcmu,
            CodecName::Pcma => voxbridge_media::Codec::Pcma,
        }
    }
}

/// RTP media.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RtpConfig {
    /// IP the per-call RTP sockets bind to; defaults to the SIP listen IP.
    pub address: Option<IpAddr>,
    /// Lowest RTP port (even ports are used).
    pub port_min: u16,
    /// Highest RTP port.
    pub port_max: u16,
    /// End the call with BYE after this many seconds without RTP from the caller.
    pub inactivity_timeout_secs: u64,
    /// Length of an outgoing RFC 4733 digit, in milliseconds.
    pub dtmf_duration_ms: u64,
    /// Which RTP sources a call takes: `strict` (only the SDP's address and
    /// port) or `nat` (also the first source in the latch window from the
    /// SDP's IP or the SIP source IP).
    pub latching: LatchingMode,
    /// How long after the answer a NAT'd source may latch, in milliseconds.
    pub latch_window_ms: u64,
}

/// `rtp.latching`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LatchingMode {
    Strict,
    #[default]
    Nat,
}

impl LatchingMode {
    pub fn media(self) -> voxbridge_media::Latching {
        match self {
            LatchingMode::Strict => voxbridge_media::Latching::Strict,
            LatchingMode::Nat => voxbridge_media::Latching::Nat,
        }
    }
}

/// The built-in call flow: greeting, digit collection, goodbye.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlowConfig {
    /// WAV played when the call is answered (8 or 16 kHz mono).
    pub greeting: PathBuf,
    /// WAV played before the bot hangs up.
    pub goodbye: PathBuf,
    /// Key that ends digit entry.
    pub finish_key: char,
    /// Most digits collected before moving on without the finish key.
    pub max_digits: usize,
    /// Seconds to wait for the first digit after the greeting.
    pub first_digit_timeout_secs: u64,
    /// Seconds to wait between digits.
    pub inter_digit_timeout_secs: u64,
    /// Key that asks for a human; `null` turns transfer off.
    pub transfer_key: Option<char>,
    /// Where the transfer key sends the caller (a SIP URI); none: no transfer.
    pub transfer_target: Option<String>,
    /// WAV played before the REFER.
    pub transferring: PathBuf,
    /// WAV played when the transfer failed; the bot keeps the call.
    pub transfer_failed: PathBuf,
}

/// Logging.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `info,voxbridge_engine::sip=debug`.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            transports: vec![Transport::Udp, Transport::Tcp],
            public_address: None,
            user_agent: concat!("voxbridge/", env!("CARGO_PKG_VERSION")).to_string(),
            ring_ms: 0,
            codecs: vec![CodecName::Pcmu, CodecName::Pcma],
            rate_limits: RateLimitsConfig::default(),
            srtp: crate::sdp::SrtpPolicy::Optional,
            tls: None,
        }
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig {
            address: None,
            port_min: 20000,
            port_max: 29999,
            inactivity_timeout_secs: 30,
            dtmf_duration_ms: 100,
            latching: LatchingMode::Nat,
            latch_window_ms: 3000,
        }
    }
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            greeting: PathBuf::from("fixtures/audio/greeting.wav"),
            goodbye: PathBuf::from("fixtures/audio/goodbye.wav"),
            finish_key: '#',
            max_digits: 20,
            first_digit_timeout_secs: 10,
            inter_digit_timeout_secs: 5,
            transfer_key: Some('0'),
            transfer_target: None,
            transferring: PathBuf::from("fixtures/audio/transferring.wav"),
            transfer_failed: PathBuf::from("fixtures/audio/transfer-failed.wav"),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

/// Environment variables that override config keys. Each is named after the
/// key it replaces so an operator can guess it: `sip.listen` → `VOXBRIDGE_SIP_LISTEN`.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("VOXBRIDGE_NODE_ID", "node.id"),
    ("VOXBRIDGE_SIP_LISTEN", "sip.listen"),
    ("VOXBRIDGE_SIP_PUBLIC_ADDRESS", "sip.public_address"),
    ("VOXBRIDGE_SIP_SRTP", "sip.srtp"),
    (
        "VOXBRIDGE_SIP_RATE_LIMITS_ENABLED",
        "sip.rate_limits.enabled",
    ),
    ("VOXBRIDGE_SIP_RATE_LIMITS_ALLOW", "sip.rate_limits.allow"),
    ("VOXBRIDGE_RTP_ADDRESS", "rtp.address"),
    ("VOXBRIDGE_RTP_PORT_MIN", "rtp.port_min"),
    ("VOXBRIDGE_RTP_PORT_MAX", "rtp.port_max"),
    ("VOXBRIDGE_RTP_LATCHING", "rtp.latching"),
    ("VOXBRIDGE_CALLS_MAX_CALLS", "calls.max_calls"),
    ("VOXBRIDGE_CALLS_TIME_ZONE", "calls.time_zone"),
    (
        "VOXBRIDGE_CALLS_DRAIN_TIMEOUT_SECS",
        "calls.drain_timeout_secs",
    ),
    (
        "VOXBRIDGE_CALLS_MAX_SCHEDULING_DELAY_MS",
        "calls.max_scheduling_delay_ms",
    ),
    ("VOXBRIDGE_ADMIN_LISTEN", "admin.listen"),
    ("VOXBRIDGE_CDR_PATH", "cdr.path"),
    ("VOXBRIDGE_CAMPAIGNS_STORE", "campaigns.store"),
    ("VOXBRIDGE_CRM_CONFIG", "crm.config"),
    ("VOXBRIDGE_DIALOG_SCRIPT", "dialog.script"),
    ("VOXBRIDGE_SPEECH_WHISPER_MODEL", "speech.whisper_model"),
    ("VOXBRIDGE_SPEECH_INTENT_MODEL", "speech.intent_model"),
    ("VOXBRIDGE_LOG_LEVEL", "log.level"),
    ("VOXBRIDGE_LOG_FORMAT", "log.format"),
    ("VOXBRIDGE_CONSOLE_TOKEN", "console.token"),
];

impl Config {
    /// Read, parse and validate a config file, then apply environment overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(path, &text)?;
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate(path, &text)?;
        Ok(config)
    }

    /// Parse YAML text; `path` is only used to label errors.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        // An empty file (or one with only comments) means "all defaults".
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(Config::default());
        }
        serde_saphyr::from_str::<Config>(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                column,
                message: first_line(&e.to_string()),
            }
        })
    }

    /// Apply `VOXBRIDGE_*` overrides; `lookup` is the environment (injected for tests).
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        for (var, key) in ENV_OVERRIDES {
            let Some(value) = lookup(var) else { continue };
            let bad = |message: String| ConfigError::Env {
                var: (*var).to_string(),
                message,
            };
            match *key {
                "node.id" => self.node.id = (!value.is_empty()).then_some(value),
                "sip.listen" => self.sip.listen = value.parse().map_err(|e| bad(format!("{e}")))?,
                "sip.public_address" => {
                    self.sip.public_address = Some(value.parse().map_err(|e| bad(format!("{e}")))?)
                }
                "sip.srtp" => {
                    self.sip.srtp = crate::sdp::SrtpPolicy::from_word(&value)
                        .ok_or_else(|| bad(format!("`{value}` is not off, optional or required")))?
                }
                "sip.rate_limits.enabled" => {
                    self.sip.rate_limits.enabled = match value.as_str() {
                        "true" | "1" | "on" => true,
                        "false" | "0" | "off" => false,
                        other => return Err(bad(format!("`{other}` is not true or false"))),
                    }
                }
                "sip.rate_limits.allow" => {
                    self.sip.rate_limits.allow = value
                        .split(',')
                        .map(str::trim)
                        .filter(|e| !e.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "rtp.address" => {
                    self.rtp.address = Some(value.parse().map_err(|e| bad(format!("{e}")))?)
                }
                "rtp.port_min" => {
                    self.rtp.port_min = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "rtp.port_max" => {
                    self.rtp.port_max = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "rtp.latching" => {
                    self.rtp.latching = match value.as_str() {
                        "strict" => LatchingMode::Strict,
                        "nat" => LatchingMode::Nat,
                        other => return Err(bad(format!("`{other}` is not strict or nat"))),
                    }
                }
                "admin.listen" => {
                    self.admin.listen = match value.as_str() {
                        "" | "off" | "none" => None,
                        v => Some(v.parse().map_err(|e| bad(format!("{e}")))?),
                    }
                }
                "cdr.path" => self.cdr.path = PathBuf::from(value),
                "campaigns.store" => self.campaigns.store = PathBuf::from(value),
                "crm.config" => self.crm.config = Some(PathBuf::from(value)),
                "dialog.script" => self.dialog.script = Some(PathBuf::from(value)),
                "speech.whisper_model" => {
                    self.speech.whisper_model = (!value.is_empty()).then(|| PathBuf::from(value))
                }
                "speech.intent_model" => {
                    self.speech.intent_model = (!value.is_empty()).then(|| PathBuf::from(value))
                }
                "calls.max_calls" => {
                    self.calls.max_calls = value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "calls.time_zone" => self.calls.time_zone = (!value.is_empty()).then_some(value),
                "calls.max_scheduling_delay_ms" => {
                    self.calls.max_scheduling_delay_ms =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "calls.drain_timeout_secs" => {
                    self.calls.drain_timeout_secs =
                        value.parse().map_err(|e| bad(format!("{e}")))?
                }
                "log.level" => self.log.level = value,
                "console.token" => self.console.token = (!value.is_empty()).then_some(value),
                "log.format" => {
                    self.log.format = match value.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        other => return Err(bad(format!("`{other}` is not text or json"))),
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks that need more than one value, or a value's meaning.
    pub fn validate(&self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            line: line_of_key(text, key),
            key: key.to_string(),
            message,
        };
        if self.rtp.port_min > self.rtp.port_max {
            return Err(invalid(
                "rtp.port_min",
                format!(
                    "{} is above rtp.port_max ({})",
                    self.rtp.port_min, self.rtp.port_max
                ),
            ));
        }
        if self.rtp.port_max - self.rtp.port_min < 2 {
            return Err(invalid(
                "rtp.port_max",
                "the RTP port range must hold at least two ports".to_string(),
            ));
        }
        if self.sip.transports.is_empty() {
            return Err(invalid(
                "sip.transports",
                "at least one transport is needed".to_string(),
            ));
        }
        if self.sip.codecs.is_empty() {
            return Err(invalid(
                "sip.codecs",
                "at least one codec is needed".to_string(),
            ));
        }
        if self.rtp.inactivity_timeout_secs == 0 {
            return Err(invalid(
                "rtp.inactivity_timeout_secs",
                "must be at least 1 second".to_string(),
            ));
        }
        // Receivers miss digits shorter than ~40 ms; RFC 4733's 16-bit
        // duration field holds 8.19 s at 8 kHz.
        if self.rtp.latch_window_ms > 60_000 {
            return Err(invalid(
                "rtp.latch_window_ms",
                format!(
                    "{} is over 60000: a stranger could latch long after the answer",
                    self.rtp.latch_window_ms
                ),
            ));
        }
        if !(40..=8000).contains(&self.rtp.dtmf_duration_ms) {
            return Err(invalid(
                "rtp.dtmf_duration_ms",
                format!("{} is not within 40..=8000", self.rtp.dtmf_duration_ms),
            ));
        }
        if !matches!(self.flow.finish_key, '0'..='9' | '*' | '#' | 'A'..='D') {
            return Err(invalid(
                "flow.finish_key",
                format!("`{}` is not a DTMF key", self.flow.finish_key),
            ));
        }
        if self.console.enabled && self.console.users.is_empty() && self.console.token.is_none() {
            return Err(invalid(
                "console.enabled",
                "the console needs console.users or VOXBRIDGE_CONSOLE_TOKEN".to_string(),
            ));
        }
        for user in &self.console.users {
            if let Err(e) = argon2::PasswordHash::new(&user.password_hash) {
                return Err(invalid(
                    "console.users",
                    format!(
                        "user `{}`: password_hash is not a PHC string ({e}); make one with `voxbridge console hash-password`",
                        user.name
                    ),
                ));
            }
        }
        if self.console.session_ttl_secs == 0 || self.console.login_window_secs == 0 {
            return Err(invalid(
                "console.session_ttl_secs",
                "session_ttl_secs and login_window_secs must be at least 1".to_string(),
            ));
        }
        if self.calls.max_calls == 0 {
            return Err(invalid("calls.max_calls", "must be at least 1".to_string()));
        }
        if let Some(id) = &self.node.id {
            if !valid_node_id(id) {
                return Err(invalid(
                    "node.id",
                    format!("`{id}`: use 1 to 64 letters, digits, `-`, `_` or `.`"),
                ));
            }
        }
        if let Some(name) = &self.calls.time_zone {
            crate::calendar::zone(Some(name)).map_err(|e| invalid("calls.time_zone", e))?;
        }
        for account in &self.registration.accounts {
            if !account.registrar.starts_with("sip:") && !account.registrar.starts_with("sips:") {
                return Err(invalid(
                    "registration.accounts.registrar",
                    format!("`{}` is not a sip: URI", account.registrar),
                ));
            }
            if account.password_env.is_none() && account.password_file.is_none() {
                return Err(invalid(
                    "registration.accounts.username",
                    format!(
                        "account `{}` needs password_env or password_file (passwords are never read from this file)",
                        account.username
                    ),
                ));
            }
            if let Some(proxy) = &account.outbound_proxy {
                if !proxy.starts_with("sip:") && !proxy.starts_with("sips:") {
                    return Err(invalid(
                        "registration.accounts.outbound_proxy",
                        format!("`{proxy}` is not a sip: URI"),
                    ));
                }
            }
            if account.expires_secs < 10 {
                return Err(invalid(
                    "registration.accounts.expires_secs",
                    "must be at least 10".to_string(),
                ));
            }
        }
        for entry in &self.trunk.allow {
            if let Err(e) = crate::acl::Cidr::parse(entry) {
                return Err(invalid("trunk.allow", format!("`{entry}`: {e}")));
            }
        }
        let limits = &self.sip.rate_limits;
        for (name, (rate, burst)) in [
            ("invite", (limits.invite.rate, limits.invite.burst)),
            ("register", (limits.register.rate, limits.register.burst)),
            ("options", (limits.options.rate, limits.options.burst)),
            (
                "unauthenticated",
                (limits.unauthenticated.rate, limits.unauthenticated.burst),
            ),
            (
                "hard_limit",
                (limits.hard_limit.rate, limits.hard_limit.burst),
            ),
        ] {
            if rate == 0 || burst == 0 {
                return Err(invalid(
                    &format!("sip.rate_limits.{name}"),
                    "rate and burst must be at least 1".to_string(),
                ));
            }
        }
        for entry in &limits.allow {
            if let Err(e) = crate::acl::Cidr::parse(entry) {
                return Err(invalid("sip.rate_limits.allow", format!("`{entry}`: {e}")));
            }
        }
        if limits.max_sources == 0 {
            return Err(invalid(
                "sip.rate_limits.max_sources",
                "must be at least 1".to_string(),
            ));
        }
        if let Some(target) = &self.flow.transfer_target {
            if !target.starts_with("sip:")
                && !target.starts_with("sips:")
                && !target.starts_with("tel:")
            {
                return Err(invalid(
                    "flow.transfer_target",
                    format!("`{target}` is not a sip:, sips: or tel: URI"),
                ));
            }
        }
        for (name, uri) in &self.transfer.targets {
            if !uri.starts_with("sip:") && !uri.starts_with("sips:") && !uri.starts_with("tel:") {
                return Err(invalid(
                    "transfer.targets",
                    format!("`{name}`: `{uri}` is not a sip:, sips: or tel: URI"),
                ));
            }
        }
        if self.flow.max_digits == 0 {
            return Err(invalid("flow.max_digits", "must be at least 1".to_string()));
        }
        let sp = &self.speech;
        for (key, value) in [
            ("speech.whisper_workers", sp.whisper_workers),
            ("speech.whisper_threads", sp.whisper_threads),
            ("speech.grammar_workers", sp.grammar_workers),
            ("speech.asr_queue", sp.asr_queue),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1".to_string()));
            }
        }
        if let Some(ctx) = sp.whisper_audio_ctx {
            if !(64..=1500).contains(&ctx) {
                return Err(invalid(
                    "speech.whisper_audio_ctx",
                    format!("{ctx} is not within 64..=1500 (50 per second of audio)"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&sp.whisper_early_end_confidence) {
            return Err(invalid(
                "speech.whisper_early_end_confidence",
                format!(
                    "{} is not within 0..=1 (0: off)",
                    sp.whisper_early_end_confidence
                ),
            ));
        }
        if sp.end_silence_ms < 100
            || sp.grammar_end_silence_ms < 100
            || sp.max_utterance_ms < sp.start_ms
        {
            return Err(invalid(
                "speech.end_silence_ms",
                "needs end_silence_ms and grammar_end_silence_ms ≥ 100, max_utterance_ms ≥ start_ms"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// The IP put into Contact headers and SDP `c=` lines.
    pub fn advertised_ip(&self) -> IpAddr {
        self.sip.public_address.unwrap_or(self.sip.listen.ip())
    }

    /// The IP RTP sockets bind to.
    pub fn rtp_bind_ip(&self) -> IpAddr {
        self.rtp.address.unwrap_or(self.sip.listen.ip())
    }
}

/// The parser's message without its own "error: line L column C:" prefix,
/// which our `file:line:column:` already says.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    let rest = line.strip_prefix("error: ").unwrap_or(line);
    match rest.strip_prefix("line ") {
        Some(after) => after
            .split_once(": ")
            .map(|(_, msg)| msg)
            .unwrap_or(rest)
            .to_string(),
        None => rest.to_string(),
    }
}

/// The 1-based line where a dotted key (`rtp.port_min`) is written, or 0
/// when it is not in the file (a default or an environment value).
fn line_of_key(text: &str, dotted: &str) -> u64 {
    let leaf = dotted.rsplit('.').next().unwrap_or(dotted);
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            t.strip_prefix(leaf)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i as u64 + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let path = Path::new("test.yaml");
        let c = Config::parse(path, text)?;
        c.validate(path, text)?;
        Ok(c)
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(parse("# nothing\n").unwrap(), Config::default());
    }

    #[test]
    fn bundled_config_parses_and_matches_defaults_where_documented() {
        let text = include_str!("../../fixtures/config/voxbridge.yaml");
        let c = parse(text).unwrap();
        assert_eq!(c.sip.listen, "127.0.0.1:5060".parse().unwrap());
        assert_eq!(c.rtp, RtpConfig::default());
        assert_eq!(c.flow, FlowConfig::default());
        assert_eq!(
            c.speech,
            SpeechConfig {
                intent_model: Some(PathBuf::from("fixtures/models/intent.onnx")),
                whisper_model: Some(PathBuf::from(INSTALLED_WHISPER)),
                asr_timeout_ms: 5_000,
                ..SpeechConfig::default()
            }
        );
        assert_eq!(
            c.transfer,
            TransferConfig {
                targets: c.transfer.targets.clone(),
                ..TransferConfig::default()
            }
        );
        assert!(c.transfer.targets.contains_key("agents"));
        assert!(c.dialog.script.is_some());
    }

    #[test]
    fn values_are_read() {
        let c = parse(
            "sip:\n  listen: 0.0.0.0:5070\n  transports: [udp]\n  codecs: [pcma]\nrtp:\n  port_min: 40000\n  port_max: 40100\nflow:\n  finish_key: '*'\n",
        )
        .unwrap();
        assert_eq!(c.sip.listen.port(), 5070);
        assert_eq!(c.sip.transports, vec![Transport::Udp]);
        assert_eq!(c.sip.codecs, vec![CodecName::Pcma]);
        assert_eq!((c.rtp.port_min, c.rtp.port_max), (40000, 40100));
        assert_eq!(c.flow.finish_key, '*');
    }

    #[test]
    fn unknown_key_is_reported_with_line_and_key() {
        let err = parse("sip:\n  listen: 127.0.0.1:5060\n  max_digit: 4\n").unwrap_err();
        match &err {
            ConfigError::Syntax { line, message, .. } => {
                assert_eq!(*line, 3, "{err}");
                assert!(message.contains("max_digit"), "{err}");
                assert!(!message.starts_with("error"), "{err}");
            }
            other => panic!("wrong error {other:?}"),
        }
        assert!(err.to_string().starts_with("test.yaml:3:"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported_with_line() {
        let err = parse("rtp:\n  port_min: lots\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
        let err = parse("sip:\n  listen: not-an-address\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
    }

    #[test]
    fn broken_yaml_is_reported() {
        let err = parse("sip: [\n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let err = parse("rtp:\n  port_min: 30000\n  port_max: 20000\n").unwrap_err();
        match err {
            ConfigError::Invalid { line, key, .. } => {
                assert_eq!(line, 2);
                assert_eq!(key, "rtp.port_min");
            }
            other => panic!("wrong error {other:?}"),
        }
        let err = parse("flow:\n  finish_key: x\n").unwrap_err();
        assert!(err.to_string().contains("flow.finish_key"), "{err}");
        let err = parse("rtp:\n  dtmf_duration_ms: 10\n").unwrap_err();
        assert!(err.to_string().contains("rtp.dtmf_duration_ms"), "{err}");
        assert_eq!(
            parse("rtp:\n  dtmf_duration_ms: 250\n")
                .unwrap()
                .rtp
                .dtmf_duration_ms,
            250
        );
    }

    #[test]
    fn time_zone_must_be_an_iana_name() {
        let c = parse("calls:\n  time_zone: Asia/Shanghai\n").unwrap();
        assert_eq!(c.calls.time_zone.as_deref(), Some("Asia/Shanghai"));
        let err = parse("calls:\n  max_calls: 5\n  time_zone: Moon/Base\n").unwrap_err();
        match &err {
            ConfigError::Invalid {
                line, key, message, ..
            } => {
                assert_eq!((*line, key.as_str()), (3, "calls.time_zone"), "{err}");
                assert!(message.contains("Moon/Base"), "{err}");
            }
            other => panic!("wrong error {other:?}"),
        }
        assert_eq!(Config::default().calls.time_zone, None);
    }

    #[test]
    fn environment_overrides_apply_and_bad_ones_fail() {
        let mut c = Config::default();
        c.apply_env(|v| match v {
            "VOXBRIDGE_SIP_LISTEN" => Some("127.0.0.2:5090".into()),
            "VOXBRIDGE_LOG_FORMAT" => Some("json".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.sip.listen, "127.0.0.2:5090".parse().unwrap());
        assert_eq!(c.log.format, LogFormat::Json);
        let err = c
            .apply_env(|v| (v == "VOXBRIDGE_RTP_PORT_MIN").then(|| "abc".into()))
            .unwrap_err();
        assert!(err.to_string().contains("VOXBRIDGE_RTP_PORT_MIN"));
    }

    /// A variable in the list that `apply_env` does not carry out would be
    /// silently ignored: each must change the config.
    #[test]
    fn every_listed_override_is_applied() {
        for (var, key) in ENV_OVERRIDES {
            let value = match *key {
                "sip.listen" | "admin.listen" => "127.0.0.9:5999",
                "sip.public_address" | "rtp.address" => "127.0.0.9",
                "log.level" => "trace",
                "log.format" => "json",
                "calls.time_zone" => "Europe/Berlin",
                "rtp.latching" => "strict",
                "sip.rate_limits.enabled" => "false",
                "sip.srtp" => "required",
                "sip.rate_limits.allow" => "192.0.2.0/24, 2001:db8::1",
                k if k.starts_with("rtp.port") || k.starts_with("calls.") => "7",
                _ => "/elsewhere/file",
            };
            let mut c = Config::default();
            let before = format!("{c:?}");
            c.apply_env(|v| (v == *var).then(|| value.to_string()))
                .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
            assert_ne!(format!("{c:?}"), before, "{var} changed nothing");
        }
    }
}
