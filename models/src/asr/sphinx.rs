//! The grammar engine: PocketSphinx 5prealpha (Debian `libpocketsphinx-dev`,
//! `pocketsphinx-en-us`) through our own bindgen bindings, decoding with the
//! JSGF grammar of the prompt.
//!
//! Pitfalls measured on this model (see DESIGN.md): it is a 16 kHz model,
//! so 8 kHz call audio is upsampled; a decoder takes ~0.2 s and ~35 MB to
//! start, so each worker keeps one decoder for its whole life; every
//! utterance is fed whole (`full_utt = 1`), which lets the model's batch
//! cepstral mean normalisation (`-cmn batch` in its `feat.params`) use the
//! utterance's own mean instead of a wideband initial guess (live CMN with
//! a phone-measured `-cmninit` did worse on menus here and depends on what
//! the decoder heard before); each utterance is also its own stream, so
//! the noise level the decoder tracks starts afresh (kept across a stream,
//! it made one call's audio decode differently after another's). G.711
//! turns silence into exact zeros, on which the model's log filter-bank
//! energies misbehave: a −70 dBFS noise floor
//! ([`NOISE_FLOOR_RMS`]) is added first, which took espeak-ng menu and
//! yes/no phrases through μ-law from 75 to 95 in 100 exact. An empty
//! hypothesis is a no-match. Grammars are added to a worker's decoder the
//! first time they are used and kept (up to [`MAX_GRAMMARS`]), so switching
//! prompts costs a search switch, not a decoder.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr;
use std::sync::{Arc, Mutex};

use super::grammar::{Dictionary, Grammar};
use super::pool::{Heard, PoolConfig, PoolStats, Worker, WorkerPool};
use super::{AsrError, AsrRequest, SpeechRecognizer, Ticket};
use crate::ffi::pocketsphinx as sys;
use crate::{audio, Language, ModelError};

const ENGINE: &str = "pocketsphinx";

/// Grammars kept per decoder before the oldest is dropped.
pub const MAX_GRAMMARS: usize = 64;

/// Where Debian's `pocketsphinx-en-us` puts the model.
pub const DEBIAN_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us/en-us";
/// Debian's US-English pronouncing dictionary.
pub const DEBIAN_DICT: &str = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";

/// RMS (16-bit units, about −70 dBFS) of the noise floor added to each
/// utterance before decoding.
pub const NOISE_FLOOR_RMS: f64 = 10.0;

/// How to run the grammar engine.
#[derive(Debug, Clone, PartialEq)]
pub struct SphinxConfig {
    /// The acoustic model directory (with `mdef`, `means`, `feat.params`…).
    pub model_dir: PathBuf,
    /// The pronouncing dictionary.
    pub dict: PathBuf,
    /// Further decoder options (`("-beam", "1e-60")`…), for tuning.
    pub extra_args: Vec<(String, String)>,
    /// Workers (one decoder each, ~35 MB) and queue.
    pub pool: PoolConfig,
}

impl Default for SphinxConfig {
    fn default() -> Self {
        SphinxConfig {
            model_dir: PathBuf::from(DEBIAN_MODEL_DIR),
            dict: PathBuf::from(DEBIAN_DICT),
            extra_args: Vec::new(),
            pool: PoolConfig::default(),
        }
    }
}

/// sphinxbase's logging and `cmd_ln` parsing are process-global: decoders
/// are created one at a time.
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// One PocketSphinx decoder (owned by one worker thread).
pub(crate) struct Decoder {
    ps: *mut sys::ps_decoder_t,
    config: *mut sys::cmd_ln_t,
    grammars: VecDeque<u64>,
}

fn cstring(s: &str) -> Result<CString, ModelError> {
    CString::new(s).map_err(|_| ModelError::Config(format!("pocketsphinx: NUL byte in {s:?}")))
}

