//! Text to speech with espeak-ng (Debian `libespeak-ng1`, voices from
//! `espeak-ng-data`): English and Mandarin, resampled to 8 kHz for the call,
//! cached by voice, rate and text so a repeated prompt costs a hash lookup.
//!
//! Why the library (our own small FFI) and not the `espeak-ng` program:
//! synthesis is in-process with no fork/exec per prompt (spawning from an
//! engine holding hundreds of MB of model state costs more than the
//! synthesis itself), the voice data is loaded once, and errors come back
//! as values instead of exit codes. The library keeps global state and is
//! not thread-safe, so one thread owns it for the whole process and
//! requests reach it over a channel; the cache in front of it absorbs
//! repeated prompts. WAV prompts (`hound`, the media crate's prompt player)
//! remain the alternative for recorded audio.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};

use crate::{audio, Language, ModelError};
#[cfg(feature = "espeak")]
use {
    crate::ffi::espeak as sys,
    std::cell::RefCell,
    std::ffi::CString,
    std::os::raw::{c_int, c_short},
    std::sync::OnceLock,
};

/// Output sample rate: calls are 8 kHz.
pub const OUTPUT_RATE: u32 = 8_000;

/// TTS settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TtsConfig {
    /// espeak-ng voice for English.
    pub voice_en: String,
    /// espeak-ng voice for Mandarin.
    pub voice_zh: String,
    /// Speaking rate in words per minute (espeak-ng: 80–450).
    pub rate_wpm: u32,
    /// The `espeak-ng-data` directory; `None`: the library's default.
    pub data_dir: Option<PathBuf>,
    /// Cache budget in bytes of 8 kHz audio (16 KB per second).
    pub cache_bytes: usize,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            voice_en: "en-us".into(),
            voice_zh: "cmn".into(),
            rate_wpm: 160,
            data_dir: None,
            cache_bytes: 64 << 20,
        }
    }
}

/// Cache counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TtsStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub bytes: usize,
}

// Read only by the espeak-ng thread, which a build without `espeak` lacks.
#[cfg_attr(not(feature = "espeak"), allow(dead_code))]
struct Request {
    text: String,
    voice: String,
    rate: u32,
    reply: Sender<Result<Vec<i16>, ModelError>>,
}

#[cfg(feature = "espeak")]
/// The espeak-ng thread: its native sample rate and request queue.
type EngineHandle = (u32, Mutex<Sender<Request>>);

#[cfg(feature = "espeak")]
/// The process-wide espeak-ng thread, or why it could not start.
static ENGINE: OnceLock<Result<EngineHandle, String>> = OnceLock::new();

#[cfg(feature = "espeak")]
thread_local! {
    static BUFFER: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

#[cfg(feature = "espeak")]
unsafe extern "C" fn collect(
    wav: *mut c_short,
    n: c_int,
    _events: *mut sys::espeak_EVENT,
) -> c_int {
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak-ng passes `n` valid samples for the duration of the call.
        let samples = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        BUFFER.with(|b| b.borrow_mut().extend_from_slice(samples));
    }
    0 // continue
}

/// This build has no `espeak` feature: TTS never starts.
#[cfg(not(feature = "espeak"))]
fn engine(_data_dir: Option<&PathBuf>) -> Result<(u32, Sender<Request>), ModelError> {
    Err(ModelError::disabled("tts (espeak-ng)", "espeak"))
}

