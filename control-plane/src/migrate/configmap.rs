//! An ingress-nginx ConfigMap (`data`), read for `migrate`: the settings this controller takes as
//! its defaults (`ssl-redirect`, `proxy-body-size`, `hsts*`, …) go into [`NginxDefaults`] so the
//! Ingresses are judged under them, and every key is classified like an annotation (with the
//! `serve` flag that gives it, where there is one: `global-auth-*`, the address lists and the
//! blocks too). Settings that restrict access globally with a value `serve` would refuse
//! (`global-auth-*`, `whitelist-source-range`, `block-*`, …) are reported *refused*: switching
//! would open what they closed.
//! Without a ConfigMap, ingress-nginx's defaults are assumed (they are `NginxDefaults::default()`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Class;
use crate::model::Balance;
use crate::translate::ingress::behaviour::{go_bool, parse_body_size, parse_config_map_key, parse_http_redirect_code, parse_load_balance};
use crate::translate::blocks::MapEntry;
use crate::translate::ingress::{ciphers, GlobalAuthFlags, NginxDefaults};

/// One key of the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingReport {
    pub key: String,
    pub value: String,
    pub class: Class,
    pub detail: String,
    /// The `serve` argument that gives this setting (`--proxy-body-size=10m`), for the settings
    /// `serve` takes as flags of the same name; `None` for the others and for ingress-nginx's
    /// default value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
}

/// The defaults the ConfigMap gives, and what happens to each of its keys.
#[derive(Debug, Clone)]
pub struct Reading {
    pub defaults: NginxDefaults,
    pub settings: Vec<SettingReport>,
}

/// nginx tuning with no counterpart (Envoy's own limits and defaults apply).
const TUNING_KEYS: &[&str] = &[
    "client-body-buffer-size",
    "client-header-buffer-size",
    "large-client-header-buffers",
    "max-worker-connections",
    "proxy-buffer-size",
    "proxy-buffering",
    "proxy-buffers-number",
    "ssl-session-cache",
    "ssl-session-cache-size",
    "ssl-session-timeout",
    "upstream-keepalive-connections",
    "upstream-keepalive-requests",
    "upstream-keepalive-timeout",
    "worker-connections",
    "worker-processes",
    "worker-shutdown-timeout",
];

/// Read a ConfigMap's `data`.
pub fn read(data: &BTreeMap<String, String>) -> Reading {
    let mut defaults = NginxDefaults::default();
    let mut settings: Vec<SettingReport> = data
        .iter()
        .map(|(key, value)| {
            let before = defaults.clone();
            let (class, detail) = setting(key, value.trim(), &mut defaults);
            // Every setting kept in `NginxDefaults` is a `serve` flag of the same name.
            let flag = (defaults != before)
                .then(|| serve_flag(key, &flag_value(key, value.trim())))
                .or_else(|| listener_serve_flag(key, value.trim(), class))
                .or_else(|| header_block_flag(key, value.trim()));
            SettingReport { key: key.clone(), value: value.clone(), class, detail, flag }
        })
        .collect();
    refuse_unusable_global_auth(&defaults, &mut settings);
    Reading { defaults, settings }
}

/// Global auth flags the annotation parser refuses would stop `serve`: the settings are refused.
fn refuse_unusable_global_auth(defaults: &NginxDefaults, settings: &mut [SettingReport]) {
    let Err(reason) = crate::translate::ingress::global_auth(&defaults.global_auth) else { return };
    for setting in settings.iter_mut().filter(|s| s.key.starts_with("global-auth-") && s.flag.is_some()) {
        setting.class = Class::Refused;
        setting.detail = format!("{reason}: `serve` refuses these flags, and without them the global auth would be off");
    }
}

/// A `global-auth-*` key into its `serve` flag (see [`GlobalAuthFlags`]).
fn global_auth_setting(key: &str, value: &str, flags: &mut GlobalAuthFlags) -> (Class, String) {
    let value = Some(value.to_string()).filter(|v| !v.is_empty());
    let field = match key {
        "global-auth-url" => &mut flags.global_auth_url,
        "global-auth-method" => &mut flags.global_auth_method,
        "global-auth-signin" => &mut flags.global_auth_signin,
        "global-auth-signin-redirect-param" => &mut flags.global_auth_signin_redirect_param,
        "global-auth-response-headers" => &mut flags.global_auth_response_headers,
        "global-auth-request-redirect" => &mut flags.global_auth_request_redirect,
        "global-auth-cache-key" => &mut flags.global_auth_cache_key,
        "global-auth-cache-duration" => &mut flags.global_auth_cache_duration,
        "global-auth-always-set-cookie" => {
            flags.global_auth_always_set_cookie = value.as_deref().and_then(go_bool) == Some(true);
            return (Class::Same, String::new());
        }
        _ => return (Class::NotSupported, "raw nginx for the auth location: never applied here".into()),
    };
    *field = value;
    (Class::Same, String::new())
}

/// The settings read as booleans (Go's `strconv.ParseBool`, as ingress-nginx reads its ConfigMap).
const BOOLEAN_SETTINGS: [&str; 10] = [
    "ssl-redirect",
    "force-ssl-redirect",
    "use-port-in-redirects",
    "hsts",
    "hsts-include-subdomains",
    "hsts-preload",
    "service-upstream",
    "global-auth-always-set-cookie",
    "otel-sampler-parent-based",
    "opentelemetry-trust-incoming-span",
];

