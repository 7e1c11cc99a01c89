//! The name of an Envoy cluster, as the route table, the control plane's model and its xDS
//! resources share it. One Service port spoken to the default way is `namespace/service/port`
//! ([`ClusterName::service_port`]); the same port spoken to another way (TLS, HTTP/2, other
//! timeouts) gets a suffix, `namespace/service/port~key` ([`ClusterName::with_options`]); clusters
//! of places outside the cluster (auth services, mirrors) are named by the control plane as it
//! likes. Typed so that a cluster name is never confused with a host, a Service or a policy key;
//! it reads as the string Envoy knows it by (it derefs to `str`) and is written as one in the table.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// The filter-state keys (Envoy reads `wasm.<key>`) of the Ingress and Service a request was
/// routed by, in the order [`log_facts`] gives them: ingress-nginx's `$namespace`,
/// `$ingress_name`, `$service_name`, `$service_port`.
pub const LOG_PROPERTIES: [&str; 4] = ["namespace", "ingress_name", "service_name", "service_port"];

/// The values of [`LOG_PROPERTIES`] for a request routed by the Ingress `namespace`/`name` to
/// `cluster`; a cluster that is not a Service port's (`namespace/service/port`, perhaps with a
/// `~` suffix) gives empty Service facts.
pub fn log_facts<'a>(namespace: &'a str, name: &'a str, cluster: &'a str) -> [&'a str; 4] {
    let mut parts = without_options(cluster).splitn(3, '/');
    let (service, port) = match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(service), Some(port)) if !port.contains('/') => (service, port),
        _ => ("", ""),
    };
    [namespace, name, service, port]
}

/// A cluster name without the suffix [`ClusterName::with_options`] adds.
fn without_options(name: &str) -> &str {
    name.split_once('~').map_or(name, |(base, _)| base)
}

/// An Envoy cluster's name.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(transparent)]
pub struct ClusterName(String);

impl ClusterName {
    /// The cluster of one Service port: `namespace/service/port` (port = the Service's port number).
    pub fn service_port(namespace: &str, service: &str, port: i32) -> ClusterName {
        ClusterName(format!("{namespace}/{service}/{port}"))
    }

    /// This Service port cluster spoken to another way: `self~key`.
    pub fn with_options(&self, key: &str) -> ClusterName {
        ClusterName(format!("{}~{key}", self.0))
    }

    /// The Service port cluster (`namespace/service/port`) this one speaks to, without the
    /// suffix [`ClusterName::with_options`] adds: ingress-nginx's "upstream".
    pub fn service_port_part(&self) -> &str {
        without_options(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for ClusterName {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ClusterName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ClusterName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ClusterName {
    fn from(name: String) -> ClusterName {
        ClusterName(name)
    }
}

impl From<&str> for ClusterName {
    fn from(name: &str) -> ClusterName {
        ClusterName(name.to_owned())
    }
}

impl PartialEq<str> for ClusterName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ClusterName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_built_and_read_the_way_envoy_and_ingress_nginx_name_upstreams() {
        let base = ClusterName::service_port("shop", "cart", 80);
        assert_eq!(base, "shop/cart/80");
        let tls = base.with_options("a1b2c3");
        assert_eq!(tls.as_str(), "shop/cart/80~a1b2c3");
        assert_eq!(tls.service_port_part(), "shop/cart/80");
        assert_eq!(base.service_port_part(), "shop/cart/80");
        assert_eq!(serde_json::to_string(&tls).ok().as_deref(), Some("\"shop/cart/80~a1b2c3\""));
        let read: Option<ClusterName> = serde_json::from_str("\"wasm-ingress:auth:http:auth.example:80\"").ok();
        assert_eq!(read.as_deref(), Some("wasm-ingress:auth:http:auth.example:80"));
        let map = std::collections::BTreeMap::from([(base.clone(), 1)]);
        assert_eq!(map.get("shop/cart/80"), Some(&1));
    }

    #[test]
    fn log_facts_come_from_the_ingress_and_the_service_port_cluster() {
        let cases = [
            ("shop/cart/80", ["shop", "front", "cart", "80"]),
            ("shop/cart/80~a1b2c3", ["shop", "front", "cart", "80"]),
            ("wasm-ingress!not-found", ["shop", "front", "", ""]),
            ("wasm-ingress:auth:http:auth.example:80", ["shop", "front", "", ""]),
            ("a/b/c/d", ["shop", "front", "", ""]),
        ];
        for (cluster, facts) in cases {
            assert_eq!(log_facts("shop", "front", cluster), facts, "{cluster}");
        }
    }
}
