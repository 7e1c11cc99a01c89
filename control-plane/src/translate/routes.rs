//! Model policies -> the RDS route configurations both listeners use. Pure; typed protos only.
//!
//! The filter decides *which* policy a request gets (it writes the route's policy key into
//! [`POLICY_HEADER`], or nothing for the default policy); Envoy applies it. Each route
//! configuration has one virtual host whose generic `matcher` resolves the key with an
//! `exact_match_map` — a hash lookup, so a request costs the same with 1 or 100 000 policies — to
//! an Envoy route carrying that policy: no overall response timeout, an upstream idle timeout and
//! connection-failure retries (nginx's per-operation `proxy_*_timeout` and `proxy_next_upstream`),
//! the body limit as the buffer filter's per-route setting, and client-address limits as the RBAC
//! filter's (`translate::access`), custom error pages as the custom-response filter's
//! (`translate::error_pages`). The cluster is still the one the
//! filter wrote into [`CLUSTER_HEADER`]. No header: the default policy. A key Envoy does not
//! know answers 503 (fail closed: a policy may one day restrict access); the xDS stream keeps a
//! removed key until the table that names it is gone, so that never happens in normal operation.
//! In front of the key, a one-entry matcher list refuses `TRACE` with 405, as nginx does on every
//! server. A `proxy-read-timeout` beyond the connection manager's stream idle timeout becomes the
//! route's own idle timeout, so the stream lives as long as nginx would wait.
//!
//! Every route sends upstream the headers ingress-nginx's template sets that Envoy does not set on
//! its own (`X-Real-IP`, `X-Forwarded-Scheme`, `X-Scheme`; a client's copies are replaced) and never
//! the client's `Proxy` header (httpoxy). `https` differs from `http` only in adding
//! `Strict-Transport-Security` to every response proxied over TLS (ingress-nginx's HSTS: replaced,
//! not appended; never on plain HTTP).

use std::collections::HashMap;
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::{header_value_option::HeaderAppendAction, HeaderValue, HeaderValueOption};
use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::config::route::v3::{
    retry_policy, route, route_action, route_match, DirectResponseAction, RetryPolicy, Route, RouteAction, RouteConfiguration,
    RouteMatch, VirtualHost,
};
use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource};
use envoy_types::pb::envoy::extensions::filters::http::buffer::v3::{buffer_per_route, Buffer, BufferPerRoute};
use envoy_types::pb::envoy::extensions::retry::host::previous_hosts::v3::PreviousHostsPredicate;
use envoy_types::pb::envoy::r#type::matcher::v3::HttpRequestHeaderMatchInput;
use envoy_types::pb::google::protobuf::{Duration as ProtoDuration, UInt32Value};
use envoy_types::pb::xds::r#type::matcher::v3::matcher::matcher_list::{predicate, FieldMatcher, Predicate};
use envoy_types::pb::xds::r#type::matcher::v3::matcher::matcher_tree::{MatchMap, TreeType};
use envoy_types::pb::xds::r#type::matcher::v3::matcher::{on_match, MatcherList, MatcherTree, MatcherType, OnMatch};
use envoy_types::pb::xds::r#type::matcher::v3::{regex_matcher, string_matcher, Matcher, RegexMatcher, StringMatcher};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::util::pack_any;
use prost::encoding::{encode_key, encode_varint, WireType};
use prost::{Message, Name};
use wasm_ingress_filter::table::{CLUSTER_HEADER, POLICY_HEADER};

use crate::model::{CorsHeaders, HashOn, Model, RoutePolicy};
use crate::translate::access::{self, RBAC_FILTER};
use crate::translate::affinity;
use crate::translate::access_log;
use crate::translate::error_pages::{self, CUSTOM_RESPONSE_FILTER};
use crate::translate::ratelimit::{self, RATE_LIMIT_FILTER};
use crate::translate::edge::proto_duration;

/// The route configuration of the plain-HTTP listener.
pub const HTTP_ROUTE_CONFIG: &str = "http";
/// The route configuration of the HTTPS listener.
pub const HTTPS_ROUTE_CONFIG: &str = "https";
/// The buffer filter, which enforces the body limit; its per-route setting is keyed by this name.
pub const BUFFER_FILTER: &str = "envoy.filters.http.buffer";
/// The key of the default policy in the matcher (never a [`RoutePolicy::key`], which starts with `p`).
pub const DEFAULT_POLICY_KEY: &str = "default";
/// Body of the 503 for a policy key Envoy does not know.
pub const UNKNOWN_POLICY_BODY: &str = "route policy not configured\n";
/// What Envoy retries when tries remain: failures before anything was sent upstream, so any
/// method is safe to retry (nginx's `error timeout` for connections).
pub const RETRY_ON: &str = "connect-failure,refused-stream";

/// The `http` and `https` route configurations of `model`.
pub fn route_configurations(model: &Model, stream_idle: Duration) -> Vec<RouteConfiguration> {
    vec![
        route_configuration(HTTP_ROUTE_CONFIG, model, None, (false, stream_idle)),
        route_configuration(HTTPS_ROUTE_CONFIG, model, model.hsts.as_deref(), (true, stream_idle)),
    ]
}

/// The buffer filter as it sits in the listeners' filter chain. Every route carries its own limit
/// (or turns the filter off), so this value is only a floor for a route that had none; it does not
/// depend on the Model, so changing a limit never touches a listener.
pub fn buffer_filter_config() -> Buffer {
    Buffer { max_request_bytes: Some(UInt32Value { value: 1024 * 1024 }) }
}

