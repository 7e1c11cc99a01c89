//! Edge hardening of what Envoy is sent: the settings Envoy's "Configuring Envoy as an edge proxy"
//! guide asks for (timeouts, HTTP/2 limits, buffer limits, header and path handling, TLS floor),
//! as one typed [`EdgeSettings`] value with the guide's (or ingress-nginx's) defaults, each one a
//! `serve` flag. Pure: builds proto fragments for `translate::envoy`; decides no routing.
//!
//! Path handling, deliberately (ingress-nginx decodes the URI before matching; we decode what can
//! change which route matches — dot segments, unreserved characters, `/` and `\` — but not the
//! rest, so an Ingress path written with other non-ASCII or reserved characters, `/café`, never
//! matches its percent-encoded request):
//! `normalize_path` (RFC 3986: `.`/`..` and `%2e` dot segments resolved, percent-encoded unreserved
//! characters decoded, `\` turned into `/`), `merge_slashes`, and `%2F`/`%5C` unescaped *before*
//! that normalisation (`UNESCAPE_AND_FORWARD`), so `/public/..%2Fadmin` is routed — and sent
//! upstream — as `/admin`, never by the `/public` prefix with a traversal left for the backend to
//! decode. `--escaped-slashes redirect` (Envoy's guide) answers such requests with a redirect to
//! the decoded path instead; `reject` answers 400; `keep` leaves `%2F` encoded (some APIs, such as
//! GitLab's, carry `%2F` inside one segment: their backends must not decode it as a separator).

use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{
    header_value_option::HeaderAppendAction, http_protocol_options::HeadersWithUnderscoresAction, HeaderValue, HeaderValueOption,
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions, TypedExtensionConfig,
};
use envoy_types::pb::envoy::config::common::mutation_rules::v3::{header_mutation, HeaderMutation as HeaderOp};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::PathWithEscapedSlashesAction;
use envoy_types::pb::envoy::extensions::http::early_header_mutation::header_mutation::v3::HeaderMutation;
use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::{tls_parameters::TlsProtocol, TlsParameters};
use envoy_types::pb::google::protobuf::{Duration as ProtoDuration, UInt32Value};
use envoy_types::util::pack_any;

/// The TLS 1.2 cipher names BoringSSL (and so Envoy) accepts, as OpenSSL spells them; a name
/// outside this list would make Envoy refuse the listener.
pub const TLS12_CIPHERS: &[&str] = &[
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
    "ECDHE-PSK-CHACHA20-POLY1305",
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-RSA-AES128-SHA",
    "ECDHE-PSK-AES128-CBC-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-RSA-AES256-SHA",
    "ECDHE-PSK-AES256-CBC-SHA",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
    "AES128-SHA",
    "PSK-AES128-CBC-SHA",
    "AES256-SHA",
    "PSK-AES256-CBC-SHA",
    "DES-CBC3-SHA",
];

/// The TLS 1.2 cipher suites offered downstream: ingress-nginx's default `ssl-ciphers` less the
/// DHE suites BoringSSL does not implement (forward-secret AEADs only: the first six of
/// [`TLS12_CIPHERS`]). TLS 1.3 suites are fixed.
pub const DEFAULT_TLS_CIPHERS: &[&str] = TLS12_CIPHERS.split_at(6).0;

/// `--tls-ciphers` entries: a name of [`TLS12_CIPHERS`] (any case), written as BoringSSL spells it.
fn parse_tls_cipher(value: &str) -> Result<String, String> {
    TLS12_CIPHERS
        .iter()
        .find(|name| name.eq_ignore_ascii_case(value.trim()))
        .map(|name| name.to_string())
        .ok_or_else(|| format!("{value:?} is not a TLS 1.2 cipher name Envoy takes (one of {})", TLS12_CIPHERS.join(", ")))
}

/// What to do with `%2F` / `%5C` in a request path (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EscapedSlashes {
    /// Decode them, then normalise and route on the result (the default).
    Unescape,
    /// Redirect the client to the decoded, normalised path (Envoy's edge guide).
    Redirect,
    /// Answer 400.
    Reject,
    /// Leave them encoded: `%2F` is part of a segment. Only for backends that never decode it.
    Keep,
}

/// Client headers whose name contains `_`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnderscoreHeaders {
    /// Drop the header before any filter sees it (nginx's `underscores_in_headers off`; default).
    Drop,
    /// Answer 400.
    Reject,
    /// Pass it on (ingress-nginx's `enable-underscores-in-headers: "true"`).
    Allow,
}

/// A TLS version bound downstream (the lowest or highest accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2")]
    V1_2,
    #[value(name = "1.3")]
    V1_3,
}

