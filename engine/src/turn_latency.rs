//! Turn latency: from the caller's end of speech (or last key) to the first
//! RTP packet of the bot's reply, split into where the time went. The call
//! task opens a turn when input ends, adds each stage's time as it runs,
//! and closes the turn when the reply's first packet leaves. No clock
//! inside: instants come in from the caller, so it is tested with made-up
//! ones.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How the caller's input came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TurnKind {
    Speech,
    Dtmf,
}

impl TurnKind {
    pub fn label(self) -> &'static str {
        match self {
            TurnKind::Speech => "speech",
            TurnKind::Dtmf => "dtmf",
        }
    }
}

/// The stages a turn's time is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Silence waited before the end of speech was certain.
    Endpointing,
    Asr,
    Intent,
    /// The dialog interpreter deciding what to do.
    Dialog,
    /// CRM/ERP lookups and tickets made before the reply.
    Lookup,
    Tts,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Endpointing,
        Stage::Asr,
        Stage::Intent,
        Stage::Dialog,
        Stage::Lookup,
        Stage::Tts,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stage::Endpointing => "endpointing",
            Stage::Asr => "asr",
            Stage::Intent => "intent",
            Stage::Dialog => "dialog",
            Stage::Lookup => "lookup",
            Stage::Tts => "tts",
        }
    }
}

/// One measured turn, in milliseconds (as stored on the call record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TurnLatency {
    pub kind: TurnKind,
    pub total_ms: f64,
    pub endpointing_ms: f64,
    pub asr_ms: f64,
    pub intent_ms: f64,
    pub dialog_ms: f64,
    pub lookup_ms: f64,
    pub tts_ms: f64,
}

impl TurnLatency {
    pub fn stage_ms(&self, stage: Stage) -> f64 {
        match stage {
            Stage::Endpointing => self.endpointing_ms,
            Stage::Asr => self.asr_ms,
            Stage::Intent => self.intent_ms,
            Stage::Dialog => self.dialog_ms,
            Stage::Lookup => self.lookup_ms,
            Stage::Tts => self.tts_ms,
        }
    }
}

#[derive(Debug)]
struct OpenTurn {
    kind: TurnKind,
    input_ended: Instant,
    stages: [Duration; 6],
}

/// The turn in progress, if any.
#[derive(Debug, Default)]
pub struct TurnClock {
    open: Option<OpenTurn>,
}

impl TurnClock {
    /// The caller's input ended at `input_ended` (a turn already open is
    /// replaced: the caller spoke again before the bot answered).
    pub fn open(&mut self, kind: TurnKind, input_ended: Instant) {
        self.open = Some(OpenTurn {
            kind,
            input_ended,
            stages: [Duration::ZERO; 6],
        });
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Time spent in `stage` for the open turn (ignored when none is open).
    pub fn add(&mut self, stage: Stage, spent: Duration) {
        if let Some(t) = &mut self.open {
            t.stages[stage as usize] += spent;
        }
    }

    /// The reply's first packet left at `now`: the measured turn.
    pub fn reply_started(&mut self, now: Instant) -> Option<TurnLatency> {
        let t = self.open.take()?;
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Endpointing happened before `input_ended` was known, on the
        // audio clock: it counts on top of the wall-clock span.
        let endpointing = t.stages[Stage::Endpointing as usize];
        let total = now.saturating_duration_since(t.input_ended);
        Some(TurnLatency {
            kind: t.kind,
            total_ms: ms(total),
            endpointing_ms: ms(endpointing),
            asr_ms: ms(t.stages[Stage::Asr as usize]),
            intent_ms: ms(t.stages[Stage::Intent as usize]),
            dialog_ms: ms(t.stages[Stage::Dialog as usize]),
            lookup_ms: ms(t.stages[Stage::Lookup as usize]),
            tts_ms: ms(t.stages[Stage::Tts as usize]),
        })
    }

    /// The turn ended without a spoken reply (hang-up, transfer).
    pub fn abandon(&mut self) {
        self.open = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_adds_its_stages_and_closes_once() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        assert!(c.reply_started(t0).is_none(), "no turn open");
        c.add(Stage::Asr, Duration::from_millis(5)); // ignored: nothing open
        c.open(TurnKind::Speech, t0);
        c.add(Stage::Endpointing, Duration::from_millis(500));
        c.add(Stage::Asr, Duration::from_millis(120));
        c.add(Stage::Intent, Duration::from_micros(40));
        c.add(Stage::Lookup, Duration::from_millis(30));
        c.add(Stage::Lookup, Duration::from_millis(20));
        c.add(Stage::Tts, Duration::from_millis(60));
        let l = c
            .reply_started(t0 + Duration::from_millis(750))
            .expect("turn");
        assert_eq!(l.kind, TurnKind::Speech);
        assert_eq!(l.total_ms, 750.0);
        assert_eq!(l.endpointing_ms, 500.0);
        assert_eq!(l.asr_ms, 120.0);
        assert_eq!(l.lookup_ms, 50.0);
        assert!((l.intent_ms - 0.04).abs() < 1e-9);
        assert!(c.reply_started(t0 + Duration::from_secs(2)).is_none());
    }

    #[test]
    fn abandoned_and_replaced_turns() {
        let t0 = Instant::now();
        let mut c = TurnClock::default();
        c.open(TurnKind::Dtmf, t0);
        c.abandon();
        assert!(!c.is_open());
        c.open(TurnKind::Dtmf, t0);
        c.add(Stage::Dialog, Duration::from_millis(1));
        c.open(TurnKind::Speech, t0 + Duration::from_millis(100));
        let l = c.reply_started(t0 + Duration::from_millis(300)).unwrap();
        assert_eq!(
            (l.kind, l.total_ms, l.dialog_ms),
            (TurnKind::Speech, 200.0, 0.0)
        );
    }
}
