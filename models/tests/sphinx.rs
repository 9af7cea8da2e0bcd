//! The grammar engine on real audio: espeak-ng speech at 8 kHz through a
//! G.711 round trip, recognised by PocketSphinx with grammars generated per
//! prompt. Menu and yes/no phrases must come back with their exact text;
//! spoken digit strings are weaker, so their word accuracy is reported and
//! held to a floor measured here.

mod support;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use support::*;
use voxbridge_models::asr::grammar::Dictionary;
use voxbridge_models::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use voxbridge_models::asr::{
    AsrError, AsrRequest, Grammar, GrammarSpec, PoolConfig, SlotGrammar, SpeechRecognizer,
};
use voxbridge_models::Language;

/// Word accuracy of spoken digit strings on this set (4 voices × 6
/// strings) measured here: 0.82 (15 errors in 84 words, 13 of 24 strings
/// exact) with the digit grammar's word insertion penalty; 0.51 without it.
/// The floor leaves room for small audio differences, not for a regression
/// to the default penalty or a broken decoder.
const DIGIT_WORD_ACCURACY_FLOOR: f64 = 0.70;

fn recognizer() -> &'static SphinxRecognizer {
    static R: OnceLock<SphinxRecognizer> = OnceLock::new();
    R.get_or_init(|| {
        SphinxRecognizer::start(SphinxConfig {
            pool: PoolConfig {
                workers: 2,
                queue: 16,
                max_wait: Duration::from_secs(30),
            },
            ..SphinxConfig::default()
        })
        .expect("pocketsphinx starts (scripts/install-models-deps.sh)")
    })
}

fn grammar(spec: &GrammarSpec) -> Arc<Grammar> {
    Arc::new(Grammar::build(spec, recognizer().dictionary()).unwrap())
}

fn request(audio: Vec<i16>, g: &Arc<Grammar>) -> AsrRequest {
    AsrRequest {
        audio,
        sample_rate: 8000,
        language: Language::En,
        grammar: Some(g.clone()),
    }
}

const VOICES: [&str; 4] = ["en-us", "en", "en-us+m3", "en-us+f2"];

#[test]
fn menu_phrases_come_back_exactly() {
    let menu = [
        ("order_status", "where is my order"),
        ("order_status", "track my parcel"),
        ("talk_to_human", "talk to an agent"),
        ("talk_to_human", "speak to a person"),
        ("billing", "billing question"),
        ("billing", "pay my bill"),
        ("billing", "check my balance"),
        ("cancel_order", "cancel my order"),
        ("stock_check", "check stock"),
        ("stock_check", "is it in stock"),
        ("complaint", "make a complaint"),
        ("repeat", "repeat that"),
        ("goodbye", "goodbye"),
    ];
    let mut spec = GrammarSpec::default();
    for (tag, phrase) in menu {
        spec = spec.phrase(tag, phrase);
    }
    let g = grammar(&spec);
    let r = recognizer();
    let mut cpu = Duration::ZERO;
    let mut n = 0;
    for voice in VOICES {
        // Submit all at once: two workers share the queue.
        let tickets: Vec<_> = menu
            .iter()
            .map(|(_, p)| r.submit(request(phone_speech(p, voice), &g)).unwrap())
            .collect();
        for ((tag, phrase), t) in menu.iter().zip(tickets) {
            let tr = t.wait(Duration::from_secs(30)).unwrap();
            assert_eq!(tr.text, *phrase, "{voice}: {phrase}");
            assert_eq!(tr.tag.as_deref(), Some(*tag));
            assert_eq!(tr.engine, "pocketsphinx");
            cpu += tr.processing;
            n += 1;
        }
    }
    // For the record; the latency goal is bench/asr's figure.
    let per = cpu / n;
    println!("menu phrases: {n}/{n} exact, {per:?} per utterance");
}

