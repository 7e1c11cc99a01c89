//! Distributed tracing, ingress-nginx's OpenTelemetry (its ConfigMap `enable-opentelemetry`,
//! `otlp-collector-host`/`-port`, `otel-service-name`, `otel-sampler`, `otel-sampler-ratio`,
//! `otel-sampler-parent-based`), as Envoy's own OpenTelemetry tracer: with tracing on and a
//! collector, both connection managers trace, export spans over OTLP/gRPC to the collector's
//! cluster, and send `traceparent` upstream. Typed config only; pure.
//!
//! For every Ingress or none: Envoy decides whether to trace a request when its headers arrive,
//! before the filter picks the route policy, so ingress-nginx's per-Ingress `enable-opentelemetry`
//! annotation cannot be honoured (a warning says so).
//!
//! Sampling follows ingress-nginx's sampler: `AlwaysOn` (its default), `AlwaysOff` or
//! `TraceIdRatioBased` at `otel-sampler-ratio`; with `otel-sampler-parent-based` (its default) an
//! incoming `traceparent` decides instead when it has one, as Envoy's parent-based sampler does.
//! With `opentelemetry-trust-incoming-span: "false"` the client's `traceparent` and `tracestate`
//! are dropped before Envoy reads them (the connection managers' early header mutation, which
//! runs before tracing): every request starts its own trace, as nginx's module then does.

use envoy_types::pb::envoy::config::cluster::v3::Cluster;
use envoy_types::pb::envoy::config::core::v3::{grpc_service, GrpcService, TypedExtensionConfig};
use envoy_types::pb::envoy::config::trace::v3::{tracing, OpenTelemetryConfig};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager;
use envoy_types::pb::envoy::extensions::tracers::opentelemetry::samplers::v3::{
    AlwaysOnSamplerConfig, ParentBasedSamplerConfig, TraceIdRatioBasedSamplerConfig,
};
use envoy_types::pb::envoy::r#type::v3::{fractional_percent, FractionalPercent, Percent};
use envoy_types::util::pack_any;

use super::edge::EdgeSettings;

/// The cluster spans are exported to (not a `namespace/service/port` name).
pub const COLLECTOR_CLUSTER: &str = "wasm-ingress:otlp-collector";

/// ingress-nginx's `otel-sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Sampler {
    #[value(name = "AlwaysOn")]
    AlwaysOn,
    #[value(name = "AlwaysOff")]
    AlwaysOff,
    #[value(name = "TraceIdRatioBased")]
    TraceIdRatioBased,
}

/// The `serve` flags, named and defaulted as ingress-nginx's ConfigMap keys.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct TracingSettings {
    /// Trace requests (ingress-nginx's ConfigMap `enable-opentelemetry`); needs
    /// `--otlp-collector-host`.
    #[arg(long, requires = "otlp_collector_host")]
    pub enable_opentelemetry: bool,
    /// Export traces over OTLP/gRPC to this host (`otlp-collector-host`).
    #[arg(long)]
    pub otlp_collector_host: Option<String>,
    /// The collector's port (`otlp-collector-port`).
    #[arg(long, default_value_t = 4317)]
    pub otlp_collector_port: u16,
    /// `service.name` of the spans (`otel-service-name`).
    #[arg(long, default_value = "nginx")]
    pub otel_service_name: String,
    /// Which requests are sampled (`otel-sampler`).
    #[arg(long, value_enum, default_value = "AlwaysOn")]
    pub otel_sampler: Sampler,
    /// The share of requests `TraceIdRatioBased` samples, 0 to 1 (`otel-sampler-ratio`); kept
    /// in parts per million, the finest share Envoy takes.
    #[arg(long, default_value = "0.01", value_parser = parse_ratio)]
    pub otel_sampler_ratio: u32,
    /// An incoming `traceparent` decides whether its request is sampled
    /// (`otel-sampler-parent-based`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub otel_sampler_parent_based: bool,
    /// A client's `traceparent` continues its trace (`opentelemetry-trust-incoming-span`);
    /// `false`: it is dropped and every request starts a trace of its own.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub opentelemetry_trust_incoming_span: bool,
}

