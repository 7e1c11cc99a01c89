//! ingress-nginx's `custom-http-errors` -> Envoy's custom-response filter. Pure; typed protos only.
//!
//! ingress-nginx answers a listed status (from the upstream, or its own, as nginx's `error_page`)
//! by asking its `@custom_…` location: `GET /` (the query kept) to the `default-backend` Service
//! with `X-Code`, `X-Format` (`$http_accept`), `X-Original-URI` (`$request_uri`), `X-Namespace`,
//! `X-Ingress-Name`, `X-Service-Name` and `X-Service-Port` (`X-Original-URI` is the wasm
//! filter's: a redirect policy's headers are made after its own path change). Here a route whose
//! policy lists codes carries the custom-response filter's per-route setting: an
//! `exact_match_map` on the response status whose actions are `RedirectPolicy`s. Envoy then sends the request again through the whole filter chain with
//! those headers and [`ERROR_PAGE_HEADER`] naming the default backend's cluster; the wasm filter
//! sends it there as `GET /` (see `wasm_ingress_filter::table::ERROR_PAGE_HEADER`) and its answer
//! replaces the original one. The filter puts the original status on that answer; the error
//! page's own goes along in [`ERROR_PAGE_STATUS_HEADER`], which the wasm filter makes the status
//! again, as nginx's `error_page CODE = @custom_…` answers with the error page's. Without a usable default backend, ingress-nginx's own default
//! server answers 404: here a `LocalResponsePolicy` does.
//!
//! The filter's own configuration has no matcher, so nothing is replaced unless a route says so;
//! it sits after the wasm filter (which picks the route) in the decoding order, so it sees every
//! answer: the upstream's, Envoy's (503 without endpoints, 504) and the other filters' (403, 413,
//! 429), as nginx's `error_page` does.

use envoy_types::pb::envoy::config::core::v3::{data_source, DataSource, HeaderValueOption};
use envoy_types::pb::envoy::config::route::v3::RedirectAction;
use envoy_types::pb::envoy::extensions::filters::http::custom_response::v3::CustomResponse;
use envoy_types::pb::envoy::extensions::http::custom_response::local_response_policy::v3::LocalResponsePolicy;
use envoy_types::pb::envoy::extensions::http::custom_response::redirect_policy::v3::{redirect_policy, RedirectPolicy};
use envoy_types::pb::envoy::r#type::matcher::v3::HttpResponseStatusCodeMatchInput;
use envoy_types::pb::google::protobuf::{Any, UInt32Value};
use envoy_types::pb::xds::core::v3::TypedExtensionConfig;
use envoy_types::pb::xds::r#type::matcher::v3::matcher::matcher_tree::{MatchMap, TreeType};
use envoy_types::pb::xds::r#type::matcher::v3::matcher::{on_match, MatcherTree, MatcherType, OnMatch};
use envoy_types::pb::xds::r#type::matcher::v3::Matcher;
use envoy_types::util::pack_any;
use wasm_ingress_filter::table::{ERROR_PAGE_HEADER, ERROR_PAGE_STATUS_HEADER};

use crate::model::{CustomErrors, RoutePolicy};
use crate::translate::routes::{header, literal};

/// The custom-response filter's name, under which routes carry their [`per_route`] setting.
pub const CUSTOM_RESPONSE_FILTER: &str = "envoy.filters.http.custom_response";

/// Body of the 404 that stands for ingress-nginx's own default server (its built-in default
/// backend answers nginx's 404 page).
pub const NO_DEFAULT_BACKEND_BODY: &str = wasm_ingress_filter::decision::NOT_FOUND_BODY;

/// The filter's own configuration: no matcher, so no answer is replaced unless a route says so.
pub fn filter_config() -> CustomResponse {
    CustomResponse::default()
}

/// The route's custom-response setting, if its policy has custom error pages.
pub fn per_route(policy: &RoutePolicy) -> Option<CustomResponse> {
    let errors = policy.custom_errors.as_ref()?;
    let map = errors.codes.iter().map(|code| (code.to_string(), on_status(errors, *code))).collect();
    let input = TypedExtensionConfig { name: "status-code".into(), typed_config: Some(pack_any(HttpResponseStatusCodeMatchInput {})) };
    let tree = MatcherTree { input: Some(input), tree_type: Some(TreeType::ExactMatchMap(MatchMap { map })) };
    let matcher = Matcher { matcher_type: Some(MatcherType::MatcherTree(tree)), on_no_match: None };
    Some(CustomResponse { custom_response_matcher: Some(matcher) })
}

fn on_status(errors: &CustomErrors, code: u16) -> OnMatch {
    let action = TypedExtensionConfig { name: format!("error-page-{code}"), typed_config: Some(policy_for(errors, code)) };
    OnMatch { on_match: Some(on_match::OnMatch::Action(action)), keep_matching: false }
}

/// A `RedirectPolicy` to the default backend, or the 404 without one.
fn policy_for(errors: &CustomErrors, code: u16) -> Any {
    let Some(cluster) = &errors.cluster else {
        return pack_any(LocalResponsePolicy {
            status_code: Some(UInt32Value { value: 404 }),
            body: Some(DataSource { specifier: Some(data_source::Specifier::InlineString(NO_DEFAULT_BACKEND_BODY.into())), ..Default::default() }),
            // nginx's page, as its default server's `default_type` gives it (Envoy's local reply
            // would say text/plain).
            response_headers_to_add: vec![header("content-type", wasm_ingress_filter::decision::ANSWER_CONTENT_TYPE)],
            ..Default::default()
        });
    };
    // The request goes again as it is: the wasm filter makes its path `/` (the query kept, as
    // nginx's `rewrite (.*) / break`) and sends the client's as `X-Original-URI`.
    let redirect = RedirectAction::default();
    pack_any(RedirectPolicy {
        redirect_action_specifier: Some(redirect_policy::RedirectActionSpecifier::RedirectAction(redirect)),
        request_headers_to_add: request_headers(errors, cluster, code),
        response_headers_to_add: vec![header(ERROR_PAGE_STATUS_HEADER, "%RESPONSE_CODE%")],
        ..Default::default()
    })
}

