//! Kubernetes API access in RBAC terms: what each module declares it does ([`ApiAccess`], from
//! which `deploy/`'s Roles are checked), and what one HTTP request to the API server needs granted
//! ([`RequestAccess`], so tests can hold every request the code sends against the declarations).

/// One kind of Kubernetes API access the control plane makes; `deploy/` RBAC must grant exactly the
/// union of every module's list (checked by `tests/deploy_manifests.rs`, and each request the code
/// sends in the mocked-apiserver tests is checked against these lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiAccess {
    /// API group (`""` for core).
    pub group: &'static str,
    /// Plural resource, with `/subresource` if any (`ingresses/status`).
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// Where the access happens: the whole cluster (ClusterRole), or only the control plane's own
    /// namespace (Role).
    pub scope: AccessScope,
}

/// Where an [`ApiAccess`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessScope {
    /// Any namespace (or a cluster-scoped resource): needs a ClusterRole.
    Cluster,
    /// Only the control plane's own namespace: a Role is enough.
    OwnNamespace,
}

/// One request to the API server in RBAC terms: the verb and resource a Role must grant for it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestAccess {
    /// API group (`""` for core).
    pub group: String,
    /// Plural resource, with `/subresource` if any (`ingresses/status`).
    pub resource: String,
    pub verb: &'static str,
    /// The namespace of a namespaced request (`/namespaces/NS/...`); `None` across namespaces.
    pub namespace: Option<String>,
}

impl RequestAccess {
    /// The access `method` on `path` needs (`watch`: the query has `watch=true`); `None` when
    /// `path` is not a resource path of the API or the method is not one RBAC names.
    pub fn of(method: &str, path: &str, watch: bool) -> Option<RequestAccess> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match segments.as_slice() {
            ["api", _version, rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            _ => return None,
        };
        let (namespace, rest) = match rest {
            ["namespaces", namespace, rest @ ..] if !rest.is_empty() => (Some((*namespace).to_string()), rest),
            _ => (None, rest),
        };
        let (resource, named) = match rest {
            [resource] => ((*resource).to_string(), false),
            [resource, _name] => ((*resource).to_string(), true),
            [resource, _name, subresource] => (format!("{resource}/{subresource}"), true),
            _ => return None,
        };
        let verb = match (method, named) {
            ("GET", _) if watch => "watch",
            ("GET", false) => "list",
            ("GET", true) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            _ => return None,
        };
        Some(RequestAccess { group: group.to_string(), resource, verb, namespace })
    }
}

#[cfg(test)]
mod tests {
    use super::RequestAccess;

    /// (group, resource, verb, namespace).
    type Expected = Option<(&'static str, &'static str, &'static str, Option<&'static str>)>;

    #[test]
    fn a_request_maps_to_the_verb_and_resource_rbac_names() {
        let cases: &[(&str, &str, bool, Expected)] = &[
            ("GET", "/apis/networking.k8s.io/v1/ingresses", false, Some(("networking.k8s.io", "ingresses", "list", None))),
            ("GET", "/apis/networking.k8s.io/v1/ingresses", true, Some(("networking.k8s.io", "ingresses", "watch", None))),
            ("GET", "/api/v1/namespaces/shop/secrets", true, Some(("", "secrets", "watch", Some("shop")))),
            ("GET", "/api/v1/namespaces/ops/services/envoy", false, Some(("", "services", "get", Some("ops")))),
            (
                "PATCH",
                "/apis/networking.k8s.io/v1/namespaces/shop/ingresses/cart/status",
                false,
                Some(("networking.k8s.io", "ingresses/status", "patch", Some("shop"))),
            ),
            ("POST", "/apis/events.k8s.io/v1/namespaces/shop/events", false, Some(("events.k8s.io", "events", "create", Some("shop")))),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/ops/leases/wasm-ingress",
                false,
                Some(("coordination.k8s.io", "leases", "update", Some("ops"))),
            ),
            // A namespace object itself is the cluster-scoped resource `namespaces`.
            ("GET", "/api/v1/namespaces/shop", false, Some(("", "namespaces", "get", None))),
            ("GET", "/version", false, None),
            ("OPTIONS", "/api/v1/services", false, None),
            ("GET", "/api/v1/namespaces/a/services/b/c/d", false, None),
        ];
        for (method, path, watch, expected) in cases {
            let got = RequestAccess::of(method, path, *watch);
            let got = got.as_ref().map(|a| (a.group.as_str(), a.resource.as_str(), a.verb, a.namespace.as_deref()));
            assert_eq!(got, *expected, "{method} {path} watch={watch}");
        }
    }
}
