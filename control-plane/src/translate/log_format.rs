//! ingress-nginx's access log format (ConfigMap `log-format-upstream`, `log-format-escape-json`,
//! `log-format-escape-none`) as Envoy's stdout access log. The nginx format is read once into
//! text and variables; each variable becomes Envoy formatter commands from a closed list
//! ([`command`]), text is written with `%` doubled, and the result is a typed
//! `SubstitutionFormatString` — never a format a value could add commands to. A variable outside
//! the list is refused by name when `serve` starts (nginx refuses to start on an unknown one too).
//!
//! The default is ingress-nginx's own `upstreaminfo` line, so log parsers written for it (the
//! common fluent-bit and Loki ones) read ours. Times are nginx's: seconds with milliseconds for
//! `$request_time` and `$upstream_response_time`, through Envoy's CEL formatter (its other
//! commands give whole milliseconds), which prints the shortest form: `0.005`, `2.5`, `1` where
//! nginx writes `0.005`, `2.500`, `1.000`. Each CEL command costs a few microseconds a request
//! (measured by hand: see `docs/migrating-from-ingress-nginx.md`), so the line has these two only.
//!
//! With `log-format-escape-json` and a format that is a JSON object with variables in its values
//! (the usual JSON-logging setup), the line is Envoy's `json_format`: Envoy escapes every string,
//! as nginx's `escape=json` does. Otherwise values are written as they are: nginx's default
//! escaping (`"` and `\` as `\x22`, `\x5C`) has no counterpart in Envoy's text format. Envoy
//! refuses control characters in header values, so a value cannot start a new line.
//!
//! What only the wasm filter knows comes from Envoy's filter state, where the filter leaves it:
//! `$remote_user` (the user basic auth let in), and the matched route's `$namespace`,
//! `$ingress_name`, `$service_name`, `$service_port` — the last four only when the line uses
//! them ([`NginxLogFormat::logs_route`] sets the route table's `log_route`), since each costs the
//! filter a host call per request.
//! Pure.

use std::collections::BTreeMap;

use envoy_types::pb::envoy::config::core::v3::{data_source, substitution_format_string, DataSource, SubstitutionFormatString};
use envoy_types::pb::google::protobuf::{value, Struct, Value};

use crate::translate::ingress::variables::{prefixed_header, variable_name};

/// ingress-nginx's default `log-format-upstream` (its `upstreaminfo` log format).
pub const DEFAULT_LOG_FORMAT_UPSTREAM: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" $request_length $request_time [$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr $upstream_response_length $upstream_response_time $upstream_status $req_id";

/// The `serve` flags, named and defaulted as ingress-nginx's ConfigMap keys.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct LogFormatSettings {
    /// The access log line, in nginx's log_format syntax with nginx variables (ingress-nginx's
    /// ConfigMap `log-format-upstream`; default: its `upstreaminfo` line).
    #[arg(long, default_value = DEFAULT_LOG_FORMAT_UPSTREAM, value_parser = NginxLogFormat::parse)]
    pub log_format_upstream: NginxLogFormat,
    /// The format is JSON: values are JSON-escaped (ingress-nginx's `log-format-escape-json`).
    #[arg(long)]
    pub log_format_escape_json: bool,
    /// No escaping at all (ingress-nginx's `log-format-escape-none`; wins over
    /// `--log-format-escape-json`).
    #[arg(long)]
    pub log_format_escape_none: bool,
}

impl Default for LogFormatSettings {
    fn default() -> LogFormatSettings {
        LogFormatSettings {
            log_format_upstream: NginxLogFormat::default_upstreaminfo(),
            log_format_escape_json: false,
            log_format_escape_none: false,
        }
    }
}

/// An nginx log format, read: text and Envoy commands in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NginxLogFormat {
    pieces: Vec<Piece>,
    /// Whether it logs a fact of the request's route the filter leaves in filter state.
    logs_route: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// One variable: Envoy's formatter commands for it (a whole format string of its own).
    Variable(String),
}