impl Default for TracingSettings {
    fn default() -> TracingSettings {
        TracingSettings {
            enable_opentelemetry: false,
            otlp_collector_host: None,
            otlp_collector_port: 4317,
            otel_service_name: "nginx".into(),
            otel_sampler: Sampler::AlwaysOn,
            otel_sampler_ratio: 10_000,
            otel_sampler_parent_based: true,
            opentelemetry_trust_incoming_span: true,
        }
    }
}

/// A ratio from 0 to 1, in parts per million.
pub fn parse_ratio(text: &str) -> Result<u32, String> {
    match text.trim().parse::<f64>() {
        // In range, so the product fits.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok((ratio * 1_000_000.0).round() as u32),
        _ => Err(format!("{text:?} is not a ratio from 0 to 1")),
    }
}

impl TracingSettings {
    /// The collector's host, when tracing is on.
    fn collector(&self) -> Option<&str> {
        self.otlp_collector_host.as_deref().filter(|_| self.enable_opentelemetry)
    }

    /// The trace context headers a client may not send, dropped before Envoy reads them: those of
    /// W3C Trace Context when tracing is on and incoming spans are not trusted.
    pub fn untrusted_headers(&self) -> &'static [&'static str] {
        match self.collector().is_some() && !self.opentelemetry_trust_incoming_span {
            true => &["traceparent", "tracestate"],
            false => &[],
        }
    }

    /// The connection managers' tracing, when it is on.
    pub fn http_tracing(&self) -> Option<http_connection_manager::Tracing> {
        self.collector()?;
        let config = OpenTelemetryConfig {
            grpc_service: Some(GrpcService {
                target_specifier: Some(grpc_service::TargetSpecifier::EnvoyGrpc(grpc_service::EnvoyGrpc {
                    cluster_name: COLLECTOR_CLUSTER.to_string(),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            service_name: self.otel_service_name.clone(),
            sampler: Some(self.sampler()),
            ..Default::default()
        };
        Some(http_connection_manager::Tracing {
            provider: Some(tracing::Http {
                name: "envoy.tracers.opentelemetry".to_string(),
                config_type: Some(tracing::http::ConfigType::TypedConfig(pack_any(config))),
            }),
            // The sampler decides; Envoy's own random sampling lets every request reach it.
            random_sampling: Some(Percent { value: 100.0 }),
            ..Default::default()
        })
    }

    /// The OpenTelemetry sampler of `otel-sampler`, parent-based or not.
    fn sampler(&self) -> TypedExtensionConfig {
        let ratio = |numerator: u32| {
            extension(
                "envoy.tracers.opentelemetry.samplers.trace_id_ratio_based",
                pack_any(TraceIdRatioBasedSamplerConfig {
                    sampling_percentage: Some(FractionalPercent { numerator, denominator: fractional_percent::DenominatorType::Million as i32 }),
                }),
            )
        };
        let root = match self.otel_sampler {
            Sampler::AlwaysOn => extension("envoy.tracers.opentelemetry.samplers.always_on", pack_any(AlwaysOnSamplerConfig {})),
            Sampler::AlwaysOff => ratio(0),
            Sampler::TraceIdRatioBased => ratio(self.otel_sampler_ratio),
        };
        match self.otel_sampler_parent_based {
            true => extension(
                "envoy.tracers.opentelemetry.samplers.parent_based",
                pack_any(ParentBasedSamplerConfig { wrapped_sampler: Some(root) }),
            ),
            false => root,
        }
    }

    /// The collector's cluster (HTTP/2, its name resolved by DNS), when tracing is on.
    pub fn collector_cluster(&self, edge: &EdgeSettings) -> Option<Cluster> {
        let host = self.collector()?;
        Some(super::clusters::grpc_cluster(COLLECTOR_CLUSTER, host, self.otlp_collector_port, edge))
    }
}

fn extension(name: &str, config: envoy_types::pb::google::protobuf::Any) -> TypedExtensionConfig {
    TypedExtensionConfig { name: name.to_string(), typed_config: Some(config) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use prost::Message;

    fn settings(sampler: Sampler, parent_based: bool) -> TracingSettings {
        TracingSettings {
            enable_opentelemetry: true,
            otlp_collector_host: Some("otel.observability.svc".into()),
            otel_sampler: sampler,
            otel_sampler_ratio: 250_000,
            otel_sampler_parent_based: parent_based,
            ..TracingSettings::default()
        }
    }

    fn config_of(tracing: &http_connection_manager::Tracing) -> OpenTelemetryConfig {
        let http = tracing.provider.as_ref().unwrap();
        assert_eq!(http.name, "envoy.tracers.opentelemetry");
        let Some(tracing::http::ConfigType::TypedConfig(any)) = &http.config_type else { panic!("no config") };
        OpenTelemetryConfig::decode(any.value.as_slice()).unwrap()
    }

    #[test]
    fn nothing_is_traced_unless_on_with_a_collector() {
        assert_eq!(TracingSettings::default().http_tracing(), None);
        assert_eq!(TracingSettings::default().collector_cluster(&EdgeSettings::default()), None);
        let off = TracingSettings { enable_opentelemetry: false, ..settings(Sampler::AlwaysOn, true) };
        assert_eq!((off.http_tracing(), off.collector_cluster(&EdgeSettings::default())), (None, None));
    }

    #[test]
    fn an_untrusted_client_s_trace_context_is_dropped_only_while_tracing() {
        let untrusted = |tracing: TracingSettings| TracingSettings { opentelemetry_trust_incoming_span: false, ..tracing }.untrusted_headers();
        assert_eq!(untrusted(settings(Sampler::AlwaysOn, true)), ["traceparent", "tracestate"]);
        assert!(settings(Sampler::AlwaysOn, true).untrusted_headers().is_empty(), "trusted by default");
        assert!(untrusted(TracingSettings::default()).is_empty(), "tracing off: the headers pass on, as in ingress-nginx");
    }

    #[test]
    fn the_tracer_exports_to_the_collector_with_ingress_nginx_s_sampler() {
        let tracing = settings(Sampler::AlwaysOn, true).http_tracing().unwrap();
        let config = config_of(&tracing);
        assert_eq!(config.service_name, "nginx");
        let Some(grpc_service::TargetSpecifier::EnvoyGrpc(target)) = config.grpc_service.unwrap().target_specifier else { panic!() };
        assert_eq!(target.cluster_name, COLLECTOR_CLUSTER);
        let table = [
            (Sampler::AlwaysOn, true, vec!["envoy.tracers.opentelemetry.samplers.parent_based", "envoy.tracers.opentelemetry.samplers.always_on"], None),
            (Sampler::AlwaysOn, false, vec!["envoy.tracers.opentelemetry.samplers.always_on"], None),
            (Sampler::AlwaysOff, false, vec!["envoy.tracers.opentelemetry.samplers.trace_id_ratio_based"], Some(0)),
            (Sampler::TraceIdRatioBased, false, vec!["envoy.tracers.opentelemetry.samplers.trace_id_ratio_based"], Some(250_000)),
        ];
        for (sampler, parent_based, names, per_million) in table {
            let config = config_of(&settings(sampler, parent_based).http_tracing().unwrap());
            let mut chain = Vec::new();
            let mut next = config.sampler;
            let mut ratio = None;
            while let Some(extension) = next.take() {
                chain.push(extension.name.clone());
                let any = extension.typed_config.unwrap();
                if extension.name.ends_with("parent_based") {
                    next = ParentBasedSamplerConfig::decode(any.value.as_slice()).unwrap().wrapped_sampler;
                } else if extension.name.ends_with("ratio_based") {
                    ratio = TraceIdRatioBasedSamplerConfig::decode(any.value.as_slice()).unwrap().sampling_percentage.map(|p| p.numerator);
                }
            }
            assert_eq!((chain, ratio), (names.iter().map(|n| n.to_string()).collect::<Vec<_>>(), per_million), "{sampler:?} {parent_based}");
        }
        let cluster = settings(Sampler::AlwaysOn, true).collector_cluster(&EdgeSettings::default()).unwrap();
        assert_eq!(cluster.name, COLLECTOR_CLUSTER);
        assert!(cluster.typed_extension_protocol_options.contains_key(super::super::clusters::HTTP_PROTOCOL_OPTIONS), "gRPC needs HTTP/2");
    }

    #[test]
    fn ratios_are_between_zero_and_one() {
        assert_eq!(parse_ratio("0.5"), Ok(500_000));
        assert_eq!(parse_ratio("0.01"), Ok(10_000), "ingress-nginx's default");
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("half").is_err());
    }
}
