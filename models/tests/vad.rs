//! VAD and endpointing on espeak-ng speech (8 kHz, G.711 round trip) mixed
//! with silence and line noise.

mod support;

use support::*;
use voxbridge_media::echo::{EchoConfig, EchoDetector};
use voxbridge_models::audio::rms_dbfs;
use voxbridge_models::vad::{EndReason, EndpointConfig, EndpointEvent, Endpointer};

/// Runs `audio` through an endpointer in 20 ms frames; returns the events.
/// After an utterance or no-input the endpointer is reset and listens again.
fn run(
    cfg: EndpointConfig,
    audio: &[i16],
    prompt_until_ms: Option<u64>,
) -> Vec<(u64, EndpointEvent)> {
    let mut ep = Endpointer::new(cfg).unwrap();
    let mut events = Vec::new();
    let mut offset = 0u64; // audio time of the last reset
    for (i, frame) in audio.chunks(160).enumerate() {
        let t = i as u64 * 20;
        ep.set_prompt_playing(prompt_until_ms.is_some_and(|p| t < p));
        ep.push(frame);
        while let Some(e) = ep.poll_event() {
            events.push((offset, e));
        }
        if ep.is_done() {
            offset = (i as u64 + 1) * 20;
            ep.reset();
        }
    }
    ep.finish();
    while let Some(e) = ep.poll_event() {
        events.push((offset, e));
    }
    events
}

fn utterances(events: &[(u64, EndpointEvent)]) -> Vec<(u64, u64, usize, EndReason)> {
    events
        .iter()
        .filter_map(|(off, e)| match e {
            EndpointEvent::Utterance {
                audio,
                start_ms,
                end_ms,
                reason,
            } => Some((off + start_ms, off + end_ms, audio.len(), *reason)),
            _ => None,
        })
        .collect()
}

/// Where speech really is in `speech` (above -45 dBFS in 20 ms frames).
fn speech_span_ms(speech: &[i16]) -> (u64, u64) {
    let frames: Vec<bool> = speech.chunks(160).map(|f| rms_dbfs(f) > -45.0).collect();
    let first = frames.iter().position(|&v| v).unwrap() as u64 * 20;
    let last = (frames.iter().rposition(|&v| v).unwrap() as u64 + 1) * 20;
    (first, last)
}

#[test]
fn two_phrases_between_silences_give_two_utterances() {
    let a = phone_speech("I would like to check my order status please", "en-us");
    let b = phone_speech("yes", "en-us");
    let audio = concat(&[
        &silence_ms(1000),
        &a,
        &silence_ms(1500),
        &b,
        &silence_ms(1000),
    ]);
    let ev = run(EndpointConfig::default(), &audio, None);
    let u = utterances(&ev);
    assert_eq!(u.len(), 2, "{u:?}");
    let (sa, ea) = speech_span_ms(&a);
    let a_start = 1000 + sa;
    let a_end = 1000 + ea;
    assert!(
        u[0].0 + 150 >= a_start && u[0].0 <= a_start + 150,
        "start {} vs {a_start}",
        u[0].0
    );
    assert!(
        u[0].1 + 250 >= a_end && u[0].1 <= a_end + 250,
        "end {} vs {a_end}",
        u[0].1
    );
    assert_eq!(u[0].3, EndReason::Silence);
    // The delivered audio covers the speech plus pre-roll, not the silences.
    let secs = u[0].2 as f64 / 8000.0;
    let spoken = (ea - sa) as f64 / 1000.0;
    assert!(
        secs >= spoken && secs <= spoken + 0.6,
        "{secs} s for {spoken} s of speech"
    );
    let b_start = 1000 + a.len() as u64 / 8 + 1500;
    assert!(
        u[1].0 + 200 >= b_start && u[1].0 <= b_start + 300,
        "{:?}",
        u[1]
    );
    let started = ev
        .iter()
        .filter(|(_, e)| matches!(e, EndpointEvent::SpeechStarted { .. }))
        .count();
    assert_eq!(started, 2);
}

