//! Response compression, ingress-nginx's ConfigMap `use-gzip` and `enable-brotli` (both off by
//! default there and here), as Envoy's own compressor filter: one per algorithm on both listeners,
//! brotli first so a client that accepts both gets brotli, as nginx's brotli module answers before
//! its gzip. Each compresses a response whose `Content-Type` is `text/html` or one of its list
//! (`*`: any) and whose `Content-Length`, when it has one, is at least its minimum, for a client
//! whose `Accept-Encoding` takes it; it adds `Vary: Accept-Encoding` (nginx's `gzip_vary on`) and
//! weakens a strong `ETag` (as nginx does) rather than dropping it. A response the upstream already
//! encoded passes as it is. Typed config only; pure.
//!
//! Differences, small: nginx compresses only 200, 403 and 404 answers and no HTTP/1.0 request
//! (`gzip_http_version 1.1`); Envoy compresses any status and version. `gzip-disable` (a
//! User-Agent regex) has no counterpart.

use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::extensions::compression::brotli::compressor::v3::Brotli;
use envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::Gzip;
use envoy_types::pb::envoy::extensions::filters::http::compressor::v3::{compressor, Compressor};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::{http_filter, HttpFilter};
use envoy_types::pb::envoy::r#type::matcher::v3::{string_matcher::MatchPattern, StringMatcher};
use envoy_types::pb::google::protobuf::UInt32Value;
use envoy_types::util::pack_any;

/// ingress-nginx's `gzip-types` default (`text/html` is always compressed besides).
pub const DEFAULT_GZIP_TYPES: &str = "application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component";

/// ingress-nginx's `brotli-types` default (`text/html` is always compressed besides).
pub const DEFAULT_BROTLI_TYPES: &str = "application/xml+rss application/atom+xml application/javascript application/x-javascript application/json application/rss+xml application/vnd.ms-fontobject application/x-font-ttf application/x-web-app-manifest+json application/xhtml+xml application/xml font/opentype image/svg+xml image/x-icon text/css text/javascript text/plain text/x-component";

/// The `serve` flags, named and defaulted as ingress-nginx's ConfigMap keys.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct CompressionSettings {
    /// Compress responses with gzip (ingress-nginx's ConfigMap `use-gzip`).
    #[arg(long)]
    pub use_gzip: bool,
    /// gzip level, 1 (fastest) to 9.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=9))]
    pub gzip_level: u8,
    /// Responses whose Content-Length is below this many bytes are not gzipped.
    #[arg(long, default_value_t = 256)]
    pub gzip_min_length: u32,
    /// MIME types gzipped besides text/html (separated by spaces or commas; `*`: any).
    #[arg(long, default_value = DEFAULT_GZIP_TYPES)]
    pub gzip_types: String,
    /// Compress responses with brotli (ingress-nginx's ConfigMap `enable-brotli`).
    #[arg(long)]
    pub enable_brotli: bool,
    /// brotli level, 0 to 11.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(0..=11))]
    pub brotli_level: u8,
    /// Responses whose Content-Length is below this many bytes are not brotli-compressed.
    #[arg(long, default_value_t = 20)]
    pub brotli_min_length: u32,
    /// MIME types brotli-compressed besides text/html (separated by spaces or commas; `*`: any).
    #[arg(long, default_value = DEFAULT_BROTLI_TYPES)]
    pub brotli_types: String,
}

impl Default for CompressionSettings {
    fn default() -> CompressionSettings {
        CompressionSettings {
            use_gzip: false,
            gzip_level: 1,
            gzip_min_length: 256,
            gzip_types: DEFAULT_GZIP_TYPES.into(),
            enable_brotli: false,
            brotli_level: 4,
            brotli_min_length: 20,
            brotli_types: DEFAULT_BROTLI_TYPES.into(),
        }
    }
}

impl CompressionSettings {
    /// The compressor filters to put first in the HTTP filter chain (so they encode last, after
    /// every header the others add): brotli, then gzip; none when both are off.
    pub fn http_filters(&self) -> Vec<HttpFilter> {
        let brotli = self.enable_brotli.then(|| {
            let library = Brotli { quality: Some(UInt32Value { value: u32::from(self.brotli_level) }), ..Default::default() };
            // Chosen over gzip when the client takes both at the same q-value (browsers send
            // `gzip, deflate, br`), as nginx's brotli module answers before its gzip.
            Compressor { choose_first: true, ..compressor("brotli", pack_any(library), self.brotli_min_length, &self.brotli_types) }
        });
        let gzip = self.use_gzip.then(|| {
            // Envoy's enum numbers its levels 1 (`BEST_SPEED`) to 9 as nginx's `gzip_comp_level`.
            let library = Gzip { compression_level: i32::from(self.gzip_level.clamp(1, 9)), ..Default::default() };
            compressor("gzip", pack_any(library), self.gzip_min_length, &self.gzip_types)
        });
        brotli.into_iter().chain(gzip).map(http_filter).collect()
    }
}