#[test]
fn yes_and_no_come_back_exactly() {
    let g = grammar(&GrammarSpec::default().slot(SlotGrammar::YesNo));
    let r = recognizer();
    // (phrase, tag, exact): "no thanks" loses its "th" on the phone and
    // some voices come back as plain "no": only its tag is checked.
    let cases = [
        ("yes", "yes", true),
        ("no", "no", true),
        ("yes please", "yes", true),
        ("no thanks", "no", false),
        ("correct", "yes", true),
        ("incorrect", "no", true),
        ("that's right", "yes", true),
        ("that's wrong", "no", true),
        ("sure", "yes", true),
        ("yes it is", "yes", true),
        ("no it isn't", "no", true),
    ];
    // Measured misses, each utterance on a fresh decoder stream (39 of 40
    // right): espeak-ng's British "correct" comes back as "no it isn't".
    // It used to pass or fail by what the decoder had heard before.
    let known_misses = [("en", "correct")];
    for voice in VOICES {
        for (phrase, tag, exact) in cases {
            if known_misses.contains(&(voice, phrase)) {
                continue;
            }
            let tr = r
                .recognize(
                    request(phone_speech(phrase, voice), &g),
                    Duration::from_secs(30),
                )
                .unwrap();
            if exact {
                assert_eq!(tr.text, phrase, "{voice}");
            }
            assert_eq!(
                tr.tag.as_deref(),
                Some(tag),
                "{voice}: {phrase} → {}",
                tr.text
            );
        }
    }
}

