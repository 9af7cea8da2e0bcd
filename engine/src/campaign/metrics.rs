//! Campaign counters and gauges for `/metrics`: attempts, answers,
//! machines, outcomes by disposition, and per campaign its concurrency,
//! attempts in the last second and progress.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::store::DISPOSITIONS;
use crate::dialing::Disposition;

/// One campaign's gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gauges {
    pub in_flight: usize,
    /// Attempts started in the last second.
    pub attempts_last_second: usize,
    pub contacts: usize,
    pub finished: usize,
}

#[derive(Debug, Default)]
pub struct CampaignMetrics {
    pub attempts: AtomicU64,
    outcomes: [AtomicU64; DISPOSITIONS.len()],
    gauges: Mutex<BTreeMap<String, Gauges>>,
}

impl CampaignMetrics {
    pub fn attempt_started(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn outcome(&self, d: Disposition) {
        if let Some(i) = DISPOSITIONS.iter().position(|x| *x == d) {
            self.outcomes[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn outcomes(&self, d: Disposition) -> u64 {
        DISPOSITIONS
            .iter()
            .position(|x| *x == d)
            .map_or(0, |i| self.outcomes[i].load(Ordering::Relaxed))
    }

    pub fn set_gauges(&self, campaign: &str, g: Gauges) {
        self.gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(campaign.to_string(), g);
    }

    /// Campaign calls in flight, all campaigns.
    pub fn in_flight(&self) -> usize {
        self.gauges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|g| g.in_flight)
            .sum()
    }
}

/// Every campaign family, the gauges labelled by campaign.
impl crate::exposition::Exposed for CampaignMetrics {
    fn expose(&self, f: &mut crate::exposition::Families<'_, '_>) -> std::fmt::Result {
        f.counter(
            "voxbridge_campaign_attempts_total",
            "Campaign attempts handed to the dialler.",
            self.attempts.load(Ordering::Relaxed),
        )?;
        f.counter(
            "voxbridge_campaign_answers_total",
            "Campaign attempts a person answered.",
            self.outcomes(Disposition::Answered),
        )?;
        f.counter(
            "voxbridge_campaign_machines_total",
            "Campaign attempts an answering machine answered.",
            self.outcomes(Disposition::Machine),
        )?;
        f.counters(
            "voxbridge_campaign_outcomes_total",
            "Campaign attempts by disposition (do_not_call: contacts never dialled).",
            DISPOSITIONS.map(|d| ([("disposition", d.label())], self.outcomes(d))),
        )?;
        let gauges = self.gauges.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help, pick) in [
            (
                "voxbridge_campaign_calls_in_flight",
                "Campaign calls in flight now.",
                (|g: &Gauges| g.in_flight as f64) as fn(&Gauges) -> f64,
            ),
            (
                "voxbridge_campaign_attempts_per_second",
                "Campaign attempts started in the last second.",
                |g: &Gauges| g.attempts_last_second as f64,
            ),
            (
                "voxbridge_campaign_progress",
                "Share of the campaign's contacts finished, 0 to 1.",
                |g: &Gauges| {
                    if g.contacts == 0 {
                        1.0
                    } else {
                        g.finished as f64 / g.contacts as f64
                    }
                },
            ),
        ] {
            f.gauges(
                name,
                help,
                gauges
                    .iter()
                    .map(|(campaign, g)| ([("campaign", campaign.as_str())], pick(g))),
            )?;
        }
        Ok(())
    }
}
