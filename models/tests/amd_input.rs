//! The answering-machine detector on arbitrary input: any samples, frame
//! lengths and times (gaps, repeats, time running backwards, absurd values)
//! never panic, and what comes out is always a well-formed story: at most
//! one verdict, a beep or no-beep only after `Machine`, nothing after the
//! detector is done, event times that never run backwards.

use std::time::Duration;

use proptest::prelude::*;
use voxbridge_models::amd::{AmdConfig, AmdDetector, AmdEvent, Verdict};

/// One push or one timeout.
#[derive(Debug, Clone)]
enum Step {
    /// Samples, and the time step (ms, may be negative) before them.
    Audio(Vec<i16>, i64),
    Timeout(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (
            prop_oneof![
                // Loud tones, noise and silence alike.
                prop::collection::vec(any::<i16>(), 0..400),
                // Up to a second of one tone: beeps, too long or too
                // short ones, out of the band.
                (1u32..4000, 0i16..30000, prop_oneof![0usize..400, 400usize..8000]).prop_map(|(hz, a, n)| {
                    (0..n)
                        .map(|i| {
                            (f32::from(a)
                                * (std::f32::consts::TAU * hz as f32 * i as f32 / 8000.0).sin())
                                as i16
                        })
                        .collect()
                }),
            ],
            prop_oneof![8 => Just(20i64), 1 => -100i64..3000],
        )
            .prop_map(|(s, dt)| Step::Audio(s, dt)),
        1 => (-100i64..10_000).prop_map(Step::Timeout),
    ]
}

fn at(t: i64) -> Duration {
    Duration::from_millis(t.max(0) as u64)
}

/// Checks the events in order.
fn well_formed(events: &[AmdEvent]) -> Result<(), String> {
    let mut verdict = Verdict::Undecided;
    let mut last = Duration::ZERO;
    let mut done = false;
    for e in events {
        if done {
            return Err(format!("{e:?} after the end"));
        }
        let t = match e {
            AmdEvent::Human { at, .. } => {
                if verdict != Verdict::Undecided {
                    return Err(format!("second verdict {e:?}"));
                }
                verdict = Verdict::Human;
                done = true;
                *at
            }
            AmdEvent::Machine { at, .. } => {
                if verdict != Verdict::Undecided {
                    return Err(format!("second verdict {e:?}"));
                }
                verdict = Verdict::Machine;
                *at
            }
            AmdEvent::Beep { at, ended, .. } => {
                if verdict != Verdict::Machine || ended < at {
                    return Err(format!("{e:?} with verdict {verdict:?}"));
                }
                done = true;
                *ended
            }
            AmdEvent::NoBeep { at } => {
                if verdict != Verdict::Machine {
                    return Err(format!("{e:?} with verdict {verdict:?}"));
                }
                done = true;
                *at
            }
        };
        if t < last {
            return Err(format!("{e:?} before {last:?}"));
        }
        last = t;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_input_gives_a_well_formed_story(steps in prop::collection::vec(step(), 0..300)) {
        let mut d = AmdDetector::new(AmdConfig::default()).unwrap();
        let mut t = 0i64;
        let mut events = Vec::new();
        for s in steps {
            match s {
                Step::Audio(samples, dt) => {
                    t += dt;
                    d.push(&samples, at(t));
                }
                Step::Timeout(dt) => {
                    t += dt;
                    d.handle_timeout(at(t));
                }
            }
            events.extend(std::iter::from_fn(|| d.poll_event()));
        }
        // Running the deadlines out always ends it.
        let mut rounds = 0;
        while let Some(deadline) = d.poll_timeout() {
            d.handle_timeout(deadline);
            events.extend(std::iter::from_fn(|| d.poll_event()));
            rounds += 1;
            prop_assert!(rounds < 10, "deadlines never end: {:?}", events);
        }
        prop_assert!(d.is_done());
        prop_assert!(well_formed(&events).is_ok(), "{:?}: {:?}", well_formed(&events), events);
        prop_assert!(d.verdict() != Verdict::Undecided);
    }
}

#[test]
fn absurd_times_do_not_overflow() {
    let mut d = AmdDetector::new(AmdConfig::default()).unwrap();
    d.push(&[1000; 160], Duration::MAX);
    d.push(&[1000; 160], Duration::MAX);
    d.handle_timeout(Duration::MAX);
    d.push(&[1000; 160], Duration::ZERO);
    let events: Vec<_> = std::iter::from_fn(|| d.poll_event()).collect();
    assert!(well_formed(&events).is_ok(), "{events:?}");
    assert!(d.is_done(), "{d:?}");
}
