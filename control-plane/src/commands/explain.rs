//! `wasm-ingress explain DIR --url http://host/path`: translate the folder as `serve` would, compile
//! the route table with the filter's own matcher (the very code Envoy runs), route the URL, and say
//! in words which Ingress, rule and path serve it, the virtual host chosen (and whether the host is
//! in ingress-nginx regex mode), the backend cluster and its endpoints, the path sent upstream — or
//! why the answer is a 404 or a 503. For `https://` URLs it also names the certificate served for
//! the SNI name. No Envoy needed; must not start servers or write anything. Exit status 0 whenever
//! the request could be explained (a 404 is an explanation), 2 if the folder or URL is unusable.

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::{bail, Context};
use wasm_ingress_filter::hostname::HostName;
use wasm_ingress_filter::matcher::{CompiledTable, Outcome, RequestParts, Via};
use wasm_ingress_filter::table::{Origin, PathMatch, PathRewrite, RouteAction, VirtualHost, NOT_FOUND_CLUSTER};
use wasm_ingress_filter::request::HeaderLookup;

use crate::cli::ExplainArgs;
use crate::commands::validate::{load_and_translate, Loaded};
use crate::model::{Diagnostic, Model};
use crate::translate::ingress::DefaultBackendSource;

/// The parts of `--url` that routing looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RequestUrl {
    https: bool,
    /// As sent in `:authority` (may carry a port).
    authority: String,
    /// `:path` with the query string, without the fragment.
    path: String,
}

fn parse_url(url: &str) -> anyhow::Result<RequestUrl> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if url.contains("://") {
        bail!("--url {url:?}: only http:// and https:// URLs can be explained");
    } else {
        (false, url)
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        bail!("--url {url:?}: no host");
    }
    let authority = authority.rsplit('@').next().unwrap_or(authority).to_owned(); // drop userinfo
    let path = match path {
        "" => "/".to_owned(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_owned(),
    };
    Ok(RequestUrl { https, authority, path })
}

pub fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let request = parse_url(&args.url)?;
    let headers = args.headers.iter().map(|h| parse_header(h)).collect::<anyhow::Result<Vec<_>>>()?;
    let loaded = load_and_translate(&args.dir, &args.translation)?;
    print!("{}", explain(&loaded, &request, &RequestHeaders(headers))?);
    Ok(ExitCode::SUCCESS)
}

/// `--header` values: (lower-case name, value); what a canary's rules read.
struct RequestHeaders(Vec<(String, String)>);

impl HeaderLookup for RequestHeaders {
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_bytes().to_vec())
    }
}

/// `Name: value` into (lower-case name, trimmed value).
fn parse_header(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once(':') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_ascii_lowercase(), value.trim().to_string())),
        _ => bail!("--header {text:?}: expected `Name: value`"),
    }
}

/// What a canary's rules decide for this request, by its headers: the weight decides only when
/// the header and cookie rules do not (`chooses_canary` at both ends of the weight's range).
/// Where the canary rules send this request: the weight is tried at both of its ends, so a
/// verdict that differs between them means the weight decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CanaryVerdict {
    Canary,
    Backend,
    ByWeight,
}

impl CanaryVerdict {
    fn of(compiled: &CompiledTable, canary: &wasm_ingress_filter::table::Canary, headers: &RequestHeaders) -> CanaryVerdict {
        let last = u64::from(canary.weight_total.max(1)) - 1;
        match (compiled.chooses_canary(canary, headers, 0), compiled.chooses_canary(canary, headers, last)) {
            (true, true) => CanaryVerdict::Canary,
            (false, false) => CanaryVerdict::Backend,
            _ => CanaryVerdict::ByWeight,
        }
    }

    fn describe(self) -> String {
        let verdict = match self {
            CanaryVerdict::Canary => "this request goes to the canary",
            CanaryVerdict::Backend => "this request goes to the backend",
            CanaryVerdict::ByWeight => "this request is sent by weight",
        };
        format!("{verdict} (by these rules; a sticky cookie is not read here)")
    }
}