impl NginxLogFormat {
    /// Read `format`; `Err` names the first variable Envoy cannot log.
    pub fn parse(format: &str) -> Result<NginxLogFormat, String> {
        let mut pieces = Vec::new();
        let mut logs_route = false;
        let mut rest = format;
        while let Some(dollar) = rest.find('$') {
            push_text(&mut pieces, &rest[..dollar]);
            let (name, after) = variable_name(&rest[dollar + 1..]).ok_or_else(|| format!("a '$' not followed by a variable name at {:?}", &rest[dollar..]))?;
            logs_route |= route_fact(name).is_some();
            pieces.push(Piece::Variable(command(name)?));
            rest = after;
        }
        push_text(&mut pieces, rest);
        Ok(NginxLogFormat { pieces, logs_route })
    }

    fn default_upstreaminfo() -> NginxLogFormat {
        // The default is a constant this module's tests read.
        NginxLogFormat::parse(DEFAULT_LOG_FORMAT_UPSTREAM).unwrap_or(NginxLogFormat { pieces: Vec::new(), logs_route: false })
    }

    /// Whether the route table must ask the filter for the route's facts (`RouteTable::log_route`).
    pub fn logs_route(&self) -> bool {
        self.logs_route
    }

    /// The line as an Envoy text format (a newline added, as nginx ends each line).
    pub fn text(&self) -> String {
        let mut out: String = self.pieces.iter().map(|piece| piece.envoy()).collect();
        out.push('\n');
        out
    }

    /// The format as Envoy's `json_format`, when it is a JSON object whose values are strings
    /// (with variables inside), bare variables or further such objects; `None` otherwise.
    pub fn json(&self) -> Option<Struct> {
        let mut marked = String::new();
        let mut commands = Vec::new();
        let mut in_string = false;
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) if text.chars().any(is_marker) => return None,
                Piece::Text(text) => {
                    in_string = string_state_after(text, in_string);
                    marked.push_str(text);
                }
                Piece::Variable(command) => {
                    let marker = char::from_u32(MARKER_BASE + u32::try_from(commands.len()).ok()?).filter(|c| is_marker(*c))?;
                    commands.push(command.as_str());
                    match in_string {
                        true => marked.push(marker),
                        false => marked.extend(['"', marker, '"']),
                    }
                }
            }
        }
        match serde_json::from_str(&marked).ok()? {
            serde_json::Value::Object(object) => json_struct(&object, &commands),
            _ => None,
        }
    }
}

impl LogFormatSettings {
    /// The access log's format as the flags ask for it.
    pub fn format(&self) -> SubstitutionFormatString {
        if self.log_format_escape_json && !self.log_format_escape_none {
            if let Some(json) = self.log_format_upstream.json() {
                return SubstitutionFormatString { format: Some(substitution_format_string::Format::JsonFormat(json)), ..Default::default() };
            }
        }
        let text = DataSource { specifier: Some(data_source::Specifier::InlineString(self.log_format_upstream.text())), ..Default::default() };
        // nginx writes `-` for a variable without a value, except with `escape=json` or
        // `escape=none`, which write nothing; Envoy's text format writes `-` unless told to omit.
        let omit_empty_values = self.log_format_escape_json || self.log_format_escape_none;
        SubstitutionFormatString { format: Some(substitution_format_string::Format::TextFormatSource(text)), omit_empty_values, ..Default::default() }
    }

    /// What `serve` says at start about these flags: `--log-format-escape-json` with a format
    /// that is not a JSON object is written unescaped.
    pub fn warning(&self) -> Option<String> {
        (self.log_format_escape_json && !self.log_format_escape_none && self.log_format_upstream.json().is_none()).then(|| {
            "--log-format-escape-json: the log format is not a JSON object of strings and variables, so Envoy writes it as text, values unescaped".to_string()
        })
    }
}

impl Piece {
    fn envoy(&self) -> String {
        match self {
            Piece::Text(text) => text.replace('%', "%%"),
            Piece::Variable(command) => command.clone(),
        }
    }
}

fn push_text(pieces: &mut Vec<Piece>, text: &str) {
    if !text.is_empty() {
        pieces.push(Piece::Text(text.to_string()));
    }
}

/// Variables stand in the JSON as characters of Unicode's supplementary private use area.
const MARKER_BASE: u32 = 0xF0000;

fn is_marker(c: char) -> bool {
    (MARKER_BASE..=0xFFFFD).contains(&u32::from(c))
}

/// Whether the JSON text is inside a string after `text`, starting inside one or not.
fn string_state_after(text: &str, mut in_string: bool) -> bool {
    let mut escaped = false;
    for c in text.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            _ => {}
        }
    }
    in_string
}

