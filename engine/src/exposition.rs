//! `/metrics` in the Prometheus text format (0.0.4), written by the
//! `prometheus-client` crate's encoder: names, `# HELP`/`# TYPE` lines,
//! label escaping, float formatting and histogram buckets are the crate's,
//! not ours.
//!
//! The counters themselves stay plain atomics in [`crate::metrics`] (one
//! relaxed add on the hot path, and the call, SIP and campaign code keep
//! their fields); at each scrape a [`Collector`] reads them and hands each
//! family to the encoder through [`Families`].

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Something with metric families to show at `/metrics`.
pub trait Exposed: fmt::Debug + Send + Sync + 'static {
    fn expose(&self, families: &mut Families<'_, '_>) -> fmt::Result;
}

/// The metric families of one scrape, written as they are added.
pub struct Families<'e, 'a> {
    encoder: &'e mut DescriptorEncoder<'a>,
}

/// A histogram's state at one scrape: per-bucket counts (not cumulative),
/// with their upper bounds, and the count and sum of every observation.
#[derive(Debug, Clone, Copy)]
pub struct HistogramSnapshot<'b> {
    pub bounds: &'b [f64],
    pub counts: &'b [u64],
    pub count: u64,
    pub sum: f64,
}

/// The encoder appends `_total` to counter names itself; the code names
/// counters in full so a grep for the exposed name finds them.
fn counter_base(name: &str) -> &str {
    name.strip_suffix("_total").unwrap_or(name)
}

impl Families<'_, '_> {
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        self.encoder
            .encode_descriptor(counter_base(name), help, None, MetricType::Counter)?
            .encode_counter::<NoLabelSet, _, f64>(&value, None)
    }

    /// One counter family with a sample per label set.
    pub fn counters<L: EncodeLabelSet>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, u64)>,
    ) -> fmt::Result {
        let mut family =
            self.encoder
                .encode_descriptor(counter_base(name), help, None, MetricType::Counter)?;
        for (labels, value) in samples {
            family
                .encode_family(&labels)?
                .encode_counter::<NoLabelSet, _, f64>(&value, None)?;
        }
        Ok(())
    }

    pub fn gauge(&mut self, name: &str, help: &str, value: impl EncodeGaugeValue) -> fmt::Result {
        self.encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?
            .encode_gauge(&value)
    }

    /// One gauge family with a sample per label set (none: the family is
    /// declared with no samples, as for a campaign gauge before any runs).
    pub fn gauges<L: EncodeLabelSet, V: EncodeGaugeValue>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, V)>,
    ) -> fmt::Result {
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, value) in samples {
            family.encode_family(&labels)?.encode_gauge(&value)?;
        }
        Ok(())
    }

    /// One histogram family with a histogram per label set.
    pub fn histograms<'b, L: EncodeLabelSet>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, HistogramSnapshot<'b>)>,
    ) -> fmt::Result {
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, h) in samples {
            let buckets: Vec<(f64, u64)> = h
                .bounds
                .iter()
                .copied()
                .zip(h.counts.iter().copied())
                .collect();
            family
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        }
        Ok(())
    }
}

/// The no-labels label set, for a family's one unlabelled sample.
pub const NO_LABELS: [(&str, &str); 0] = [];

#[derive(Debug)]
struct Scrape<T: Exposed>(Arc<T>);

impl<T: Exposed> Collector for Scrape<T> {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        self.0.expose(&mut Families {
            encoder: &mut encoder,
        })
    }
}

/// The text of one scrape of `source`.
pub fn render<T: Exposed>(source: &Arc<T>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Scrape(source.clone())));
    let mut out = String::with_capacity(8192);
    // Writing to a String cannot fail; an encoder error would be a bug in
    // a family above, and a partial page is still the best answer.
    if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
        tracing::warn!("metrics: the Prometheus encoder stopped early; the page is partial");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Sample;

    impl Exposed for Sample {
        fn expose(&self, f: &mut Families<'_, '_>) -> fmt::Result {
            f.counter("x_requests_total", "Requests.", 3)?;
            f.counters(
                "x_by_node_total",
                "By node.",
                [([("node", "a\"b\\c\nd")], 1u64)],
            )?;
            f.gauge("x_up", "Up.", 1u64)?;
            f.gauges(
                "x_none",
                "Nothing yet.",
                Vec::<([(&str, &str); 1], f64)>::new(),
            )?;
            f.histograms(
                "x_seconds",
                "Time.",
                [(
                    NO_LABELS,
                    HistogramSnapshot {
                        bounds: &[0.005, 1.0],
                        counts: &[2, 1],
                        count: 4,
                        sum: 2.5,
                    },
                )],
            )
        }
    }

    #[test]
    fn families_in_the_prometheus_text_format() {
        let text = render(&Arc::new(Sample));
        let expected = "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total 3\n\
# HELP x_by_node_total By node.\n# TYPE x_by_node_total counter\nx_by_node_total{node=\"a\\\"b\\\\c\\nd\"} 1\n\
# HELP x_up Up.\n# TYPE x_up gauge\nx_up 1\n\
# HELP x_none Nothing yet.\n# TYPE x_none gauge\n\
# HELP x_seconds Time.\n# TYPE x_seconds histogram\n\
x_seconds_bucket{le=\"0.005\"} 2\nx_seconds_bucket{le=\"1\"} 3\nx_seconds_bucket{le=\"+Inf\"} 4\nx_seconds_sum 2.5\nx_seconds_count 4\n";
        assert_eq!(text, expected);
    }
}