fn describe_match(path: &PathMatch) -> String {
    match path {
        PathMatch::Exact(p) => format!("Exact {p:?}"),
        PathMatch::Prefix(p) => format!("Prefix {p:?}"),
        PathMatch::Regex(p) => format!("regex {p:?}"),
    }
}

/// Diagnostics about one Ingress field (and the fields under it).
fn diagnostics_for<'d>(loaded: &'d Loaded, origin: &Origin) -> Vec<&'d Diagnostic> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| {
            d.object.kind == "Ingress"
                && d.object.namespace == origin.namespace()
                && d.object.name == origin.name()
                && d.field.starts_with(origin.field())
        })
        .collect()
}

fn cluster_line(model: &Model, cluster: &str) -> String {
    if cluster == NOT_FOUND_CLUSTER {
        return "none: once the checks below pass, Envoy answers 404 itself (ingress-nginx's own default backend)".to_string();
    }
    match model.clusters.get(cluster) {
        None => format!("cluster {cluster} (unknown to this translation)"),
        Some(c) if c.endpoints.is_empty() => {
            format!("cluster {cluster}: no ready endpoints, so Envoy answers 503 (no healthy upstream)")
        }
        Some(c) => {
            let endpoints: Vec<String> = c
                .endpoints
                .iter()
                .map(|e| {
                    if e.address.contains(':') {
                        format!("[{}]:{}", e.address, e.port)
                    } else {
                        format!("{}:{}", e.address, e.port)
                    }
                })
                .collect();
            format!("cluster {cluster}: endpoints {}{}", endpoints.join(", "), describe_upstream(&c.options))
        }
    }
}

/// How Envoy speaks to a cluster's endpoints, when not the default (plain HTTP/1.1, 5s connect).
fn describe_upstream(options: &crate::model::UpstreamOptions) -> String {
    let mut parts = Vec::new();
    if options.http2 {
        parts.push("HTTP/2".to_string());
    }
    if let Some(tls) = &options.tls {
        let check = match &tls.verify {
            None => "certificate not checked".to_string(),
            Some(v) => match &v.name {
                Some(name) => format!("certificate checked for {name}"),
                None => "certificate chain checked".to_string(),
            },
        };
        let sni = tls.server_name.as_ref().map(|s| format!(", SNI {s}")).unwrap_or_default();
        let client = tls.client_certificate.as_ref().map(|c| format!(", client certificate {c}")).unwrap_or_default();
        parts.push(format!("TLS ({check}{sni}{client})"));
    }
    if options.connect_timeout != crate::model::DEFAULT_CONNECT_TIMEOUT {
        parts.push(format!("connect timeout {}s", options.connect_timeout.as_secs()));
    }
    if options.service_upstream {
        parts.push("the Service's cluster IP".to_string());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" over {}", parts.join(", "))
    }
}

fn list_routes(out: &mut String, vhost: &VirtualHost) {
    if vhost.routes.is_empty() {
        let _ = writeln!(out, "  (this host has no paths)");
    }
    for route in &vhost.routes {
        let _ = writeln!(out, "  {:<40} from {}", describe_match(&route.path), route.origin);
    }
}

/// The route policy a request gets, in words (`""`: the default policy).
/// The CORS rule of an answer the filter makes itself (a redirect, a missing Service's 503).
fn describe_answer_cors(out: &mut String, model: &crate::model::Model, cors: Option<&wasm_ingress_filter::table::Cors>) {
    if let Some(cors) = cors {
        let _ = writeln!(out, "cors:      {} get this answer with CORS headers, and their OPTIONS requests {}", describe_origins(cors), describe_policy(model, &cors.preflight_policy));
    }
}

/// Which requests a CORS rule takes.
fn describe_origins(cors: &wasm_ingress_filter::table::Cors) -> String {
    cors.origin_pattern.as_deref().map_or("every request (cors-allow-origin: *)".to_string(), |p| format!("requests whose Origin matches /{p}/"))
}