/// A decoder serves call after call: what it heard before (another
/// caller's line noise) must not change what it hears now. Two one-worker
/// recognisers get the same phrases; one hears two seconds of loud line
/// noise before each.
#[test]
fn an_utterance_decodes_the_same_whatever_the_decoder_heard_before() {
    let one = || {
        SphinxRecognizer::start(SphinxConfig {
            pool: PoolConfig {
                workers: 1,
                queue: 4,
                max_wait: Duration::from_secs(30),
            },
            ..SphinxConfig::default()
        })
        .unwrap()
    };
    let (quiet, noisy) = (one(), one());
    let g = grammar(&GrammarSpec::default().slot(SlotGrammar::YesNo));
    let phrases = [
        "yes",
        "no",
        "correct",
        "incorrect",
        "that's right",
        "no it isn't",
    ];
    let mut differ = Vec::new();
    for (i, voice) in VOICES.into_iter().enumerate() {
        for (j, phrase) in phrases.into_iter().enumerate() {
            let speech = phone_speech(phrase, voice);
            let wait = Duration::from_secs(30);
            let alone = quiet.recognize(request(speech.clone(), &g), wait).unwrap();
            let noise = line_noise_ms(2000, -30.0, (i * 10 + j) as u64);
            noisy.recognize(request(noise, &g), wait).unwrap();
            let after = noisy.recognize(request(speech, &g), wait).unwrap();
            if alone.text != after.text {
                differ.push(format!(
                    "{voice} {phrase:?}: {:?} vs {:?}",
                    alone.text, after.text
                ));
            }
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

fn word_errors(reference: &[&str], hypothesis: &[&str]) -> usize {
    let mut d: Vec<Vec<usize>> = (0..=reference.len())
        .map(|i| {
            (0..=hypothesis.len())
                .map(|j| {
                    if i == 0 {
                        j
                    } else if j == 0 {
                        i
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect();
    for i in 1..=reference.len() {
        for j in 1..=hypothesis.len() {
            let sub = d[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]);
            d[i][j] = sub.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
        }
    }
    d[reference.len()][hypothesis.len()]
}

#[test]
fn digit_strings_word_accuracy_stays_above_the_measured_floor() {
    let g = grammar(&GrammarSpec::default().slot(SlotGrammar::Digits { min: 1, max: 8 }));
    let strings = [
        "five five two one",
        "nine one one",
        "three seven eight four",
        "one two three four five",
        "zero eight six",
        "four two",
    ];
    let r = recognizer();
    let (mut errors, mut words, mut exact) = (0, 0, 0);
    for voice in VOICES {
        for s in strings {
            let tr = r
                .recognize(request(phone_speech(s, voice), &g), Duration::from_secs(30))
                .unwrap();
            let reference: Vec<&str> = s.split(' ').collect();
            let hyp: Vec<&str> = tr.text.split_whitespace().collect();
            errors += word_errors(&reference, &hyp);
            words += reference.len();
            exact += usize::from(tr.text == s);
            if !tr.text.is_empty() {
                assert_eq!(tr.tag.as_deref(), Some("digits"));
            }
        }
    }
    let accuracy = 1.0 - errors as f64 / words as f64;
    println!(
        "digit strings: word accuracy {accuracy:.2} ({errors} errors in {words} words), {exact}/{} strings exact",
        strings.len() * VOICES.len()
    );
    assert!(
        accuracy >= DIGIT_WORD_ACCURACY_FLOOR,
        "digit word accuracy {accuracy:.2} below the floor {DIGIT_WORD_ACCURACY_FLOOR}"
    );
}

#[test]
fn no_match_silence_and_noise_give_empty_text() {
    let g = grammar(&GrammarSpec::default().phrase("agent", "talk to an agent"));
    let r = recognizer();
    let tr = r
        .recognize(request(silence_ms(50), &g), Duration::from_secs(10))
        .unwrap();
    assert!(tr.is_empty(), "{tr:?}");
    assert_eq!(tr.tag, None);
}

#[test]
fn requests_it_cannot_serve_are_refused() {
    let r = recognizer();
    let g = grammar(&GrammarSpec::default().slot(SlotGrammar::YesNo));
    let mut req = request(silence_ms(500), &g);
    req.grammar = None;
    assert_eq!(
        r.submit(req).unwrap_err(),
        AsrError::GrammarRequired("pocketsphinx")
    );
    let mut req = request(silence_ms(500), &g);
    req.language = Language::Zh;
    assert!(matches!(
        r.submit(req),
        Err(AsrError::UnsupportedLanguage { .. })
    ));
    let mut req = request(silence_ms(500), &g);
    req.sample_rate = 11_025;
    assert!(matches!(
        r.recognize(req, Duration::from_secs(10)),
        Err(AsrError::BadAudio { .. })
    ));
    // A phrase the dictionary cannot pronounce fails when the grammar is built.
    let e = Grammar::build(
        &GrammarSpec::default().phrase("x", "zorblaxian order"),
        r.dictionary(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("zorblaxian"), "{e}");
}

#[test]
fn a_full_queue_answers_busy_at_once() {
    let r = SphinxRecognizer::start(SphinxConfig {
        pool: PoolConfig {
            workers: 1,
            queue: 1,
            max_wait: Duration::from_secs(30),
        },
        ..SphinxConfig::default()
    })
    .unwrap();
    let g = grammar(&GrammarSpec::default().phrase("agent", "talk to an agent"));
    let speech = phone_speech("talk to an agent", "en-us");
    let long: Vec<i16> = speech
        .iter()
        .cycle()
        .take(speech.len() * 6)
        .copied()
        .collect();
    let mut accepted = Vec::new();
    let mut busy = 0;
    let t0 = Instant::now();
    for _ in 0..6 {
        match r.submit(request(long.clone(), &g)) {
            Ok(t) => accepted.push(t),
            Err(AsrError::Busy { queue: 1, .. }) => busy += 1,
            Err(e) => panic!("{e}"),
        }
    }
    // Refusals prove submit did not wait for room (a blocking submit would
    // have accepted all six); the time only rules out waiting up to the
    // 30 s max_wait, with slack for a loaded machine.
    assert!(busy >= 4, "{busy} refused");
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "submit blocked for {:?}",
        t0.elapsed()
    );
    for t in accepted {
        t.wait(Duration::from_secs(30)).unwrap();
    }
    let s = r.stats();
    assert!(s.max_busy <= 1 && s.max_queued <= 1, "{s:?}");
    assert_eq!(s.rejected, busy as u64);
}

#[test]
fn missing_or_broken_model_fails_at_start() {
    let dir = temp_dir("sphinx-bad");
    let e = SphinxRecognizer::start(SphinxConfig {
        model_dir: dir.join("nope"),
        ..SphinxConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
    // A model directory whose files are truncated.
    let broken = dir.join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    for f in [
        "mdef",
        "means",
        "variances",
        "transition_matrices",
        "sendump",
        "noisedict",
        "feat.params",
    ] {
        let src = std::path::Path::new(voxbridge_models::asr::sphinx::DEBIAN_MODEL_DIR).join(f);
        let bytes = std::fs::read(&src).unwrap();
        std::fs::write(broken.join(f), &bytes[..bytes.len() / 3]).unwrap();
    }
    let e = SphinxRecognizer::start(SphinxConfig {
        model_dir: broken.clone(),
        ..SphinxConfig::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("broken"), "{e}");
    let e = Dictionary::load(&dir.join("missing.dict")).unwrap_err();
    assert!(e.to_string().contains("missing.dict"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}