/// A setting's value as its flag takes it: a boolean as `true` / `false`, error-page statuses
/// as those kept.
fn flag_value(key: &str, value: &str) -> String {
    match go_bool(value) {
        Some(on) if BOOLEAN_SETTINGS.contains(&key) => on.to_string(),
        // The entries as `serve` takes them: ingress-nginx drops empty ones.
        _ if matches!(key, "whitelist-source-range" | "denylist-source-range" | "block-cidrs") => list_entries(value).join(","),
        // The statuses ingress-nginx keeps, which are all `serve` takes.
        // The count kept (at most 10, what `serve` takes), not the one asked for.
        _ if key == "proxy-next-upstream-tries" => match value.trim().parse::<u32>() {
            Ok(tries) if (1..=10).contains(&tries) => tries.to_string(),
            _ => "10".to_string(),
        },
        _ if key == "custom-http-errors" => error_page_codes(value).map_or_else(
            || value.to_string(),
            |codes| codes.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
        ),
        _ => value.to_string(),
    }
}

/// `--key=value`, the value single-quoted for a shell when it needs it.
fn serve_flag(key: &str, value: &str) -> String {
    let plain = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b",._/:-".contains(&b));
    match plain {
        true => format!("--{key}={value}"),
        false => format!("--{key}='{}'", value.replace('\'', "'\\''")),
    }
}

