//! Process-wide counters, shown at `/metrics` (through [`crate::exposition`],
//! the `prometheus-client` encoder) and as a summary log line at shutdown.
//! They are plain atomics so the hot path pays one relaxed add.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use voxbridge_media::session::MediaStats;

use crate::admission::Refusal;
use crate::call::EndReason;
use crate::exposition::{self, Exposed, Families, HistogramSnapshot, NO_LABELS};
use crate::health::Health;
use crate::sip::screen::Rejection;
use crate::turn_latency::{Stage, TurnKind, TurnLatency};

const REJECTIONS: [Rejection; 9] = Rejection::ALL;
const REFUSALS: [Refusal; 5] = [
    Refusal::NotAllowed,
    Refusal::Busy,
    Refusal::Load,
    Refusal::Draining,
    Refusal::SourceBusy,
];

/// Upper bounds of the call-setup histogram, in seconds.
const SETUP_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Upper bounds of the scheduling-delay histogram, in seconds: a 20 ms
/// packet interval is the scale that matters.
const DELAY_BUCKETS: [f64; 10] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Upper bounds of the turn-latency histograms, in seconds: fine around
/// the 250 ms (keys, grammar) and 800 ms (free speech) goals.
const TURN_BUCKETS: [f64; 16] = [
    0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.5, 5.0,
];

/// A Prometheus histogram over fixed bounds: one count per bucket (the
/// first bound the value fits under; values over every bound are only in
/// `count`), made cumulative by the encoder.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        if let Some(i) = self.bounds.iter().position(|bound| secs <= *bound) {
            inc(&self.buckets[i]);
        }
        inc(&self.count);
        self.sum_us
            .fetch_add(value.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        get(&self.count)
    }

    /// The bucket bounds (seconds) and how many values are at or below each
    /// (the buckets are kept per bucket; this adds them up).
    pub fn cumulative(&self) -> (&'static [f64], Vec<u64>) {
        let mut total = 0;
        let counts = self
            .buckets
            .iter()
            .map(|b| {
                total += get(b);
                total
            })
            .collect();
        (self.bounds, counts)
    }

    /// Read once per scrape; `counts` is where the snapshot borrows from.
    fn snapshot<'a>(&self, counts: &'a mut Vec<u64>) -> HistogramSnapshot<'a> {
        counts.clear();
        counts.extend(self.buckets.iter().map(get));
        HistogramSnapshot {
            bounds: self.bounds,
            counts,
            count: get(&self.count),
            sum: get(&self.sum_us) as f64 / 1e6,
        }
    }
}

