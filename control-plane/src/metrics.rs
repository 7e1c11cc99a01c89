//! The control plane's Prometheus metrics (prometheus-client, OpenMetrics text on `/metrics`).
//!
//! One [`Metrics`] value is shared (`Arc`) by `serve`, the ADS server and the admin server; each
//! updates its own series. This module only defines and encodes metrics: it must not decide when
//! something is counted.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::model::{Diagnostic, Severity};
use crate::xds::cache::Snapshot;
use crate::xds::resources::ResourceType;

/// Label pairs (small, fixed sets; `Vec` keeps label names such as `type` as they are).
pub type Labels = Vec<(&'static str, String)>;

/// Every metric the control plane exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// ADS streams currently open.
    pub xds_connected_streams: Gauge,
    /// Responses sent, by xDS type (`type` = cds, eds, sds, lds, ecds).
    pub xds_pushes: Family<Labels, Counter>,
    /// Responses Envoy rejected, by xDS type.
    pub xds_nacks: Family<Labels, Counter>,
    /// NACKs standing now (per Envoy node and type, not yet followed by an ACK).
    pub xds_rejections: Gauge,
    /// Time to translate cluster state into a snapshot.
    pub translation_duration_seconds: Histogram,
    /// Current diagnostics, by severity.
    pub diagnostics: Family<Labels, Gauge>,
    /// 1 for the current version of each xDS type.
    pub snapshot_version_info: Family<Labels, Gauge>,
    /// Snapshots published (an identical rebuild is not counted).
    pub snapshots_published: Counter,
    /// Rebuilds by how they were made: `endpoints only`, `hosts spliced`, `translated`.
    pub rebuilds: Family<Labels, Counter>,
    /// Ingresses that contributed something to the current configuration.
    pub ingresses_served: Gauge,
    /// Ingresses served closed (an access control they ask for cannot be enforced: 403/503).
    pub ingresses_denied: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let xds_connected_streams = Gauge::default();
        let xds_pushes = Family::<Labels, Counter>::default();
        let xds_nacks = Family::<Labels, Counter>::default();
        let xds_rejections = Gauge::default();
        // 100µs .. ~3.3s
        let translation_duration_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        let diagnostics = Family::<Labels, Gauge>::default();
        let snapshot_version_info = Family::<Labels, Gauge>::default();
        let snapshots_published = Counter::default();
        let rebuilds = Family::<Labels, Counter>::default();
        let ingresses_served = Gauge::default();
        let ingresses_denied = Gauge::default();
        registry.register("xds_connected_streams", "ADS streams currently open", xds_connected_streams.clone());
        // Counters get `_total` appended by the encoder.
        registry.register("xds_pushes", "xDS responses sent, by type", xds_pushes.clone());
        registry.register("xds_nacks", "xDS responses rejected by Envoy (NACK), by type", xds_nacks.clone());
        registry.register(
            "xds_rejections",
            "NACKs standing now: per Envoy node and type, not yet followed by an ACK (Envoy serves its last accepted configuration)",
            xds_rejections.clone(),
        );
        registry.register(
            "translation_duration_seconds",
            "Time to translate cluster state into an xDS snapshot",
            translation_duration_seconds.clone(),
        );
        registry.register("diagnostics", "Current translation and manifest diagnostics, by severity", diagnostics.clone());
        registry.register(
            "xds_snapshot_version_info",
            "Current snapshot version of each xDS type (value 1)",
            snapshot_version_info.clone(),
        );
        registry.register("xds_snapshots_published", "Snapshots published to ADS streams", snapshots_published.clone());
        registry.register(
            "rebuilds",
            "Configuration rebuilds, by how: endpoints only, hosts spliced (only Ingresses changed), translated",
            rebuilds.clone(),
        );
        registry.register("ingresses_served", "Ingresses contributing to the served configuration", ingresses_served.clone());
        registry.register(
            "ingresses_denied",
            "Ingresses served closed: an access control they ask for cannot be enforced (403/503)",
            ingresses_denied.clone(),
        );
        for resource_type in ResourceType::ALL {
            // Export zeros from the start, so a NACK rate can be computed before the first NACK.
            let _ = xds_pushes.get_or_create(&type_label(resource_type));
            let _ = xds_nacks.get_or_create(&type_label(resource_type));
        }
        Metrics {
            registry,
            xds_connected_streams,
            xds_pushes,
            xds_nacks,
            xds_rejections,
            translation_duration_seconds,
            diagnostics,
            snapshot_version_info,
            snapshots_published,
            rebuilds,
            ingresses_served,
            ingresses_denied,
        }
    }

    pub fn count_push(&self, resource_type: ResourceType) {
        self.xds_pushes.get_or_create(&type_label(resource_type)).inc();
    }

    pub fn count_nack(&self, resource_type: ResourceType) {
        self.xds_nacks.get_or_create(&type_label(resource_type)).inc();
    }

    pub fn observe_translation(&self, duration: Duration) {
        self.translation_duration_seconds.observe(duration.as_secs_f64());
    }

    /// One more rebuild made `how` (a label such as `hosts spliced`).
    pub fn count_rebuild(&self, how: &str) {
        self.rebuilds.get_or_create(&vec![("how", how.to_string())]).inc();
    }

    /// Set the diagnostics gauge from the current full list.
    pub fn set_diagnostics(&self, diagnostics: &[Diagnostic]) {
        let count = |severity| diagnostics.iter().filter(|d| d.severity == severity).count();
        for (label, severity) in [("error", Severity::Error), ("warning", Severity::Warning)] {
            let value = i64::try_from(count(severity)).unwrap_or(i64::MAX);
            self.diagnostics.get_or_create(&vec![("severity", label.to_string())]).set(value);
        }
    }

    /// Point `xds_snapshot_version_info` at the versions of `snapshot`.
    pub fn set_snapshot_versions(&self, snapshot: &Snapshot) {
        self.snapshot_version_info.clear();
        for resource_type in ResourceType::ALL {
            if let Some(version) = snapshot.version(resource_type) {
                let labels = vec![("type", resource_type.label().to_string()), ("version", version.to_string())];
                self.snapshot_version_info.get_or_create(&labels).set(1);
            }
        }
    }

    /// OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn type_label(resource_type: ResourceType) -> Labels {
    vec![("type", resource_type.label().to_string())]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;

    #[test]
    fn exposition_names_the_series_operators_alert_on() {
        let metrics = Metrics::new();
        metrics.count_push(ResourceType::Listener);
        metrics.count_push(ResourceType::Listener);
        metrics.count_nack(ResourceType::ExtensionConfig);
        metrics.xds_connected_streams.inc();
        metrics.ingresses_served.set(3);
        metrics.ingresses_denied.set(1);
        metrics.observe_translation(Duration::from_millis(2));
        metrics.set_diagnostics(&[Diagnostic {
            object: ObjectRef { kind: "Ingress".into(), namespace: "default".into(), name: "shop".into() },
            field: String::new(),
            message: "x".into(),
            severity: Severity::Error,
        }]);
        let text = metrics.encode();
        for line in [
            "xds_pushes_total{type=\"lds\"} 2",
            "xds_pushes_total{type=\"cds\"} 0",
            "xds_nacks_total{type=\"ecds\"} 1",
            "xds_connected_streams 1",
            "ingresses_served 3",
            "ingresses_denied 1",
            "translation_duration_seconds_count 1",
            "diagnostics{severity=\"error\"} 1",
            "diagnostics{severity=\"warning\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn snapshot_version_info_keeps_only_current_versions() {
        let metrics = Metrics::new();
        metrics.set_snapshot_versions(&Snapshot::new(Default::default()));
        let first = metrics.encode();
        let versions = |text: &str| text.lines().filter(|l| l.starts_with("xds_snapshot_version_info{")).count();
        assert_eq!(versions(&first), ResourceType::ALL.len());
        metrics.set_snapshot_versions(&Snapshot::empty());
        assert_eq!(versions(&metrics.encode()), 0);
    }
}
