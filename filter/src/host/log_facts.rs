//! What the access log reads from the filter: facts only it knows, left in Envoy's filter state
//! (`set_property`, read by the log as `%FILTER_STATE(wasm.<key>:PLAIN)%`). A failure to set one
//! only leaves the log's `-`; nothing here changes how a request is answered.

use crate::basic;
use crate::cluster;
use crate::matcher::{Decision, Outcome};

/// `$remote_user`: the user of credentials basic auth let in.
pub(super) fn remember_user(authorization: &[u8]) {
    if let Some((user, _)) = basic::credentials(authorization) {
        set(basic::REMOTE_USER_PROPERTY, &user);
    }
}

/// `$namespace`, `$ingress_name`, `$service_name`, `$service_port` of the route `decision`
/// matched (see `RouteTable::log_route`); nothing for a request no route takes.
pub(super) fn remember_route(decision: &Decision<'_>) {
    let Some(route) = decision.route else { return };
    let cluster = match decision.outcome {
        Outcome::Forward { cluster, .. } => cluster,
        _ => "",
    };
    let facts = cluster::log_facts(route.origin.namespace(), route.origin.name(), cluster);
    for (key, value) in cluster::LOG_PROPERTIES.into_iter().zip(facts) {
        if !value.is_empty() {
            set(key, value.as_bytes());
        }
    }
}

fn set(key: &str, value: &[u8]) {
    let _ = proxy_wasm::hostcalls::set_property(vec![key], Some(value));
}