/// Counters for one voxbridge process.
#[derive(Debug)]
pub struct Metrics {
    pub calls_started: AtomicU64,
    pub calls_active: AtomicU64,
    pub calls_rejected_sdp: AtomicU64,
    pub calls_rejected_busy: AtomicU64,
    ended: [AtomicU64; EndReason::COUNT],
    refused: [AtomicU64; REFUSALS.len()],
    screened: [AtomicU64; 9],
    /// Responses we sent, indexed by status code (100..=699).
    responses: Box<[AtomicU64]>,
    pub dtmf_digits: AtomicU64,
    pub rtp_packets_in: AtomicU64,
    pub rtp_packets_out: AtomicU64,
    pub rtp_late: AtomicU64,
    pub rtp_lost: AtomicU64,
    pub rtp_late_out: AtomicU64,
    pub rtp_frames_skipped: AtomicU64,
    /// RTP packets dropped because they came from a foreign source.
    pub rtp_foreign: AtomicU64,
    /// Calls answered with SRTP (SDES).
    pub srtp_calls: AtomicU64,
    /// SRTP packets dropped: authentication tag wrong (or plain RTP).
    pub srtp_auth_failed: AtomicU64,
    /// SRTP packets dropped as replays.
    pub srtp_replayed: AtomicU64,
    /// TLS handshakes on the SIP TLS listener that failed or timed out.
    pub sip_tls_handshake_failures: AtomicU64,
    setup: Histogram,
    /// How late the load probe woke, each tick.
    delay: Histogram,
    /// The smoothed delay admission judges by, in microseconds.
    delay_smoothed_us: AtomicU64,
    /// Turn latency by input kind (speech, dtmf).
    turns: [Histogram; 2],
    /// Where turn time went, by stage.
    turn_stages: [Histogram; Stage::ALL.len()],
    pub asr_recognised: AtomicU64,
    pub asr_no_match: AtomicU64,
    pub asr_busy: AtomicU64,
    pub asr_failed: AtomicU64,
    /// Grammar turns that ended at a pause on a complete answer.
    pub asr_early_ends: AtomicU64,
    /// Turns that used (or waited for) the recognition started at a pause.
    pub asr_speculation_used: AtomicU64,
    pub barge_ins: AtomicU64,
    /// Call tasks that panicked (contained: the call ended as an error).
    pub call_panics: AtomicU64,
    pub registration_failures: AtomicU64,
    pub registrations_ok: AtomicU64,
    pub transfers_ok: AtomicU64,
    pub transfers_failed: AtomicU64,
    pub cdr_write_errors: AtomicU64,
    /// Which parts calls depend on are running; `/ready` reads it too.
    pub health: Health,
    /// This node's `node.id`, for `voxbridge_node_info`; set at start.
    pub node: std::sync::OnceLock<String>,
    /// Outbound campaigns: attempts, outcomes, concurrency, progress.
    pub campaigns: crate::campaign::metrics::CampaignMetrics,
    /// Calls the engine placed (see [`OutboundMetrics`]).
    pub outbound: OutboundMetrics,
    /// Datagrams over a per-source SIP rate limit.
    pub rate_limited: crate::sip::ratelimit::RateLimitMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            node: std::sync::OnceLock::new(),
            calls_started: AtomicU64::new(0),
            calls_active: AtomicU64::new(0),
            calls_rejected_sdp: AtomicU64::new(0),
            calls_rejected_busy: AtomicU64::new(0),
            ended: Default::default(),
            refused: Default::default(),
            screened: Default::default(),
            responses: (0..700).map(|_| AtomicU64::new(0)).collect(),
            dtmf_digits: AtomicU64::new(0),
            rtp_packets_in: AtomicU64::new(0),
            rtp_packets_out: AtomicU64::new(0),
            rtp_late: AtomicU64::new(0),
            rtp_lost: AtomicU64::new(0),
            rtp_late_out: AtomicU64::new(0),
            rtp_frames_skipped: AtomicU64::new(0),
            rtp_foreign: AtomicU64::new(0),
            srtp_calls: AtomicU64::new(0),
            srtp_auth_failed: AtomicU64::new(0),
            srtp_replayed: AtomicU64::new(0),
            sip_tls_handshake_failures: AtomicU64::new(0),
            setup: Histogram::new(&SETUP_BUCKETS),
            delay: Histogram::new(&DELAY_BUCKETS),
            delay_smoothed_us: AtomicU64::new(0),
            turns: [Histogram::new(&TURN_BUCKETS), Histogram::new(&TURN_BUCKETS)],
            turn_stages: std::array::from_fn(|_| Histogram::new(&TURN_BUCKETS)),
            asr_recognised: AtomicU64::new(0),
            asr_no_match: AtomicU64::new(0),
            asr_busy: AtomicU64::new(0),
            asr_failed: AtomicU64::new(0),
            asr_early_ends: AtomicU64::new(0),
            asr_speculation_used: AtomicU64::new(0),
            barge_ins: AtomicU64::new(0),
            call_panics: AtomicU64::new(0),
            registration_failures: AtomicU64::new(0),
            registrations_ok: AtomicU64::new(0),
            outbound: OutboundMetrics::default(),
            transfers_ok: AtomicU64::new(0),
            transfers_failed: AtomicU64::new(0),
            cdr_write_errors: AtomicU64::new(0),
            health: Health::default(),
            campaigns: Default::default(),
            rate_limited: Default::default(),
        }
    }
}

fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl Metrics {
    pub fn call_ended(&self, reason: EndReason) {
        inc(&self.ended[reason as usize]);
    }

    pub fn ended(&self, reason: EndReason) -> u64 {
        get(&self.ended[reason as usize])
    }

    pub fn screened(&self, why: Rejection) {
        inc(&self.screened[why as usize]);
    }

    pub fn screened_count(&self, why: Rejection) -> u64 {
        get(&self.screened[why as usize])
    }

    pub fn refused(&self, why: Refusal) {
        inc(&self.refused[why as usize]);
    }

    pub fn refused_count(&self, why: Refusal) -> u64 {
        get(&self.refused[why as usize])
    }

    /// Count a response we sent.
    pub fn response_sent(&self, code: u16) {
        if let Some(c) = self.responses.get(code as usize) {
            inc(c);
        }
    }

    pub fn responses_sent(&self, code: u16) -> u64 {
        self.responses.get(code as usize).map(get).unwrap_or(0)
    }

    /// Time from INVITE to our 200 OK.
    pub fn call_setup(&self, elapsed: Duration) {
        self.setup.observe(elapsed);
    }

    /// One load-probe tick: how late it woke, and the smoothed delay.
    pub fn scheduling_delay(&self, late: Duration, smoothed: Duration) {
        self.delay.observe(late);
        self.delay_smoothed_us
            .store(smoothed.as_micros() as u64, Ordering::Relaxed);
    }

    /// One measured turn: the total by kind, and each stage.
    pub fn turn(&self, t: &TurnLatency) {
        let kind = match t.kind {
            TurnKind::Speech => 0,
            TurnKind::Dtmf => 1,
        };
        self.turns[kind].observe(Duration::from_secs_f64(t.total_ms / 1000.0));
        for (h, stage) in self.turn_stages.iter().zip(Stage::ALL) {
            self.turn_stages_observe(h, t, stage);
        }
    }

    fn turn_stages_observe(&self, h: &Histogram, t: &TurnLatency, stage: Stage) {
        let ms = t.stage_ms(stage);
        // A stage that did not run in this turn (no lookup, keys not ASR)
        // would only pile up zeros.
        if ms > 0.0 {
            h.observe(Duration::from_secs_f64(ms / 1000.0));
        }
    }

    /// Every turn (speech and keys together) as one histogram: the bounds,
    /// the cumulative bucket counts and the count. The console's overview
    /// takes per-minute quantiles from the differences.
    pub fn turn_histogram(&self) -> (&'static [f64], Vec<u64>, u64) {
        let (bounds, mut all) = self.turns[0].cumulative();
        let (_, keys) = self.turns[1].cumulative();
        for (a, b) in all.iter_mut().zip(keys) {
            *a += b;
        }
        (bounds, all, self.turns_measured())
    }

    pub fn turns_measured(&self) -> u64 {
        self.turns.iter().map(Histogram::count).sum()
    }

    /// Fold one finished call's RTP statistics in.
    pub fn add_media(&self, stats: &MediaStats) {
        self.rtp_packets_in
            .fetch_add(stats.packets_in, Ordering::Relaxed);
        self.rtp_packets_out
            .fetch_add(stats.packets_out, Ordering::Relaxed);
        self.rtp_late.fetch_add(stats.late, Ordering::Relaxed);
        self.rtp_lost.fetch_add(stats.lost, Ordering::Relaxed);
        self.rtp_late_out
            .fetch_add(stats.late_out, Ordering::Relaxed);
        self.rtp_frames_skipped
            .fetch_add(stats.frames_skipped, Ordering::Relaxed);
        self.rtp_foreign
            .fetch_add(stats.ignored_source, Ordering::Relaxed);
        self.srtp_auth_failed
            .fetch_add(stats.srtp_auth_failed, Ordering::Relaxed);
        self.srtp_replayed
            .fetch_add(stats.srtp_replayed, Ordering::Relaxed);
    }

    /// A one-line summary for logs and the end of a run.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "calls_started={} calls_active={} rejected_sdp={} rejected_busy={} dtmf_digits={}",
            get(&self.calls_started),
            get(&self.calls_active),
            get(&self.calls_rejected_sdp),
            get(&self.calls_rejected_busy),
            get(&self.dtmf_digits),
        );
        for reason in EndReason::ALL {
            let _ = write!(s, " ended_{}={}", reason.label(), self.ended(reason));
        }
        for why in REJECTIONS {
            let _ = write!(s, " sip_{}={}", why.label(), self.screened_count(why));
        }
        for why in REFUSALS {
            let _ = write!(s, " refused_{}={}", why.label(), self.refused_count(why));
        }
        let _ = write!(
            s,
            " transfers_ok={} transfers_failed={} registration_failures={} turns={} asr_busy={} asr_failed={}",
            get(&self.transfers_ok),
            get(&self.transfers_failed),
            get(&self.registration_failures),
            self.turns_measured(),
            get(&self.asr_busy),
            get(&self.asr_failed),
        );
        s
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(self: &Arc<Self>) -> String {
        exposition::render(self)
    }
}

