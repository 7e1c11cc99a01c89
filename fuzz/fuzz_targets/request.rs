//! Request parts × a representative table (exact, wildcard and host-less hosts; Exact, Prefix and
//! nginx-regex routes; rewrite templates with captures; ReplacePrefix; weights; every kind of
//! redirect): any authority, path, scheme and listener port route or answer, never panic, a
//! rewritten path never carries a dot segment, and a redirect's Location is a bounded, header-safe
//! value. The same bytes, as a backend's `Location`, `Refresh` and `Set-Cookie`, go through the
//! `proxy-redirect-*` / `proxy-cookie-*` rewrites (variables filled from the request): never a
//! panic, never a result over the Location bound. The same bytes, as a `limit-connections` slot
//! value shared by every Envoy worker (and as a client address), are counted in and out: never a
//! panic, and taking then giving back a count leaves the client's count where it was. They also
//! fill an `auth-cache-key` (as `Authorization`, `Cookie` and `Cache-Control` values): never a
//! panic, and a kept answer is never kept longer than the cache allows. As an `Authorization:
//! Digest` header and a digest slot's value, they are parsed and checked: never a panic, a nonce
//! record only ever found for its own nonce, and an `Authentication-Info` never carrying a line
//! break.
#![no_main]


use libfuzzer_sys::fuzz_target;
use wasm_ingress_filter::matcher::{CompiledTable, Outcome, RequestParts};
use wasm_ingress_filter::address;
use wasm_ingress_filter::auth::Original;
use wasm_ingress_filter::auth_cache;
use wasm_ingress_filter::connections::{self, Take};
use wasm_ingress_filter::digest::{self, Failures, NonceCheck, NonceRecord};
use wasm_ingress_filter::limits::MAX_LOCATION_BYTES;
use wasm_ingress_filter::response::Rewrites;
use wasm_ingress_filter::satisfy;
use wasm_ingress_filter::table::{AuthCache, AuthHeader, CacheValidity, ExternalAuth, Replacement, ResponseRewrite, RouteTable, SatisfyAny};

const TABLE: &str = r#"{"schema":1,"hosts":[
 {"host":"shop.example.com","routes":[
   {"path":{"type":"Exact","value":"/exact"},"action":{"kind":"Forward","backends":[{"cluster":"a"},{"cluster":"b","weight":3}]}},
   {"path":{"type":"Prefix","value":"/api"},"action":{"kind":"Forward","backends":[{"cluster":"api"}],"rewrite":{"type":"ReplacePrefix","value":"/v2"}}},
   {"path":{"type":"Prefix","value":"/"},"action":{"kind":"Forward","backends":[{"cluster":"home"}]}}]},
 {"host":"rewrite.example.com","routes":[
   {"path":{"type":"Regex","value":"(?i)/something(/|$)(.*)"},"action":{"kind":"Forward","backends":[{"cluster":"r"}],"rewrite":{"type":"Template","value":"/$2"}}},
   {"path":{"type":"Regex","value":"(?i)/d/(.)(.)/(.*)"},"action":{"kind":"Forward","backends":[{"cluster":"d"}],"rewrite":{"type":"Template","value":"/s/$1$2/$3?q=$0"}}},
   {"path":{"type":"Regex","value":"(?i)/b(.*)"},"action":{"kind":"Forward","backends":[{"cluster":"b"}],"rewrite":{"type":"Template","value":"$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0"}}}]},
 {"host":"*.wild.example.com","routes":[{"path":{"type":"Prefix","value":"/"},"action":{"kind":"Respond","status":403,"body":"denied"}}]},
 {"host":"redirect.example.com",
  "app_root":{"status":302,"location":{"kind":"FromRequest","host":{"type":"RequestAuthority"},"path":{"type":"Fixed","value":"/app"}}},
  "routes":[
   {"path":{"type":"Prefix","value":"/ssl"},"action":{"kind":"Forward","backends":[{"cluster":"s"}],"policy":"p-1"},
    "https_redirect":{"status":308,"location":{"kind":"FromRequest","scheme":"https","host":{"type":"RequestHost"},"path":{"type":"RequestUri","value":{"trim_trailing_slash":true}}}}},
   {"path":{"type":"Prefix","value":"/keep"},"action":{"kind":"Respond","status":200},
    "https_redirect":{"status":301,"location":{"kind":"FromRequest","host":{"type":"RequestAuthority"},"path":{"type":"RequestUri","value":{"trim_trailing_slash":false}}}}},
   {"path":{"type":"Prefix","value":"/moved"},"action":{"kind":"Redirect","status":301,"location":{"kind":"Url","url":"http://moved.example.com/x"}}}],
  "fallback":{"kind":"Redirect","status":308,"location":{"kind":"FromRequest","host":{"type":"WithListenerPort","value":"example.com"},"path":{"type":"RequestUri","value":{"trim_trailing_slash":true}}}}},
 {"host":"","routes":[{"path":{"type":"Prefix","value":"/hostless"},"action":{"kind":"Forward","backends":[{"cluster":"h"}]}}]}],
 "default_backend":{"kind":"Forward","backends":[{"cluster":"default"}]}}"#;