/// The `serve` flags that harden listeners and clusters; defaults in `Default`.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct EdgeSettings {
    /// Time a client has to send the complete request headers (slowloris); 0 disables.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub request_headers_timeout: Duration,
    /// A stream with no activity for this long is reset; 0 disables.
    #[arg(long, value_parser = parse_duration, default_value = "300s")]
    pub stream_idle_timeout: Duration,
    /// A downstream connection with no active stream for this long is closed (from its accept,
    /// so also one that never sends a byte). ingress-nginx's `keep-alive` (nginx's
    /// `keepalive_timeout`), default 75 s.
    #[arg(long, value_parser = parse_duration, default_value = "75s")]
    pub connection_idle_timeout: Duration,
    /// Requests one client connection may carry; after the last one Envoy closes it (HTTP/1:
    /// `Connection: close` on its response; HTTP/2: GOAWAY, so the limit is approximate with
    /// concurrent streams). ingress-nginx's `keep-alive-requests` (nginx's `keepalive_requests`),
    /// default 1000; 0: no limit.
    #[arg(long, default_value_t = 1000)]
    pub keep_alive_requests: u32,
    /// HTTP/2: most concurrent streams per client connection.
    #[arg(long, default_value_t = 100)]
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: initial per-stream flow-control window (bytes).
    #[arg(long, default_value_t = 65_536)]
    pub http2_initial_stream_window_size: u32,
    /// HTTP/2: initial per-connection flow-control window (bytes).
    #[arg(long, default_value_t = 1_048_576)]
    pub http2_initial_connection_window_size: u32,
    /// Read/write buffer limit per connection, on listeners and upstream clusters (bytes).
    #[arg(long, default_value_t = 32_768)]
    pub per_connection_buffer_limit_bytes: u32,
    /// Client headers with `_` in their name.
    #[arg(long, value_enum, default_value = "drop")]
    pub headers_with_underscores: UnderscoreHeaders,
    /// `%2F` and `%5C` in request paths.
    #[arg(long, value_enum, default_value = "unescape")]
    pub escaped_slashes: EscapedSlashes,
    /// Lowest TLS version on the HTTPS listener (ingress-nginx: TLSv1.2 TLSv1.3).
    #[arg(long, value_enum, default_value = "1.2")]
    pub tls_min_version: TlsVersion,
    /// Highest TLS version on the HTTPS listener (ingress-nginx's `ssl-protocols: TLSv1.2` turns
    /// TLS 1.3 off); below `--tls-min-version`, that one is used.
    #[arg(long, value_enum, default_value = "1.3")]
    pub tls_max_version: TlsVersion,
    /// TLS 1.2 cipher suites (comma-separated, OpenSSL names).
    #[arg(long, value_delimiter = ',', value_parser = parse_tls_cipher, default_values_t = DEFAULT_TLS_CIPHERS.iter().map(|c| c.to_string()))]
    pub tls_ciphers: Vec<String>,
    /// Proxies in front of Envoy whose `X-Forwarded-For` entries are trusted (ingress-nginx
    /// `use-forwarded-headers`; usually 1 behind a cloud load balancer). The client address that
    /// source ranges and rate limits see is the entry that many hops from the right. 0: the peer.
    #[arg(long, default_value_t = 0)]
    pub trusted_proxy_hops: u32,
    /// Expect a PROXY protocol (v1 or v2) header on every connection, as a load balancer that
    /// speaks it sends (ingress-nginx `use-proxy-protocol`); its source address is the client's.
    #[arg(long)]
    pub use_proxy_protocol: bool,
    /// No access log at all (ingress-nginx's ConfigMap `disable-access-log`); one Ingress's paths
    /// leave it with the `enable-access-log: "false"` annotation.
    #[arg(long)]
    pub disable_access_log: bool,
    /// Log the 404s of requests no Ingress serves (ingress-nginx's ConfigMap
    /// `enable-access-log-for-default-backend: "true"`): for a host no Ingress names, or a path no
    /// host-less rule takes. Off: left out, as by ingress-nginx's default server (its `/healthz`
    /// is never logged). Those forwarded to `--default-backend-service` are logged either way.
    #[arg(long)]
    pub enable_access_log_for_default_backend: bool,
    /// Every response carries `Server: wasm-ingress`, the backend's replaced (ingress-nginx's
    /// ConfigMap `server-tokens: "true"`, which sends nginx's). Off: none, the backend's removed
    /// too, as ingress-nginx's default. The Ingress conformance suite's default-backend feature
    /// expects one.
    #[arg(long)]
    pub server_tokens: bool,
    /// The access log's line (ingress-nginx's `log-format-*`).
    #[command(flatten)]
    pub log_format: super::log_format::LogFormatSettings,
    /// Response compression (ingress-nginx's `use-gzip`, `enable-brotli` and their settings).
    #[command(flatten)]
    pub compression: super::compression::CompressionSettings,
    /// Tracing (ingress-nginx's OpenTelemetry settings).
    #[command(flatten)]
    pub tracing: super::otel::TracingSettings,
    /// Clients refused on every host by their User-Agent or Referer (ingress-nginx's
    /// `block-user-agents`, `block-referers`).
    #[command(flatten)]
    pub blocks: super::blocks::HeaderBlocks,
}