#[cfg(feature = "espeak")]
fn engine(data_dir: Option<&PathBuf>) -> Result<(u32, Sender<Request>), ModelError> {
    let state = ENGINE.get_or_init(|| {
        let (init_tx, init_rx) = mpsc::channel::<Result<u32, String>>();
        let (tx, rx) = mpsc::channel::<Request>();
        let path = data_dir.map(|p| p.display().to_string());
        let spawned = std::thread::Builder::new()
            .name("vb-tts-espeak".into())
            .spawn(move || {
                let cpath = path.as_deref().map(CString::new);
                let cpath = match cpath {
                    Some(Ok(c)) => Some(c),
                    Some(Err(_)) => {
                        let _ = init_tx.send(Err("espeak-ng data path has a NUL byte".into()));
                        return;
                    }
                    None => None,
                };
                // SAFETY: first and only initialisation, on the thread that
                // will make every later call; the path outlives the call.
                let rate = unsafe {
                    sys::espeak_Initialize(
                        sys::espeak_AUDIO_OUTPUT::AUDIO_OUTPUT_SYNCHRONOUS,
                        0,
                        cpath.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
                        sys::espeakINITIALIZE_DONT_EXIT as c_int,
                    )
                };
                if rate <= 0 {
                    let _ = init_tx.send(Err(format!(
                        "espeak-ng failed to initialise (data directory {})",
                        path.as_deref().unwrap_or("default")
                    )));
                    return;
                }
                // SAFETY: the callback is a plain function valid forever.
                unsafe { sys::espeak_SetSynthCallback(Some(collect)) };
                let _ = init_tx.send(Ok(rate as u32));
                for req in rx {
                    let _ = req.reply.send(synthesize(&req.text, &req.voice, req.rate));
                }
            });
        if let Err(e) = spawned {
            return Err(format!("cannot start the espeak-ng thread: {e}"));
        }
        match init_rx.recv() {
            Ok(Ok(rate)) => Ok((rate, Mutex::new(tx))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the espeak-ng thread died at start".into()),
        }
    });
    match state {
        Ok((rate, tx)) => Ok((*rate, tx.lock().unwrap_or_else(|e| e.into_inner()).clone())),
        Err(e) => Err(ModelError::Config(format!("tts: {e}"))),
    }
}

#[cfg(feature = "espeak")]
/// Runs on the espeak-ng thread.
fn synthesize(text: &str, voice: &str, rate: u32) -> Result<Vec<i16>, ModelError> {
    let cvoice =
        CString::new(voice).map_err(|_| ModelError::Config("tts: NUL in voice name".into()))?;
    let ctext = CString::new(text.replace('\0', " "))
        .map_err(|_| ModelError::Config("tts: NUL in text".into()))?;
    BUFFER.with(|b| b.borrow_mut().clear());
    // SAFETY: called only on the thread that initialised espeak-ng; the
    // strings outlive the calls; synchronous mode returns when done.
    unsafe {
        if sys::espeak_SetVoiceByName(cvoice.as_ptr()) != sys::espeak_ERROR_EE_OK {
            return Err(ModelError::Config(format!(
                "tts: espeak-ng has no voice `{voice}`"
            )));
        }
        sys::espeak_SetParameter(
            sys::espeak_PARAMETER::espeakRATE,
            rate.clamp(80, 450) as c_int,
            0,
        );
        let rc = sys::espeak_Synth(
            ctext.as_ptr().cast(),
            ctext.as_bytes_with_nul().len(),
            0,
            sys::espeak_POSITION_TYPE::POS_CHARACTER,
            0,
            sys::espeakCHARS_UTF8,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        if rc != sys::espeak_ERROR_EE_OK {
            return Err(ModelError::Inference {
                engine: "tts",
                reason: format!("espeak_Synth failed ({rc})"),
            });
        }
    }
    Ok(BUFFER.with(|b| std::mem::take(&mut *b.borrow_mut())))
}

type Key = (String, u32, String);

/// The cache: moka, weighed by the bytes of audio (and of the key), least
/// recently used out first. Its `try_get_with` runs one synthesis per key at
/// a time and hands the result to every caller that asked meanwhile: a
/// burst of calls on a cold cache otherwise has the one espeak-ng thread
/// speak the same prompt once per call, and every call waits for all of
/// them.
type Cache = moka::sync::Cache<Key, Arc<[i16]>>;

fn cache(budget_bytes: usize) -> Cache {
    moka::sync::Cache::builder()
        .max_capacity(u64::try_from(budget_bytes).unwrap_or(u64::MAX))
        .weigher(|k: &Key, v: &Arc<[i16]>| {
            let bytes = v.len() * 2 + k.0.len() + k.2.len();
            u32::try_from(bytes).unwrap_or(u32::MAX)
        })
        // LRU, not moka's default TinyLFU admission, which may refuse a new
        // prompt in favour of older ones: the prompt just spoken is the one
        // most likely to be spoken again in this call.
        .eviction_policy(moka::policy::EvictionPolicy::lru())
        .build()
}

/// The TTS front end: cache plus the espeak-ng thread. Cheap to share
/// (`&self` methods, `Sync`).
pub struct Tts {
    config: TtsConfig,
    native_rate: u32,
    tx: Mutex<Sender<Request>>,
    cache: Cache,
    requests: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for Tts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tts")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Tts {
    /// Starts (or joins) the espeak-ng thread and checks that both voices
    /// exist, so a missing voice fails at start.
    pub fn start(config: TtsConfig) -> Result<Tts, ModelError> {
        let (native_rate, tx) = engine(config.data_dir.as_ref())?;
        let tts = Tts {
            native_rate,
            tx: Mutex::new(tx),
            cache: cache(config.cache_bytes),
            requests: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            config,
        };
        for voice in [&tts.config.voice_en, &tts.config.voice_zh] {
            tts.raw(" ", voice)?;
        }
        Ok(tts)
    }

    /// The espeak-ng voice used for `language`.
    pub fn voice_for(&self, language: Language) -> &str {
        match language {
            Language::En => &self.config.voice_en,
            Language::Zh => &self.config.voice_zh,
        }
    }

    fn raw(&self, text: &str, voice: &str) -> Result<Vec<i16>, ModelError> {
        let (reply, rx) = mpsc::channel();
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Request {
                text: text.to_string(),
                voice: voice.to_string(),
                rate: self.config.rate_wpm,
                reply,
            })
            .map_err(|_| ModelError::Config("tts: the espeak-ng thread has stopped".into()))?;
        rx.recv()
            .map_err(|_| ModelError::Config("tts: the espeak-ng thread has stopped".into()))?
    }

    /// `text` spoken in `language`, as 8 kHz mono samples (cached).
    pub fn speak(&self, text: &str, language: Language) -> Result<Arc<[i16]>, ModelError> {
        self.speak_with_voice(text, self.voice_for(language))
    }

    /// `text` spoken with an explicit espeak-ng voice (cached).
    pub fn speak_with_voice(&self, text: &str, voice: &str) -> Result<Arc<[i16]>, ModelError> {
        let key: Key = (
            voice.to_string(),
            self.config.rate_wpm,
            text.trim().to_string(),
        );
        self.requests.fetch_add(1, Ordering::Relaxed);
        let synthesise = || -> Result<Arc<[i16]>, ModelError> {
            self.misses.fetch_add(1, Ordering::Relaxed);
            let native = self.raw(&key.2, voice)?;
            Ok(audio::resample(&native, self.native_rate, OUTPUT_RATE).into())
        };
        self.cache
            .try_get_with_by_ref(&key, synthesise)
            .map_err(|shared| match Arc::try_unwrap(shared) {
                Ok(e) => e,
                // Callers that waited on the same synthesis share its error.
                Err(shared) => ModelError::Inference {
                    engine: "tts",
                    reason: shared.to_string(),
                },
            })
    }

    /// Cache counters.
    pub fn stats(&self) -> TtsStats {
        // moka applies evictions in batches: settle them so the counts
        // are exact.
        self.cache.run_pending_tasks();
        let misses = self.misses.load(Ordering::Relaxed);
        TtsStats {
            // A caller that waited on another's synthesis is a hit: it
            // caused none.
            hits: self.requests.load(Ordering::Relaxed).saturating_sub(misses),
            misses,
            entries: usize::try_from(self.cache.entry_count()).unwrap_or(usize::MAX),
            bytes: usize::try_from(self.cache.weighted_size()).unwrap_or(usize::MAX),
        }
    }
}