impl Exposed for Metrics {
    fn expose(&self, f: &mut Families<'_, '_>) -> fmt::Result {
        f.gauge(
            "voxbridge_calls_active",
            "Calls in progress.",
            get(&self.calls_active),
        )?;
        f.counters(
            "voxbridge_calls_total",
            "Calls that ended, by outcome.",
            EndReason::ALL.map(|r| ([("outcome", r.label())], self.ended(r))),
        )?;
        f.counters(
            "voxbridge_calls_refused_total",
            "INVITEs turned away before a dialog, by reason.",
            REFUSALS
                .map(|why| ([("reason", why.label())], self.refused_count(why)))
                .into_iter()
                .chain([([("reason", "sdp")], get(&self.calls_rejected_sdp))]),
        )?;
        f.counters(
            "voxbridge_sip_responses_total",
            "SIP responses sent, by status code.",
            self.responses
                .iter()
                .enumerate()
                .map(|(code, c)| (code, get(c)))
                .filter(|(_, n)| *n > 0)
                .map(|(code, n)| ([("code", code.to_string())], n)),
        )?;
        f.counters(
            "voxbridge_sip_malformed_total",
            "Malformed SIP datagrams, by kind.",
            REJECTIONS.map(|why| ([("kind", why.label())], self.screened_count(why))),
        )?;
        // A slice, not an array: its length would conflict whenever two
        // changes add a counter.
        let counters: &[(&str, &str, &AtomicU64)] = &[
            (
                "voxbridge_rtp_packets_received_total",
                "RTP packets received (finished calls).",
                &self.rtp_packets_in,
            ),
            (
                "voxbridge_rtp_packets_sent_total",
                "RTP packets sent (finished calls).",
                &self.rtp_packets_out,
            ),
            (
                "voxbridge_rtp_packets_late_total",
                "RTP packets that arrived after their playout time.",
                &self.rtp_late,
            ),
            (
                "voxbridge_rtp_packets_lost_total",
                "RTP packets never received.",
                &self.rtp_lost,
            ),
            (
                "voxbridge_rtp_packets_sent_late_total",
                "RTP packets we sent one packet interval or more after their time (finished calls).",
                &self.rtp_late_out,
            ),
            (
                "voxbridge_rtp_frames_skipped_total",
                "RTP packets never sent because a call's media task stalled (finished calls).",
                &self.rtp_frames_skipped,
            ),
            (
                "voxbridge_dtmf_digits_total",
                "DTMF digits received.",
                &self.dtmf_digits,
            ),
            (
                "voxbridge_registrations_total",
                "Successful REGISTER transactions.",
                &self.registrations_ok,
            ),
            (
                "voxbridge_registration_failures_total",
                "Failed REGISTER attempts (auth, timeout, error).",
                &self.registration_failures,
            ),
            (
                "voxbridge_transfers_total",
                "Transfers the target accepted.",
                &self.transfers_ok,
            ),
            (
                "voxbridge_transfer_failures_total",
                "Transfers that failed.",
                &self.transfers_failed,
            ),
            (
                "voxbridge_cdr_write_errors_total",
                "Call records lost: dropped while the database refused writes, or still unwritten at shutdown.",
                &self.cdr_write_errors,
            ),
            (
                "voxbridge_asr_recognised_total",
                "Utterances the recogniser turned into text.",
                &self.asr_recognised,
            ),
            (
                "voxbridge_asr_no_match_total",
                "Utterances that matched nothing (the script re-asks).",
                &self.asr_no_match,
            ),
            (
                "voxbridge_asr_early_ends_total",
                "Grammar turns that ended at a pause on a complete answer, before the end-of-speech silence.",
                &self.asr_early_ends,
            ),
            (
                "voxbridge_asr_speculation_used_total",
                "Turns answered by the recognition started at a pause in the caller's speech.",
                &self.asr_speculation_used,
            ),
            (
                "voxbridge_asr_busy_total",
                "Utterances refused because every recogniser was busy (the caller heard the no-match fallback).",
                &self.asr_busy,
            ),
            (
                "voxbridge_asr_failures_total",
                "Utterances whose recognition failed or timed out.",
                &self.asr_failed,
            ),
            (
                "voxbridge_barge_ins_total",
                "Prompts stopped because the caller spoke or keyed over them.",
                &self.barge_ins,
            ),
            (
                "voxbridge_call_panics_total",
                "Call tasks that panicked; each call ended as an error with its record written.",
                &self.call_panics,
            ),
            (
                "voxbridge_rtp_foreign_packets_total",
                "RTP packets dropped because they came from neither the signalled address nor the caller's latched NAT source (finished calls).",
                &self.rtp_foreign,
            ),
            (
                "voxbridge_srtp_calls_total",
                "Calls answered with SRTP (SDES keys, RFC 4568).",
                &self.srtp_calls,
            ),
            (
                "voxbridge_srtp_auth_failures_total",
                "SRTP packets dropped because their authentication tag did not match: forged, corrupted, another key, or plain RTP on an SRTP call (finished calls).",
                &self.srtp_auth_failed,
            ),
            (
                "voxbridge_srtp_replays_total",
                "SRTP packets dropped as replays (finished calls).",
                &self.srtp_replayed,
            ),
            (
                "voxbridge_sip_tls_handshake_failures_total",
                "TLS handshakes on the SIP TLS listener that failed (bad or untrusted certificate, not TLS, protocol error) or timed out.",
                &self.sip_tls_handshake_failures,
            ),
        ];
        for (name, help, c) in counters {
            f.counter(name, help, get(c))?;
        }
        let mut counts = Vec::new();
        f.histograms(
            "voxbridge_call_setup_seconds",
            "Time from INVITE to our 200 OK.",
            [(NO_LABELS, self.setup.snapshot(&mut counts))],
        )?;
        f.histograms(
            "voxbridge_scheduling_delay_seconds",
            "How late a task that wakes every 10 ms runs (the media tasks' timers run as late).",
            [(NO_LABELS, self.delay.snapshot(&mut counts))],
        )?;
        f.gauge(
            "voxbridge_scheduling_delay_smoothed_seconds",
            "The smoothed scheduling delay admission judges by (calls.max_scheduling_delay_ms).",
            get(&self.delay_smoothed_us) as f64 / 1e6,
        )?;
        let mut counts2 = Vec::new();
        f.histograms(
            "voxbridge_turn_latency_seconds",
            "From the caller's end of speech or last key to the first RTP packet of the reply.",
            [
                (
                    [("input", TurnKind::Speech.label())],
                    self.turns[0].snapshot(&mut counts),
                ),
                (
                    [("input", TurnKind::Dtmf.label())],
                    self.turns[1].snapshot(&mut counts2),
                ),
            ],
        )?;
        let mut stage_counts: Vec<Vec<u64>> = vec![Vec::new(); Stage::ALL.len()];
        let stages: Vec<_> = self
            .turn_stages
            .iter()
            .zip(Stage::ALL)
            .zip(stage_counts.iter_mut())
            .map(|((h, stage), counts)| ([("stage", stage.label())], h.snapshot(counts)))
            .collect();
        f.histograms(
            "voxbridge_turn_stage_seconds",
            "Where turn time went: endpointing, asr, intent, dialog, lookup, tts.",
            stages,
        )?;
        self.health.expose(f)?;
        self.campaigns.expose(f)?;
        self.outbound.expose(f)?;
        self.rate_limited.expose(f)?;
        if let Some(node) = self.node.get() {
            // The usual info-metric shape: join on it to label by node.
            f.gauges(
                "voxbridge_node_info",
                "This node's node.id.",
                [([("node", node.as_str())], 1u64)],
            )?;
        }
        Ok(())
    }
}