fn describe_policy(model: &crate::model::Model, key: &str) -> String {
    let (policy, which) = match model.policies.get(key) {
        Some(policy) => (policy, format!("{key}, from the Ingress's annotations")),
        None => (&model.default_policy, "default".to_string()),
    };
    let body = match policy.max_body_bytes {
        Some(bytes) => format!("bodies up to {bytes} bytes (larger: 413)"),
        None => "bodies of any size".to_string(),
    };
    let mut text = match policy.answers_not_found {
        true => format!("{which}: {body}; a cluster Envoy does not have is answered 404"),
        false => format!(
            "{which}: {body}; 504 after {}s of upstream silence; {} tries on connection failure",
            policy.upstream_idle_timeout.as_secs(),
            policy.tries
        ),
    };
    let list = |blocks: &[crate::model::Cidr]| blocks.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if !policy.allow_sources.is_empty() {
        text.push_str(&format!("; clients allowed: {} (others 403)", list(&policy.allow_sources)));
    }
    if !policy.deny_sources.is_empty() {
        text.push_str(&format!("; clients refused (403): {}", list(&policy.deny_sources)));
    }
    for (name, value) in &policy.request_headers {
        text.push_str(&format!("; upstream header {name}: {value}"));
    }
    for (name, value) in &policy.response_headers_set {
        text.push_str(&format!("; response header {name}: {value} (replaced)"));
    }
    for (name, value) in &policy.response_headers_add {
        text.push_str(&format!("; response header {name}: {value} (added)"));
    }
    for name in &policy.response_headers_remove {
        text.push_str(&format!("; response header {name} removed"));
    }
    if let Some(cors) = &policy.cors {
        let origin = match cors.allow_origin {
            crate::model::AllowOrigin::Any => "*",
            crate::model::AllowOrigin::RequestOrigin => "the request's Origin",
        };
        text.push_str(&format!("; CORS headers (Allow-Origin {origin}, Allow-Methods {:?})", cors.allow_methods));
    }
    if policy.preflight {
        text.push_str("; answered 204 by Envoy (CORS preflight)");
    }
    if let Some(limit) = &policy.rate_limit {
        let per = if limit.per_minute { "minute" } else { "second" };
        text.push_str(&format!("; {} requests per {per} per client, bursts of {} (then 503)", limit.requests, limit.burst));
        if !limit.exempt.is_empty() {
            let exempt: Vec<String> = limit.exempt.iter().map(|c| format!("{}/{}", c.address, c.prefix_len)).collect();
            text.push_str(&format!(", except clients in {}", exempt.join(", ")));
        }
    }
    if let Some(mirror) = &policy.mirror {
        text.push_str(&format!("; copied to {} with Host {} (answer ignored)", mirror.service.mirror_cluster_name(), mirror.host));
    }
    if let Some(hash) = &policy.hash {
        text.push_str(&format!("; endpoint chosen by hashing {hash:?}"));
    }
    if policy.access_log_off {
        text.push_str("; left out of Envoy's access log (enable-access-log: \"false\")");
    }
    text
}