#[test]
fn line_noise_alone_is_not_speech() {
    for (level, seed) in [(-50.0, 1), (-40.0, 2), (-35.0, 3)] {
        let noise = line_noise_ms(8000, level, seed);
        let audio = support::g711_round_trip(&noise, voxbridge_media::codec::Codec::Pcmu);
        let ev = run(EndpointConfig::default(), &audio, None);
        assert!(utterances(&ev).is_empty(), "noise at {level} dBFS: {ev:?}");
    }
}

#[test]
fn speech_in_line_noise_is_still_found() {
    let a = phone_speech("where is my parcel", "en-us");
    let level = rms_dbfs(&a);
    let clean = concat(&[&silence_ms(1200), &a, &silence_ms(1500)]);
    // Noise 20 dB below the speech level.
    let noisy = mix(
        &clean,
        &line_noise_ms(clean.len() as u32 / 8, level - 20.0, 7),
    );
    let ev = run(EndpointConfig::default(), &noisy, None);
    let u = utterances(&ev);
    assert_eq!(u.len(), 1, "{u:?}");
    let (sa, ea) = speech_span_ms(&a);
    assert!(u[0].0.abs_diff(1200 + sa) <= 200, "{u:?}");
    assert!(u[0].1.abs_diff(1200 + ea) <= 300, "{u:?}");
    assert_eq!(u[0].3, EndReason::Silence);
}

#[test]
fn mandarin_speech_is_detected() {
    let a = phone_speech("我想查一下我的订单", "cmn");
    let audio = concat(&[&silence_ms(800), &a, &silence_ms(1200)]);
    let u = utterances(&run(EndpointConfig::default(), &audio, None));
    assert_eq!(u.len(), 1, "{u:?}");
}

#[test]
fn end_of_speech_silence_is_configurable() {
    // Two words 350 ms apart: one utterance at 500 ms end silence, two at 200 ms.
    // espeak-ng pads its output with silence: trim each word to its speech.
    let trim = |w: Vec<i16>| {
        let (s, e) = speech_span_ms(&w);
        w[(s * 8) as usize..(e * 8) as usize].to_vec()
    };
    let w1 = trim(phone_speech("hello", "en-us"));
    let w2 = trim(phone_speech("there", "en-us"));
    let audio = concat(&[
        &silence_ms(800),
        &w1,
        &silence_ms(350),
        &w2,
        &silence_ms(1200),
    ]);
    assert_eq!(
        utterances(&run(EndpointConfig::default(), &audio, None)).len(),
        1
    );
    let short = EndpointConfig {
        end_silence_ms: 200,
        ..EndpointConfig::default()
    };
    assert_eq!(utterances(&run(short, &audio, None)).len(), 2);

    // Shortened while listening: the same as configured short.
    let mut ep = Endpointer::new(EndpointConfig::default()).unwrap();
    ep.set_end_silence_ms(200);
    let mut ends = Vec::new();
    for frame in audio.chunks(160) {
        ep.push(frame);
        while let Some(e) = ep.poll_event() {
            if let EndpointEvent::Utterance { end_ms, .. } = e {
                ends.push(end_ms);
            }
        }
        if ep.is_done() {
            ep.reset();
        }
    }
    assert_eq!(ends.len(), 2, "{ends:?}");
}

#[test]
fn long_speech_is_cut_at_the_maximum_length() {
    let a = phone_speech(
        "I have been waiting for my delivery for three weeks now and nobody has called me back about it, \
         so I would really like to know what is going on with my order and when it will arrive",
        "en-us",
    );
    let audio = concat(&[&silence_ms(500), &a, &silence_ms(1000)]);
    let cfg = EndpointConfig {
        max_utterance_ms: 3000,
        ..EndpointConfig::default()
    };
    let u = utterances(&run(cfg, &audio, None));
    assert!(u.len() >= 2, "{u:?}");
    assert_eq!(u[0].3, EndReason::MaxLength);
    let len_ms = u[0].1 - u[0].0;
    assert!((2900..=3100).contains(&len_ms), "{len_ms}");
    // Pre-roll plus 3 s of audio at most.
    assert!(u[0].2 <= 8 * (3000 + 250 + 100), "{}", u[0].2);
}