fn setting(key: &str, value: &str, defaults: &mut NginxDefaults) -> (Class, String) {
    match key {
        "ssl-redirect" => boolean(value, &mut defaults.ssl_redirect),
        "force-ssl-redirect" => boolean(value, &mut defaults.force_ssl_redirect),
        "use-port-in-redirects" => boolean(value, &mut defaults.use_port_in_redirects),
        "hsts" => boolean(value, &mut defaults.hsts),
        "hsts-include-subdomains" => boolean(value, &mut defaults.hsts_include_subdomains),
        "hsts-preload" => boolean(value, &mut defaults.hsts_preload),
        "service-upstream" => boolean(value, &mut defaults.service_upstream),
        "custom-http-errors" => parsed(value, &mut defaults.custom_http_errors, error_page_codes),
        "hsts-max-age" => parsed(value, &mut defaults.hsts_max_age, |v| v.parse().ok()),
        "proxy-read-timeout" => parsed(value, &mut defaults.proxy_read_timeout, |v| v.parse().ok()),
        "proxy-connect-timeout" => parsed(value, &mut defaults.proxy_connect_timeout, |v| v.parse().ok().filter(|s| (1..=3600).contains(s))),
        "proxy-next-upstream-tries" => next_upstream_tries(value, &mut defaults.proxy_next_upstream_tries),
        "proxy-body-size" => parsed(value, &mut defaults.proxy_body_size, parse_body_size),
        "proxy-next-upstream-timeout" => parsed(value, &mut defaults.proxy_next_upstream_timeout, |v| v.parse().ok()),
        "load-balance" => match parse_load_balance(value) {
            Ok(balance) => {
                defaults.load_balance = balance;
                match balance {
                    Balance::LeastRequest => (Class::Differs, "ewma: Envoy's least-request balancer (the nearest to nginx's latency-weighted one)".into()),
                    _ => (Class::Same, String::new()),
                }
            }
            Err(_) => (Class::Differs, format!("{value:?}: only round_robin and ewma are global settings here (chash and the sticky ones come from annotations); round robin is kept")),
        },
        "add-headers" if !value.is_empty() => parsed(value, &mut defaults.add_headers, |v| parse_config_map_key(v).ok().map(Some)),
        "proxy-set-headers" if !value.is_empty() => parsed(value, &mut defaults.proxy_set_headers, |v| parse_config_map_key(v).ok().map(Some)),
        "global-allowed-response-headers" => parsed(value, &mut defaults.global_allowed_response_headers, |v| {
            Some(v.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect())
        }),
        "hide-headers" => parsed(value, &mut defaults.hide_headers, |v| {
            v.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| crate::translate::ingress::behaviour::parse_header_name(h).ok()).collect()
        }),
        "no-auth-locations" => parsed(value, &mut defaults.no_auth_locations, |v| Some(v.split(',').map(|l| l.trim().to_string()).collect())),
        "no-tls-redirect-locations" => parsed(value, &mut defaults.no_tls_redirect_locations, |v| Some(v.split(',').map(|l| l.trim().to_string()).collect())),
        key if key.starts_with("global-auth-") => global_auth_setting(key, value, &mut defaults.global_auth),
        "http-redirect-code" => parsed(value, &mut defaults.http_redirect_code, |v| parse_http_redirect_code(v).ok()),
        "use-forwarded-headers" => listener_flag(
            value,
            "`serve --trusted-proxy-hops N` (N: the proxies in front of Envoy) reads the client address from \
             X-Forwarded-For and keeps X-Forwarded-Proto, -Port and -Host as ingress-nginx does; ingress-nginx takes \
             the address from peers within proxy-real-ip-cidr (default any, and then the leftmost entry, which a \
             client can write) and the other headers from any peer, where Envoy counts N hops from the right",
        ),
        "use-proxy-protocol" => listener_flag(value, "`serve --use-proxy-protocol` accepts the PROXY protocol on both listeners"),
        "disable-access-log" | "disable-http-access-log" => listener_flag(value, "`serve --disable-access-log` turns Envoy's access log off"),
        "server-tokens" => listener_flag(value, "`serve --server-tokens` sends `Server: wasm-ingress` (no version) on every response"),
        "enable-access-log-for-default-backend" => listener_flag(value, "`serve --enable-access-log-for-default-backend` logs the 404s of requests no Ingress serves"),
        "enable-underscores-in-headers" => {
            listener_flag(value, "`serve --headers-with-underscores allow` passes them on (dropped by default, as nginx)")
        }
        // Snippets are neither wholly off nor wholly on here: only header statements apply.
        "allow-snippet-annotations" => match go_bool(value) {
            Some(false) => (
                Class::Differs,
                "the header statements of configuration-snippet (more_set_headers, proxy_set_header, ...) are applied here as typed \
                 headers, which no snippet can turn into other configuration; ingress-nginx would drop the whole snippet"
                    .into(),
            ),
            _ => (
                Class::Differs,
                "only the header statements of configuration-snippet are applied here; other statements and server-snippet \
                 never are (a snippet with access directives fails closed)"
                    .into(),
            ),
        },
        "limit-req-status-code" => parsed(value, &mut defaults.limit_req_status_code, limit_status),
        "limit-conn-status-code" => parsed(value, &mut defaults.limit_conn_status_code, limit_status),
        "proxy-redirect-from" | "proxy-redirect-to" | "proxy-cookie-domain" | "proxy-cookie-path" => match value {
            "off" => (Class::Same, String::new()),
            _ => (
                Class::Differs,
                format!("not applied as a global default: set the nginx.ingress.kubernetes.io/{key} annotation on the Ingresses that need it"),
            ),
        },
        "use-gzip" | "enable-brotli" => listener_flag(value, &format!("`serve --{key}` compresses responses with Envoy's compressor")),
        "enable-opentelemetry" => listener_flag(value, "`serve --enable-opentelemetry` traces every Ingress (the annotation is not applied per Ingress)"),
        "log-format-upstream" => match crate::translate::log_format::NginxLogFormat::parse(value) {
            Ok(_) => named_listener_setting(key, value),
            Err(reason) => (Class::NotSupported, format!("{reason}: the access log keeps ingress-nginx's default line")),
        },
        "log-format-escape-json" | "log-format-escape-none" => listener_flag(value, &format!("`serve --{key}`")),
        key if NAMED_LISTENER_SETTINGS.contains(&key) => named_listener_setting(key, &flag_value(key, value)),
        // Before the defaults: `serve`'s own differ from nginx's (Envoy's edge-proxy guidance).
        "keep-alive" if value.trim_end_matches('s') == "0" => {
            (Class::NotSupported, "0 turns keep-alive off in nginx; Envoy keeps client connections open up to `serve --connection-idle-timeout`".into())
        }
        "http2-max-concurrent-streams" | "client-header-timeout" => match listener_value(key, value) {
            Some(flag) => (Class::Differs, format!("a setting of the listeners here: {flag} (serve's default: {})", listener_default(key))),
            None => (Class::Differs, format!("{value:?} is not a value ingress-nginx accepts here")),
        },
        // ingress-nginx's own default asks for nothing to carry over, read here or not.
        key if super::nginx_defaults::is_default(key, value) => (Class::Same, "ingress-nginx's default value".into()),
        "keep-alive" => match listener_value(key, value) {
            Some(flag) => (Class::Differs, format!("a setting of the listeners here: {flag} (serve's default: 75s, as ingress-nginx's)")),
            None => (Class::Differs, format!("{value:?} is not a value ingress-nginx accepts here")),
        },
        "keep-alive-requests" => match listener_value(key, value) {
            Some(flag) => (Class::Differs, format!("a setting of the listeners here: {flag} (serve's default: 1000, as ingress-nginx's)")),
            None => (Class::NotSupported, format!("{value:?} is not a count of requests; `serve --keep-alive-requests` keeps 1000")),
        },
        "enable-real-ip" => listener_flag(
            value,
            "`serve --trusted-proxy-hops N` reads the client address from X-Forwarded-For (N: the proxies in front of Envoy), \
             but it also keeps the X-Forwarded-Proto, -Port and -Host the last trusted proxy sent (ingress-nginx's \
             use-forwarded-headers), where enable-real-ip takes the address alone: set it only behind a load balancer \
             that writes those headers itself, or a client's X-Forwarded-Proto: https skips ssl-redirect",
        ),
        "ssl-protocols" => ssl_protocols(value),
        "ssl-ciphers" => ssl_ciphers(value),
        // A global WAF in blocking mode restricts access; ModSecurity's default mode only logs.
        "modsecurity-snippet" if crate::translate::ingress::modsecurity_blocks(value).is_some() => access(value),
        // nginx puts these into every server or location, whatever allow-snippet-annotations says.
        "http-snippet" | "server-snippet" | "location-snippet" if crate::translate::ingress::snippet_access_directive(value).is_some() => access(value),
        "whitelist-source-range" => source_ranges(value, &mut defaults.whitelist_source_range),
        "denylist-source-range" => source_ranges(value, &mut defaults.denylist_source_range),
        "block-cidrs" => match source_ranges(value, &mut defaults.block_cidrs) {
            (Class::Same, _) => match crate::translate::ingress::behaviour::check_block_cidrs(&defaults.block_cidrs) {
                Ok(()) => (Class::Same, String::new()),
                Err(reason) => {
                    defaults.block_cidrs.clear();
                    refused_block(&reason)
                }
            },
            refused => refused,
        },
        "block-user-agents" | "block-referers" => match header_blocks(value) {
            Ok(_) => (Class::Same, String::new()),
            Err(reason) => refused_block(&reason),
        },
        key if TUNING_KEYS.contains(&key) => {
            (Class::Differs, "nginx tuning with no counterpart here: Envoy's own limits and defaults apply".into())
        }
        _ => (Class::NotSupported, "not read by this controller: ingress-nginx's behaviour under it is not reproduced".into()),
    }
}