/// The content types a `*-types` value and `text/html` make: exact, any case; `*` matches any.
fn content_types(types: &str) -> Vec<StringMatcher> {
    let listed = types.split(|c: char| c.is_whitespace() || c == ',').filter(|t| !t.is_empty());
    if listed.clone().any(|t| t == "*") {
        return vec![StringMatcher { match_pattern: Some(MatchPattern::Prefix(String::new())), ..Default::default() }];
    }
    let mut types: Vec<String> = std::iter::once("text/html").chain(listed).map(str::to_ascii_lowercase).collect();
    types.sort();
    types.dedup();
    types.into_iter().map(|t| StringMatcher { match_pattern: Some(MatchPattern::Exact(t)), ignore_case: true }).collect()
}

fn compressor(name: &str, library: envoy_types::pb::google::protobuf::Any, min_length: u32, types: &str) -> Compressor {
    let common = compressor::CommonDirectionConfig {
        min_content_length: Some(UInt32Value { value: min_length }),
        content_type_matcher: content_types(types),
        ..Default::default()
    };
    Compressor {
        compressor_library: Some(TypedExtensionConfig { name: name.into(), typed_config: Some(library) }),
        response_direction_config: Some(compressor::ResponseDirectionConfig {
            common_config: Some(common),
            weaken_etag_on_compress: true,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The HTTP filter of `config`, named after its library.
fn http_filter(config: Compressor) -> HttpFilter {
    let name = config.compressor_library.as_ref().map_or("", |library| library.name.as_str());
    HttpFilter {
        name: format!("envoy.filters.http.compressor.{name}"),
        config_type: Some(http_filter::ConfigType::TypedConfig(pack_any(config))),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;
    use clap::Parser;
    use prost::Message;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        compression: CompressionSettings,
    }

    fn decoded(filter: &HttpFilter) -> Compressor {
        let Some(http_filter::ConfigType::TypedConfig(any)) = &filter.config_type else { panic!() };
        Compressor::decode(any.value.as_slice()).unwrap()
    }

    fn exact(types: &[&str]) -> Vec<StringMatcher> {
        types.iter().map(|t| StringMatcher { match_pattern: Some(MatchPattern::Exact(t.to_string())), ignore_case: true }).collect()
    }

    #[test]
    fn off_by_default_as_ingress_nginx() {
        assert_eq!(Cli::parse_from(["x"]).compression, CompressionSettings::default());
        assert!(CompressionSettings::default().http_filters().is_empty());
        assert!(Cli::try_parse_from(["x", "--gzip-level", "10"]).is_err());
    }

    #[test]
    fn brotli_first_then_gzip_with_nginx_lengths_and_types() {
        let settings = Cli::parse_from(["x", "--use-gzip", "--gzip-level", "5", "--gzip-types", "application/json, text/CSS", "--enable-brotli"]).compression;
        let filters = settings.http_filters();
        let names: Vec<&str> = filters.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["envoy.filters.http.compressor.brotli", "envoy.filters.http.compressor.gzip"]);
        assert!(decoded(&filters[0]).choose_first && !decoded(&filters[1]).choose_first);
        let gzip = decoded(&filters[1]);
        let response = gzip.response_direction_config.unwrap();
        assert!(response.weaken_etag_on_compress);
        let common = response.common_config.unwrap();
        assert_eq!(common.min_content_length, Some(UInt32Value { value: 256 }));
        assert_eq!(common.content_type_matcher, exact(&["application/json", "text/css", "text/html"]));
        let library = gzip.compressor_library.unwrap();
        let level = Gzip::decode(library.typed_config.unwrap().value.as_slice()).unwrap().compression_level;
        assert_eq!(level, envoy_types::pb::envoy::extensions::compression::gzip::compressor::v3::gzip::CompressionLevel::CompressionLevel5 as i32);
        let brotli = decoded(&filters[0]).response_direction_config.unwrap().common_config.unwrap();
        assert_eq!(brotli.min_content_length, Some(UInt32Value { value: 20 }));
        assert_eq!(brotli.content_type_matcher.len(), 19, "the 18 default types and text/html");
        let any = content_types("text/plain *");
        assert_eq!(any, [StringMatcher { match_pattern: Some(MatchPattern::Prefix(String::new())), ..Default::default() }]);
    }
}