fn json_struct(object: &serde_json::Map<String, serde_json::Value>, commands: &[&str]) -> Option<Struct> {
    // A variable in a key has no counterpart: Envoy's keys are text.
    let fields = object
        .iter()
        .map(|(key, value)| Some((key.clone(), json_value(value, commands)?)).filter(|_| !key.chars().any(is_marker)))
        .collect::<Option<BTreeMap<_, _>>>()?;
    Some(Struct { fields: fields.into_iter().collect() })
}

/// One value of the JSON format: a string with its markers turned back into commands (alone, a
/// command keeps its type in Envoy's output: a status is a number), a nested object, or a number
/// or boolean written as text.
fn json_value(value: &serde_json::Value, commands: &[&str]) -> Option<Value> {
    let kind = match value {
        serde_json::Value::String(text) => {
            let format: String = text
                .chars()
                .map(|c| match is_marker(c) {
                    true => commands.get((u32::from(c) - MARKER_BASE) as usize).map(|command| command.to_string()),
                    false => Some(if c == '%' { "%%".to_string() } else { c.to_string() }),
                })
                .collect::<Option<String>>()?;
            value::Kind::StringValue(format)
        }
        serde_json::Value::Object(object) => value::Kind::StructValue(json_struct(object, commands)?),
        serde_json::Value::Number(number) => value::Kind::StringValue(number.to_string()),
        serde_json::Value::Bool(flag) => value::Kind::StringValue(flag.to_string()),
        serde_json::Value::Null | serde_json::Value::Array(_) => return None,
    };
    Some(Value { kind: Some(kind) })
}

/// Seconds with milliseconds of a CEL duration, as nginx writes times.
fn seconds(duration: &str) -> String {
    format!("%CEL(double({duration}.getSeconds()) + double({duration}.getMilliseconds()) / 1000.0)%")
}

/// Envoy's formatter commands for one nginx variable.
fn command(name: &str) -> Result<String, String> {
    let fixed = match name {
        "remote_addr" | "proxy_protocol_addr" => "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
        "realip_remote_addr" => "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%",
        "remote_port" => "%DOWNSTREAM_REMOTE_PORT%",
        "time_local" => "%EMIT_TIME(%d/%b/%Y:%H:%M:%S %z)%",
        "time_iso8601" => "%EMIT_TIME(%Y-%m-%dT%H:%M:%S%Ez)%",
        "msec" => "%EMIT_TIME(%s.%3f)%",
        "request" => "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%",
        "request_method" => "%REQ(:METHOD)%",
        "request_uri" => "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
        "uri" | "document_uri" => "%PATH(NQ)%",
        "args" | "query_string" => "%CEL(request.query)%",
        "status" => "%RESPONSE_CODE%",
        "body_bytes_sent" => "%BYTES_SENT%",
        "bytes_sent" => "%DOWNSTREAM_WIRE_BYTES_SENT%",
        "request_length" => "%DOWNSTREAM_WIRE_BYTES_RECEIVED%",
        "host" | "http_host" | "best_http_host" => "%REQ(:AUTHORITY)%",
        "server_port" => "%DOWNSTREAM_LOCAL_PORT%",
        "server_addr" => "%DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT%",
        "server_protocol" => "%PROTOCOL%",
        "scheme" | "pass_access_scheme" => "%REQ(X-FORWARDED-PROTO)%",
        "hostname" => "%HOSTNAME%",
        "connection" => "%CONNECTION_ID%",
        "ssl_protocol" => "%DOWNSTREAM_TLS_VERSION%",
        "ssl_cipher" => "%DOWNSTREAM_TLS_CIPHER%",
        "ssl_server_name" => "%REQUESTED_SERVER_NAME%",
        "upstream_addr" => "%UPSTREAM_HOST%",
        "proxy_upstream_name" => "%UPSTREAM_CLUSTER%",
        // Set to "" by ingress-nginx for a location without a canary; Envoy's route does not say.
        "proxy_alternative_upstream_name" => "",
        "req_id" | "request_id" => "%REQ(X-REQUEST-ID)%",
        "remote_user" => return Ok(filter_state(wasm_ingress_filter::basic::REMOTE_USER_PROPERTY)),
        "request_time" => return Ok(seconds("request.duration")),
        "upstream_response_time" => return Ok(seconds("response.backend_latency")),
        // The status and body length the client got. nginx writes `-` where no upstream answered
        // (a 403 of its access module); Envoy could tell only through CEL, at a cost per request.
        "upstream_status" => "%RESPONSE_CODE%",
        "upstream_response_length" => "%BYTES_SENT%",
        _ => return prefixed(name),
    };
    Ok(fixed.to_string())
}

