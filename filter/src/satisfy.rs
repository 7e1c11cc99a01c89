//! ingress-nginx `satisfy: any` (nginx's `satisfy any`): a request passes when any one access
//! check of its route lets it in — the client-address lists, basic auth, the auth service —
//! instead of every one (`satisfy all`, the default). Pure: [`address`] reads the lists, [`next`]
//! says what follows from them and from basic auth.
//!
//! The order is nginx's access phase: the address lists, then basic auth, then the auth service;
//! the first that lets the request in ends it, so an allowed address needs no credentials and a
//! right password never reaches the auth service. When none does, a 401 wins over the lists' 403
//! (nginx keeps the first `401` it meets): basic auth's challenge, or the auth service's own
//! answer (401, or 302 to `auth-signin`). A quirk kept: a client address the lists deny still
//! gets in with a right password, as in ingress-nginx.

use crate::address;
use crate::table::SatisfyAny;

pub use crate::address::MAX_RANGES;

/// What the address lists say of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// In the allow list and not denied.
    Allowed,
    /// Denied, or missing from the allow list.
    Refused,
    /// No allow list and not denied: the lists neither let it in nor keep it out.
    Unlisted,
}

/// What the access checks do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Let the request in; the auth service is not asked.
    Pass,
    /// The auth service decides, as without `satisfy`; `basic_refused`: basic auth already said
    /// 401, which nginx keeps over the service's 403 (see [`auth_status`]).
    AskAuthService { basic_refused: bool },
    /// Basic auth's 401 with its challenge.
    Unauthorized,
    /// The lists' 403.
    Forbidden,
}

/// The verdict of `any`'s lists on `client` (an address without port; one that does not parse
/// is in no list). A denied block wins over an allowed one, as nginx's `deny` lines come first.
pub fn address(any: &SatisfyAny, client: &str) -> Address {
    if address::listed(&any.deny, client) {
        Address::Refused
    } else if any.allow.is_empty() {
        Address::Unlisted
    } else if address::listed(&any.allow, client) {
        Address::Allowed
    } else {
        Address::Refused
    }
}

/// What follows from the lists' verdict, basic auth's (`None`: the route has none, or it was
/// not checked because the address let the request in) and whether the route has an auth service.
pub fn next(address: Address, basic: Option<bool>, auth_service: bool) -> Next {
    match (address, basic, auth_service) {
        (Address::Allowed, _, _) | (_, Some(true), _) => Next::Pass,
        (_, basic, true) => Next::AskAuthService { basic_refused: basic == Some(false) },
        (_, Some(false), false) => Next::Unauthorized,
        (Address::Refused, None, false) => Next::Forbidden,
        (Address::Unlisted, None, false) => Next::Pass,
    }
}

/// The auth service's status as nginx's `satisfy any` ends with it: once a check said 401 (basic
/// auth, refused), a later 403 does not replace it (`ngx_http_core_access_phase` keeps
/// `access_code` 401), so the request is answered as a 401 — the sign-in redirect, or basic
/// auth's challenge.
pub fn auth_status(status: Option<u16>, basic_refused: bool) -> Option<u16> {
    match status {
        Some(403) if basic_refused => Some(401),
        other => other,
    }
}

/// Refuse lists that cannot be read, and `satisfy_any` on a route without credentials to check
/// (the lists would have no Envoy policy to enforce them otherwise).
pub fn check(any: &SatisfyAny, has_auth: bool) -> Result<(), String> {
    if !has_auth {
        return Err("a route without basic_auth or auth".into());
    }
    address::check_ranges(any.allow.iter().chain(&any.deny))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(allow: &[&str], deny: &[&str]) -> SatisfyAny {
        SatisfyAny { allow: allow.iter().map(|s| s.to_string()).collect(), deny: deny.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn the_lists_allow_refuse_or_decline_like_nginx_access() {
        let office = lists(&["10.0.0.0/8"], &["10.9.9.9"]);
        let deny_only = lists(&[], &["192.168.0.0/16"]);
        let rows = [
            (&office, "10.1.2.3", Address::Allowed),
            (&office, "10.9.9.9", Address::Refused),
            (&office, "11.0.0.1", Address::Refused),
            (&office, "", Address::Refused),
            (&deny_only, "192.168.4.4", Address::Refused),
            (&deny_only, "10.1.2.3", Address::Unlisted),
            (&lists(&[], &[]), "10.1.2.3", Address::Unlisted),
        ];
        for (any, client, want) in rows {
            assert_eq!(address(any, client), want, "{client} against {any:?}");
        }
    }

    #[test]
    fn one_check_letting_in_is_enough_and_401_wins_over_403() {
        use Address::{Allowed, Refused, Unlisted};
        let rows = [
            // (address, basic, auth service) -> next
            (Allowed, None, true, Next::Pass),
            (Allowed, None, false, Next::Pass),
            (Refused, Some(true), true, Next::Pass),
            (Unlisted, Some(true), false, Next::Pass),
            (Refused, Some(false), true, Next::AskAuthService { basic_refused: true }),
            (Unlisted, Some(false), true, Next::AskAuthService { basic_refused: true }),
            (Unlisted, None, true, Next::AskAuthService { basic_refused: false }),
            (Refused, None, true, Next::AskAuthService { basic_refused: false }),
            (Refused, Some(false), false, Next::Unauthorized),
            (Unlisted, Some(false), false, Next::Unauthorized),
            (Refused, None, false, Next::Forbidden),
            (Unlisted, None, false, Next::Pass),
        ];
        for (address, basic, service, want) in rows {
            assert_eq!(next(address, basic, service), want, "{address:?} {basic:?} {service}");
        }
    }

    #[test]
    fn after_basic_auths_401_the_auth_services_403_is_a_401() {
        let rows = [
            (Some(403), true, Some(401)),
            (Some(403), false, Some(403)),
            (Some(401), true, Some(401)),
            (Some(500), true, Some(500)),
            (Some(200), true, Some(200)),
            (None, true, None),
        ];
        for (status, refused, want) in rows {
            assert_eq!(auth_status(status, refused), want, "{status:?} after basic refused: {refused}");
        }
    }

    #[test]
    fn check_refuses_what_cannot_be_enforced() {
        assert!(check(&lists(&["10.0.0.0/8"], &[]), true).is_ok());
        assert!(check(&lists(&["10.0.0.0/8"], &[]), false).is_err_and(|e| e.contains("without basic_auth")));
        assert!(check(&lists(&["10.0.0.0/33"], &[]), true).is_err_and(|e| e.contains("10.0.0.0/33")));
        let many: Vec<String> = (0..=MAX_RANGES).map(|i| format!("10.0.{}.{}", i / 256, i % 256)).collect();
        assert!(check(&SatisfyAny { allow: many, deny: vec![] }, true).is_err());
    }
}
