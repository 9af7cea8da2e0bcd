//! Synthesis of a dialog script's static prompts (text without `{{ }}`, in
//! every language the script runs in) into the TTS cache when the script
//! loads and whenever a new version goes live, so the first caller hears
//! the menu at once instead of waiting for espeak-ng.
//!
//! It runs in the background: calls are taken meanwhile, and a call that
//! needs a prompt not yet warmed waits behind at most one synthesis, since
//! the prewarmer asks the espeak-ng thread for one prompt at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use voxbridge_dialog::interp::{Program, StaticPrompt};
use voxbridge_models::tts::Tts;
use voxbridge_models::Language;

/// What one prewarm did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prewarmed {
    /// Static prompts in the script.
    pub prompts: usize,
    /// Of those, synthesised now (the rest were cached already).
    pub synthesised: u64,
    /// Of those, failed (logged).
    pub failed: usize,
    pub took: Duration,
}

/// Put every static prompt of `program` in `tts`'s cache, under the key a
/// call's `say` looks up. Blocks while espeak-ng works.
pub fn prewarm(program: &Program, tts: &Tts) -> Prewarmed {
    let start = Instant::now();
    let misses = tts.stats().misses;
    let mut prompts = program.static_prompts();
    // Most calls run in the default language: its greeting and menu first.
    let default = program.default_language();
    prompts.sort_by_key(|p| p.language != default);
    let mut failed = 0;
    for p in &prompts {
        if let Err(e) = speak(tts, p) {
            failed += 1;
            warn!(text = %p.text, language = p.language.code(), error = %e, "prompt not prewarmed");
        }
    }
    Prewarmed {
        prompts: prompts.len(),
        synthesised: tts.stats().misses.saturating_sub(misses),
        failed,
        took: start.elapsed(),
    }
}

/// The same call a call's `say` makes: the script's voice, else the
/// engine's voice for the language.
fn speak(tts: &Tts, p: &StaticPrompt) -> Result<Arc<[i16]>, voxbridge_models::ModelError> {
    match &p.voice {
        Some(v) => tts.speak_with_voice(&p.text, v),
        None => {
            let language = p
                .language
                .code()
                .parse::<Language>()
                .unwrap_or(Language::En);
            tts.speak(&p.text, language)
        }
    }
}

/// Prewarm the live program now and each new one as it goes live, until
/// `stop`.
pub fn spawn(
    mut programs: watch::Receiver<Arc<Program>>,
    tts: Arc<Tts>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let program = programs.borrow_and_update().clone();
            let t = tts.clone();
            match tokio::task::spawn_blocking(move || prewarm(&program, &t)).await {
                Ok(done) => info!(
                    prompts = done.prompts,
                    synthesised = done.synthesised,
                    failed = done.failed,
                    took_ms = done.took.as_millis() as u64,
                    "script prompts prewarmed"
                ),
                Err(e) => warn!(error = %e, "prompt prewarm failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = programs.changed() => if changed.is_err() { return },
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script_store::ScriptStore;
    use voxbridge_models::tts::TtsConfig;

    fn tts() -> Tts {
        Tts::start(TtsConfig::default()).expect("espeak-ng (scripts/install-deps.sh)")
    }

    #[test]
    fn the_bundled_menu_is_a_cache_hit_after_prewarm() {
        use voxbridge_dialog::format::Lang;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/scripts/customer-service.yaml");
        let program = Program::load(&path, None).unwrap();
        let tts = tts();
        let done = prewarm(&program, &tts);
        eprintln!(
            "prewarmed {} prompts ({} synthesised) of customer-service.yaml in {} ms",
            done.prompts,
            done.synthesised,
            done.took.as_millis()
        );
        assert_eq!(done.failed, 0);
        assert!(done.prompts >= 20 && done.synthesised > 0, "{done:?}");
        // The menu, in both languages, as a call's `say` asks for it.
        let menu = &program
            .state(None, "menu")
            .unwrap()
            .ask
            .as_ref()
            .unwrap()
            .prompt;
        let before = tts.stats();
        for lang in [Lang::En, Lang::Zh] {
            let heard = StaticPrompt {
                text: menu.prompts()[0].text_for(lang).unwrap().to_string(),
                language: lang,
                voice: program.voice(lang),
            };
            speak(&tts, &heard).unwrap();
        }
        let after = tts.stats();
        assert_eq!(after.misses, before.misses, "the menu needed no synthesis");
        assert_eq!(after.hits, before.hits + 2);
        // A second prewarm of the same script synthesises nothing.
        assert_eq!(prewarm(&program, &tts).synthesised, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reloaded_script_is_prewarmed_too() {
        let dir = std::env::temp_dir().join(format!("voxbridge-prewarm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.yaml");
        let script = |text: &str| {
            format!("name: t\nstart: hello\nstates:\n  hello:\n    say: {text}\n    hangup: done\n")
        };
        std::fs::write(&path, script("Welcome to the prewarm test.")).unwrap();
        let store = ScriptStore::load(&path).unwrap();
        // A cache of its own: the other test's prompts do not count here.
        let tts = Arc::new(tts());
        let stop = CancellationToken::new();
        let task = spawn(store.subscribe(), tts.clone(), stop.clone());
        // Wait for the cache to fill without speaking (which would fill it).
        let entries = |n: usize| {
            let tts = tts.clone();
            async move {
                for _ in 0..300 {
                    if tts.stats().entries >= n {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                false
            }
        };
        let hit = |text: &'static str| {
            let tts = tts.clone();
            async move {
                let misses = tts.stats().misses;
                let t = tts.clone();
                tokio::task::spawn_blocking(move || t.speak(text, Language::En))
                    .await
                    .unwrap()
                    .unwrap();
                tts.stats().misses == misses
            }
        };
        assert!(entries(1).await, "the loaded script was prewarmed");
        assert!(hit("Welcome to the prewarm test.").await);

        std::fs::write(&path, script("A new greeting, warmed on reload.")).unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(std::time::SystemTime::now() + Duration::from_secs(2))
            .unwrap();
        assert_eq!(store.reload_if_changed(), Some(true));
        assert!(entries(2).await, "the reloaded script was prewarmed");
        assert!(hit("A new greeting, warmed on reload.").await);
        stop.cancel();
        task.await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