/// ConfigMap `custom-http-errors` as ingress-nginx reads it: numbers separated by commas, those
/// from 300 to 599 kept (it logs the others); `None` when one is not a number.
fn error_page_codes(value: &str) -> Option<Vec<u16>> {
    let numbers: Option<Vec<i64>> = value.split(',').map(str::trim).filter(|n| !n.is_empty()).map(|n| n.parse().ok()).collect();
    Some(numbers?.into_iter().filter_map(|n| u16::try_from(n).ok()).filter(|n| (300..600).contains(n)).collect())
}

fn boolean(value: &str, into: &mut bool) -> (Class, String) {
    parsed(value, into, go_bool)
}

fn parsed<T>(value: &str, into: &mut T, parse: impl Fn(&str) -> Option<T>) -> (Class, String) {
    match parse(value) {
        Some(parsed) => {
            *into = parsed;
            (Class::Same, String::new())
        }
        None => (Class::Differs, format!("{value:?} is not a value ingress-nginx accepts here: the default is kept")),
    }
}

/// ingress-nginx takes any count (0: no limit); here at most 10, as for the annotation.
fn next_upstream_tries(value: &str, into: &mut u32) -> (Class, String) {
    match value.trim().parse::<u32>() {
        Ok(tries) if (1..=10).contains(&tries) => {
            *into = tries;
            (Class::Same, String::new())
        }
        Ok(tries) => {
            *into = 10;
            let asked = if tries == 0 { "no limit".to_string() } else { format!("{tries} tries") };
            (Class::Differs, format!("{asked} in ingress-nginx; at most 10 tries here (`--proxy-next-upstream-tries=10`), as for the annotation"))
        }
        Err(_) => (Class::Differs, format!("{value:?} is not a value ingress-nginx accepts here: the default is kept")),
    }
}

/// A limit's answer (`limit-req-status-code`, `limit-conn-status-code`): 400 to 599.
fn limit_status(value: &str) -> Option<u16> {
    value.parse().ok().filter(|code| (400..=599).contains(code))
}

/// A boolean setting of the listeners rather than of Ingresses (read as Go's `ParseBool`, as
/// ingress-nginx reads its ConfigMap; another value is its default, off): same while off.
fn listener_flag(value: &str, flag: &str) -> (Class, String) {
    match go_bool(value) {
        Some(true) => (Class::Differs, format!("a setting of the listeners here: {flag}")),
        _ => (Class::Same, String::new()),
    }
}

/// Listener settings that are `serve` flags of the same name: compression tuning, OpenTelemetry's
/// collector and sampler, the access log's line.
const NAMED_LISTENER_SETTINGS: [&str; 14] = [
    "log-format-upstream",
    "gzip-level",
    "gzip-min-length",
    "gzip-types",
    "brotli-level",
    "brotli-min-length",
    "brotli-types",
    "otlp-collector-host",
    "otlp-collector-port",
    "otel-service-name",
    "otel-sampler",
    "otel-sampler-ratio",
    "otel-sampler-parent-based",
    "opentelemetry-trust-incoming-span",
];