#[test]
fn barge_in_is_raised_only_while_a_prompt_plays() {
    let a = phone_speech("agent please", "en-us");
    let audio = concat(&[&silence_ms(1000), &a, &silence_ms(1000)]);
    let during = run(EndpointConfig::default(), &audio, Some(10_000));
    let barge: Vec<_> = during
        .iter()
        .filter_map(|(_, e)| match e {
            EndpointEvent::BargeIn { at_ms } => Some(*at_ms),
            _ => None,
        })
        .collect();
    assert_eq!(barge.len(), 1, "{during:?}");
    let (sa, _) = speech_span_ms(&a);
    assert!(
        barge[0] >= 1000 + sa && barge[0] <= 1000 + sa + 500,
        "{barge:?}"
    );
    let after = run(EndpointConfig::default(), &audio, None);
    assert!(!after
        .iter()
        .any(|(_, e)| matches!(e, EndpointEvent::BargeIn { .. })));
    // The utterance is still delivered after the barge-in.
    assert_eq!(utterances(&during).len(), 1);
}

#[test]
fn no_input_after_the_timeout() {
    let cfg = EndpointConfig {
        no_input_ms: Some(3000),
        ..EndpointConfig::default()
    };
    let audio = line_noise_ms(3500, -45.0, 9);
    let ev = run(cfg, &audio, None);
    match ev.first() {
        Some((0, EndpointEvent::NoInput { at_ms })) => assert!((3000..3100).contains(at_ms)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sixteen_khz_input_and_bad_settings() {
    let (raw, rate) = espeak_raw("yes please", "en-us");
    let speech = voxbridge_models::audio::resample(&raw, rate, 16_000);
    let mut audio = vec![0i16; 16_000];
    audio.extend_from_slice(&speech);
    audio.extend(std::iter::repeat_n(0i16, 16_000));
    let mut ep = Endpointer::new(EndpointConfig {
        sample_rate: 16_000,
        ..EndpointConfig::default()
    })
    .unwrap();
    let mut n = 0;
    for f in audio.chunks(320) {
        ep.push(f);
        while let Some(e) = ep.poll_event() {
            n += usize::from(matches!(e, EndpointEvent::Utterance { .. }));
        }
    }
    assert_eq!(n, 1);
    assert!(Endpointer::new(EndpointConfig {
        sample_rate: 44_100,
        ..EndpointConfig::default()
    })
    .is_err());
    assert!(Endpointer::new(EndpointConfig {
        continue_threshold: 0.9,
        ..EndpointConfig::default()
    })
    .is_err());
}

/// The endpointer as the engine wires it: the media crate's echo detector
/// compares each received frame with what was sent and tells the
/// endpointer before the frame goes in.
struct Ears {
    ep: Endpointer,
    echo: EchoDetector,
}

impl Ears {
    fn new(cfg: EndpointConfig) -> Ears {
        Ears {
            ep: Endpointer::new(cfg).unwrap(),
            echo: EchoDetector::new(EchoConfig::default()),
        }
    }

    fn received(&mut self, frame: &[i16]) {
        self.echo.push_received(frame);
        self.ep.set_echo(self.echo.is_echo());
        self.ep.push(frame);
    }

    fn sent(&mut self, frame: &[i16]) {
        self.echo.push_sent(frame);
    }
}

/// One corpus item over the prompt, as a call plays it: each 20 ms frame
/// of caller audio goes in, then the prompt frame we sent; a barge-in stops
/// the prompt (silence is sent from then on). Returns the events with the
/// audio time they happened at (ms after the prompt began). `echo`: the
/// line also returns what was really sent, (delay ms, gain dB) — it stops
/// when the prompt does.
fn over_the_prompt(
    cfg: EndpointConfig,
    prompt: &[i16],
    caller: &[i16],
    echo: Option<(usize, f32)>,
) -> Vec<(u64, EndpointEvent)> {
    let mut ears = Ears::new(cfg);
    let mut sent_so_far: Vec<i16> = Vec::new();
    let mut events = Vec::new();
    let mut offset = 0;
    let mut playing = true;
    ears.ep.set_prompt_playing(true);
    let silence = [0i16; 160];
    for (i, frame) in caller.chunks(160).enumerate() {
        let mut frame = frame.to_vec();
        if let Some((delay_ms, gain_db)) = echo {
            let g = 10f32.powf(gain_db / 20.0);
            for (k, v) in frame.iter_mut().enumerate() {
                let at = (i * 160 + k).checked_sub(delay_ms * 8);
                let e = at.and_then(|a| sent_so_far.get(a)).copied().unwrap_or(0);
                *v = v.saturating_add((f32::from(e) * g) as i16);
            }
        }
        ears.received(&frame);
        while let Some(e) = ears.ep.poll_event() {
            if matches!(e, EndpointEvent::BargeIn { .. }) {
                playing = false;
                ears.ep.set_prompt_playing(false);
            }
            events.push((offset, e));
        }
        let sent = prompt.get(i * 160..(i + 1) * 160).filter(|_| playing);
        let sent = sent.unwrap_or(&silence);
        sent_so_far.extend_from_slice(sent);
        sent_so_far.resize((i + 1) * 160, 0);
        ears.sent(sent);
        if playing && (i + 1) * 160 >= prompt.len() {
            playing = false;
            ears.ep.set_prompt_playing(false);
        }
        if ears.ep.is_done() {
            offset = (i as u64 + 1) * 20;
            ears.ep.reset();
        }
    }
    for _ in 0..250 {
        ears.received(&silence);
        ears.sent(&silence);
    }
    while let Some(e) = ears.ep.poll_event() {
        events.push((offset, e));
    }
    events
}

fn barge_ins(events: &[(u64, EndpointEvent)]) -> Vec<u64> {
    events
        .iter()
        .filter_map(|(o, e)| match e {
            EndpointEvent::BargeIn { at_ms } => Some(o + at_ms),
            _ => None,
        })
        .collect()
}

#[test]
fn noise_clicks_tones_breath_coughs_and_echo_do_not_barge_in() {
    let (prompt, items) = barge_in_corpus();
    let mut failed = Vec::new();
    for item in items.iter().filter(|i| i.kind != "speech") {
        let ev = over_the_prompt(EndpointConfig::default(), prompt, &item.audio, None);
        let barge = barge_ins(&ev);
        let utt = utterances(&ev);
        let rejected: Vec<_> = ev
            .iter()
            .filter_map(|(o, e)| match e {
                EndpointEvent::NotSpeech {
                    start_ms,
                    voiced_ms,
                    echo_ms,
                    ..
                } => Some((o + start_ms, *voiced_ms, *echo_ms)),
                _ => None,
            })
            .collect();
        eprintln!(
            "{:18} barge-in {barge:?} utterances {} not speech (start, voiced ms, echo ms) {rejected:?}",
            item.name,
            utt.len()
        );
        if !barge.is_empty() || !utt.is_empty() {
            failed.push(item.name.as_str());
        }
    }
    assert!(
        failed.is_empty(),
        "stopped the prompt or answered: {failed:?}"
    );
}

#[test]
fn speech_over_the_prompt_barges_in_soon_after_it_starts() {
    let (prompt, items) = barge_in_corpus();
    let mut worst = 0;
    let speech = items.iter().filter(|i| i.kind == "speech");
    let over_echo = items.iter().filter(|i| i.name == "speech");
    let cases = speech
        .map(|i| (i, None))
        .chain(over_echo.map(|i| (i, Some((60, -15.0)))));
    for (item, echo) in cases {
        let onset = item.onset_ms.unwrap();
        // Where the voice really starts (the item's onset is where espeak-ng's
        // output begins, leading silence included).
        let lead = (onset as usize * 8..item.audio.len())
            .step_by(80)
            .find(|&k| {
                item.audio[k..k + 80]
                    .iter()
                    .any(|v| v.unsigned_abs() > 1500)
            })
            .unwrap() as u64
            / 8;
        let ev = over_the_prompt(EndpointConfig::default(), prompt, &item.audio, echo);
        let barge = barge_ins(&ev);
        let utt = utterances(&ev);
        assert_eq!(barge.len(), 1, "{}: {ev:?}", item.name);
        let delay = barge[0] as i64 - lead as i64;
        eprintln!(
            "{:18} echo {echo:?}: voice from {lead} ms, barge-in at {} ms: {delay} ms after the voice began; utterances {:?}",
            item.name,
            barge[0],
            utt.iter().map(|u| (u.0, u.1)).collect::<Vec<_>>()
        );
        assert!((150..=600).contains(&delay), "{}: {delay} ms", item.name);
        worst = worst.max(delay);
        // The caller's words are delivered, without the echo before them.
        assert_eq!(utt.len(), 1, "{}: {utt:?}", item.name);
        let heard_ms = utt[0].2 as u64 / 8;
        let spoken_ms = utt[0].1 - lead;
        assert!(
            heard_ms <= spoken_ms + 500,
            "{}: {heard_ms} ms of audio for {spoken_ms} ms of speech",
            item.name
        );
    }
    eprintln!("slowest barge-in: {worst} ms after the voice began");
}

#[test]
fn a_prompt_may_ask_for_more_speech_before_it_stops() {
    let (prompt, items) = barge_in_corpus();
    let speech = items.iter().find(|i| i.name == "speech").unwrap();
    let quick = barge_ins(&over_the_prompt(
        EndpointConfig::default(),
        prompt,
        &speech.audio,
        None,
    ));
    let cfg = EndpointConfig::default();
    let mut ears = Ears::new(cfg);
    ears.ep.set_barge_in_ms(Some(600));
    let mut slow = None;
    ears.ep.set_prompt_playing(true);
    for (i, f) in speech.audio.chunks(160).enumerate() {
        ears.received(f);
        ears.sent(&prompt[i * 160..(i * 160 + f.len()).min(prompt.len())]);
        while let Some(e) = ears.ep.poll_event() {
            if let EndpointEvent::BargeIn { at_ms } = e {
                slow.get_or_insert(at_ms);
            }
        }
    }
    let slow = slow.expect("600 ms of speech is there");
    assert!(slow >= quick[0] + 300, "quick {quick:?}, slow {slow}");
}

#[test]
fn a_pause_hands_over_the_speech_so_far_and_resuming_says_so() {
    // "hello", 350 ms, "there", then silence: with a 128 ms pause rule the
    // first gap raises Paused (with "hello"), "there" Resumed, and the end
    // a second Paused just before the utterance (both words).
    let trim = |w: Vec<i16>| {
        let (s, e) = speech_span_ms(&w);
        w[(s * 8) as usize..(e * 8) as usize].to_vec()
    };
    let w1 = trim(phone_speech("hello", "en-us"));
    let w2 = trim(phone_speech("there", "en-us"));
    let audio = concat(&[
        &silence_ms(800),
        &w1,
        &silence_ms(350),
        &w2,
        &silence_ms(1200),
    ]);
    let cfg = EndpointConfig {
        pause_ms: 128,
        ..EndpointConfig::default()
    };
    let ev = run(cfg, &audio, None);
    let kinds: Vec<&str> = ev
        .iter()
        .filter_map(|(_, e)| match e {
            EndpointEvent::Paused { .. } => Some("paused"),
            EndpointEvent::Resumed { .. } => Some("resumed"),
            EndpointEvent::Utterance { .. } => Some("utterance"),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        ["paused", "resumed", "paused", "utterance"],
        "{ev:?}"
    );
    let lens: Vec<usize> = ev
        .iter()
        .filter_map(|(_, e)| match e {
            EndpointEvent::Paused { audio, .. } | EndpointEvent::Utterance { audio, .. } => {
                Some(audio.len())
            }
            _ => None,
        })
        .collect();
    // The first pause has "hello" only; the last pause the same audio as
    // the utterance (trailing silence trimmed alike).
    assert!(lens[0] < lens[1], "{lens:?}");
    assert!(lens[0] >= w1.len(), "{lens:?}");
    assert_eq!(lens[1], lens[2], "{lens:?}");
    // Off by default: no pause events.
    let plain = run(EndpointConfig::default(), &audio, None);
    assert!(!plain
        .iter()
        .any(|(_, e)| matches!(e, EndpointEvent::Paused { .. })));
}
