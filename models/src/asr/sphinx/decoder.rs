//! One PocketSphinx decoder over our bindgen bindings (the `sphinx`
//! feature): loading the model safely (in a forked child first), adding
//! grammars, decoding one utterance. A worker of the pool owns one.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::Mutex;

use super::super::grammar::Grammar;
use super::super::pool::{Heard, Worker};
use super::super::{AsrError, AsrRequest};
use super::{SphinxConfig, ENGINE, MAX_GRAMMARS, NOISE_FLOOR_RMS};
use crate::ffi::pocketsphinx as sys;
use crate::{audio, Language, ModelError};

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