/// The `serve` flags the settings need, each once, in the settings' order (two keys may need the
/// same flag: `disable-access-log` and `disable-http-access-log`; `serve` refuses a repeated one).
pub fn serve_flags(settings: &[SettingReport]) -> Vec<&str> {
    let mut flags: Vec<&str> = Vec::new();
    for flag in settings.iter().filter_map(|s| s.flag.as_deref()) {
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    flags
}

/// ConfigMap `ssl-ciphers`, an OpenSSL cipher string (`A:B:!aNULL`), as `serve --tls-ciphers` takes
/// it: the TLS 1.2 cipher names BoringSSL knows, in the order written (see the annotation's
/// reading, `translate::ingress::ciphers`).
fn ssl_ciphers(value: &str) -> (Class, String) {
    let tls13 = "TLS 1.3's suites are BoringSSL's own, as nginx's ssl_ciphers does not set them either";
    match ciphers::read(value) {
        ciphers::Ciphers::Off => (Class::Same, "empty: the listener's suites".into()),
        ciphers::Ciphers::Suites { suites, left_out } if left_out.is_empty() => {
            (Class::Differs, format!("`serve --tls-ciphers={}`; {tls13}", suites.join(",")))
        }
        ciphers::Ciphers::Suites { suites, left_out } => (
            Class::Differs,
            format!("`serve --tls-ciphers={}` (left out, OpenSSL keywords or suites BoringSSL dropped: {}); {tls13}", suites.join(","), left_out.join(" ")),
        ),
        ciphers::Ciphers::NoneUsable(left_out) => (
            Class::Differs,
            format!("no cipher name Envoy knows ({}: OpenSSL keywords or suites BoringSSL dropped): serve's default suites stay", left_out.join(" ")),
        ),
        ciphers::Ciphers::Refused(reason) => (Class::Refused, format!("{reason}: serve's default suites stay")),
    }
}

/// The `serve` flag that gives a listener setting the ConfigMap turns on (see [`listener_flag`]
/// and [`named_listener_setting`]); `None` where it is off, at its default, or needs a number only the
/// operator knows (`use-forwarded-headers`: `--trusted-proxy-hops N`).
fn listener_serve_flag(key: &str, value: &str, class: Class) -> Option<String> {
    if class != Class::Differs {
        return None;
    }
    match key {
        "use-proxy-protocol" | "use-gzip" | "enable-brotli" | "log-format-escape-json" | "log-format-escape-none" | "server-tokens"
        | "enable-access-log-for-default-backend" => Some(format!("--{key}")),
        "disable-access-log" | "disable-http-access-log" => Some("--disable-access-log".into()),
        "enable-underscores-in-headers" => Some("--headers-with-underscores=allow".into()),
        "enable-opentelemetry" => Some("--enable-opentelemetry".into()),
        "ssl-protocols" => tls_version_flag(&value.split_whitespace().collect::<Vec<_>>()).map(String::from),
        "ssl-ciphers" => match ciphers::read(value) {
            ciphers::Ciphers::Suites { suites, .. } => Some(format!("--tls-ciphers={}", suites.join(","))),
            _ => None,
        },
        key if NAMED_LISTENER_SETTINGS.contains(&key) => Some(serve_flag(key, &flag_value(key, value))),
        _ => listener_value(key, value),
    }
}

/// ingress-nginx's `ssl-protocols` as `serve --tls-min-version` / `--tls-max-version` (1.2 and 1.3
/// only: Envoy's listener here takes nothing older).
fn ssl_protocols(value: &str) -> (Class, String) {
    let listed: Vec<&str> = value.split_whitespace().collect();
    if !listed.iter().any(|p| matches!(*p, "TLSv1.2" | "TLSv1.3")) {
        return (Class::NotSupported, "TLS 1.2 and 1.3 only here (`serve --tls-min-version` / `--tls-max-version`)".into());
    }
    let older = listed.iter().any(|p| !matches!(*p, "TLSv1.2" | "TLSv1.3"));
    match (tls_version_flag(&listed), older) {
        (Some(flag), false) => (Class::Differs, format!("a setting of the listeners here: {flag}")),
        (None, false) => (Class::Same, "TLS 1.2 and 1.3, as here by default".into()),
        (flag, true) => {
            let rest = flag.map(|flag| format!("; for the rest: {flag}")).unwrap_or_default();
            (Class::NotSupported, format!("TLS 1.0 and 1.1 are not offered here{rest}"))
        }
    }
}

/// The flag that narrows `serve`'s TLS 1.2–1.3 to what `ssl-protocols` lists, if it does.
fn tls_version_flag(listed: &[&str]) -> Option<&'static str> {
    match (listed.contains(&"TLSv1.2"), listed.contains(&"TLSv1.3")) {
        (true, false) => Some("--tls-max-version=1.2"),
        (false, true) => Some("--tls-min-version=1.3"),
        _ => None,
    }
}

/// `serve`'s default for a listener setting, as its flag would be written.
fn listener_default(key: &str) -> &'static str {
    match key {
        "http2-max-concurrent-streams" => "100",
        _ => "10s",
    }
}

/// The `serve` flag of a listener setting with a value of its own (seconds, a count).
fn listener_value(key: &str, value: &str) -> Option<String> {
    let number: u64 = value.trim_end_matches('s').parse().ok()?;
    match key {
        "http2-max-concurrent-streams" => Some(format!("--http2-max-concurrent-streams={number}")),
        "keep-alive" => Some(format!("--connection-idle-timeout={number}s")),
        "keep-alive-requests" => Some(format!("--keep-alive-requests={number}")),
        "client-header-timeout" => Some(format!("--request-headers-timeout={number}s")),
        _ => None,
    }
}

/// A setting of [`NAMED_LISTENER_SETTINGS`]: ingress-nginx's default (`nginx_defaults`) is the
/// flag's, another value is the flag's to give.
fn named_listener_setting(key: &str, value: &str) -> (Class, String) {
    match value.is_empty() || super::nginx_defaults::is_default(key, value) {
        true => (Class::Same, String::new()),
        false => (Class::Differs, format!("a setting of the listeners here: {}", serve_flag(key, value))),
    }
}

fn access(value: &str) -> (Class, String) {
    if value.is_empty() {
        return (Class::Same, String::new());
    }
    (
        Class::Refused,
        "restricts access to every Ingress and is not applied by this controller: switching would serve them \
         without it (set the matching annotation on each Ingress instead, which is enforced)"
            .into(),
    )
}

/// A ConfigMap list as ingress-nginx splits it (`splitAndTrimSpace`: commas, empty entries dropped).
fn list_entries(value: &str) -> Vec<&str> {
    value.split(',').map(str::trim).filter(|entry| !entry.is_empty()).collect()
}

/// `whitelist-source-range`, `denylist-source-range`, `block-cidrs`: the flag of the same name;
/// a value `serve` would refuse (nginx would not load it either) is refused, never dropped.
fn source_ranges(value: &str, into: &mut Vec<crate::model::Cidr>) -> (Class, String) {
    let parsed: Result<Vec<_>, String> = list_entries(value).into_iter().map(crate::translate::ingress::behaviour::parse_source_range).collect();
    match parsed {
        Ok(ranges) => {
            *into = ranges;
            (Class::Same, String::new())
        }
        Err(reason) => refused_block(&reason),
    }
}