/// What the filter leaves in Envoy's filter state under `key`.
fn filter_state(key: &str) -> String {
    format!("%FILTER_STATE(wasm.{key}:PLAIN)%")
}

/// The filter-state key of a fact of the request's route the filter knows (see
/// `RouteTable::log_route`): `$namespace`, `$ingress_name`, `$service_name`, `$service_port`.
fn route_fact(name: &str) -> Option<&'static str> {
    wasm_ingress_filter::cluster::LOG_PROPERTIES.into_iter().find(|key| *key == name)
}

/// A route's fact, `$http_NAME`, `$sent_http_NAME`, `$arg_NAME`; anything else is refused.
fn prefixed(name: &str) -> Result<String, String> {
    if let Some(key) = route_fact(name) {
        return Ok(filter_state(key));
    }
    if let Some(header) = prefixed_header(name, "sent_http_") {
        return Ok(format!("%RESP({header})%"));
    }
    if let Some(header) = prefixed_header(name, "http_") {
        return Ok(format!("%REQ({header})%"));
    }
    if let Some(argument) = name.strip_prefix("arg_").filter(|rest| !rest.is_empty()) {
        return Ok(format!("%QUERY_PARAM({argument})%"));
    }
    Err(match name {
        "location_path" => format!("${name} is set per location by ingress-nginx; the filter does not leave it for Envoy's access log"),
        _ => format!("nginx variable ${name} is not supported in the access log"),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_ingress_nginx_s_upstreaminfo_line() {
        let text = LogFormatSettings::default().log_format_upstream.text();
        let expected = concat!(
            "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% - %FILTER_STATE(wasm.remote_user:PLAIN)% [%EMIT_TIME(%d/%b/%Y:%H:%M:%S %z)%] ",
            "\"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %BYTES_SENT% \"%REQ(referer)%\" \"%REQ(user-agent)%\" ",
            "%DOWNSTREAM_WIRE_BYTES_RECEIVED% %CEL(double(request.duration.getSeconds()) + double(request.duration.getMilliseconds()) / 1000.0)% ",
            "[%UPSTREAM_CLUSTER%] [] %UPSTREAM_HOST% %BYTES_SENT% ",
            "%CEL(double(response.backend_latency.getSeconds()) + double(response.backend_latency.getMilliseconds()) / 1000.0)% ",
            "%RESPONSE_CODE% %REQ(X-REQUEST-ID)%\n",
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn text_is_kept_with_percent_doubled_and_variables_become_commands() {
        let cases = [
            ("100% $status", "100%% %RESPONSE_CODE%\n"),
            ("${status}ok $http_X_Tenant $sent_http_content_type", "%RESPONSE_CODE%ok %REQ(x-tenant)% %RESP(content-type)%\n"),
            ("$arg_page|$args|$uri", "%QUERY_PARAM(page)%|%CEL(request.query)%|%PATH(NQ)%\n"),
            ("$time_iso8601 $msec", "%EMIT_TIME(%Y-%m-%dT%H:%M:%S%Ez)% %EMIT_TIME(%s.%3f)%\n"),
            ("no variables", "no variables\n"),
        ];
        for (nginx, envoy) in cases {
            let format = NginxLogFormat::parse(nginx).unwrap();
            assert_eq!(format.text(), envoy, "{nginx:?}");
            assert!(!format.logs_route(), "{nginx:?}");
        }
        // The route's facts come from the filter, which leaves them only when the table asks.
        let route = NginxLogFormat::parse("$namespace/$ingress_name $service_name:$service_port").unwrap();
        let expected = "%FILTER_STATE(wasm.namespace:PLAIN)%/%FILTER_STATE(wasm.ingress_name:PLAIN)% %FILTER_STATE(wasm.service_name:PLAIN)%:%FILTER_STATE(wasm.service_port:PLAIN)%\n";
        assert_eq!(route.text(), expected);
        assert!(route.logs_route());
        assert!(!LogFormatSettings::default().log_format_upstream.logs_route(), "the default line costs no host call");
    }

    #[test]
    fn variables_envoy_cannot_log_are_refused_by_name() {
        let cases = [
            ("$remote_addr $location_path", "$location_path is set per location"),
            ("$cookie_session", "$cookie_session is not supported"),
            ("$pid", "$pid is not supported"),
            ("cost: $", "not followed by a variable name"),
            ("$http_", "$http_ is not supported"),
        ];
        for (format, reason) in cases {
            let error = NginxLogFormat::parse(format).unwrap_err();
            assert!(error.contains(reason), "{format:?}: {error}");
        }
    }

    fn string_field(json: &Struct, key: &str) -> String {
        match json.fields.get(key).and_then(|v| v.kind.clone()) {
            Some(value::Kind::StringValue(text)) => text,
            other => panic!("{key}: {other:?}"),
        }
    }

    #[test]
    fn a_json_format_with_escape_json_becomes_envoy_s_json_format() {
        // ingress-nginx's documented JSON example, shortened: quoted and bare variables.
        let nginx = r#"{"time": "$time_iso8601", "remote_addr": "$proxy_protocol_addr", "request_id": "$req_id", "bytes_sent": $bytes_sent, "status": $status, "vhost": "$host", "path": "$uri?$args", "pct": "100%", "n": 1, "upstream": {"addr": "$upstream_addr"}, "quote\"d": "$status"}"#;
        let settings = LogFormatSettings { log_format_upstream: NginxLogFormat::parse(nginx).unwrap(), log_format_escape_json: true, log_format_escape_none: false };
        let Some(substitution_format_string::Format::JsonFormat(json)) = settings.format().format else { panic!("not JSON") };
        assert_eq!(string_field(&json, "time"), "%EMIT_TIME(%Y-%m-%dT%H:%M:%S%Ez)%");
        assert_eq!(string_field(&json, "status"), "%RESPONSE_CODE%");
        assert_eq!(string_field(&json, "bytes_sent"), "%DOWNSTREAM_WIRE_BYTES_SENT%");
        assert_eq!(string_field(&json, "path"), "%PATH(NQ)%?%CEL(request.query)%");
        assert_eq!(string_field(&json, "pct"), "100%%");
        assert_eq!(string_field(&json, "n"), "1");
        assert_eq!(string_field(&json, "quote\"d"), "%RESPONSE_CODE%");
        let Some(value::Kind::StructValue(upstream)) = json.fields.get("upstream").and_then(|v| v.kind.clone()) else { panic!() };
        assert_eq!(string_field(&upstream, "addr"), "%UPSTREAM_HOST%");
        assert_eq!(settings.warning(), None);
    }

    #[test]
    fn other_formats_stay_text() {
        let json = LogFormatSettings {
            log_format_upstream: NginxLogFormat::parse(r#"{"status": $status}"#).unwrap(),
            log_format_escape_json: true,
            log_format_escape_none: false,
        };
        let cases = [
            // Not asked for JSON.
            LogFormatSettings { log_format_escape_json: false, ..json.clone() },
            // escape-none wins.
            LogFormatSettings { log_format_escape_none: true, ..json.clone() },
            // Not a JSON object: logfmt, an array, a trailing comma.
            LogFormatSettings { log_format_upstream: NginxLogFormat::parse("status=$status").unwrap(), ..json.clone() },
            LogFormatSettings { log_format_upstream: NginxLogFormat::parse("[$status]").unwrap(), ..json.clone() },
            LogFormatSettings { log_format_upstream: NginxLogFormat::parse(r#"{"s": $status,}"#).unwrap(), ..json.clone() },
            // A variable in a key.
            LogFormatSettings { log_format_upstream: NginxLogFormat::parse(r#"{"$host": $status}"#).unwrap(), ..json.clone() },
        ];
        for (i, settings) in cases.iter().enumerate() {
            let format = settings.format();
            assert!(matches!(format.format, Some(substitution_format_string::Format::TextFormatSource(_))), "case {i}: {format:?}");
            // With escape-json or escape-none, nginx writes an empty value as nothing, not `-`.
            assert_eq!(format.omit_empty_values, i != 0, "case {i}");
        }
        assert!(cases[2].warning().unwrap().contains("not a JSON object"));
        assert_eq!(cases[0].warning(), None);
        assert_eq!(cases[1].warning(), None);
    }
}
