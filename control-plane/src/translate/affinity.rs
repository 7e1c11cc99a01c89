//! `affinity-mode: persistent` through Envoy's stateful session filter: the sticky cookie holds
//! the endpoint's address (Envoy encodes it), so a client stays on its endpoint while that
//! endpoint exists, however many are added — ingress-nginx's `sticky_persistent` balancer. When
//! the endpoint is gone (or a retry went elsewhere), the load balancer picks another and the
//! cookie is set again for it. The connection manager has the filter with no session state of
//! its own (a no-op); the routes of a persistent policy turn it on with their cookie. A
//! `balanced` cookie is a hash key instead (`routes::hash_policy`). Pure.

use envoy_types::pb::envoy::config::core::v3::TypedExtensionConfig;
use envoy_types::pb::envoy::extensions::filters::http::stateful_session::v3::{stateful_session_per_route, StatefulSession, StatefulSessionPerRoute};
use envoy_types::pb::envoy::extensions::http::stateful_session::cookie::v3::CookieBasedSessionState;
use envoy_types::pb::envoy::r#type::http::v3::{Cookie, CookieAttribute};
use envoy_types::pb::google::protobuf::Duration as ProtoDuration;
use envoy_types::util::pack_any;

use crate::model::{AffinityCookie, HashOn, RoutePolicy};

/// Envoy's stateful session filter.
pub const STATEFUL_SESSION_FILTER: &str = "envoy.filters.http.stateful_session";
const COOKIE_SESSION_STATE: &str = "envoy.http.stateful_session.cookie";

/// The connection manager's configuration of the filter: no session state, so it does nothing
/// on a route that does not turn it on.
pub fn filter_config() -> StatefulSession {
    StatefulSession::default()
}

/// The sticky cookie of `policy` when it is persistent.
pub fn persistent_cookie(policy: &RoutePolicy) -> Option<&AffinityCookie> {
    policy.hash.iter().find_map(|hash| match hash {
        HashOn::AffinityCookie(cookie) if cookie.persistent => Some(cookie),
        _ => None,
    })
}

/// The per-route setting of a policy with a persistent sticky cookie (`tls`: on the HTTPS
/// listener, where the cookie is `Secure`). Not strict: a cookie naming an endpoint that is gone
/// goes to one the load balancer picks.
pub fn per_route(policy: &RoutePolicy, tls: bool) -> Option<StatefulSessionPerRoute> {
    let cookie = persistent_cookie(policy)?;
    let state = CookieBasedSessionState {
        cookie: Some(Cookie {
            name: cookie.name.clone(),
            ttl: Some(cookie_ttl(cookie)),
            path: cookie.path.clone(),
            attributes: cookie_attributes(cookie, tls).into_iter().map(|(name, value)| CookieAttribute { name, value }).collect(),
        }),
    };
    let session = StatefulSession {
        session_state: Some(TypedExtensionConfig { name: COOKIE_SESSION_STATE.to_string(), typed_config: Some(pack_any(state)) }),
        strict: false,
        ..Default::default()
    };
    Some(StatefulSessionPerRoute { r#override: Some(stateful_session_per_route::Override::StatefulSession(session)) })
}

/// The cookie's lifetime; zero: a session cookie.
pub fn cookie_ttl(cookie: &AffinityCookie) -> ProtoDuration {
    ProtoDuration { seconds: cookie.max_age.map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX)), nanos: 0 }
}

/// The cookie's attributes besides `Path` and `Max-Age`: its own (`Domain`, `SameSite`), then
/// `Secure` over HTTPS or with `session-cookie-secure`, as ingress-nginx marks it.
pub fn cookie_attributes(cookie: &AffinityCookie, tls: bool) -> Vec<(String, String)> {
    let secure = (cookie.secure || tls).then(|| ("Secure".to_string(), String::new()));
    cookie.attributes.iter().cloned().chain(secure).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use prost::Message;

    fn cookie(persistent: bool) -> AffinityCookie {
        AffinityCookie {
            name: "route".into(),
            path: "/app".into(),
            max_age: Some(172_800),
            attributes: vec![("SameSite".into(), "Lax".into())],
            secure: false,
            persistent,
        }
    }

    #[test]
    fn only_a_persistent_cookie_turns_the_session_on_with_its_attributes() {
        let balanced = RoutePolicy { hash: Some(HashOn::AffinityCookie(cookie(false))), ..RoutePolicy::default() };
        assert!(per_route(&balanced, true).is_none());
        assert!(per_route(&RoutePolicy::default(), true).is_none());
        let persistent = RoutePolicy { hash: Some(HashOn::AffinityCookie(cookie(true))), ..RoutePolicy::default() };
        for (tls, attributes) in [(false, vec![("SameSite", "Lax")]), (true, vec![("SameSite", "Lax"), ("Secure", "")])] {
            let Some(stateful_session_per_route::Override::StatefulSession(session)) = per_route(&persistent, tls).unwrap().r#override else { panic!() };
            assert!(!session.strict, "a cookie whose endpoint is gone goes to another");
            let state = session.session_state.unwrap();
            assert_eq!(state.name, COOKIE_SESSION_STATE);
            let state = CookieBasedSessionState::decode(state.typed_config.unwrap().value.as_slice()).unwrap();
            let cookie = state.cookie.unwrap();
            assert_eq!((cookie.name.as_str(), cookie.path.as_str(), cookie.ttl.unwrap().seconds), ("route", "/app", 172_800));
            let got: Vec<(&str, &str)> = cookie.attributes.iter().map(|a| (a.name.as_str(), a.value.as_str())).collect();
            assert_eq!(got, attributes, "tls: {tls}");
        }
        assert!(filter_config().session_state.is_none(), "the connection manager's own: a no-op");
    }
}