/// The compiled table; a table the filter refuses is a bug in this target, so it stops the run
/// instead of fuzzing nothing.
fn table() -> &'static CompiledTable {
    // Per thread: a compiled table shares its hosts through `Rc`, as in the filter's VM.
    thread_local! {
        static TABLE_CELL: &'static CompiledTable = {
            let table = RouteTable::from_json(TABLE.as_bytes()).unwrap_or_else(|e| panic!("TABLE is not valid JSON: {e}"));
            Box::leak(Box::new(CompiledTable::compile(table).unwrap_or_else(|e| panic!("TABLE does not compile: {e}"))))
        };
    }
    TABLE_CELL.with(|table| *table)
}

fuzz_target!(|data: &[u8]| {
    let compiled = table();
    // First byte: how many bytes of authority; the rest is the path. The scheme and listener port
    // are derived from the first and last bytes, so existing corpus entries keep their meaning.
    let Some((&split, rest)) = data.split_first() else { return };
    let last = data.last().copied().unwrap_or(0);
    let https = last & 1 == 1;
    let listener_port = (last & 2 == 2).then(|| u16::from_le_bytes([split, last]));
    let split = usize::from(split).min(rest.len());
    let (authority, path) = rest.split_at(split);
    let request = RequestParts { authority, path, https, listener_port, forwarded_host: authority };
    match compiled.route(&request, u64::from(split as u8)).outcome {
        Outcome::Forward { path: Some(new_path), .. } => {
            let path_part = new_path.split('?').next().unwrap_or("");
            assert!(path_part.starts_with('/'), "{new_path:?}");
            assert!(path_part.split('/').all(|s| s != ".." && s != "."), "dot segment in {new_path:?}");
            assert!(new_path.len() <= wasm_ingress_filter::limits::MAX_REWRITTEN_PATH_BYTES);
        }
        Outcome::Redirect { status, location, .. } => {
            assert!((300..=308).contains(&status), "{status}");
            assert!(location.len() <= wasm_ingress_filter::limits::MAX_LOCATION_BYTES);
            assert!(!location.bytes().any(|b| b.is_ascii_control() || b == b' '), "unsafe Location {location:?}");
            assert!(location.starts_with("http://") || location.starts_with("https://"), "{location:?}");
        }
        _ => {}
    }
    let replace = |from: &str, to: &str| Some(Replacement { from: from.into(), to: to.into() });
    let rewrite = ResponseRewrite {
        redirect: replace("http://$host/", "/app/"),
        cookie_domain: replace("backend.local", "$host"),
        cookie_path: replace("/", "$request_uri/"),
        absolute_redirects: true,
        conditional_samesite_none: Some("route".into()),
    };
    let rewrites = Rewrites::for_request(&rewrite, &Original { authority, uri: path, https, ..Original::default() }, Some(rest));
    for value in [path, rest] {
        for new in [rewrites.location(value), rewrites.refresh(value), rewrites.set_cookie(value)].into_iter().flatten() {
            assert!(new.len() <= MAX_LOCATION_BYTES, "{} bytes", new.len());
        }
    }
    let auth = ExternalAuth {
        cluster: "auth".into(),
        authority: None,
        path: "/oauth2/auth".into(),
        method: None,
        signin: None,
        response_headers: vec![],
        request_redirect: None,
        always_set_cookie: false,
        set_headers: vec![AuthHeader { name: "x-client".into(), value: "$remote_addr via $scheme://$host$request_uri".into() }],
        timeout_ms: 1000,
        cache: None,
    };
    let client_headers = vec![("x-client".to_string(), path.to_vec())];
    let original = Original { authority, uri: path, https, method: rest, ..Original::default() };
    // The `auth-proxy-set-headers` value is built from the request: never a line break in it.
    for (name, value) in wasm_ingress_filter::auth::request_headers(&auth, &original, &client_headers) {
        if name == "x-client" {
            assert!(!value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0), "{value:?}");
        }
    }
    let rule = AuthCache {
        key: "$remote_user$cookie_session${http_cookie}$host$request_uri".into(),
        valid: vec![CacheValidity { statuses: vec![200, 202, 401], millis: 300_000 }],
        location: "/".into(),
    };
    let headers = vec![("authorization".to_string(), authority.to_vec()), ("cookie".to_string(), path.to_vec()), ("cache-control".to_string(), path.to_vec())];
    let _ = auth_cache::key(&auth, &rule, &Original { authority, uri: path, https, ..Original::default() }, &headers);
    if let Some(millis) = auth_cache::keep_for(&rule.valid, 202, &headers) {
        assert!(millis <= auth_cache::MAX_MILLIS, "{millis}");
    }
    let client = String::from_utf8_lossy(authority);
    let _ = address::listed(&[client.to_string(), "10.0.0.0/8".into()], &String::from_utf8_lossy(path));
    let lists = SatisfyAny { allow: vec![client.to_string()], deny: vec!["10.0.0.0/8".into()] };
    let _ = satisfy::address(&lists, &String::from_utf8_lossy(path));
    if let Some(credentials) = digest::credentials(rest) {
        let ha1 = digest::ha1_for(path, &credentials.realm).unwrap_or(b"939e7578ed9e3c518a452acee763bce9");
        let _ = digest::response_matches(ha1, authority, &credentials) && digest::uri_matches(path, &credentials.uri);
        let info = digest::authentication_info(ha1, &credentials);
        assert!(!info.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0), "{info:?}");
        let record = NonceRecord::decode(path, &credentials.nonce);
        assert!(record.as_ref().is_none_or(|r| r.nonce[..] == credentials.nonce[..]));
        if let NonceCheck::Fresh(used) = digest::use_nonce(record, &credentials.nc, split as u64) {
            assert_eq!(NonceRecord::decode(&used.encode(), &credentials.nonce), Some(used));
        }
    }
    if let Some(failures) = Failures::decode(path, &client) {
        assert_eq!(Failures::decode(&failures.failed(u64::MAX).encode(&client), &client).map(|f| f.until), Some(u64::MAX));
    }
    if let Take::Taken(value) = connections::take(path, "default/app", "10.0.0.1", 2) {
        let released = connections::release(&value, "default/app", "10.0.0.1").unwrap_or_else(|| panic!("a taken count is found again"));
        assert_eq!(connections::release(&released, "default/app", "10.0.0.1").is_some(), connections::release(path, "default/app", "10.0.0.1").is_some());
    }
});
