//! The decision for one request: too long a path is 414; else the selected host's `app_root`, its
//! matching route (or that route's `https_redirect` over plain HTTP), its `fallback`; else the
//! table's default backend; else 404.

use super::paths::PathIndex;
use super::{CompiledTable, Decision, Outcome, RequestParts, Via, NOT_FOUND_BODY, URI_TOO_LONG_BODY};
use crate::actions;
use crate::limits::MAX_REQUEST_PATH_BYTES;
use crate::redirect;
use crate::request::split_path;
use crate::table::{Route, VirtualHost};

impl CompiledTable {

    /// Route one request. `random` picks among weighted backends (any value is valid).
    pub fn route(&self, request: &RequestParts<'_>, random: u64) -> Decision<'_> {
        if request.path.len() > MAX_REQUEST_PATH_BYTES {
            return Decision {
                vhost: None,
                route: None,
                via: Via::TooLong,
                outcome: Outcome::Respond { status: 414, body: URI_TOO_LONG_BODY },
            };
        }
        let selected = self.index.hosts.select(request.authority).and_then(|i| Some((self.table.hosts.get(i)?, self.index.vhosts.get(i)?)));
        if let Some((vhost, index)) = selected {
            if let Some(decision) = route_in_host(vhost, index, request, random) {
                return decision;
            }
        }
        let vhost = selected.map(|(vhost, _)| vhost.host.as_str());
        match &self.table.default_backend {
            Some(default) => Decision {
                vhost,
                route: None,
                via: Via::DefaultBackend,
                outcome: actions::apply(default, request, None, random),
            },
            None => Decision {
                vhost,
                route: None,
                via: Via::NotFound,
                outcome: Outcome::Respond { status: 404, body: NOT_FOUND_BODY },
            },
        }
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
    let path = String::from_utf8_lossy(path_bytes);
    if let Some(hit) = index.lookup(&path) {
        if let Some(route) = vhost.routes.get(hit.route) {
            let query = query_bytes.map(String::from_utf8_lossy);
            let matched = actions::MatchedPath {
                path: &path,
                query: query.as_deref(),
                matched_len: hit.matched_len,
                regex: hit.regex,
            };
            return Some(decision(Some(route), Via::Route, route_outcome(route, request, &matched, random)));
        }
    }
    let fallback = vhost.fallback.as_ref()?;
    Some(decision(None, Via::HostFallback, actions::apply(fallback, request, None, random)))
}

/// A matched route's answer: its `https_redirect` when the request is plain HTTP, else its action.
fn route_outcome<'t>(
    route: &'t Route,
    request: &RequestParts<'_>,
    matched: &actions::MatchedPath<'_>,
    random: u64,
) -> Outcome<'t> {
    match &route.https_redirect {
        Some(redirect) if !request.https => redirect::outcome(redirect, request),
        _ => actions::apply(&route.action, request, Some(matched), random),
    }
}