/// `block-user-agents`, `block-referers`: the entries `serve --block-user-agents` takes.
fn header_blocks(value: &str) -> Result<Vec<MapEntry>, String> {
    list_entries(value).into_iter().map(MapEntry::parse).collect()
}

/// The flag of a `block-user-agents` / `block-referers` key with entries `serve` takes.
fn header_block_flag(key: &str, value: &str) -> Option<String> {
    header_blocks(value).ok().filter(|entries| !entries.is_empty())?;
    matches!(key, "block-user-agents" | "block-referers").then(|| serve_flag(key, &list_entries(value).join(",")))
}

fn refused_block(reason: &str) -> (Class, String) {
    (Class::Refused, format!("{reason}: `serve` refuses this value (nginx would not load it either), and without it the restriction would be off"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::translate::ingress::behaviour::BodySize;

    fn read_pairs(pairs: &[(&str, &str)]) -> Reading {
        read(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn defaults_come_from_the_settings_this_controller_reads() {
        let reading = read_pairs(&[
            ("ssl-redirect", "false"),
            ("proxy-body-size", "8m"),
            ("proxy-read-timeout", "120"),
            ("hsts", "false"),
            ("http-redirect-code", "301"),
            ("proxy-next-upstream-tries", "5"),
        ]);
        let d = &reading.defaults;
        assert_eq!(
            (d.ssl_redirect, d.proxy_body_size, d.proxy_read_timeout, d.hsts, d.http_redirect_code, d.proxy_next_upstream_tries),
            (false, BodySize(Some(8 << 20)), 120, false, 301, 5)
        );
        assert!(reading.settings.iter().all(|s| s.class == Class::Same), "{:?}", reading.settings);
        // Any count in ingress-nginx (its e2e test writes 888888; 0 is no limit): 10 here.
        for many in ["888888", "0"] {
            assert_eq!(read_pairs(&[("proxy-next-upstream-tries", many)]).defaults.proxy_next_upstream_tries, 10, "{many}");
        }
    }

    #[test]
    fn the_flags_given_are_the_ones_serve_takes_and_give_the_same_defaults() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            defaults: NginxDefaults,
        }
        // Booleans as Go reads them ("FALSE", "1"), written as the flag takes them.
        let pairs = [
            ("proxy-body-size", "10m"),
            ("hsts", "FALSE"),
            ("no-auth-locations", "/a, /b"),
            ("ssl-redirect", "true"),
            ("service-upstream", "1"),
            ("worker-processes", "4"),
            ("proxy-connect-timeout", "15"),
            // ingress-nginx's e2e value: more than `serve` takes, so the 10 kept is written.
            ("proxy-next-upstream-tries", "888888"),
        ];
        let reading = read_pairs(&pairs);
        let flags: Vec<&str> = reading.settings.iter().filter_map(|s| s.flag.as_deref()).collect();
        let expected = [
            "--hsts=false",
            "--no-auth-locations='/a, /b'",
            "--proxy-body-size=10m",
            "--proxy-connect-timeout=15",
            "--proxy-next-upstream-tries=10",
            "--service-upstream=true",
        ];
        assert_eq!(flags, expected, "ingress-nginx's default values need no flag");
        // What a shell passes on for the quoted one.
        let args = flags.iter().map(|f| f.replace('\'', ""));
        let serve = <Serve as clap::Parser>::try_parse_from(std::iter::once("serve".to_string()).chain(args)).unwrap();
        let trimmed = NginxDefaults { no_auth_locations: serve.defaults.no_auth_locations.iter().map(|l| l.trim().to_string()).collect(), ..serve.defaults };
        assert_eq!(trimmed, reading.defaults);
    }

    #[test]
    fn log_format_keys_give_the_serve_flags_of_the_same_names() {
        #[derive(clap::Parser)]
        struct Serve {
            #[command(flatten)]
            log: crate::translate::log_format::LogFormatSettings,
        }
        let format = r#"{"time": "$time_iso8601", "status": $status, "agent": "$http_user_agent"}"#;
        let reading = read_pairs(&[("log-format-upstream", format), ("log-format-escape-json", "true"), ("log-format-escape-none", "false")]);
        let flags: Vec<String> = reading.settings.iter().filter_map(|s| s.flag.clone()).collect();
        assert_eq!(flags, ["--log-format-escape-json".to_string(), format!("--log-format-upstream='{format}'")]);
        // What a shell passes on for the quoted one.
        let args = flags.iter().map(|f| f.replace('\'', ""));
        let serve = <Serve as clap::Parser>::try_parse_from(std::iter::once("serve".to_string()).chain(args)).unwrap();
        assert!(serve.log.log_format_escape_json && !serve.log.log_format_escape_none);
        assert_eq!(serve.log.log_format_upstream, crate::translate::log_format::NginxLogFormat::parse(format).unwrap());
    }

    #[test]
    fn each_key_is_classified() {
        let cases = [
            ("ssl-redirect", "yes", Class::Differs),
            ("proxy-next-upstream-tries", "11", Class::Differs),
            ("proxy-next-upstream-tries", "0", Class::Differs),
            ("proxy-next-upstream-tries", "7", Class::Same),
            ("use-forwarded-headers", "false", Class::Same),
            ("hide-headers", "X-Powered-By, X-AspNet-Version", Class::Same),
            ("use-forwarded-headers", "true", Class::Differs),
            ("use-proxy-protocol", "true", Class::Differs),
            ("use-gzip", "true", Class::Differs),
            // Go's ParseBool: "0" and "False" are off, so the same as the default.
            ("use-proxy-protocol", "0", Class::Same),
            ("enable-underscores-in-headers", "False", Class::Same),
            ("allow-snippet-annotations", "0", Class::Differs),
            ("force-ssl-redirect", "true", Class::Same),
            ("location-snippet", "allow 10.0.0.0/8;\ndeny all;", Class::Refused),
            ("server-snippet", "more_set_headers \"X-A: b\";", Class::NotSupported),
            ("gzip-level", "1", Class::Same),
            ("gzip-level", "5", Class::Differs),
            ("brotli-types", crate::translate::compression::DEFAULT_BROTLI_TYPES, Class::Same),
            ("disable-access-log", "true", Class::Differs),
            ("log-format-upstream", crate::translate::log_format::DEFAULT_LOG_FORMAT_UPSTREAM, Class::Same),
            ("log-format-upstream", r#"{"time": "$time_iso8601", "status": $status}"#, Class::Differs),
            ("log-format-upstream", "$remote_addr $namespace/$ingress_name", Class::Differs),
            ("log-format-upstream", "$remote_addr $cookie_session", Class::NotSupported),
            ("log-format-escape-json", "true", Class::Differs),
            ("log-format-escape-none", "false", Class::Same),
            ("disable-http-access-log", "false", Class::Same),
            ("allow-snippet-annotations", "true", Class::Differs),
            ("limit-req-status-code", "429", Class::Same),
            ("limit-conn-status-code", "429", Class::Same),
            ("proxy-next-upstream-timeout", "30", Class::Same),
            ("load-balance", "round_robin", Class::Same),
            ("load-balance", "ewma", Class::Differs),
            ("load-balance", "chash", Class::Differs),
            ("add-headers", "ingress-nginx/security-headers", Class::Same),
            ("enable-opentelemetry", "true", Class::Differs),
            ("otlp-collector-host", "otel-collector.observability", Class::Differs),
            ("otel-sampler-ratio", "0.01", Class::Same),
            ("proxy-set-headers", "bare-name", Class::Differs),
            ("proxy-next-upstream-timeout", "soon", Class::Differs),
            ("limit-req-status-code", "503", Class::Same),
            ("proxy-redirect-from", "off", Class::Same),
            ("proxy-cookie-domain", "localhost example.org", Class::Differs),
            ("whitelist-source-range", "10.0.0.0/8", Class::Same),
            ("whitelist-source-range", "10.0.0.0/33", Class::Refused),
            ("denylist-source-range", "192.0.2.1, ,198.51.100.0/24", Class::Same),
            ("block-cidrs", "203.0.113.7", Class::Same),
            ("block-user-agents", "~*bot, curl/7.0", Class::Same),
            ("block-referers", "~*(?=spam)", Class::Refused),
            ("block-user-agents", "Bad Bot", Class::Refused),
            ("global-auth-url", "http://auth.example/verify", Class::Same),
            ("global-auth-url", "oauth2/verify", Class::Refused),
            ("global-auth-snippet", "proxy_set_header X 1;", Class::NotSupported),
            ("block-cidrs", "", Class::Same),
            ("worker-processes", "4", Class::Differs),
            // At ingress-nginx's default: nothing to carry over.
            ("proxy-connect-timeout", "5", Class::Same),
            ("proxy-connect-timeout", "15", Class::Same),
            ("proxy-connect-timeout", "15s", Class::Differs),
            // Not the listener settings: serve's defaults are Envoy's edge-proxy guidance.
            ("keep-alive", "75", Class::Same),
            ("keep-alive", "0", Class::NotSupported),
            ("keep-alive-requests", "1000", Class::Same),
            ("keep-alive-requests", "200", Class::Differs),
            ("keep-alive-requests", "many", Class::NotSupported),
            ("enable-access-log-for-default-backend", "false", Class::Same),
            ("enable-access-log-for-default-backend", "true", Class::Differs),
            ("server-tokens", "true", Class::Differs),
            ("server-tokens", "false", Class::Same),
            ("client-header-timeout", "60", Class::Differs),
            ("use-http2", "true", Class::Same),
            ("ssl-protocols", "TLSv1.2 TLSv1.3", Class::Same),
            ("ssl-protocols", "TLSv1.2", Class::Differs),
            ("ssl-protocols", "TLSv1.3 TLSv1.2", Class::Same),
            ("ssl-protocols", "TLSv1 TLSv1.1 TLSv1.2", Class::NotSupported),
            ("keep-alive", "30", Class::Differs),
            ("enable-real-ip", "true", Class::Differs),
            ("use-geoip2", "true", Class::NotSupported),
            ("modsecurity-snippet", "SecRuleEngine On\nSecRule ARGS \"x\" \"deny\"", Class::Refused),
            ("modsecurity-snippet", "SecRuleEngine DetectionOnly", Class::NotSupported),
            ("enable-modsecurity", "true", Class::NotSupported),
        ];
        for (key, value, class) in cases {
            let reading = read_pairs(&[(key, value)]);
            assert_eq!(reading.settings[0].class, class, "{key}: {value}");
        }
        // A refused value leaves the default alone.
        assert!(read_pairs(&[("ssl-redirect", "yes")]).defaults.ssl_redirect);
        // The flags `serve` needs, listener settings too (but not a number only the operator knows).
        let flags = |pairs: &[(&str, &str)]| read_pairs(pairs).settings.into_iter().filter_map(|s| s.flag).collect::<Vec<_>>();
        assert_eq!(
            flags(&[("force-ssl-redirect", "True"), ("use-proxy-protocol", "true"), ("gzip-level", "5"), ("use-forwarded-headers", "true"), ("use-gzip", "false")]),
            ["--force-ssl-redirect=true", "--gzip-level=5", "--use-proxy-protocol"]
        );
        assert_eq!(
            flags(&[("keep-alive", "30"), ("client-header-timeout", "20s"), ("http2-max-concurrent-streams", "128")]),
            ["--request-headers-timeout=20s", "--http2-max-concurrent-streams=128", "--connection-idle-timeout=30s"]
        );
        assert_eq!(flags(&[("no-tls-redirect-locations", "/check-no-tls")]), ["--no-tls-redirect-locations=/check-no-tls"]);
        // ingress-nginx's OpenSSL string: the names serve takes, keywords left out.
        assert_eq!(flags(&[("ssl-ciphers", "ECDHE-RSA-AES256-GCM-SHA384:!aNULL:ECDHE-RSA-AES256-SHA:RC4-SHA")]), ["--tls-ciphers=ECDHE-RSA-AES256-GCM-SHA384,ECDHE-RSA-AES256-SHA"]);
        assert_eq!(flags(&[("ssl-ciphers", "ALL:!aNULL:!EXPORT:!DES:!MD5:!PSK:!RC4")]), Vec::<String>::new(), "keywords only: the defaults stay");
        // Two keys that need the same flag: `serve` takes it once.
        let both = read_pairs(&[("disable-access-log", "true"), ("disable-http-access-log", "true")]);
        assert_eq!(serve_flags(&both.settings), ["--disable-access-log"]);
        assert_eq!(flags(&[("ssl-protocols", "TLSv1.2")]), ["--tls-max-version=1.2"]);
        assert_eq!(flags(&[("no-tls-redirect-locations", "/.well-known/acme-challenge")]), Vec::<String>::new(), "ingress-nginx's default");
        // The address lists and blocks, as `serve` takes them (empty entries dropped).
        assert_eq!(
            flags(&[("block-cidrs", "203.0.113.7, ,198.51.100.0/24"), ("block-user-agents", "~*bot, curl/7.0"), ("whitelist-source-range", "10.0.0.0/8"), ("block-referers", "")]),
            ["--block-cidrs=203.0.113.7,198.51.100.0/24", "--block-user-agents='~*bot,curl/7.0'", "--whitelist-source-range=10.0.0.0/8"]
        );
        let reading = read_pairs(&[("whitelist-source-range", "10.0.0.0/8, 192.168.1.1"), ("block-cidrs", "203.0.113.7")]);
        assert_eq!(reading.defaults.whitelist_source_range.len(), 2, "the Ingresses are judged under the lists");
        assert_eq!(reading.defaults.block_cidrs.len(), 1);
        // More blocks than the filter's default-server list holds: `serve` refuses the flag.
        let many = (0..=1024).map(|i| format!("10.{}.{}.1", i / 256, i % 256)).collect::<Vec<_>>().join(",");
        let reading = read_pairs(&[("block-cidrs", many.as_str())]);
        assert_eq!(reading.settings.iter().map(|s| s.class).collect::<Vec<_>>(), [Class::Refused]);
        assert!(reading.defaults.block_cidrs.is_empty());
        assert_eq!(
            flags(&[
                ("enable-opentelemetry", "true"),
                ("otlp-collector-host", "otel.observability.svc"),
                ("otel-sampler", "TraceIdRatioBased"),
                ("otel-sampler-parent-based", "False"),
                ("otel-service-name", "nginx"),
                ("add-headers", "ingress-nginx/security-headers"),
                ("opentelemetry-trust-incoming-span", "f"),
            ]),
            [
                "--add-headers=ingress-nginx/security-headers",
                "--enable-opentelemetry",
                "--opentelemetry-trust-incoming-span=false",
                "--otel-sampler=TraceIdRatioBased",
                "--otel-sampler-parent-based=false",
                "--otlp-collector-host=otel.observability.svc"
            ]
        );
        // ConfigMap `custom-http-errors`: its statuses from 300 to 599, as ingress-nginx keeps them.
        let errors = read_pairs(&[("custom-http-errors", "404, 503,200")]);
        assert_eq!((errors.settings[0].class, errors.defaults.custom_http_errors.clone()), (Class::Same, vec![404, 503]));
        assert_eq!(errors.settings[0].flag.as_deref(), Some("--custom-http-errors=404,503"));
        assert_eq!(read_pairs(&[("custom-http-errors", "404,x")]).settings[0].class, Class::Differs, "not a number: the default kept");
        let no_auth = read_pairs(&[("no-auth-locations", "/.well-known/acme-challenge, /healthz")]);
        assert_eq!((no_auth.settings[0].class, no_auth.defaults.no_auth_locations), (Class::Same, vec!["/.well-known/acme-challenge".to_string(), "/healthz".to_string()]));
    }
}