/// Calls the engine placed: attempts, how they ended, the ones running
/// and the attempts still waiting for a free slot.
#[derive(Debug, Default)]
pub struct OutboundMetrics {
    pub attempts: AtomicU64,
    /// Attempts waiting for a slot under `calls.max_calls`.
    pub waiting: AtomicU64,
    /// Outbound calls answered and running their script.
    pub active: AtomicU64,
    /// Answers that came with early media (SDP in a 183) first.
    pub early_media: AtomicU64,
    /// Attempts that ended with a CANCEL at the ring timeout.
    pub cancelled: AtomicU64,
    ended: [AtomicU64; crate::dialing::Disposition::ALL.len()],
}

impl OutboundMetrics {
    /// Count one finished attempt.
    pub fn ended(&self, d: crate::dialing::Disposition) {
        if let Some(i) = crate::dialing::Disposition::ALL
            .iter()
            .position(|x| *x == d)
        {
            self.ended[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn expose(&self, f: &mut Families<'_, '_>) -> fmt::Result {
        f.counter(
            "voxbridge_outbound_attempts_total",
            "Calls the engine placed (campaigns, POST /calls).",
            get(&self.attempts),
        )?;
        f.counters(
            "voxbridge_outbound_dispositions_total",
            "Placed calls by how they ended.",
            crate::dialing::Disposition::ALL
                .iter()
                .zip(&self.ended)
                .map(|(d, c)| ([("disposition", d.label())], get(c))),
        )?;
        f.gauge(
            "voxbridge_outbound_active",
            "Placed calls answered and running.",
            get(&self.active),
        )?;
        f.gauge(
            "voxbridge_outbound_waiting",
            "Placed calls waiting for a free call slot.",
            get(&self.waiting),
        )?;
        f.counter(
            "voxbridge_outbound_early_media_total",
            "Placed calls whose callee sent SDP in a provisional response.",
            get(&self.early_media),
        )?;
        f.counter(
            "voxbridge_outbound_cancelled_total",
            "Placed calls cancelled at the ring timeout.",
            get(&self.cancelled),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_has_families_and_values() {
        let m = Arc::new(Metrics::default());
        m.call_ended(EndReason::CallerHangup);
        m.response_sent(200);
        m.response_sent(200);
        m.response_sent(488);
        m.response_sent(9999); // ignored, not a panic
        m.call_setup(Duration::from_millis(30));
        m.refused(Refusal::Busy);
        m.refused(Refusal::Load);
        m.scheduling_delay(Duration::from_millis(3), Duration::from_millis(2));
        m.turn(&TurnLatency {
            kind: TurnKind::Dtmf,
            total_ms: 120.0,
            endpointing_ms: 0.0,
            asr_ms: 0.0,
            intent_ms: 0.0,
            dialog_ms: 0.2,
            lookup_ms: 40.0,
            tts_ms: 60.0,
        });
        let text = m.render_prometheus();
        assert!(
            text.contains("voxbridge_turn_latency_seconds_bucket{input=\"dtmf\",le=\"0.1\"} 0\n")
        );
        assert!(
            text.contains("voxbridge_turn_latency_seconds_bucket{input=\"dtmf\",le=\"0.15\"} 1\n")
        );
        assert!(text.contains("voxbridge_turn_latency_seconds_count{input=\"speech\"} 0\n"));
        assert!(text.contains("voxbridge_turn_stage_seconds_count{stage=\"lookup\"} 1\n"));
        assert!(text.contains("voxbridge_turn_stage_seconds_count{stage=\"asr\"} 0\n"));
        assert!(text.contains("voxbridge_calls_total{outcome=\"caller_hangup\"} 1\n"));
        assert!(text.contains("voxbridge_sip_responses_total{code=\"200\"} 2\n"));
        assert!(text.contains("voxbridge_sip_responses_total{code=\"488\"} 1\n"));
        assert!(text.contains("voxbridge_calls_refused_total{reason=\"busy\"} 1\n"));
        assert!(text.contains("voxbridge_calls_refused_total{reason=\"load\"} 1\n"));
        assert!(text.contains("voxbridge_scheduling_delay_seconds_bucket{le=\"0.002\"} 0\n"));
        assert!(text.contains("voxbridge_scheduling_delay_seconds_bucket{le=\"0.005\"} 1\n"));
        assert!(text.contains("voxbridge_scheduling_delay_smoothed_seconds 0.002\n"));
        assert!(text.contains("voxbridge_call_setup_seconds_bucket{le=\"0.025\"} 0\n"));
        assert!(text.contains("voxbridge_call_setup_seconds_bucket{le=\"0.05\"} 1\n"));
        assert!(text.contains("voxbridge_call_setup_seconds_count 1\n"));
        // Every sample line belongs to a declared family.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")), "{line}");
        }
    }
}