impl Default for EdgeSettings {
    fn default() -> EdgeSettings {
        EdgeSettings {
            request_headers_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(300),
            connection_idle_timeout: Duration::from_secs(75),
            keep_alive_requests: 1000,
            http2_max_concurrent_streams: 100,
            http2_initial_stream_window_size: 65_536,
            http2_initial_connection_window_size: 1_048_576,
            per_connection_buffer_limit_bytes: 32_768,
            headers_with_underscores: UnderscoreHeaders::Drop,
            escaped_slashes: EscapedSlashes::Unescape,
            tls_min_version: TlsVersion::V1_2,
            tls_max_version: TlsVersion::V1_3,
            tls_ciphers: DEFAULT_TLS_CIPHERS.iter().map(|c| c.to_string()).collect(),
            trusted_proxy_hops: 0,
            use_proxy_protocol: false,
            disable_access_log: false,
            enable_access_log_for_default_backend: false,
            server_tokens: false,
            log_format: Default::default(),
            compression: Default::default(),
            tracing: Default::default(),
            blocks: Default::default(),
        }
    }
}

/// `10s`, `500ms`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 10s, 500ms, 5m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value.saturating_mul(60))),
        "h" => Ok(Duration::from_secs(value.saturating_mul(3600))),
        _ => Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m or h)")),
    }
}

pub(crate) fn proto_duration(duration: Duration) -> ProtoDuration {
    ProtoDuration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(duration.subsec_nanos()).unwrap_or(0),
    }
}

/// `None` for a zero duration (Envoy: field unset = its default, which for these is disabled).
fn optional_duration(duration: Duration) -> Option<ProtoDuration> {
    (!duration.is_zero()).then(|| proto_duration(duration))
}

/// See [`early_header_mutation`].
pub const ORIGINAL_FORWARDED_HOST: &str = "x-original-forwarded-host";

impl EdgeSettings {
    /// HTTP/1: HTTP/1.0 is served, as nginx serves it (Envoy answers 426 otherwise); one without
    /// a Host header gets `_`, nginx's default server name, which no Ingress host can be, so it
    /// reaches the default server as in nginx (Envoy answers 400 otherwise).
    pub fn http1_protocol_options(&self) -> Http1ProtocolOptions {
        Http1ProtocolOptions { accept_http_10: true, default_host_for_http_10: "_".into(), ..Default::default() }
    }

    pub fn request_headers_timeout(&self) -> Option<ProtoDuration> {
        optional_duration(self.request_headers_timeout)
    }

    /// Zero is sent as an explicit 0s: Envoy's own default for an unset field is 5 minutes.
    pub fn stream_idle_timeout(&self) -> Option<ProtoDuration> {
        Some(proto_duration(self.stream_idle_timeout))
    }

    pub fn common_http_protocol_options(&self) -> HttpProtocolOptions {
        let underscores = match self.headers_with_underscores {
            UnderscoreHeaders::Drop => HeadersWithUnderscoresAction::DropHeader,
            UnderscoreHeaders::Reject => HeadersWithUnderscoresAction::RejectRequest,
            UnderscoreHeaders::Allow => HeadersWithUnderscoresAction::Allow,
        };
        HttpProtocolOptions {
            idle_timeout: Some(proto_duration(self.connection_idle_timeout)),
            max_requests_per_connection: (self.keep_alive_requests > 0).then_some(UInt32Value { value: self.keep_alive_requests }),
            headers_with_underscores_action: underscores as i32,
            ..Default::default()
        }
    }

    pub fn http2_protocol_options(&self) -> Http2ProtocolOptions {
        Http2ProtocolOptions {
            max_concurrent_streams: Some(UInt32Value { value: self.http2_max_concurrent_streams }),
            initial_stream_window_size: Some(UInt32Value { value: self.http2_initial_stream_window_size }),
            initial_connection_window_size: Some(UInt32Value { value: self.http2_initial_connection_window_size }),
            ..Default::default()
        }
    }

    pub fn buffer_limit(&self) -> Option<UInt32Value> {
        Some(UInt32Value { value: self.per_connection_buffer_limit_bytes })
    }

