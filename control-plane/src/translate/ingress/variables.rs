//! nginx variables in the values people write (a `configuration-snippet`'s header values,
//! `upstream-vhost`), read into typed pieces — never text into Envoy. Three kinds:
//! - known per location at translation time, as ingress-nginx `set`s them in every location:
//!   `$namespace`, `$ingress_name`, `$service_name`, `$service_port` (as the Ingress names the
//!   port), `$location_path` (the Ingress path), `$proxy_upstream_name` and `$proxy_host`
//!   (ingress-nginx sets it to the upstream name: `<namespace>-<service>-<port>`) — written in as
//!   text;
//! - filled in by Envoy per request, from a closed list of its formatter commands:
//!   `$remote_addr`, `$remote_port`, `$server_port`, `$scheme`, `$request_id`,
//!   `$proxy_add_x_forwarded_for`, `$http_NAME`;
//! - anything else (`$host`, `$request_uri`, `$args`, …): the value is refused with its name, and
//!   the caller keeps the annotation out with a warning.
//!
//! `$name` ends at the first character that cannot be in a name; `${name}` is the braced form.
//! Pure.

use std::fmt;

use crate::model::{HeaderValue, ValuePart};
use crate::state::ObjectKey;

/// A value with nginx variables, before a location fills in its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text, or a per-request fact Envoy fills in.
    Value(ValuePart),
    Location(LocationVariable),
}

/// The variables ingress-nginx sets in each location.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocationVariable {
    Namespace,
    IngressName,
    ServiceName,
    ServicePort,
    LocationPath,
    /// `$proxy_upstream_name` (`$proxy_host` is set to it): ingress-nginx's upstream name,
    /// `<namespace>-<service>-<port>`, or `upstream-default-backend` without a Service.
    UpstreamName,
}

/// What a location knows about itself (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Location<'a> {
    pub ingress: &'a ObjectKey,
    /// The backend Service's name and port as the Ingress writes them ("" without a Service).
    pub service_name: &'a str,
    pub service_port: &'a str,
    /// The Ingress path.
    pub path: &'a str,
}

/// Which variables a value may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Location and per-request variables (header values).
    Everything,
    /// Location variables only (a value the filter sends as is, such as the upstream Host).
    LocationOnly,
}

impl Template {
    /// Read `value`; `Err` names the variable that cannot be used here.
    pub fn parse(value: &str, allowed: Allowed) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut rest = value;
        while let Some(dollar) = rest.find('$') {
            text.push_str(&rest[..dollar]);
            let (name, after) = variable_name(&rest[dollar + 1..]).ok_or_else(|| format!("{value:?}: a '$' not followed by a variable name"))?;
            let piece = variable(name).ok_or_else(|| format!("nginx variable ${name} is not supported here"))?;
            if allowed == Allowed::LocationOnly && matches!(piece, Piece::Value(_)) {
                return Err(format!("${name} is known only per request, and this value is fixed per location"));
            }
            if !text.is_empty() {
                pieces.push(Piece::Value(ValuePart::Text(std::mem::take(&mut text))));
            }
            pieces.push(piece);
            rest = after;
        }
        text.push_str(rest);
        if !text.is_empty() {
            pieces.push(Piece::Value(ValuePart::Text(text)));
        }
        Ok(Template(pieces))
    }

    /// A value without variables.
    pub fn text(value: &str) -> Template {
        Template(vec![Piece::Value(ValuePart::Text(value.to_string()))])
    }

    /// The value at `location`: its variables written in as text, the rest left to Envoy.
    pub fn resolve(&self, location: &Location<'_>) -> HeaderValue {
        let mut parts: Vec<ValuePart> = Vec::with_capacity(self.0.len());
        for piece in &self.0 {
            let part = match piece {
                Piece::Value(part) => part.clone(),
                Piece::Location(variable) => ValuePart::Text(variable.value(location)),
            };
            match (parts.last_mut(), part) {
                (Some(ValuePart::Text(previous)), ValuePart::Text(next)) => previous.push_str(&next),
                (_, part) => parts.push(part),
            }
        }
        HeaderValue(parts)
    }

    /// The value when it has no variables at all.
    pub fn literal(&self) -> Option<String> {
        self.0.iter().try_fold(String::new(), |mut text, piece| match piece {
            Piece::Value(ValuePart::Text(part)) => {
                text.push_str(part);
                Some(text)
            }
            _ => None,
        })
    }

    /// The text between the variables.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|piece| match piece {
            Piece::Value(ValuePart::Text(text)) => Some(text.as_str()),
            _ => None,
        })
    }

    /// Whether the value uses `$location_path`.
    pub fn uses_location_path(&self) -> bool {
        self.0.contains(&Piece::Location(LocationVariable::LocationPath))
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for piece in &self.0 {
            match piece {
                Piece::Value(part) => write!(f, "{}", HeaderValue(vec![part.clone()]))?,
                Piece::Location(variable) => write!(f, "${}", variable.name())?,
            }
        }
        Ok(())
    }
}