fn request_headers(errors: &CustomErrors, cluster: &str, code: u16) -> Vec<HeaderValueOption> {
    let marker = format!("{} {cluster}", errors.token);
    let fixed = [
        (ERROR_PAGE_HEADER, literal(&marker)),
        ("x-code", code.to_string()),
        ("x-format", "%REQ(accept)%".to_string()),
    ];
    let named = errors.headers.iter().map(|(name, value)| (name.as_str(), literal(value)));
    fixed.into_iter().chain(named).map(|(name, value)| header(name, &value)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
    use prost::{Message, Name};

    use super::*;

    fn unpack<M: Message + Default + Name>(any: &Any) -> M {
        assert_eq!(any.type_url, M::type_url());
        M::decode(any.value.as_slice()).unwrap()
    }

    fn actions(config: &CustomResponse) -> Vec<(String, Any)> {
        let Some(MatcherType::MatcherTree(tree)) = config.custom_response_matcher.as_ref().unwrap().matcher_type.clone() else { panic!() };
        assert_eq!(tree.input.unwrap().typed_config.unwrap().type_url, HttpResponseStatusCodeMatchInput::type_url());
        let Some(TreeType::ExactMatchMap(map)) = tree.tree_type else { panic!() };
        let mut actions: Vec<(String, Any)> = map
            .map
            .into_iter()
            .map(|(code, on)| match on.on_match {
                Some(on_match::OnMatch::Action(action)) => (code, action.typed_config.unwrap()),
                other => panic!("{other:?}"),
            })
            .collect();
        actions.sort_by(|a, b| a.0.cmp(&b.0));
        actions
    }

    #[test]
    fn routes_without_custom_errors_have_no_setting_and_the_filter_replaces_nothing() {
        assert_eq!(per_route(&RoutePolicy::default()), None);
        assert_eq!(filter_config().custom_response_matcher, None);
    }

    #[test]
    fn each_listed_code_sends_the_request_to_the_default_backend_with_ingress_nginx_headers() {
        let errors = CustomErrors {
            codes: vec![404, 503],
            cluster: Some("shop/errors/80".into()),
            token: "s3cret".into(),
            headers: vec![("x-namespace".into(), "shop".into()), ("x-ingress-name".into(), "web%1".into())],
        };
        let config = per_route(&RoutePolicy { custom_errors: Some(errors), ..RoutePolicy::default() }).unwrap();
        let actions = actions(&config);
        assert_eq!(actions.iter().map(|(code, _)| code.as_str()).collect::<Vec<_>>(), ["404", "503"]);
        let policy: RedirectPolicy = unpack(&actions[1].1);
        let Some(redirect_policy::RedirectActionSpecifier::RedirectAction(redirect)) = policy.redirect_action_specifier else { panic!() };
        assert_eq!(redirect, RedirectAction::default(), "the request goes again as it is: the wasm filter makes its path `/`");
        let headers: Vec<(String, String)> =
            policy.request_headers_to_add.iter().map(|h| h.header.as_ref().unwrap()).map(|h| (h.key.clone(), h.value.clone())).collect();
        let expected = [(ERROR_PAGE_HEADER, "s3cret shop/errors/80"), ("x-code", "503"), ("x-format", "%REQ(accept)%"), ("x-namespace", "shop"), ("x-ingress-name", "web%%1")];
        assert_eq!(headers, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        // Envoy puts the original status back when none is set; the error page's own travels in
        // a header the wasm filter makes the status again.
        assert_eq!(policy.status_code, None);
        let response: Vec<(String, String, i32)> =
            policy.response_headers_to_add.iter().map(|h| (h.header.as_ref().unwrap(), h.append_action)).map(|(h, a)| (h.key.clone(), h.value.clone(), a)).collect();
        assert_eq!(response, [(ERROR_PAGE_STATUS_HEADER.to_string(), "%RESPONSE_CODE%".to_string(), HeaderAppendAction::OverwriteIfExistsOrAdd as i32)]);
    }

    #[test]
    fn without_a_default_backend_the_listed_codes_answer_404() {
        let errors = CustomErrors { codes: vec![500], cluster: None, token: String::new(), headers: vec![] };
        let config = per_route(&RoutePolicy { custom_errors: Some(errors), ..RoutePolicy::default() }).unwrap();
        let local: LocalResponsePolicy = unpack(&actions(&config)[0].1);
        assert_eq!(local.status_code, Some(UInt32Value { value: 404 }));
        assert_eq!(local.body.unwrap().specifier, Some(data_source::Specifier::InlineString(NO_DEFAULT_BACKEND_BODY.into())));
        let added: Vec<(String, String)> = local.response_headers_to_add.iter().map(|h| h.header.as_ref().map(|h| (h.key.clone(), h.value.clone())).unwrap()).collect();
        assert_eq!(added, [("content-type".to_string(), "text/html".to_string())]);
    }
}
