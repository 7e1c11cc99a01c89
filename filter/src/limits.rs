//! Hard limits that keep any route table and any request from exhausting the shared wasm VM. The
//! control plane checks tables against the same numbers (so it drops an offending route with a
//! diagnostic instead of sending a table the filter refuses), and the filter enforces them again —
//! on `on_configure` for table limits, per request for path limits — so nothing traps the VM, which
//! would fail every host served by it. Plain constants; no logic here.

/// Longest `:path` (with query) the filter routes; longer requests get 414, like ingress-nginx's
/// `large-client-header-buffers: 4 8k` (nginx answers 414 when the request line exceeds 8 KiB).
pub const MAX_REQUEST_PATH_BYTES: usize = 8 * 1024;

/// Longest path (with query) a rewrite may produce; a longer result answers that request 414 and
/// nothing else notices.
pub const MAX_REWRITTEN_PATH_BYTES: usize = 8 * 1024;

/// Longest `rewrite-target` template.
pub const MAX_REWRITE_TEMPLATE_BYTES: usize = 1024;

/// Most `$N` substitutions in one template (ingress-nginx targets use one to three).
pub const MAX_REWRITE_SUBSTITUTIONS: usize = 16;

/// Longest regex pattern of one route.
pub const MAX_REGEX_PATTERN_BYTES: usize = 2048;

/// Most `Regex` routes on one host (each request to the host may try all of them in order).
pub const MAX_REGEX_ROUTES_PER_HOST: usize = 1000;

/// Most `Regex` routes in the whole table (each compiled regex holds VM memory).
pub const MAX_REGEX_ROUTES: usize = 20_000;

/// Largest route-table JSON the filter accepts (bytes), refused before parsing.
pub const MAX_TABLE_JSON_BYTES: usize = 32 * 1024 * 1024;

/// Longest policy key ([`crate::table::Forward::policy`]).
pub const MAX_POLICY_KEY_BYTES: usize = 64;

/// Longest `Location` a redirect may produce; a longer one answers that request 414.
pub const MAX_LOCATION_BYTES: usize = 8 * 1024;

/// Most distinct canary header patterns and CORS origin patterns in one table (each compiled regex
/// holds VM memory; a request tries at most two).
pub const MAX_HEADER_PATTERNS: usize = 2000;

/// Most `auth-response-headers` of one route.
pub const MAX_AUTH_RESPONSE_HEADERS: usize = 64;

/// Most basic-auth users in one table, over every password list.
pub const MAX_PASSWORD_USERS: usize = 100_000;

/// Longest basic-auth user name, stored hash or realm.
pub const MAX_PASSWORD_FIELD_BYTES: usize = 1024;

/// Longest canary header or cookie name.
pub const MAX_CANARY_NAME_BYTES: usize = 256;

/// The most [`crate::table::Route::answer_headers`] one route may carry, and the longest value.
pub const MAX_ANSWER_HEADERS: usize = 64;
pub const MAX_ANSWER_HEADER_VALUE_BYTES: usize = 4096;

/// Whether `value` may be the value of a header the filter answers with: non-empty, at most
/// [`MAX_ANSWER_HEADER_VALUE_BYTES`], printable ASCII. The table check, the control plane's CORS
/// headers and the echoed `Origin` all ask this one question.
pub fn answer_header_value_ok(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_ANSWER_HEADER_VALUE_BYTES && value.bytes().all(|b| (0x20..0x7f).contains(&b))
}