/// `listener`: whether it is the HTTPS one, and the connection manager's stream idle timeout.
fn route_configuration(name: &str, model: &Model, hsts: Option<&str>, listener: (bool, Duration)) -> RouteConfiguration {
    RouteConfiguration {
        name: name.to_string(),
        virtual_hosts: vec![VirtualHost {
            name: "wasm-ingress".to_string(),
            domains: vec!["*".to_string()],
            matcher: Some(refusing_trace(policy_matcher(model, listener))),
            ..Default::default()
        }],
        request_headers_to_add: upstream_headers(),
        // A route's own headers (an Ingress's snippet) win over these defaults, as nginx's
        // location-level `more_set_headers` wins over the server's (HSTS included).
        most_specific_header_mutations_wins: true,
        request_headers_to_remove: REMOVED_UPSTREAM_HEADERS.iter().map(|h| h.to_string()).collect(),
        response_headers_to_add: hsts.map(|value| header("strict-transport-security", value)).into_iter().collect(),
        // ingress-nginx: `server_tokens off` and `more_clear_headers Server`, the backend's too;
        // its ConfigMap's `hide-headers` (`proxy_hide_header`).
        response_headers_to_remove: std::iter::once("server".to_string()).chain(model.hidden_response_headers.iter().cloned()).collect(),
        ..Default::default()
    }
}

/// Request headers that never reach an upstream: the internal ones, `Proxy` (httpoxy, as
/// ingress-nginx clears it) and Envoy's `x-envoy-external-address` (the client's address, set
/// for edge requests; ingress-nginx sends X-Real-IP and X-Forwarded-For only).
pub const REMOVED_UPSTREAM_HEADERS: [&str; 4] = [CLUSTER_HEADER, POLICY_HEADER, "proxy", "x-envoy-external-address"];

