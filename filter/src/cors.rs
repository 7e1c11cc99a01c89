//! ingress-nginx CORS (`enable-cors`) as a choice of route policy: the filter only decides whether
//! a request is a CORS request (its `Origin` allowed) and whether it is a preflight (`OPTIONS`);
//! Envoy's route for the chosen policy adds the `Access-Control-*` headers or answers the preflight
//! (204). As in ingress-nginx's template, `cors-allow-origin: *` makes every request a CORS request,
//! with or without `Origin`, and any allowed `OPTIONS` request is answered as a preflight. Pure.

use regex::Regex;

use crate::request::HeaderLookup;
use crate::table::Cors;

/// The policy key a request of a CORS route gets, or `None` when its origin is not allowed (the
/// route's own policy applies). `origin` is the compiled [`Cors::origin_pattern`].
pub fn cors_policy<'t>(cors: &'t Cors, origin: Option<&Regex>, headers: &impl HeaderLookup) -> Option<&'t str> {
    let allowed = match (&cors.origin_pattern, origin) {
        (None, _) => true,
        (Some(_), Some(regex)) => headers.header("origin").is_some_and(|value| regex.is_match(&String::from_utf8_lossy(&value))),
        // `compile` refuses a table whose pattern did not compile; never allow on a missing one.
        (Some(_), None) => false,
    };
    if !allowed {
        return None;
    }
    let preflight = headers.header(":method").is_some_and(|method| method == b"OPTIONS");
    Some(if preflight { &cors.preflight_policy } else { &cors.policy })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Headers(HashMap<&'static str, &'static str>);

    impl HeaderLookup for Headers {
        fn header(&self, name: &str) -> Option<Vec<u8>> {
            self.0.get(name).map(|v| v.as_bytes().to_vec())
        }
    }

    #[test]
    fn allowed_origins_get_the_cors_policy_and_their_options_requests_the_preflight_one() {
        let list = Cors {
            origin_pattern: Some(r"(?i)^(https://origin\.cors\.com|https://[A-Za-z0-9\-]+\.foo\.com)$".into()),
            policy: "pc".into(),
            preflight_policy: "pp".into(),
            answer_headers: vec![],
            echo_origin: true,
        };
        let any = Cors { origin_pattern: None, ..list.clone() };
        let regex = list.origin_pattern.as_deref().map(|p| Regex::new(p).unwrap());
        type Row<'r> = (&'r Cors, &'r [(&'static str, &'static str)], Option<&'r str>);
        let rows: [Row<'_>; 9] = [
            (&list, &[(":method", "GET"), ("origin", "https://origin.cors.com")], Some("pc")),
            (&list, &[(":method", "GET"), ("origin", "HTTPS://ORIGIN.CORS.COM")], Some("pc")),
            (&list, &[(":method", "OPTIONS"), ("origin", "https://a.foo.com")], Some("pp")),
            (&list, &[(":method", "GET"), ("origin", "https://a.b.foo.com")], None),
            (&list, &[(":method", "GET"), ("origin", "https://origin.cors.com.evil")], None),
            (&list, &[(":method", "OPTIONS")], None),
            (&any, &[(":method", "GET")], Some("pc")),
            (&any, &[(":method", "OPTIONS"), ("origin", "https://anything")], Some("pp")),
            (&any, &[(":method", "options")], Some("pc")),
        ];
        for (cors, headers, expected) in rows {
            let headers = Headers(headers.iter().copied().collect());
            let origin = if cors.origin_pattern.is_some() { regex.as_ref() } else { None };
            assert_eq!(cors_policy(cors, origin, &headers), expected, "{:?}", headers.0);
        }
    }
}
