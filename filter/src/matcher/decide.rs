//! The decision for one request: too long a path is 414; else the selected host's `app_root`, its
//! matching route (or that route's `https_redirect` over plain HTTP), its
//! `fallback_https_redirect` over plain HTTP, its `fallback`; else a catch-all Ingress's default
//! backend; else the host's `implicit_root`; else the table's default backend; else 404. A
//! request no Ingress host takes (ingress-nginx's default server `_`) to `/healthz` or
//! `/nginx_status` is answered as that server's own prefix locations answer it, unless a
//! host-less route matches it as nginx would prefer (see [`DEFAULT_SERVER_LOCATIONS`]).

use super::paths::PathIndex;
use super::{CompiledTable, Decision, Outcome, RequestParts, Via, NOT_FOUND_BODY, URI_TOO_LONG_BODY};
use crate::actions;
use crate::limits::MAX_REQUEST_PATH_BYTES;
use crate::redirect;
use crate::request::{split_path, text};
use crate::table::{Route, VirtualHost};

impl CompiledTable {

    /// Route one request. `random` picks among weighted backends (any value is valid).
    pub fn route(&self, request: &RequestParts<'_>, random: u64) -> Decision<'_> {
        if request.path.len() > MAX_REQUEST_PATH_BYTES {
            return Decision {
                vhost: None,
                route: None,
                via: Via::TooLong,
                outcome: Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY, cors: None },
            };
        }
        let selected = self.index.hosts.select(request.authority).and_then(|i| self.hosts.get(i)).map(|h| (&h.vhost, &h.paths));
        let default_server = selected.is_none_or(|(vhost, _)| vhost.host.is_empty());
        if let Some(outcome) = default_server.then(|| default_server_location(request.path, selected.map(|(_, index)| index))).flatten() {
            return Decision { vhost: selected.map(|(vhost, _)| vhost.host.as_str()), route: None, via: Via::DefaultServer, outcome };
        }
        if let Some((vhost, index)) = selected {
            if let Some(decision) = route_in_host(vhost, index, request, random) {
                return decision;
            }
        }
        let vhost = selected.map(|(vhost, _)| vhost.host.as_str());
        let catch_all = self.table.default_backend_is_catch_all && self.table.default_backend.is_some();
        let root = selected.and_then(|(vhost, _)| vhost.implicit_root.as_ref()).filter(|_| !catch_all);
        match (root, &self.table.default_backend) {
            (Some(root), _) => Decision { vhost, route: None, via: Via::ImplicitRoot, outcome: actions::apply(root, request, None, random) },
            (None, Some(default)) => Decision {
                vhost,
                route: None,
                via: Via::DefaultBackend,
                outcome: actions::apply(default, request, None, random),
            },
            (None, None) => Decision {
                vhost,
                route: None,
                via: Via::NotFound,
                outcome: Outcome::Respond { status: 404, body: NOT_FOUND_BODY, cors: None },
            },
        }
    }
}


/// ingress-nginx's default server's own locations: `location /healthz { return 200; }` ("health
/// checks in cloud providers") and `location /nginx_status` (`stub_status`, allowed from the pod
/// itself only: 403 from anywhere else), both prefix locations.
pub const DEFAULT_SERVER_LOCATIONS: [(&str, u16, &str); 2] = [("/healthz", 200, ""), ("/nginx_status", 403, crate::decision::FORBIDDEN_BODY)];

/// The answer of a default-server location for `path`, unless a host-less route (`index`) wins
/// by nginx's location order: an exact path or a prefix at least as long, or a regex (nginx tries
/// regex locations after the longest prefix).
fn default_server_location(path: &[u8], index: Option<&PathIndex>) -> Option<Outcome<'static>> {
    let (path, _) = split_path(path);
    let &(location, status, body) = DEFAULT_SERVER_LOCATIONS.iter().find(|(location, _, _)| path.starts_with(location.as_bytes()))?;
    let hit = index.and_then(|index| index.lookup(&text(path)));
    match hit {
        Some(hit) if hit.regex.is_some() || hit.matched_len >= location.len() => None,
        _ => Some(Outcome::Respond { status, body, cors: None }),
    }
}

/// The decision of the selected host — its `app_root`, a matching route, or its `fallback` — or
/// `None` when none applies (the table's default backend decides).
fn route_in_host<'t>(
    vhost: &'t VirtualHost,
    index: &'t PathIndex,
    request: &RequestParts<'_>,
    random: u64,
) -> Option<Decision<'t>> {
    let decision = |route: Option<&'t Route>, via: Via, outcome: Outcome<'t>| Decision {
        vhost: Some(vhost.host.as_str()),
        route,
        via,
        outcome,
    };
    let (path_bytes, query_bytes) = split_path(request.path);
    if let Some(app_root) = vhost.app_root.as_ref().filter(|_| path_bytes == b"/") {
        return Some(decision(None, Via::AppRoot, redirect::outcome(app_root, request)));
    }
    let path = text(path_bytes);
    if let Some(hit) = index.lookup(&path) {
        if let Some(route) = vhost.routes.get(hit.route) {
            let query = query_bytes.map(text);
            let matched = actions::MatchedPath {
                path: &path,
                query: query.as_deref(),
                matched_len: hit.matched_len,
                regex: hit.regex,
            };
            return Some(decision(Some(route), Via::Route, route_outcome(route, request, &matched, random)));
        }
    }
    if let Some(redirect) = vhost.fallback_https_redirect.as_ref().filter(|_| !request.https) {
        return Some(decision(None, Via::HostHttpsRedirect, to_https(redirect, request)));
    }
    let fallback = vhost.fallback.as_ref()?;
    Some(decision(None, Via::HostFallback, actions::apply(fallback, request, None, random)))
}

/// An HTTPS redirect's answer, to ingress-nginx's `redirect_host()`: `$best_http_host`, a
/// trusted load balancer's host.
fn to_https<'t>(redirect: &'t crate::table::Redirect, request: &RequestParts<'_>) -> Outcome<'t> {
    let forwarded = Some(request.forwarded_host).filter(|host| !host.is_empty());
    redirect::outcome(redirect, &RequestParts { authority: crate::request::best_host(request.authority, forwarded), ..*request })
}

/// A matched route's answer: its `https_redirect` when the request is plain HTTP, else its action.
fn route_outcome<'t>(
    route: &'t Route,
    request: &RequestParts<'_>,
    matched: &actions::MatchedPath<'_>,
    random: u64,
) -> Outcome<'t> {
    match &route.https_redirect {
        Some(redirect) if !request.https => to_https(redirect, request),
        _ => actions::apply(&route.action, request, Some(matched), random),
    }
}