/// What ingress-nginx's `proxy_set_header`s add to what Envoy already sends (X-Forwarded-Proto
/// and -Port, X-Request-ID) and the filter sets (X-Forwarded-Host). Envoy fills the `%…%` values
/// per request, all from the headers as they came (so X-Original-Forwarded-For is the client's
/// own X-Forwarded-For, absent when it sent none). X-Forwarded-For is the client's address alone,
/// as ingress-nginx's `$remote_addr` without `compute-full-forwarded-for`: an upstream that reads
/// its first entry never sees an address the client made up.
fn upstream_headers() -> Vec<HeaderValueOption> {
    vec![
        header("x-real-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
        header("x-forwarded-for", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"),
        header("x-original-forwarded-for", "%REQ(x-forwarded-for)%"),
        header("x-forwarded-scheme", "%REQ(x-forwarded-proto)%"),
        header("x-scheme", "%REQ(x-forwarded-proto)%"),
    ]
}

pub(crate) fn header(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue { key: name.to_string(), value: value.to_string(), ..Default::default() }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

/// Policy key -> route; no key -> the default policy; an unknown key -> 503.
fn policy_matcher(model: &Model, listener: (bool, Duration)) -> Matcher {
    let mut map: HashMap<String, OnMatch> = HashMap::with_capacity(model.policies.len() + 1);
    map.insert(DEFAULT_POLICY_KEY.to_string(), action(policy_route(DEFAULT_POLICY_KEY, &model.default_policy, listener)));
    for (key, policy) in &model.policies {
        map.insert(key.clone(), action(policy_route(key, policy, listener)));
    }
    let unknown_key = FieldMatcher {
        predicate: Some(Predicate {
            match_type: Some(predicate::MatchType::SinglePredicate(predicate::SinglePredicate {
                input: Some(policy_header_input()),
                matcher: Some(predicate::single_predicate::Matcher::ValueMatch(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::SafeRegex(RegexMatcher {
                        regex: ".*".to_string(),
                        engine_type: Some(regex_matcher::EngineType::GoogleRe2(regex_matcher::GoogleRe2 {})),
                    })),
                    ignore_case: false,
                })),
            })),
        }),
        on_match: Some(action(unknown_policy_route())),
    };
    let no_key = Matcher {
        matcher_type: Some(MatcherType::MatcherList(MatcherList { matchers: vec![unknown_key] })),
        on_no_match: Some(Box::new(action(policy_route(DEFAULT_POLICY_KEY, &model.default_policy, listener)))),
    };
    Matcher {
        matcher_type: Some(MatcherType::MatcherTree(MatcherTree {
            input: Some(policy_header_input()),
            tree_type: Some(TreeType::ExactMatchMap(MatchMap { map })),
        })),
        on_no_match: Some(Box::new(OnMatch { on_match: Some(on_match::OnMatch::Matcher(Box::new(no_key))), keep_matching: false })),
    }
}

/// `policies`, after nginx's refusal of TRACE: nginx answers it 405 before it looks for a server
/// (`ngx_http_process_request_header`), so no backend echoes a request's cookies back (XST).
/// Envoy checks the method (a native header lookup) before the policy key.
fn refusing_trace(policies: Matcher) -> Matcher {
    let trace = FieldMatcher {
        predicate: Some(Predicate {
            match_type: Some(predicate::MatchType::SinglePredicate(predicate::SinglePredicate {
                input: Some(TypedExtensionConfig {
                    name: "method".to_string(),
                    typed_config: Some(pack_any(HttpRequestHeaderMatchInput { header_name: ":method".to_string() })),
                }),
                matcher: Some(predicate::single_predicate::Matcher::ValueMatch(StringMatcher {
                    match_pattern: Some(string_matcher::MatchPattern::Exact("TRACE".to_string())),
                    ignore_case: false,
                })),
            })),
        }),
        on_match: Some(action(nginx_page_response("trace", 405, wasm_ingress_filter::decision::NOT_ALLOWED_BODY))),
    };
    Matcher {
        matcher_type: Some(MatcherType::MatcherList(MatcherList { matchers: vec![trace] })),
        on_no_match: Some(Box::new(OnMatch { on_match: Some(on_match::OnMatch::Matcher(Box::new(policies))), keep_matching: false })),
    }
}

fn policy_header_input() -> TypedExtensionConfig {
    TypedExtensionConfig {
        name: "policy-header".to_string(),
        typed_config: Some(pack_any(HttpRequestHeaderMatchInput { header_name: POLICY_HEADER.to_string() })),
    }
}

fn action(route: Route) -> OnMatch {
    let config = TypedExtensionConfig { name: "route".to_string(), typed_config: Some(pack_route(&route)) };
    OnMatch { on_match: Some(on_match::OnMatch::Action(config)), keep_matching: false }
}

/// `Route.typed_per_filter_config` (field number of Envoy's proto).
const TYPED_PER_FILTER_CONFIG_TAG: u32 = 13;

/// `route` as an `Any` whose bytes depend only on its content: prost writes a `map` in `HashMap`
/// order, so the per-filter settings are written here sorted by filter name (protobuf accepts
/// map entries in any order).
fn pack_route(route: &Route) -> Any {
    let shell = Route { typed_per_filter_config: HashMap::new(), ..route.clone() };
    let mut buf = shell.encode_to_vec();
    let mut entries: Vec<(&String, &Any)> = route.typed_per_filter_config.iter().collect();
    entries.sort_by_key(|(name, _)| *name);
    for (name, config) in entries {
        let mut entry = Vec::new();
        prost::encoding::string::encode(1, name, &mut entry);
        prost::encoding::message::encode(2, config, &mut entry);
        encode_key(TYPED_PER_FILTER_CONFIG_TAG, WireType::LengthDelimited, &mut buf);
        encode_varint(entry.len() as u64, &mut buf);
        buf.extend_from_slice(&entry);
    }
    Any { type_url: Route::type_url(), value: buf }
}

/// Whether a read timeout outlasts the stream idle timeout (0: none, nothing to outlast).
fn outlasts(read: Duration, stream_idle: Duration) -> bool {
    !stream_idle.is_zero() && read > stream_idle
}

fn match_everything() -> Option<RouteMatch> {
    Some(RouteMatch { path_specifier: Some(route_match::PathSpecifier::Prefix("/".to_string())), ..Default::default() })
}

/// The buffer filter's limit for `max_body_bytes`; `None` when the filter must be off on the route
/// (unlimited, or beyond what the filter can count).
fn buffer_limit(max_body_bytes: Option<u64>) -> Option<u32> {
    max_body_bytes.and_then(|bytes| u32::try_from(bytes).ok())
}

/// The Envoy route of one policy (see the module docs), on the HTTPS listener or not, under a
/// connection manager whose stream idle timeout is `stream_idle`.
pub fn policy_route(key: &str, policy: &RoutePolicy, (tls, stream_idle): (bool, Duration)) -> Route {
    let retries = policy.tries.saturating_sub(1);
    let retry_policy = RetryPolicy {
        retry_on: RETRY_ON.to_string(),
        num_retries: Some(UInt32Value { value: retries }),
        per_try_idle_timeout: Some(proto_duration(policy.upstream_idle_timeout)),
        retry_host_predicate: vec![retry_policy::RetryHostPredicate {
            name: "envoy.retry_host_predicates.previous_hosts".to_string(),
            config_type: Some(retry_policy::retry_host_predicate::ConfigType::TypedConfig(pack_any(PreviousHostsPredicate {}))),
        }],
        host_selection_retry_max_attempts: 3,
        ..Default::default()
    };
    let buffer = match buffer_limit(policy.max_body_bytes) {
        Some(limit) => buffer_per_route::Override::Buffer(Buffer { max_request_bytes: Some(UInt32Value { value: limit }) }),
        None => buffer_per_route::Override::Disabled(true),
    };
    let forward = route::Action::Route(RouteAction {
        cluster_specifier: Some(route_action::ClusterSpecifier::ClusterHeader(CLUSTER_HEADER.to_string())),
        // A persistent sticky cookie is the stateful session's (see `affinity`), not a hash key.
        hash_policy: policy.hash.iter().filter(|_| affinity::persistent_cookie(policy).is_none()).map(|hash| hash_policy(hash, tls)).collect(),
        // nginx has no cap on a whole response: long downloads and event streams live as long
        // as the upstream keeps talking (the idle timeout below).
        timeout: Some(ProtoDuration { seconds: 0, nanos: 0 }),
        // A read timeout longer than the connection manager's stream idle timeout (a long poll
        // or a quiet WebSocket with `proxy-read-timeout: "3600"`): the stream lives that long
        // too, as nginx waits that long.
        idle_timeout: outlasts(policy.upstream_idle_timeout, stream_idle).then(|| proto_duration(policy.upstream_idle_timeout)),
        retry_policy: Some(retry_policy),
        request_mirror_policies: policy.mirror.iter().map(mirror_policy).collect(),
        // A host's implicit `/` location: the filter names no cluster Envoy has (see
        // `NOT_FOUND_CLUSTER`), and the router answers 404 after the route's filters (RBAC, the
        // local rate limit, which needs a route entry: a direct response has none) let it in.
        cluster_not_found_response_code: match policy.answers_not_found {
            true => route_action::ClusterNotFoundResponseCode::NotFound as i32,
            false => route_action::ClusterNotFoundResponseCode::ServiceUnavailable as i32,
        },
        ..Default::default()
    });
    // A CORS preflight is answered here, as ingress-nginx's `return 204`.
    let action = if policy.preflight {
        route::Action::DirectResponse(DirectResponseAction { status: 204, ..Default::default() })
    } else {
        forward
    };
    Route {
        name: key.to_string(),
        r#match: match_everything(),
        action: Some(action),
        // Text is escaped (`%` doubled) so Envoy never reads it as a formatter command.
        request_headers_to_add: policy
            .request_headers
            .iter()
            .map(|(name, value)| header(name, &value.envoy_format()))
            .chain(client_certificate_headers(policy))
            .collect(),
        // nginx's `proxy_set_header` replaces the client's header, and sends none when its value
        // comes out empty: Envoy removes before it adds, and adds no empty value.
        request_headers_to_remove: policy.request_headers.keys().filter(|name| removable(name)).cloned().collect(),
        response_headers_to_add: response_headers(policy),
        response_headers_to_remove: policy.response_headers_remove.clone(),
        typed_per_filter_config: per_filter_configs(policy, buffer, tls),
        ..Default::default()
    }
}

/// Whether Envoy lets a route remove request header `name` (never `Host` nor a pseudo-header).
fn removable(name: &str) -> bool {
    !name.starts_with(':') && !name.eq_ignore_ascii_case("host")
}

/// nginx's `ssl-client-subject-dn` / `-issuer-dn` (RFC 2253, as `$ssl_client_s_dn`) and, with
/// `auth-tls-pass-certificate-to-upstream`, `ssl-client-cert` (the URL-encoded PEM, as
/// `$ssl_client_escaped_cert`), from the connection's client certificate. Envoy adds none when
/// there is no certificate (the filter drops the client's own copies; it sets `ssl-client-verify`).
fn client_certificate_headers(policy: &RoutePolicy) -> Vec<HeaderValueOption> {
    let Some(pass_certificate) = policy.client_certificate_headers else { return Vec::new() };
    let mut headers = vec![
        header("ssl-client-subject-dn", "%DOWNSTREAM_PEER_SUBJECT%"),
        header("ssl-client-issuer-dn", "%DOWNSTREAM_PEER_ISSUER%"),
    ];
    if pass_certificate {
        headers.push(header("ssl-client-cert", "%DOWNSTREAM_PEER_CERT%"));
    }
    headers
}

/// Envoy's hash policy for `hash` (a cluster without a ring ignores it); the sticky cookie is
/// `Secure` over HTTPS.
fn hash_policy(hash: &HashOn, tls: bool) -> route_action::HashPolicy {
    use route_action::hash_policy::{self as hp, PolicySpecifier};
    let specifier = match hash {
        HashOn::AffinityCookie(cookie) => PolicySpecifier::Cookie(hp::Cookie {
            name: cookie.name.clone(),
            ttl: Some(affinity::cookie_ttl(cookie)),
            path: cookie.path.clone(),
            attributes: affinity::cookie_attributes(cookie, tls).into_iter().map(|(name, value)| hp::CookieAttribute { name, value }).collect(),
        }),
        HashOn::Cookie(name) => PolicySpecifier::Cookie(hp::Cookie { name: name.clone(), ..Default::default() }),
        HashOn::Header(name) => PolicySpecifier::Header(hp::Header { header_name: name.clone(), regex_rewrite: None }),
        HashOn::QueryParameter(name) => PolicySpecifier::QueryParameter(hp::QueryParameter { name: name.clone() }),
        HashOn::SourceIp => PolicySpecifier::ConnectionProperties(hp::ConnectionProperties { source_ip: true }),
    };
    route_action::HashPolicy { policy_specifier: Some(specifier), terminal: false }
}

/// `mirror-target`: a shadow copy of each request to the mirror's cluster with the mirror's Host
/// as written (no `-shadow` suffix: nginx sends `mirror-host` as it is).
fn mirror_policy(mirror: &crate::model::Mirror) -> route_action::RequestMirrorPolicy {
    route_action::RequestMirrorPolicy {
        cluster: mirror.service.mirror_cluster_name().to_string(),
        host_rewrite_literal: mirror.host.clone(),
        disable_shadow_host_suffix_append: true,
        ..Default::default()
    }
}

/// A header value Envoy sends as written (`%` starts a formatter command in Envoy's values).
pub(crate) fn literal(value: &str) -> String {
    value.replace('%', "%%")
}

/// `more_set_headers` replace, `add_header` appends; then the CORS headers, which replace.
fn response_headers(policy: &RoutePolicy) -> Vec<HeaderValueOption> {
    let set = policy.response_headers_set.iter().map(|(name, value)| header(name, &value.envoy_format()));
    let add = policy.response_headers_add.iter().map(|(name, value)| HeaderValueOption {
        append_action: HeaderAppendAction::AppendIfExistsOrAdd as i32,
        ..header(name, &value.envoy_format())
    });
    let cors = policy.cors.iter().flat_map(cors_headers);
    set.chain(add).chain(cors).collect()
}

/// ingress-nginx's CORS headers (its preflight's `Content-Type` is left out: Envoy sends a 204
/// without one).
fn cors_headers(cors: &CorsHeaders) -> Vec<HeaderValueOption> {
    // Envoy fills in the request's (allowed) Origin where the value is the request's.
    let value = |value: Option<String>| value.map_or_else(|| "%REQ(origin)%".to_string(), |v| literal(&v));
    cors.entries().into_iter().map(|(name, v)| header(name, &value(v))).collect()
}

fn per_filter_configs(policy: &RoutePolicy, buffer: buffer_per_route::Override, tls: bool) -> HashMap<String, Any> {
    let mut configs = HashMap::from([(BUFFER_FILTER.to_string(), pack_any(BufferPerRoute { r#override: Some(buffer) }))]);
    if let Some(session) = affinity::per_route(policy, tls) {
        configs.insert(affinity::STATEFUL_SESSION_FILTER.to_string(), pack_any(session));
    }
    if let Some(rbac) = access::per_route(policy) {
        configs.insert(RBAC_FILTER.to_string(), pack_any(rbac));
    }
    if let Some(limit) = ratelimit::per_route(policy) {
        configs.insert(RATE_LIMIT_FILTER.to_string(), pack_any(limit));
    }
    if let Some(errors) = error_pages::per_route(policy) {
        configs.insert(CUSTOM_RESPONSE_FILTER.to_string(), pack_any(errors));
    }
    if let Some(silence) = access_log::per_route(policy) {
        configs.insert(access_log::HEADER_TO_METADATA_FILTER.to_string(), pack_any(silence));
    }
    configs
}

fn unknown_policy_route() -> Route {
    direct_response("unknown-policy", 503, UNKNOWN_POLICY_BODY)
}

/// A route answered by Envoy itself with one of nginx's pages, as `text/html` (ingress-nginx's
/// `default_type`).
fn nginx_page_response(name: &str, status: u32, page: &str) -> Route {
    let content_type = header("content-type", wasm_ingress_filter::decision::ANSWER_CONTENT_TYPE);
    Route { response_headers_to_add: vec![content_type], ..direct_response(name, status, page) }
}

/// A route answered by Envoy itself.
fn direct_response(name: &str, status: u32, body: &str) -> Route {
    Route {
        name: name.to_string(),
        r#match: match_everything(),
        action: Some(route::Action::DirectResponse(DirectResponseAction {
            status,
            body: Some(DataSource { specifier: Some(data_source::Specifier::InlineString(body.to_string())), ..Default::default() }),
            ..Default::default()
        })),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use envoy_types::pb::google::protobuf::Any;
    use prost::{Message, Name};

    use std::time::Duration;

    use super::*;
    use crate::model::AllowOrigin;

    /// `--stream-idle-timeout`'s default.
    const STREAM_IDLE: Duration = Duration::from_secs(300);
    use crate::model::{HeaderValue, ValuePart};

    fn unpack<M: Message + Default + Name>(any: &Any) -> M {
        assert_eq!(any.type_url, M::type_url());
        M::decode(any.value.as_slice()).unwrap()
    }

    /// The policy matcher, under the TRACE refusal (see `trace_is_refused_before_any_policy`).
    fn policies_of(config: &RouteConfiguration) -> Matcher {
        let matcher = config.virtual_hosts[0].matcher.clone().unwrap();
        let Some(on_match::OnMatch::Matcher(policies)) = matcher.on_no_match.unwrap().on_match else { panic!("no policies") };
        *policies
    }

    fn routes_by_key(config: &RouteConfiguration) -> HashMap<String, Route> {
        let matcher = policies_of(config);
        let Some(MatcherType::MatcherTree(tree)) = matcher.matcher_type else { panic!("no tree") };
        let Some(TreeType::ExactMatchMap(map)) = tree.tree_type else { panic!("no exact map") };
        map.map
            .into_iter()
            .map(|(key, on_match)| {
                let Some(on_match::OnMatch::Action(action)) = on_match.on_match else { panic!("not an action") };
                (key, unpack::<Route>(action.typed_config.as_ref().unwrap()))
            })
            .collect()
    }

    fn model() -> Model {
        let big = RoutePolicy {
            max_body_bytes: Some(8 * 1024 * 1024),
            upstream_idle_timeout: Duration::from_secs(3600),
            tries: 1,
            request_headers: [
                ("x-forwarded-prefix".to_string(), HeaderValue::text("/100%")),
                ("x-format".to_string(), HeaderValue::request_header("accept")),
                ("x-real-ip".to_string(), HeaderValue(vec![ValuePart::ClientAddress, ValuePart::Text(":".into()), ValuePart::ClientPort])),
            ]
            .into(),
            allow_sources: vec![crate::model::Cidr::parse("10.0.0.0/8").unwrap()],
            deny_sources: vec![crate::model::Cidr::parse("10.9.0.0/16").unwrap()],
            response_headers_set: [("x-frame-options".to_string(), HeaderValue::text("DENY"))].into(),
            response_headers_add: vec![("x-xss-protection".to_string(), HeaderValue::text("1; mode=block"))],
            response_headers_remove: vec!["server".to_string()],
            cors: None,
            preflight: false,
            hash: None,
            rate_limit: None,
            mirror: None,
            client_certificate_headers: None,
            custom_errors: Some(crate::model::CustomErrors { codes: vec![404], cluster: Some("default/pages/80".into()), token: "t".into(), headers: vec![] }),
            access_log_off: true,
            answers_not_found: false,
        };
        let unlimited = RoutePolicy { max_body_bytes: None, ..RoutePolicy::default() };
        Model {
            policies: [(big.key(), big), (unlimited.key(), unlimited)].into_iter().collect(),
            hsts: Some(crate::model::hsts_value(31_536_000, true, false)),
            auth_services: Default::default(),
            ..Model::default()
        }
    }

    fn route_parts(route: &Route) -> (RouteAction, Option<buffer_per_route::Override>) {
        let Some(route::Action::Route(action)) = route.action.clone() else { panic!("not a route action") };
        let buffer: BufferPerRoute = unpack(&route.typed_per_filter_config[BUFFER_FILTER]);
        (action, buffer.r#override)
    }

    #[test]
    fn a_read_timeout_beyond_the_stream_idle_timeout_keeps_the_stream_alive_that_long() {
        let policy = |read: u64| RoutePolicy { upstream_idle_timeout: Duration::from_secs(read), ..RoutePolicy::default() };
        let idle = |read: u64, stream_idle: u64| {
            let Some(route::Action::Route(action)) = policy_route("k", &policy(read), (false, Duration::from_secs(stream_idle))).action else { panic!() };
            action.idle_timeout.map(|d| d.seconds)
        };
        // (proxy-read-timeout, --stream-idle-timeout, the route's idle timeout)
        for (read, stream_idle, expected) in [(60, 300, None), (300, 300, None), (3600, 300, Some(3600)), (3600, 7200, None), (3600, 0, None)] {
            assert_eq!(idle(read, stream_idle), expected, "read {read} s, stream idle {stream_idle} s");
        }
    }

    #[test]
    fn every_policy_is_one_route_found_by_its_key() {
        let model = model();
        let configs = route_configurations(&model, STREAM_IDLE);
        let routes = routes_by_key(&configs[0]);
        let mut keys: Vec<&String> = routes.keys().collect();
        keys.sort();
        let mut expected: Vec<String> = model.policies.keys().cloned().chain([DEFAULT_POLICY_KEY.to_string()]).collect();
        expected.sort();
        assert_eq!(keys, expected.iter().collect::<Vec<_>>());
        for (key, policy) in &model.policies {
            let (action, buffer) = route_parts(&routes[key]);
            assert_eq!(action.cluster_specifier, Some(route_action::ClusterSpecifier::ClusterHeader(CLUSTER_HEADER.into())));
            assert_eq!(action.timeout, Some(ProtoDuration { seconds: 0, nanos: 0 }), "no cap on a whole response");
            let retry = action.retry_policy.unwrap();
            assert_eq!(retry.per_try_idle_timeout, Some(proto_duration(policy.upstream_idle_timeout)));
            // Only a read timeout beyond the stream idle timeout lengthens the stream's life.
            let outlasting = policy.upstream_idle_timeout > STREAM_IDLE;
            assert_eq!(action.idle_timeout, outlasting.then(|| proto_duration(policy.upstream_idle_timeout)), "{key}");
            assert_eq!(retry.num_retries.map(|v| v.value), Some(policy.tries - 1));
            match policy.max_body_bytes {
                Some(limit) => assert_eq!(
                    buffer,
                    Some(buffer_per_route::Override::Buffer(Buffer { max_request_bytes: Some(UInt32Value { value: limit as u32 }) }))
                ),
                None => assert_eq!(buffer, Some(buffer_per_route::Override::Disabled(true))),
            }
            let headers: Vec<(String, String)> = routes[key]
                .request_headers_to_add
                .iter()
                .filter_map(|h| h.header.as_ref())
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            let expected: Vec<(String, String)> = policy.request_headers.iter().map(|(k, v)| (k.clone(), v.envoy_format())).collect();
            assert_eq!(headers, expected);
            // Custom error pages: the custom-response filter's setting on exactly those routes.
            let custom = routes[key].typed_per_filter_config.get(CUSTOM_RESPONSE_FILTER);
            assert_eq!(custom.is_some(), policy.custom_errors.is_some(), "{key}");
            // enable-access-log: "false": the header-to-metadata setting the access log reads.
            let silence = routes[key].typed_per_filter_config.get(access_log::HEADER_TO_METADATA_FILTER);
            assert_eq!(silence.is_some(), policy.access_log_off, "{key}");
        }
        // Response headers: set replaces, add appends, remove removes.
        let big = model.policies.values().find(|p| !p.response_headers_set.is_empty()).unwrap();
        let route = &routes[&big.key()];
        // A literal `%` is escaped (Envoy must not read it as a formatter command); a request
        // header or the client's address is the matching Envoy command.
        let sent: Vec<(&str, &str)> = route.request_headers_to_add.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.as_str(), h.value.as_str())).collect();
        assert_eq!(
            sent,
            [
                ("x-format", "%REQ(accept)%"),
                ("x-forwarded-prefix", "/100%%"),
                ("x-real-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%:%DOWNSTREAM_REMOTE_PORT%")
            ]
        );
        let added: Vec<(String, String, i32)> = route
            .response_headers_to_add
            .iter()
            .map(|h| (h.header.as_ref().unwrap().key.clone(), h.header.as_ref().unwrap().value.clone(), h.append_action))
            .collect();
        assert_eq!(
            added,
            vec![
                ("x-frame-options".to_string(), "DENY".to_string(), HeaderAppendAction::OverwriteIfExistsOrAdd as i32),
                ("x-xss-protection".to_string(), "1; mode=block".to_string(), HeaderAppendAction::AppendIfExistsOrAdd as i32),
            ]
        );
        assert_eq!(route.response_headers_to_remove, vec!["server".to_string()]);
        assert!(configs.iter().all(|c| c.most_specific_header_mutations_wins), "a route's own headers win");
    }

    #[test]
    fn a_mirror_is_a_shadow_copy_with_the_mirror_host_as_written() {
        use crate::model::{AuthService, AuthTarget, Mirror};
        let service = AuthService { tls: false, target: AuthTarget::Dns { host: "shadow.shop.svc".into(), port: 8080 } };
        let policy = RoutePolicy { mirror: Some(Mirror { service, host: "shadow.example".into() }), ..RoutePolicy::default() };
        let Some(route::Action::Route(action)) = policy_route("k", &policy, (false, STREAM_IDLE)).action else { panic!("not forwarded") };
        let mirrors: Vec<(String, String, bool)> = action
            .request_mirror_policies
            .iter()
            .map(|m| (m.cluster.clone(), m.host_rewrite_literal.clone(), m.disable_shadow_host_suffix_append))
            .collect();
        assert_eq!(mirrors, [("wasm-ingress:mirror:http://shadow.shop.svc:8080".to_string(), "shadow.example".to_string(), true)]);
        let Some(route::Action::Route(plain)) = policy_route("k", &RoutePolicy::default(), (false, STREAM_IDLE)).action else { panic!() };
        assert!(plain.request_mirror_policies.is_empty());
        // The mirror changes the policy's key: its route is another route.
        assert_ne!(policy.key(), RoutePolicy::default().key());
    }

    #[test]
    fn routes_with_several_filter_settings_encode_the_same_every_time() {
        let policy = RoutePolicy { allow_sources: vec![crate::model::Cidr::parse("10.0.0.0/8").unwrap()], ..RoutePolicy::default() };
        let first = pack_route(&policy_route("k", &policy, (false, STREAM_IDLE)));
        for _ in 0..32 {
            assert_eq!(pack_route(&policy_route("k", &policy, (false, STREAM_IDLE))), first, "HashMap order must not leak into the bytes");
        }
        let decoded: Route = unpack(&first);
        assert_eq!(decoded, policy_route("k", &policy, (false, STREAM_IDLE)));
        assert_eq!(decoded.typed_per_filter_config.len(), 2);
        let rbac: envoy_types::pb::envoy::extensions::filters::http::rbac::v3::RbacPerRoute =
            unpack(&decoded.typed_per_filter_config[RBAC_FILTER]);
        assert_eq!(Some(rbac), access::per_route(&policy));
        assert!(!policy_route("d", &RoutePolicy::default(), (false, STREAM_IDLE)).typed_per_filter_config.contains_key(RBAC_FILTER));
    }

    #[test]
    fn the_default_policy_is_ingress_nginxs() {
        let routes = routes_by_key(&route_configurations(&Model::default(), STREAM_IDLE)[0]);
        let (action, buffer) = route_parts(&routes[DEFAULT_POLICY_KEY]);
        let retry = action.retry_policy.unwrap();
        assert_eq!(retry.per_try_idle_timeout, Some(ProtoDuration { seconds: 60, nanos: 0 }));
        assert_eq!((retry.retry_on.as_str(), retry.num_retries.map(|v| v.value)), (RETRY_ON, Some(2)));
        assert_eq!(buffer, Some(buffer_per_route::Override::Buffer(Buffer { max_request_bytes: Some(UInt32Value { value: 1 << 20 }) })));
    }

    #[test]
    fn trace_is_refused_before_any_policy() {
        for config in route_configurations(&model(), STREAM_IDLE) {
            let matcher = config.virtual_hosts[0].matcher.clone().unwrap();
            let Some(MatcherType::MatcherList(list)) = &matcher.matcher_type else { panic!("no list") };
            let Some(predicate::MatchType::SinglePredicate(single)) = list.matchers[0].predicate.clone().unwrap().match_type else { panic!() };
            let input: HttpRequestHeaderMatchInput = unpack(single.input.unwrap().typed_config.as_ref().unwrap());
            assert_eq!(input.header_name, ":method");
            let Some(predicate::single_predicate::Matcher::ValueMatch(value)) = single.matcher else { panic!() };
            assert_eq!(value.match_pattern, Some(string_matcher::MatchPattern::Exact("TRACE".into())));
            let Some(on_match::OnMatch::Action(refusal)) = list.matchers[0].on_match.clone().unwrap().on_match else { panic!() };
            let refusal: Route = unpack(refusal.typed_config.as_ref().unwrap());
            let Some(route::Action::DirectResponse(response)) = refusal.action else { panic!() };
            assert_eq!(response.status, 405);
        }
    }

    #[test]
    fn no_key_is_the_default_policy_and_an_unknown_key_is_refused() {
        let config = &route_configurations(&model(), STREAM_IDLE)[0];
        let matcher = policies_of(config);
        let Some(on_match::OnMatch::Matcher(no_key)) = matcher.on_no_match.unwrap().on_match else { panic!() };
        let Some(MatcherType::MatcherList(list)) = &no_key.matcher_type else { panic!() };
        let Some(on_match::OnMatch::Action(refusal)) = list.matchers[0].on_match.clone().unwrap().on_match else { panic!() };
        let refusal: Route = unpack(refusal.typed_config.as_ref().unwrap());
        let Some(route::Action::DirectResponse(response)) = refusal.action else { panic!() };
        assert_eq!(response.status, 503);
        let Some(on_match::OnMatch::Action(default)) = no_key.on_no_match.clone().unwrap().on_match else { panic!() };
        let default: Route = unpack(default.typed_config.as_ref().unwrap());
        assert_eq!(default.name, DEFAULT_POLICY_KEY);
    }

    #[test]
    fn hsts_only_over_https_and_internal_headers_never_upstream() {
        let configs = route_configurations(&model(), STREAM_IDLE);
        let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec![HTTP_ROUTE_CONFIG, HTTPS_ROUTE_CONFIG]);
        assert!(configs[0].response_headers_to_add.is_empty());
        let hsts = configs[1].response_headers_to_add[0].clone();
        assert_eq!(hsts.header.as_ref().map(|h| (h.key.as_str(), h.value.as_str())), Some(("strict-transport-security", "max-age=31536000; includeSubDomains")));
        assert_eq!(hsts.append_action, HeaderAppendAction::OverwriteIfExistsOrAdd as i32, "an upstream's own header is replaced");
        for config in &configs {
            assert_eq!(config.request_headers_to_remove, REMOVED_UPSTREAM_HEADERS.map(String::from));
            assert_eq!(config.response_headers_to_remove, ["server"], "no Server header, as ingress-nginx");
            let added: Vec<(&str, &str)> =
                config.request_headers_to_add.iter().filter_map(|h| h.header.as_ref()).map(|h| (h.key.as_str(), h.value.as_str())).collect();
            assert_eq!(added[0], ("x-real-ip", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"));
            assert_eq!(added[1..3], [("x-forwarded-for", "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"), ("x-original-forwarded-for", "%REQ(x-forwarded-for)%")]);
            assert!(config.request_headers_to_add.iter().all(|h| h.append_action == HeaderAppendAction::OverwriteIfExistsOrAdd as i32));
        }
        // ConfigMap hide-headers: removed from every answer too.
        let hiding = Model { hidden_response_headers: vec!["x-powered-by".into()], ..model() };
        for config in route_configurations(&hiding, STREAM_IDLE) {
            assert_eq!(config.response_headers_to_remove, ["server", "x-powered-by"]);
        }
    }

    #[test]
    fn cors_policies_add_ingress_nginx_headers_and_preflights_are_answered_by_envoy() {
        let headers = CorsHeaders {
            allow_origin: AllowOrigin::RequestOrigin,
            allow_credentials: true,
            allow_methods: "GET, POST".into(),
            allow_headers: "X-Custom".into(),
            expose_headers: String::new(),
            max_age: 200,
        };
        let cors = RoutePolicy { cors: Some(headers.clone()), ..RoutePolicy::default() };
        let preflight = RoutePolicy { preflight: true, ..cors.clone() };
        let any = RoutePolicy { cors: Some(CorsHeaders { allow_origin: AllowOrigin::Any, allow_credentials: false, ..headers }), ..RoutePolicy::default() };
        let values = |route: &Route| -> Vec<(String, String)> {
            route.response_headers_to_add.iter().map(|h| h.header.as_ref().unwrap()).map(|h| (h.key.clone(), h.value.clone())).collect()
        };
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        let cors_route = policy_route("c", &cors, (false, STREAM_IDLE));
        assert!(matches!(cors_route.action, Some(route::Action::Route(_))), "a CORS request goes upstream");
        assert_eq!(
            values(&cors_route),
            vec![
                pair("access-control-allow-origin", "%REQ(origin)%"),
                pair("access-control-allow-credentials", "true"),
                pair("access-control-allow-methods", "GET, POST"),
                pair("access-control-allow-headers", "X-Custom"),
                pair("access-control-max-age", "200"),
            ]
        );
        assert!(cors_route.response_headers_to_add.iter().all(|h| h.append_action == HeaderAppendAction::OverwriteIfExistsOrAdd as i32));
        let preflight_route = policy_route("p", &preflight, (false, STREAM_IDLE));
        let Some(route::Action::DirectResponse(answer)) = &preflight_route.action else { panic!("{:?}", preflight_route.action) };
        assert_eq!((answer.status, answer.body.is_none()), (204, true));
        assert_eq!(values(&preflight_route), values(&cors_route));
        let any_values = values(&policy_route("a", &any, (false, STREAM_IDLE)));
        assert!(any_values.contains(&pair("access-control-allow-origin", "*")));
        assert!(!any_values.iter().any(|(k, _)| k == "access-control-allow-credentials"));
        assert_ne!(cors.key(), preflight.key());
    }

    #[test]
    fn a_not_found_policy_answers_404_for_the_unknown_cluster_after_its_checks() {
        let listed = RoutePolicy { allow_sources: vec![crate::model::Cidr::parse("10.0.0.0/8").unwrap()], ..RoutePolicy::default() };
        let not_found = RoutePolicy { answers_not_found: true, ..listed.clone() };
        let proxied = policy_route("l", &listed, (false, STREAM_IDLE));
        let answered = policy_route("n", &not_found, (false, STREAM_IDLE));
        let code = |route: &Route| match &route.action {
            Some(route::Action::Route(action)) => action.cluster_not_found_response_code,
            other => panic!("{other:?}"),
        };
        assert_eq!(code(&proxied), route_action::ClusterNotFoundResponseCode::ServiceUnavailable as i32);
        assert_eq!(code(&answered), route_action::ClusterNotFoundResponseCode::NotFound as i32);
        // The address list (RBAC), rate limit and body limit still apply before the answer.
        let mut filters: Vec<&String> = answered.typed_per_filter_config.keys().collect();
        filters.sort();
        let mut proxied_filters: Vec<&String> = proxied.typed_per_filter_config.keys().collect();
        proxied_filters.sort();
        assert_eq!(filters, proxied_filters);
        assert!(filters.iter().any(|name| name.as_str() == RBAC_FILTER), "{filters:?}");
        assert_ne!(listed.key(), not_found.key());
    }

    #[test]
    fn client_certificate_headers_come_from_the_connection() {
        let names = |pass: Option<bool>| -> Vec<(String, String)> {
            let policy = RoutePolicy { client_certificate_headers: pass, ..RoutePolicy::default() };
            client_certificate_headers(&policy).into_iter().filter_map(|h| h.header).map(|h| (h.key, h.value)).collect()
        };
        assert!(names(None).is_empty());
        let dn = vec![
            ("ssl-client-subject-dn".to_string(), "%DOWNSTREAM_PEER_SUBJECT%".to_string()),
            ("ssl-client-issuer-dn".to_string(), "%DOWNSTREAM_PEER_ISSUER%".to_string()),
        ];
        assert_eq!(names(Some(false)), dn);
        let with_cert = [dn, vec![("ssl-client-cert".to_string(), "%DOWNSTREAM_PEER_CERT%".to_string())]].concat();
        assert_eq!(names(Some(true)), with_cert);
    }
}