impl LocationVariable {
    fn value(self, location: &Location<'_>) -> String {
        match self {
            LocationVariable::Namespace => location.ingress.namespace.clone(),
            LocationVariable::IngressName => location.ingress.name.clone(),
            LocationVariable::ServiceName => location.service_name.to_string(),
            LocationVariable::ServicePort => location.service_port.to_string(),
            LocationVariable::LocationPath => location.path.to_string(),
            LocationVariable::UpstreamName if location.service_name.is_empty() => "upstream-default-backend".to_string(),
            LocationVariable::UpstreamName => format!("{}-{}-{}", location.ingress.namespace, location.service_name, location.service_port),
        }
    }

    fn name(self) -> &'static str {
        match self {
            LocationVariable::Namespace => "namespace",
            LocationVariable::IngressName => "ingress_name",
            LocationVariable::ServiceName => "service_name",
            LocationVariable::ServicePort => "service_port",
            LocationVariable::LocationPath => "location_path",
            LocationVariable::UpstreamName => "proxy_upstream_name",
        }
    }
}

/// The header a variable `<prefix>NAME` names (`$http_x_tenant_id`, `$sent_http_…`): `NAME` in
/// lower case with `_` as `-`, as nginx reads it; `None` for another variable or an empty `NAME`.
/// The request's `Host` is `:authority` to Envoy (HTTP/1's `Host` becomes it, and Envoy's
/// formatter finds nothing under `host`).
pub(crate) fn prefixed_header(name: &str, prefix: &str) -> Option<String> {
    let header = name.strip_prefix(prefix).filter(|header| !header.is_empty())?.to_ascii_lowercase().replace('_', "-");
    Some(if prefix == "http_" && header == "host" { ":authority".to_string() } else { header })
}

/// The name after a `$` (`name` or `{name}`) and what follows it.
pub(crate) fn variable_name(after_dollar: &str) -> Option<(&str, &str)> {
    if let Some(braced) = after_dollar.strip_prefix('{') {
        let end = braced.find('}')?;
        return Some((&braced[..end], &braced[end + 1..])).filter(|(name, _)| is_name(name));
    }
    let end = after_dollar.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after_dollar.len());
    Some((&after_dollar[..end], &after_dollar[end..])).filter(|(name, _)| is_name(name))
}

fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What a variable is, if it can be used at all.
fn variable(name: &str) -> Option<Piece> {
    let location = |variable| Some(Piece::Location(variable));
    let request = |part| Some(Piece::Value(part));
    match name {
        "namespace" => location(LocationVariable::Namespace),
        "ingress_name" => location(LocationVariable::IngressName),
        "service_name" => location(LocationVariable::ServiceName),
        "service_port" => location(LocationVariable::ServicePort),
        "location_path" => location(LocationVariable::LocationPath),
        "proxy_upstream_name" | "proxy_host" => location(LocationVariable::UpstreamName),
        "remote_addr" => request(ValuePart::ClientAddress),
        "remote_port" => request(ValuePart::ClientPort),
        "server_port" => request(ValuePart::ServerPort),
        "scheme" => request(ValuePart::RequestHeader("x-forwarded-proto".into())),
        "request_id" => request(ValuePart::RequestHeader("x-request-id".into())),
        "proxy_add_x_forwarded_for" => request(ValuePart::RequestHeader("x-forwarded-for".into())),
        _ => {
            request(ValuePart::RequestHeader(prefixed_header(name, "http_")?))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn location(ingress: &ObjectKey) -> Location<'_> {
        Location { ingress, service_name: "web", service_port: "http", path: "/api" }
    }

    #[test]
    fn location_variables_are_written_in_and_request_ones_left_to_envoy() {
        let ingress = ObjectKey::new("shop", "front");
        let cases = [
            // Linkerd's documented ingress-nginx snippet.
            ("$service_name.$namespace.svc.cluster.local:$service_port", "web.shop.svc.cluster.local:http"),
            // settings/proxy_host.go: `more_set_headers "Custom-Header: $proxy_host"`.
            ("$proxy_host / ${proxy_upstream_name}", "shop-web-http / shop-web-http"),
            ("${ingress_name}-x at $location_path", "front-x at /api"),
            ("client $remote_addr:$remote_port on $server_port", "client %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%:%DOWNSTREAM_REMOTE_PORT% on %DOWNSTREAM_LOCAL_PORT%"),
            ("$http_X_Tenant_Id/$scheme/$request_id", "%REQ(x-tenant-id)%/%REQ(x-forwarded-proto)%/%REQ(x-request-id)%"),
            ("100% $proxy_add_x_forwarded_for", "100%% %REQ(x-forwarded-for)%"),
            // fromtowwwredirect.go: `more_set_headers "ExpectedHost: $http_host"`.
            ("$http_host", "%REQ(:authority)%"),
            ("plain", "plain"),
        ];
        for (value, envoy) in cases {
            let template = Template::parse(value, Allowed::Everything).unwrap();
            assert_eq!(template.resolve(&location(&ingress)).envoy_format(), envoy, "{value:?}");
        }
        let fixed = Template::parse("$service_name.$namespace", Allowed::LocationOnly).unwrap();
        assert!(!fixed.uses_location_path());
        assert!(Template::parse("${location_path}", Allowed::LocationOnly).unwrap().uses_location_path());
        assert!(!Template::parse("location_path.example", Allowed::LocationOnly).unwrap().uses_location_path());
        assert_eq!(fixed.resolve(&location(&ingress)), HeaderValue::text("web.shop"));
    }

    #[test]
    fn unknown_and_per_request_variables_are_refused_by_name() {
        let cases = [
            ("$host", Allowed::Everything, "$host is not supported"),
            ("x$request_uri", Allowed::Everything, "$request_uri is not supported"),
            ("$", Allowed::Everything, "not followed by a variable name"),
            ("${service_name", Allowed::Everything, "not followed by a variable name"),
            ("$http_", Allowed::Everything, "$http_ is not supported"),
            ("$remote_addr.example", Allowed::LocationOnly, "known only per request"),
        ];
        for (value, allowed, reason) in cases {
            let error = Template::parse(value, allowed).unwrap_err();
            assert!(error.contains(reason), "{value:?}: {error}");
        }
    }

    #[test]
    fn templates_read_back_as_written() {
        let written = "$service_name:${service_port} from $remote_addr and $http_x_a at $http_Host";
        let template = Template::parse(written, Allowed::Everything).unwrap();
        assert_eq!(template.to_string(), "$service_name:$service_port from $remote_addr and $http_x_a at $http_host");
        assert_eq!(Template::text("a$b").to_string(), "a$b");
    }
}