    pub fn path_with_escaped_slashes_action(&self) -> i32 {
        let action = match self.escaped_slashes {
            EscapedSlashes::Unescape => PathWithEscapedSlashesAction::UnescapeAndForward,
            EscapedSlashes::Redirect => PathWithEscapedSlashesAction::UnescapeAndRedirect,
            EscapedSlashes::Reject => PathWithEscapedSlashesAction::RejectRequest,
            EscapedSlashes::Keep => PathWithEscapedSlashesAction::KeepUnchanged,
        };
        action as i32
    }

    pub fn tls_parameters(&self) -> TlsParameters {
        let protocol = |version: TlsVersion| match version {
            TlsVersion::V1_2 => TlsProtocol::TlSv12,
            TlsVersion::V1_3 => TlsProtocol::TlSv13,
        };
        TlsParameters {
            tls_minimum_protocol_version: protocol(self.tls_min_version) as i32,
            tls_maximum_protocol_version: protocol(self.tls_max_version.max(self.tls_min_version)) as i32,
            cipher_suites: self.tls_ciphers.clone(),
            ..Default::default()
        }
    }
}

/// The HCM's early header mutation, before routing and before any HTTP filter runs: the
/// client's `X-Forwarded-Host` kept as `X-Original-Forwarded-Host` (ingress-nginx's
/// `proxy_set_header X-Original-Forwarded-Host $http_x_forwarded_host`; the filter then replaces
/// `X-Forwarded-Host`), and `removed` taken off every client request, so the internal headers can
/// never be forged, even if the wasm filter were skipped.
pub fn early_header_mutation(removed: &[&str]) -> TypedExtensionConfig {
    let remove = |name: &str| HeaderOp { action: Some(header_mutation::Action::Remove(name.to_string())) };
    let original_host = HeaderValueOption {
        header: Some(HeaderValue { key: ORIGINAL_FORWARDED_HOST.into(), value: "%REQ(x-forwarded-host)%".into(), ..Default::default() }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    };
    // A client's own copy never passes: the value is set only when the client sent the header.
    let copy = [remove(ORIGINAL_FORWARDED_HOST), HeaderOp { action: Some(header_mutation::Action::Append(original_host)) }];
    let mutation = HeaderMutation { mutations: copy.into_iter().chain(removed.iter().map(|name| remove(name))).collect() };
    TypedExtensionConfig {
        name: "envoy.http.early_header_mutation.header_mutation".to_string(),
        typed_config: Some(pack_any(mutation)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        edge: EdgeSettings,
    }

    #[test]
    fn flag_defaults_are_the_documented_defaults() {
        assert_eq!(Cli::parse_from(["x"]).edge, EdgeSettings::default());
        let edge = Cli::parse_from([
            "x",
            "--request-headers-timeout",
            "0",
            "--escaped-slashes",
            "keep",
            "--tls-min-version",
            "1.3",
            "--tls-ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256,ECDHE-RSA-AES256-GCM-SHA384",
        ])
        .edge;
        assert_eq!(edge.request_headers_timeout(), None);
        assert_eq!(edge.path_with_escaped_slashes_action(), PathWithEscapedSlashesAction::KeepUnchanged as i32);
        assert_eq!(edge.tls_parameters().tls_minimum_protocol_version, TlsProtocol::TlSv13 as i32);
        assert_eq!(edge.tls_parameters().cipher_suites.len(), 2);
        assert_eq!(edge.tls_parameters().tls_maximum_protocol_version, TlsProtocol::TlSv13 as i32);
        // ingress-nginx's `ssl-protocols: TLSv1.2`: TLS 1.3 off; a maximum below the minimum is it.
        let range = |args: &[&str]| {
            let params = Cli::parse_from(std::iter::once("x").chain(args.iter().copied())).edge.tls_parameters();
            (params.tls_minimum_protocol_version, params.tls_maximum_protocol_version)
        };
        let (v12, v13) = (TlsProtocol::TlSv12 as i32, TlsProtocol::TlSv13 as i32);
        assert_eq!(range(&[]), (v12, v13));
        assert_eq!(range(&["--tls-max-version", "1.2"]), (v12, v12));
        assert_eq!(range(&["--tls-max-version", "1.2", "--tls-min-version", "1.3"]), (v13, v13));
        // Only names Envoy takes: an OpenSSL keyword would make Envoy refuse the listener.
        assert!(Cli::try_parse_from(["x", "--tls-ciphers", "HIGH:!aNULL"]).is_err());
        assert_eq!(Cli::parse_from(["x", "--tls-ciphers", "aes128-sha"]).edge.tls_ciphers, ["AES128-SHA"]);
        assert_eq!(DEFAULT_TLS_CIPHERS.len(), 6);
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("s").is_err());
    }
}
