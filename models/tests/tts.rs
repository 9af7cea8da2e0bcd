//! espeak-ng TTS: 8 kHz output of plausible length in English and Mandarin,
//! the cache, errors, and the speech being understood by the grammar engine.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use voxbridge_models::audio::rms_dbfs;
use voxbridge_models::tts::{Tts, TtsConfig, OUTPUT_RATE};
use voxbridge_models::Language;

fn tts() -> &'static Tts {
    static T: OnceLock<Tts> = OnceLock::new();
    T.get_or_init(|| {
        Tts::start(TtsConfig::default()).expect("espeak-ng starts (scripts/install-models-deps.sh)")
    })
}

fn secs(a: &[i16]) -> f64 {
    a.len() as f64 / f64::from(OUTPUT_RATE)
}

#[test]
fn english_and_mandarin_at_8_khz_with_plausible_length() {
    assert_eq!(OUTPUT_RATE, 8000);
    let t = tts();
    let en = t
        .speak(
            "Thank you for calling. How can I help you today?",
            Language::En,
        )
        .unwrap();
    let d = secs(&en);
    assert!((2.0..6.0).contains(&d), "{d} s");
    assert!(rms_dbfs(&en) > -35.0, "{}", rms_dbfs(&en));
    let zh = t.speak("您好，请问有什么可以帮您？", Language::Zh).unwrap();
    let dz = secs(&zh);
    assert!((1.5..6.0).contains(&dz), "{dz} s");
    assert!(rms_dbfs(&zh) > -35.0);
    // Longer text, longer audio.
    let long = t
        .speak(
            "Your order number one two three four has been shipped and will arrive on Monday.",
            Language::En,
        )
        .unwrap();
    assert!(secs(&long) > d);
    // Nothing above 4 kHz can exist at 8 kHz; the output is not silent and not clipped.
    let clipped = en
        .iter()
        .filter(|&&s| s == i16::MAX || s == i16::MIN)
        .count();
    assert!(clipped < en.len() / 1000, "{clipped} clipped samples");
}

#[test]
fn repeated_prompts_come_from_the_cache() {
    let t = tts();
    let text = "Please hold while I transfer you.";
    let first = t.speak(text, Language::En).unwrap();
    let before = t.stats();
    // The same samples, not a new synthesis (how long a hit takes is
    // measured by bench/asr, not here).
    let again = t.speak(text, Language::En).unwrap();
    assert!(Arc::ptr_eq(&first, &again));
    let after = t.stats();
    assert_eq!(after.hits, before.hits + 1);
    assert_eq!(after.misses, before.misses);
    // Same text, other language: another entry.
    let zh = t.speak(text, Language::Zh).unwrap();
    assert!(!Arc::ptr_eq(&first, &zh));
}

#[test]
fn the_cache_stays_within_its_budget() {
    // A second front end shares the espeak-ng thread with its own cache.
    let small = Tts::start(TtsConfig {
        cache_bytes: 60_000,
        ..TtsConfig::default()
    })
    .unwrap();
    for i in 0..6 {
        small
            .speak(&format!("prompt number {i}"), Language::En)
            .unwrap();
    }
    let s = small.stats();
    assert!(s.bytes <= 60_000, "{s:?}");
    assert!(s.entries < 6, "{s:?}");
    // The newest is kept.
    small.speak("prompt number 5", Language::En).unwrap();
    assert_eq!(small.stats().hits, 1);
}

#[test]
fn unknown_voices_are_errors_and_synthesis_goes_on() {
    let t = tts();
    let e = t.speak_with_voice("hello", "no-such-voice").unwrap_err();
    assert!(e.to_string().contains("no-such-voice"), "{e}");
    assert!(Tts::start(TtsConfig {
        voice_zh: "no-such-voice".into(),
        ..TtsConfig::default()
    })
    .is_err());
    assert!(!t.speak("still working", Language::En).unwrap().is_empty());
}

#[test]
fn concurrent_callers_are_served() {
    let handles: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                let a = tts()
                    .speak(&format!("caller {i} says hello"), Language::En)
                    .unwrap();
                assert!(secs(&a) > 0.5);
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn a_burst_on_a_cold_cache_speaks_the_text_once() {
    // Its own front end, so no other test's requests count.
    let t = Arc::new(Tts::start(TtsConfig::default()).unwrap());
    let text = "Thank you for calling. Please listen carefully, as our menu options have changed.";
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || t.speak(text, Language::En).unwrap())
        })
        .collect();
    let first = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .reduce(|a, b| {
            assert_eq!(a, b);
            a
        })
        .unwrap();
    assert!(secs(&first) > 2.0);
    let s = t.stats();
    assert_eq!((s.misses, s.hits), (1, 7), "{s:?}");
}

#[test]
fn tts_speech_through_g711_is_understood_by_the_grammar_engine() {
    use voxbridge_models::asr::sphinx::{SphinxConfig, SphinxRecognizer};
    use voxbridge_models::asr::{AsrRequest, Grammar, GrammarSpec, SpeechRecognizer};
    let r = SphinxRecognizer::start(SphinxConfig::default()).unwrap();
    let g = Arc::new(
        Grammar::build(
            &GrammarSpec::default()
                .phrase("order_status", "where is my order")
                .phrase("talk_to_human", "talk to an agent")
                .phrase("goodbye", "goodbye"),
            r.dictionary(),
        )
        .unwrap(),
    );
    for phrase in ["where is my order", "talk to an agent"] {
        let audio = tts().speak(phrase, Language::En).unwrap();
        let line = support::g711_round_trip(&audio, voxbridge_media::codec::Codec::Pcma);
        let tr = r
            .recognize(
                AsrRequest {
                    audio: line,
                    sample_rate: 8000,
                    language: Language::En,
                    grammar: Some(g.clone()),
                },
                Duration::from_secs(30),
            )
            .unwrap();
        assert_eq!(tr.text, phrase);
    }
}

#[test]
fn the_cache_weighs_audio_bytes_and_drops_the_least_recently_used() {
    // About 1.5 s of 8 kHz audio fits (24 KB); a long prompt does not.
    let t = Tts::start(TtsConfig {
        cache_bytes: 40_000,
        ..TtsConfig::default()
    })
    .unwrap();
    let long = "This prompt is far too long to fit in a cache of forty kilobytes of audio.";
    let a = t.speak(long, Language::En).unwrap();
    assert!(a.len() * 2 > 40_000, "{} bytes", a.len() * 2);
    let s = t.stats();
    assert_eq!((s.entries, s.bytes, s.misses), (0, 0, 1), "{s:?}");
    // Spoken again, since it was not kept.
    t.speak(long, Language::En).unwrap();
    assert_eq!(t.stats().misses, 2);
    // Two short prompts: the bytes counted are the audio's (2 per sample).
    let yes = t.speak("yes", Language::En).unwrap();
    let s = t.stats();
    assert_eq!(s.entries, 1);
    assert!(
        s.bytes >= yes.len() * 2 && s.bytes < yes.len() * 2 + 64,
        "{s:?}"
    );
    t.speak("no", Language::En).unwrap();
    t.speak("yes", Language::En).unwrap();
    assert_eq!(t.stats().misses, 4, "both short prompts fit and stay");
}