fn explain(loaded: &Loaded, request: &RequestUrl, headers: &RequestHeaders) -> anyhow::Result<String> {
    let model = &loaded.translation.model;
    let compiled = CompiledTable::compile(model.route_table.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("the translated route table does not compile (a bug: please report it)")?;
    let decision =
        compiled.route(
            &RequestParts {
                authority: request.authority.as_bytes(),
                path: request.path.as_bytes(),
                https: request.https,
                listener_port: None,
                forwarded_host: b"",
            },
            0,
        );
    // The host the filter routes by (lower case, no port, no trailing dot).
    let host = HostName::of_authority(request.authority.as_bytes()).map(HostName::into_string).unwrap_or_default();
    let mut out = String::new();
    let scheme = if request.https { "https" } else { "http" };
    let _ = writeln!(out, "request:   GET {scheme}://{}{}", request.authority, request.path);
    for (name, value) in &headers.0 {
        let _ = writeln!(out, "           {name}: {value}");
    }

    let parent = host.split_once('.').map(|(_, rest)| format!("*.{rest}")).unwrap_or_default();
    let passed = model.passthrough.get(&host).or_else(|| model.passthrough.get(&parent));
    if let Some(target) = passed.filter(|_| request.https) {
        let _ = writeln!(
            out,
            "tls:       SNI {host:?} is passed through undecrypted (ssl-passthrough, {}) to {}: the backend answers the TLS handshake and the request; no route, policy or annotation applies",
            target.origin, target.cluster
        );
        return Ok(out);
    }
    if request.https {
        let server = model.tls_servers.iter().find(|s| s.server_names.iter().any(|n| n == &host)).or_else(|| {
            let parent = host.split_once('.').map(|(_, rest)| format!("*.{rest}"));
            model.tls_servers.iter().find(|s| parent.as_ref().is_some_and(|p| s.server_names.contains(p)))
        });
        match server {
            Some(server) => {
                let _ = writeln!(out, "tls:       SNI {host:?} is served with certificate {}", server.certificate);
            }
            None => {
                let _ = writeln!(out, "tls:       no certificate for SNI {host:?} (no spec.tls entry of a served Ingress covers this host): the default certificate is offered (--default-ssl-certificate, else the controller's self-signed one), which clients that verify the name refuse");
            }
        }
        if let Some(suites) = decision.vhost.and_then(|name| model.cipher_suites.get(name)) {
            let _ = writeln!(out, "tls:       TLS 1.2 clients must use one of {} (ssl-ciphers)", suites.join(", "));
        }
    }

    let vhost = decision.vhost.and_then(|name| model.route_table.hosts.iter().find(|h| h.host == name));
    match decision.vhost {
        None => {
            let _ = writeln!(out, "host:      {host:?} matches no Ingress host (no exact, wildcard or host-less rule)");
            if let Some(hint) = super::validate::other_class_hint(loaded) {
                let _ = writeln!(out, "note:      no Ingress of this folder is served with these flags; {hint}");
            }
        }
        Some("") => {
            let _ = writeln!(out, "host:      {host:?} matches no exact or wildcard host; the host-less rules apply");
        }
        Some(name) if name.starts_with("*.") => {
            let _ = writeln!(out, "host:      {host:?} matches the wildcard host {name:?}");
        }
        Some(name) => match loaded.notes.aliases.get(name) {
            Some(of) => {
                let _ = writeln!(out, "host:      {host:?} matches {name:?}, a server-alias of the host {of:?}, which serves it");
            }
            None => {
                let _ = writeln!(out, "host:      {host:?} matches the host {name:?}");
            }
        },
    }
    if let Some(rule) = vhost.and_then(|v| v.client_certificate.as_ref()) {
        let ca = decision.vhost.and_then(|name| model.client_validation.get(name)).map_or(String::new(), |v| format!(" (CA from Secret {})", v.secret));
        let mode = match (rule.required, rule.verified) {
            (true, _) => "required: without one 400 (or the error page)",
            (false, true) => "optional: checked when presented",
            (false, false) => "optional, accepted unchecked",
        };
        let _ = writeln!(out, "client:    HTTPS with SNI = this host and a client certificate, {mode}{ca}; plain HTTP only redirected");
    }
    // An alias serves its host's routes: the host's notes apply.
    let noted_host = decision.vhost.map(|name| loaded.notes.aliases.get(name).map_or(name, String::as_str));
    if let Some(reason) = noted_host.and_then(|name| loaded.notes.regex_hosts.get(name)) {
        let _ = writeln!(
            out,
            "mode:      ingress-nginx regex mode ({reason}): every path of this host is a case-insensitive regex anchored at the start, tried longest first; the first that matches wins"
        );
    }

    let mut origin_of_503 = None;
    match decision.via {
        Via::AppRoot => {
            let _ = writeln!(out, "route:     the host's app-root answers \"GET /\" before any path is tried");
        }
        Via::DefaultServer => {
            let _ = writeln!(out, "route:     no Ingress host takes it: ingress-nginx's default server answers /healthz (200) and /nginx_status (403) itself");
        }
        Via::Route => {
            if let Some(route) = decision.route {
                let _ = writeln!(out, "route:     {} from Ingress {}", describe_match(&route.path), route.origin);
                origin_of_503 = Some(route.origin.clone());
            }
        }
        Via::HostFallback => {
            let from = noted_host.and_then(|h| loaded.notes.host_fallbacks.get(h)).cloned();
            let source = from.as_ref().map(|origin| format!(" ({origin})")).unwrap_or_default();
            let _ = writeln!(out, "route:     no path of this host matches {:?}; the host's default backend applies{source}", request.path);
            origin_of_503 = Some(from.unwrap_or_default());
        }
        Via::HostHttpsRedirect => {
            let _ = writeln!(
                out,
                "route:     no path of this host matches {:?}: plain HTTP is redirected to HTTPS, as ingress-nginx's implicit \"/\" location of the host (the ssl-redirect of the oldest Ingress naming it)",
                request.path
            );
        }
        Via::DefaultBackend => {
            let from = loaded.notes.default_backend.as_ref();
            let _ = writeln!(out, "route:     nothing matches; the catch-all default backend applies ({})", from.map(ToString::to_string).unwrap_or_default());
            if let Some(DefaultBackendSource::Ingress(origin)) = from {
                origin_of_503 = Some(origin.clone());
            }
        }
        Via::ImplicitRoot => {
            let from = noted_host.and_then(|h| loaded.notes.implicit_roots.get(h)).map(ToString::to_string).unwrap_or_default();
            let _ = writeln!(
                out,
                "route:     no path of this host matches {:?} and neither a default backend of its own nor a catch-all Ingress takes it: ingress-nginx's implicit \"/\" location of the host answers, with the checks of the oldest Ingress naming it ({from}), then ingress-nginx's own default backend",
                request.path
            );
        }
        Via::NotFound => {
            let why = match vhost {
                None => "no Ingress host matches and no Ingress without rules sets a catch-all spec.defaultBackend".to_owned(),
                Some(v) => format!(
                    "no path of host {:?} matches {:?}, the host has no default backend, and no Ingress without rules sets a catch-all spec.defaultBackend",
                    v.host, request.path
                ),
            };
            let _ = writeln!(out, "route:     none: {why}");
        }
        Via::TooLong => {
            let _ = writeln!(
                out,
                "route:     none: the path is longer than {} bytes, so it is answered 414 before matching (as nginx's 8k request-line buffers)",
                wasm_ingress_filter::limits::MAX_REQUEST_PATH_BYTES
            );
        }
    }
    if compiled.default_server_guards(&decision) {
        let denied = &model.route_table.default_server_denied;
        let _ = writeln!(out, "access:    clients in --block-cidrs ({}) get 403 instead, as from ingress-nginx's default server, whose location / has no address list of its own", denied.join(", "));
    }
    if decision.via != Via::Route {
        if let Some(vhost) = vhost {
            let _ = writeln!(out, "paths of host {:?}, in the order they are tried:", vhost.host);
            list_routes(&mut out, vhost);
        }
    }

    match &decision.outcome {
        Outcome::Forward { cluster, path, forward } => {
            let envoy_answers = *cluster == NOT_FOUND_CLUSTER;
            let (authority, policy, canary, cors) = (forward.host_rewrite.as_deref(), forward.policy.as_str(), forward.canary.as_deref(), forward.cors.as_deref());
            let (auth, basic_auth, connection_limit) = (forward.auth.as_deref(), forward.basic_auth.as_deref(), forward.connection_limit.as_deref());
            let (satisfy_any, lists_first, response) = (forward.satisfy_any.as_deref(), forward.lists_first.as_deref(), forward.response.as_deref());
            let (subset_hash, affinity_cookie) = (forward.subset_hash.as_deref(), forward.affinity_cookie.as_deref());
            let _ = writeln!(out, "backend:   {}", cluster_line(model, cluster));
            let verdict = canary.map(|canary| (canary, CanaryVerdict::of(&compiled, canary, headers)));
            if let Some((canary, verdict)) = verdict {
                let _ = writeln!(out, "canary:    {}", cluster_line(model, &canary.cluster));
                let _ = writeln!(out, "           {}", canary_rules(canary));
                let _ = writeln!(out, "           {}", verdict.describe());
            }
            let template = decision.route.and_then(|r| match &r.action {
                RouteAction::Forward(f) => f.rewrite.as_ref(),
                RouteAction::Respond(_) | RouteAction::Redirect(_) => None,
            });
            match (path, template) {
                _ if envoy_answers => {}
                (Some(new_path), Some(PathRewrite::Template(t))) => {
                    let _ = writeln!(out, "upstream:  GET {new_path} (rewritten by rewrite-target {t:?})");
                }
                (Some(new_path), Some(PathRewrite::ReplacePrefix(p))) => {
                    let _ = writeln!(out, "upstream:  GET {new_path} (matched prefix replaced by {p:?})");
                }
                (Some(new_path), None) => {
                    let _ = writeln!(out, "upstream:  GET {new_path}");
                }
                (None, _) => {
                    let _ = writeln!(out, "upstream:  GET {} (path unchanged)", request.path);
                }
            }
            if let Some(authority) = authority {
                let _ = writeln!(out, "upstream host: {authority}");
            }
            let _ = writeln!(out, "policy:    {}", describe_policy(model, policy));
            if let Some(cors) = cors {
                let _ = writeln!(out, "cors:      {} get {}", describe_origins(cors), describe_policy(model, &cors.policy));
                let _ = writeln!(out, "           and their OPTIONS requests {}", describe_policy(model, &cors.preflight_policy));
            }
            if let Some(basic) = basic_auth {
                let users = model.route_table.passwords.get(&basic.passwords).map_or(0, |list| list.len());
                let scheme = if basic.digest { "digest auth" } else { "basic auth" };
                let _ = writeln!(out, "{scheme}: realm {:?}, {users} users of Secret {} (others: 401)", basic.realm, basic.passwords);
            }
            if let Some(limit) = connection_limit {
                let exempt = if limit.exempt.is_empty() { String::new() } else { format!(", except {}", limit.exempt.join(", ")) };
                let _ = writeln!(out, "limit:     {} requests in progress per client address in zone {}{exempt} (more: {})", limit.limit, limit.zone, limit.status);
            }
            if let Some(auth) = auth {
                let _ = writeln!(out, "auth:      {}", describe_auth(auth));
            }
            let list = |ranges: &[String]| if ranges.is_empty() { "none".to_string() } else { ranges.join(", ") };
            if let Some(any) = satisfy_any {
                let _ = writeln!(out, "satisfy:   any — in on the first check that passes: addresses allowed {} (denied {}), then basic auth, then the auth service", list(&any.allow), list(&any.deny));
            }
            if let Some(lists) = lists_first {
                let _ = writeln!(out, "satisfy:   all — addresses allowed {} (denied {}) checked before any credential: others get 403", list(&lists.allow), list(&lists.deny));
            }
            if let Some(response) = response {
                let _ = writeln!(out, "response:  {}", describe_response(response));
            }
            if let Some(cookie) = affinity_cookie {
                let canary_note = match canary {
                    Some(canary) if canary.legacy_affinity => "; affinity-canary-behavior: legacy, so a cookie from the canary does not keep the client there",
                    Some(_) => "; with a canary it keeps the client on the backend that answered",
                    None => "",
                };
                let _ = writeln!(out, "affinity:  sticky cookie {cookie} (marked with the backend that answered{canary_note})");
            }
            if let Some(key) = subset_hash {
                let _ = writeln!(out, "subset:    requests with the same {} reach the same subset of endpoints (upstream-hash-by-subset)", describe_hash_key(key));
            }
            let status = match verdict {
                _ if envoy_answers => "404 from Envoy, once the checks above let the request in".to_owned(),
                Some((canary, CanaryVerdict::Canary)) => proxied_to(model, &canary.cluster, " (the canary)"),
                Some((canary, CanaryVerdict::ByWeight)) => {
                    proxied_to(model, cluster, &format!(", or to the canary {} by weight", canary.cluster))
                }
                Some((_, CanaryVerdict::Backend)) | None => proxied_to(model, cluster, ""),
            };
            let _ = writeln!(out, "result:    {status}");
        }
        Outcome::Redirect { status, location, cors } => {
            let _ = writeln!(out, "result:    {status} redirect to {location} (answered by the filter)");
            describe_answer_cors(&mut out, model, *cors);
        }
        Outcome::Respond { status, body, cors } => {
            let _ = writeln!(
                out,
                "result:    {status} answered by the filter{}",
                if body.is_empty() { String::new() } else { format!(" ({})", describe_body(body)) }
            );
            describe_answer_cors(&mut out, model, *cors);
        }
    }
    if let Some(origin) = origin_of_503 {
        let related = diagnostics_for(loaded, &origin);
        if !related.is_empty() {
            let _ = writeln!(out, "problems:");
            for diagnostic in related {
                let _ = writeln!(out, "  {diagnostic}");
            }
        }
    }
    Ok(out)
}

/// The result line of a request proxied to `cluster`: Envoy's 503 when it has no ready endpoints.
fn proxied_to(model: &Model, cluster: &str, note: &str) -> String {
    match model.clusters.get(cluster) {
        Some(c) if c.endpoints.is_empty() => format!("503 from Envoy (cluster {cluster} has no ready endpoints)"),
        _ => format!("proxied to {cluster}{note}"),
    }
}

/// An answer's body for one line: nginx's page by its title (`nginx's "404 Not Found" page`),
/// other text quoted.
fn describe_body(body: &str) -> String {
    let title = body.strip_prefix("<html>\r\n<head><title>").and_then(|rest| rest.split_once("</title>")).map(|(title, _)| title);
    match title {
        Some(title) => format!("nginx's {title:?} page"),
        None => format!("{body:?}"),
    }
}

/// How a canary takes requests, in the order its rules apply.
fn canary_rules(canary: &wasm_ingress_filter::table::Canary) -> String {
    use wasm_ingress_filter::table::CanaryHeaderRule;
    let mut rules = Vec::new();
    if let Some(header) = &canary.header {
        rules.push(match &header.rule {
            CanaryHeaderRule::AlwaysNever => format!("header {}: always -> canary, never -> backend", header.name),
            CanaryHeaderRule::Value(value) => format!("header {} = {value:?} -> canary", header.name),
            CanaryHeaderRule::Pattern(pattern) => format!("header {} matching /{pattern}/ -> canary", header.name),
            CanaryHeaderRule::PresentMeansPrimary => format!("header {} present -> backend (its pattern is refused)", header.name),
        });
    }
    if let Some(cookie) = &canary.cookie {
        rules.push(format!("cookie {cookie}: always -> canary, never -> backend"));
    }
    rules.push(format!("then {} of {} requests -> canary", canary.weight, canary.weight_total));
    let origin = if canary.origin.is_empty() { String::new() } else { format!(" (Ingress {})", canary.origin) };
    format!("{}{origin}", rules.join("; "))
}

/// One line on a route's response-header rewrites (`proxy-redirect-*`, `proxy-cookie-*`).
fn describe_response(response: &wasm_ingress_filter::table::ResponseRewrite) -> String {
    let mut parts = Vec::new();
    if let Some(r) = &response.redirect {
        let absolute = if response.absolute_redirects { " (made absolute with the request's scheme and host)" } else { "" };
        parts.push(format!("Location/Refresh starting {:?} get {:?}{absolute}", r.from, r.to));
    }
    if let Some(r) = &response.cookie_domain {
        parts.push(format!("Set-Cookie Domain {:?} becomes {:?}", r.from, r.to));
    }
    if let Some(r) = &response.cookie_path {
        parts.push(format!("Set-Cookie Path starting {:?} gets {:?}", r.from, r.to));
    }
    if let Some(cookie) = &response.conditional_samesite_none {
        parts.push(format!("cookie {cookie:?} loses SameSite=None for browsers that mishandle it"));
    }
    parts.join("; ")
}

/// One line on an external auth: where the auth request goes and what its answers do.
fn describe_auth(auth: &wasm_ingress_filter::table::ExternalAuth) -> String {
    let host = auth.authority.as_deref().unwrap_or("the request's host");
    let method = auth.method.as_deref().unwrap_or("GET");
    let on_401 = auth.signin.as_deref().map_or("401".to_string(), |s| format!("302 to {s}"));
    let copied = match auth.response_headers.is_empty() {
        true => String::new(),
        false => format!(", copying {}", auth.response_headers.join(", ")),
    };
    let sent = match auth.set_headers.is_empty() {
        true => String::new(),
        false => {
            let headers: Vec<String> = auth.set_headers.iter().map(|h| format!("{}: {}", h.name, h.value)).collect();
            format!(" with {}", headers.join(", "))
        }
    };
    let kept = auth.cache.as_ref().map_or(String::new(), |cache| {
        let valid: Vec<String> = cache
            .valid
            .iter()
            .map(|v| {
                let statuses = if v.statuses.is_empty() { "any".to_string() } else { v.statuses.iter().map(u16::to_string).collect::<Vec<_>>().join(" ") };
                format!("{statuses} for {} ms", v.millis)
            })
            .collect();
        format!("; answers kept per key {:?} ({})", cache.key, valid.join(", "))
    });
    format!(
        "first {method} {} (Host {host}, cluster {}, {} ms){sent}: 2xx forwards{copied}; 401 answers {on_401}; 403 answers 403; anything else 500{kept}",
        auth.path, auth.cluster, auth.timeout_ms
    )
}


/// The nginx variable a subset hash key reads.
fn describe_hash_key(key: &wasm_ingress_filter::subset::HashKey) -> String {
    use wasm_ingress_filter::subset::HashKey;
    match key {
        HashKey::Header { name } if name == ":path" => "$request_uri".into(),
        HashKey::Header { name } if name == ":authority" => "$host".into(),
        HashKey::Header { name } => format!("header {name}"),
        HashKey::Cookie { name } => format!("cookie {name}"),
        HashKey::Query { name } => format!("query argument {name}"),
        HashKey::SourceIp => "client address".into(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn an_auth_cache_is_described() {
        use wasm_ingress_filter::table::{AuthCache, CacheValidity, ExternalAuth};
        let auth = ExternalAuth {
            cluster: "auth".into(),
            authority: Some("auth.example".into()),
            path: "/oauth2/auth".into(),
            method: None,
            signin: None,
            response_headers: vec![],
            request_redirect: None,
            always_set_cookie: false,
            set_headers: vec![],
            timeout_ms: 1000,
            cache: Some(AuthCache {
                key: "$cookie_session".into(),
                valid: vec![CacheValidity { statuses: vec![200, 202], millis: 300_000 }, CacheValidity { statuses: vec![], millis: 500 }],
                location: "/".into(),
            }),
        };
        let text = describe_auth(&auth);
        assert!(text.ends_with("; answers kept per key \"$cookie_session\" (200 202 for 300000 ms, any for 500 ms)"), "{text}");
        assert!(!describe_auth(&ExternalAuth { cache: None, ..auth.clone() }).contains("kept"));
        let header = wasm_ingress_filter::table::AuthHeader { name: "x-client".into(), value: "$remote_addr".into() };
        let text = describe_auth(&ExternalAuth { set_headers: vec![header], ..auth });
        assert!(text.contains("1000 ms) with x-client: $remote_addr: 2xx forwards"), "{text}");
        let sticky = wasm_ingress_filter::table::ResponseRewrite { conditional_samesite_none: Some("route".into()), ..Default::default() };
        assert_eq!(describe_response(&sticky), "cookie \"route\" loses SameSite=None for browsers that mishandle it");
    }

    #[test]
    fn a_policy_that_leaves_the_access_log_says_so() {
        let quiet = crate::model::RoutePolicy { access_log_off: true, ..Default::default() };
        let model = crate::model::Model { policies: [("pquiet".to_string(), quiet)].into(), ..Default::default() };
        assert!(describe_policy(&model, "pquiet").ends_with("; left out of Envoy's access log (enable-access-log: \"false\")"));
        assert!(!describe_policy(&model, "").contains("access log"), "the default policy is logged");
    }

    #[test]
    fn urls_are_split_into_authority_and_path_by_table() {
        let cases = [
            ("http://demo.localhost/a?x=1#frag", false, "demo.localhost", "/a?x=1"),
            ("https://Secure.localhost:8443", true, "Secure.localhost:8443", "/"),
            ("demo.localhost/b", false, "demo.localhost", "/b"),
            ("http://user@demo.localhost?x", false, "demo.localhost", "/?x"),
            ("http://[::1]:8080/v6", false, "[::1]:8080", "/v6"),
        ];
        for (url, https, authority, path) in cases {
            let parsed = parse_url(url).unwrap();
            assert_eq!(parsed, RequestUrl { https, authority: authority.into(), path: path.into() }, "{url}");
        }
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