impl Decoder {
    pub(crate) fn new(cfg: &SphinxConfig) -> Result<Decoder, ModelError> {
        for (what, p) in [("model", &cfg.model_dir), ("dictionary", &cfg.dict)] {
            if !p.exists() {
                return Err(ModelError::Io {
                    path: p.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("pocketsphinx {what} missing (install pocketsphinx-en-us)"),
                    ),
                });
            }
        }
        if !cfg.model_dir.join("mdef").exists() {
            return Err(ModelError::corrupt(
                &cfg.model_dir,
                "no `mdef`: not an acoustic model directory",
            ));
        }
        let mut args: Vec<(String, String)> = vec![
            ("-hmm".into(), cfg.model_dir.display().to_string()),
            ("-dict".into(), cfg.dict.display().to_string()),
        ];
        for (k, v) in &cfg.extra_args {
            // cmd_ln_parse_r rejects repeated options: later ones replace.
            args.retain(|(a, _)| a != k);
            args.push((k.clone(), v.clone()));
        }
        let owned: Vec<CString> = std::iter::once("voxbridge".to_string())
            .chain(args.into_iter().flat_map(|(k, v)| [k, v]))
            .map(|s| cstring(&s))
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*mut std::os::raw::c_char> =
            owned.iter().map(|c| c.as_ptr().cast_mut()).collect();
        let _guard = INIT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        quiet_logging();
        probe_in_child(&cfg.model_dir, &mut argv)?;
        // SAFETY: argv points into `owned`, alive for the call; ps_args() is a
        // static table. cmd_ln_parse_r copies what it keeps.
        let config = unsafe {
            sys::cmd_ln_parse_r(
                ptr::null_mut(),
                sys::ps_args(),
                argv.len() as i32,
                argv.as_mut_ptr(),
                1,
            )
        };
        if config.is_null() {
            return Err(ModelError::Config(
                "pocketsphinx: configuration rejected".into(),
            ));
        }
        // SAFETY: config is a valid cmd_ln_t; ps_init retains it.
        let ps = unsafe { sys::ps_init(config) };
        if ps.is_null() {
            // SAFETY: config came from cmd_ln_parse_r and is not used again.
            unsafe { sys::cmd_ln_free_r(config) };
            return Err(ModelError::corrupt(
                &cfg.model_dir,
                "pocketsphinx could not load the acoustic model or dictionary",
            ));
        }
        Ok(Decoder {
            ps,
            config,
            grammars: VecDeque::new(),
        })
    }

    fn use_grammar(&mut self, g: &Grammar) -> Result<(), AsrError> {
        let name = cstring(&format!("g{:016x}", g.id())).map_err(engine_err)?;
        if !self.grammars.contains(&g.id()) {
            if self.grammars.len() >= MAX_GRAMMARS {
                if let Some(old) = self.grammars.pop_front() {
                    let old = cstring(&format!("g{old:016x}")).map_err(engine_err)?;
                    // SAFETY: ps is valid; the name is a NUL-terminated string.
                    unsafe { sys::ps_unset_search(self.ps, old.as_ptr()) };
                }
            }
            let jsgf = cstring(g.jsgf()).map_err(engine_err)?;
            // The FSG search takes its word insertion penalty from the
            // decoder's configuration when it is created: set it per grammar.
            // SAFETY: ps valid, strings NUL-terminated and alive for the call;
            // "-wip" is a float option of ps_args().
            let rc = unsafe {
                let config = sys::ps_get_config(self.ps);
                sys::cmd_ln_set_float_r(config, c"-wip".as_ptr(), g.word_insertion_penalty());
                sys::ps_set_jsgf_string(self.ps, name.as_ptr(), jsgf.as_ptr())
            };
            if rc < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    reason: "grammar rejected by the decoder".into(),
                });
            }
            self.grammars.push_back(g.id());
        }
        // SAFETY: as above; no utterance is in progress.
        let rc = unsafe { sys::ps_set_search(self.ps, name.as_ptr()) };
        if rc < 0 {
            return Err(AsrError::Engine {
                engine: ENGINE,
                reason: "cannot switch to the grammar".into(),
            });
        }
        Ok(())
    }

    /// Decodes 16 kHz audio whole with grammar `g`; the hypothesis or "".
    pub(crate) fn decode(&mut self, g: &Grammar, pcm16k: &[i16]) -> Result<String, AsrError> {
        self.use_grammar(g)?;
        // SAFETY: ps valid; pcm16k alive during the call; one utterance at a
        // time on this thread.
        unsafe {
            // A new stream per utterance: the noise level the decoder keeps
            // for a stream (spectral subtraction, its silence detector)
            // would otherwise carry one caller's line into the next
            // caller's utterance, and the same audio would decode
            // differently after different calls.
            if sys::ps_start_stream(self.ps) < 0 || sys::ps_start_utt(self.ps) < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    reason: "start_stream/start_utt failed".into(),
                });
            }
            let rc = sys::ps_process_raw(self.ps, pcm16k.as_ptr(), pcm16k.len(), 0, 1);
            let end = sys::ps_end_utt(self.ps);
            if rc < 0 || end < 0 {
                return Err(AsrError::Engine {
                    engine: ENGINE,
                    reason: "decoding failed".into(),
                });
            }
            let mut score = 0i32;
            let hyp = sys::ps_get_hyp(self.ps, &mut score);
            if hyp.is_null() {
                return Ok(String::new());
            }
            Ok(CStr::from_ptr(hyp).to_string_lossy().trim().to_string())
        }
    }
}

/// sphinxbase logs to stderr by default, and `-logfn` swaps a global FILE
/// that other decoders may be writing to: logging is switched off once, for
/// the process.
fn quiet_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: NULL disables logging (documented in err.h).
    ONCE.call_once(|| unsafe { sys::err_set_logfp(ptr::null_mut()) });
}

