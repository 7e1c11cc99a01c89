//! An ExternalName Service's `externalName`, checked as ingress-nginx checks it
//! (`getEndpointsFromSlices`): an IP address, or a DNS name to look up (`serve` does, see
//! `source::external_names`); `localhost`, loopback addresses and anything else are refused.
//! Pure; shared by the lookup stage and translation's diagnostics.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The `externalName` of a Service of type ExternalName.
pub fn of(service: &Service) -> Option<&str> {
    let spec = service.spec.as_ref().filter(|spec| spec.type_.as_deref() == Some("ExternalName"))?;
    Some(spec.external_name.as_deref().unwrap_or_default())
}

/// What an `externalName` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP address written as the name.
    Address(IpAddr),
    /// A DNS name to look up (without a trailing dot).
    Name(String),
}

/// The `externalName` checked as ingress-nginx checks it; `Err`: why it is refused.
pub fn target(external_name: &str) -> Result<Target, String> {
    let name = external_name.strip_suffix('.').unwrap_or(external_name);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return match ip.is_loopback() {
            true => Err(format!("{external_name:?} is a loopback address: refused, as ingress-nginx does")),
            false => Ok(Target::Address(ip)),
        };
    }
    if name.eq_ignore_ascii_case("localhost") {
        return Err(format!("{external_name:?} is localhost: refused, as ingress-nginx does"));
    }
    if !dns_subdomain(name) {
        return Err(format!("{external_name:?} is neither an IP address nor a DNS name (RFC 1123 subdomain)"));
    }
    Ok(Target::Name(name.to_string()))
}

/// Kubernetes' `IsDNS1123Subdomain`: at most 253 characters, dot-separated labels of lower-case
/// letters, digits and `-` that start and end with a letter or digit.
fn dns_subdomain(name: &str) -> bool {
    let label_ok = |label: &str| {
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        edge(label.chars().next())
            && edge(label.chars().last())
            && label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok)
}

/// The port an Ingress backend names on an ExternalName Service, as ingress-nginx's
/// `externalNamePorts` finds it: the Service's port of that name or number, else, for a number,
/// that number itself (an ExternalName Service needs no ports).
pub(super) fn port(ports: &[ServicePort], number: Option<i32>, name: Option<&str>) -> Option<ServicePort> {
    let found = ports.iter().find(|p| match (number, name) {
        (Some(number), _) => p.port == number,
        (None, Some(name)) => p.name.as_deref() == Some(name),
        (None, None) => false,
    });
    match found {
        Some(port) => Some(port.clone()),
        None => Some(ServicePort { port: number.filter(|n| *n > 0)?, ..ServicePort::default() }),
    }
}

/// The port an ExternalName Service port is reached on: its numeric `targetPort`, else its `port`
/// (a named target port names nothing: there are no Pods), as ingress-nginx does.
pub(super) fn target_port(port: &ServicePort) -> Option<u16> {
    let target = match port.target_port.as_ref() {
        Some(IntOrString::Int(n)) if *n > 0 => *n,
        _ => port.port,
    };
    u16::try_from(target).ok().filter(|p| *p != 0)
}