/// PocketSphinx crashes (SIGSEGV) or calls `exit()` on truncated or
/// corrupt model files. So the first load of a model directory happens in
/// a forked child: if the child dies or fails, the model is reported as
/// corrupt here, at start, and the process survives. (The child only calls
/// the loader and `_exit`; glibc keeps malloc usable after `fork` in a
/// threaded process.) Successful directories are remembered.
fn probe_in_child(
    model_dir: &std::path::Path,
    argv: &mut [*mut std::os::raw::c_char],
) -> Result<(), ModelError> {
    static PROBED: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let key: String = argv
        .iter()
        // SAFETY: every entry is a NUL-terminated string owned by the caller.
        .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("\0");
    let mut probed = PROBED.lock().unwrap_or_else(|e| e.into_inner());
    if probed.contains(&key) {
        return Ok(());
    }
    // SAFETY: fork has no preconditions; the child runs only the loader
    // (argv and ps_args are already set up) and leaves with _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(ModelError::Config(format!(
            "pocketsphinx: cannot fork to check the model: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        // SAFETY: child process; see above.
        unsafe {
            let config = sys::cmd_ln_parse_r(
                ptr::null_mut(),
                sys::ps_args(),
                argv.len() as i32,
                argv.as_mut_ptr(),
                1,
            );
            let ok = !config.is_null() && !sys::ps_init(config).is_null();
            libc::_exit(if ok { 0 } else { 3 });
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: pid is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(ModelError::Config(
                "pocketsphinx: lost the model check process".into(),
            ));
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        probed.push(key);
        return Ok(());
    }
    let how = if libc::WIFSIGNALED(status) {
        format!("the loader crashed (signal {})", libc::WTERMSIG(status))
    } else {
        format!(
            "the loader failed (exit status {})",
            libc::WEXITSTATUS(status)
        )
    };
    Err(ModelError::corrupt(
        model_dir,
        format!(
            "pocketsphinx cannot load this model or dictionary: {how}; files truncated or corrupt?"
        ),
    ))
}

fn engine_err(e: ModelError) -> AsrError {
    AsrError::Engine {
        engine: ENGINE,
        reason: e.to_string(),
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: both were created in `new` and are freed once.
        unsafe {
            sys::ps_free(self.ps);
            sys::cmd_ln_free_r(self.config);
        }
    }
}

impl Worker for Decoder {
    fn recognize(&mut self, r: &AsrRequest) -> Result<Heard, AsrError> {
        if r.language != Language::En {
            return Err(AsrError::UnsupportedLanguage {
                engine: ENGINE,
                language: r.language,
            });
        }
        let g = r
            .grammar
            .as_ref()
            .ok_or(AsrError::GrammarRequired(ENGINE))?;
        if r.sample_rate != 8_000 && r.sample_rate != 16_000 {
            return Err(AsrError::BadAudio {
                engine: ENGINE,
                reason: format!("sample rate {} Hz (8000 or 16000)", r.sample_rate),
            });
        }
        let mut input = r.audio.clone();
        // Fixed seed: the same audio always decodes the same way.
        let seed = input.len() as u64;
        audio::add_noise_floor(&mut input, NOISE_FLOOR_RMS, seed);
        let pcm = if r.sample_rate == 8_000 {
            audio::resample(&input, 8_000, 16_000)
        } else {
            input
        };
        if pcm.len() < 1600 {
            // Under 100 ms: nothing a grammar could match.
            return Ok(Heard {
                text: String::new(),
                tag: None,
                confidence: None,
            });
        }
        let text = self.decode(g, &pcm)?;
        Ok(Heard {
            tag: g.tag_of(&text),
            text,
            confidence: None,
        })
    }
}

/// The PocketSphinx grammar engine: a pool of decoders.
pub struct SphinxRecognizer {
    pool: WorkerPool,
    dictionary: Arc<Dictionary>,
}

impl std::fmt::Debug for SphinxRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SphinxRecognizer")
            .field("stats", &self.pool.stats())
            .finish()
    }
}

impl SphinxRecognizer {
    /// Loads the dictionary and starts `config.pool.workers` decoders; any
    /// missing or broken model file is an error here.
    pub fn start(config: SphinxConfig) -> Result<Self, ModelError> {
        let dictionary = Arc::new(Dictionary::load(&config.dict)?);
        let cfg = Arc::new(config.clone());
        let pool = WorkerPool::start(ENGINE, config.pool, move |_| Decoder::new(&cfg))?;
        Ok(SphinxRecognizer { pool, dictionary })
    }

    /// The pronouncing dictionary, to build grammars with
    /// ([`Grammar::build`]).
    pub fn dictionary(&self) -> &Dictionary {
        &self.dictionary
    }
}

impl SpeechRecognizer for SphinxRecognizer {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn languages(&self) -> &[Language] {
        &[Language::En]
    }

    fn submit(&self, request: AsrRequest) -> Result<Ticket, AsrError> {
        if request.grammar.is_none() {
            return Err(AsrError::GrammarRequired(ENGINE));
        }
        if request.language != Language::En {
            return Err(AsrError::UnsupportedLanguage {
                engine: ENGINE,
                language: request.language,
            });
        }
        self.pool.submit(request)
    }

    fn stats(&self) -> PoolStats {
        self.pool.stats()
    }
}
