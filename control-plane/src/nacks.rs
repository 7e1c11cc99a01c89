//! Standing NACKs -> an error diagnostic on every Ingress they concern, so a rejected update shows
//! where users look (`validate`-style log line, Kubernetes Event, the diagnostics gauge) and not
//! only in the control plane's log. Pure: rejections, the translation and the state in, diagnostics
//! out.
//!
//! Which Ingresses a rejection concerns, by type: clusters and endpoints — the Ingresses routing to
//! a cluster the error detail names (Envoy names the resources it refuses), else every Ingress with
//! a route to a cluster; secrets — the Ingresses whose TLS entries use a Secret the detail names,
//! else every Ingress with a TLS entry; listeners and the filter configuration carry every host, so
//! every served Ingress.

use std::collections::BTreeSet;

use wasm_ingress_filter::table::{RouteAction, RouteTable};

use crate::model::{Diagnostic, ObjectRef, Severity, Translation};
use crate::state::{ClusterState, ObjectKey};
use crate::xds::rejections::{Rejection, Rejections};
use crate::xds::resources::ResourceType;

/// One error per (rejection, concerned Ingress).
pub fn diagnostics(rejections: &Rejections, translation: &Translation, state: &ClusterState) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for rejection in rejections.iter() {
        let message = message(rejection);
        for ingress in concerned(rejection, translation, state) {
            out.push(Diagnostic {
                object: ObjectRef { kind: "Ingress".into(), namespace: ingress.namespace, name: ingress.name },
                field: String::new(),
                message: message.clone(),
                severity: Severity::Error,
            });
        }
    }
    out.sort();
    out.dedup();
    out
}

fn message(rejection: &Rejection) -> String {
    let kept = if rejection.last_accepted_version.is_empty() {
        "nothing of this type accepted yet".to_string()
    } else {
        format!("it keeps serving version {}", rejection.last_accepted_version)
    };
    format!(
        "Envoy {} rejected the {} update {} that carries this Ingress ({kept}; changes since are not live): {}",
        rejection.node,
        rejection.resource_type.label(),
        rejection.rejected_version,
        rejection.error_detail
    )
}

fn concerned(rejection: &Rejection, translation: &Translation, state: &ClusterState) -> BTreeSet<ObjectKey> {
    match rejection.resource_type {
        ResourceType::Cluster | ResourceType::Endpoint => {
            let routes = cluster_routes(&translation.model.route_table);
            let named: BTreeSet<ObjectKey> = routes
                .iter()
                .filter(|(cluster, _)| rejection.error_detail.contains(cluster.as_str()))
                .map(|(_, ingress)| ingress.clone())
                .collect();
            if named.is_empty() { routes.into_iter().map(|(_, ingress)| ingress).collect() } else { named }
        }
        ResourceType::Secret => {
            let uses = secret_users(state, &translation.served_ingresses);
            let named: BTreeSet<ObjectKey> = uses
                .iter()
                .filter(|(secret, _)| rejection.error_detail.contains(&secret.to_string()))
                .map(|(_, ingress)| ingress.clone())
                .collect();
            if named.is_empty() { uses.into_iter().map(|(_, ingress)| ingress).collect() } else { named }
        }
        ResourceType::Listener | ResourceType::Route | ResourceType::ExtensionConfig => translation.served_ingresses.clone(),
    }
}

/// (cluster, Ingress) for every route that forwards (origins are `namespace/name: field`).
fn cluster_routes(table: &RouteTable) -> BTreeSet<(String, ObjectKey)> {
    let mut out = BTreeSet::new();
    for route in table.hosts.iter().flat_map(|h| &h.routes) {
        let (RouteAction::Forward(forward), Some(ingress)) = (&route.action, ObjectKey::of_origin(&route.origin)) else { continue };
        for cluster in forward.clusters() {
            out.insert((cluster.to_string(), ingress.clone()));
        }
    }
    out
}

/// (Secret, Ingress) for every TLS entry of a served Ingress.
fn secret_users(state: &ClusterState, served: &BTreeSet<ObjectKey>) -> BTreeSet<(ObjectKey, ObjectKey)> {
    let mut out = BTreeSet::new();
    for key in served {
        let Some(spec) = state.ingresses.get(key).and_then(|i| i.spec.as_ref()) else { continue };
        for entry in spec.tls.iter().flatten() {
            if let Some(secret) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) {
                out.insert((ObjectKey::new(key.namespace.clone(), secret), key.clone()));
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::source::files::ManifestSet;
    use crate::translate::ingress::{translate, TranslateOptions};
    use crate::xds::stream::StreamEvent;

    /// Services `web` and `api` in namespace `shop`, each with an Ingress `<name>.test`; web's has TLS.
    fn manifests() -> String {
        let pair = |name: &str, tls: &str| {
            format!(
                "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: shop}}\nspec: {{ports: [{{port: 80}}]}}\n\
                 ---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: shop}}\n\
                 spec: {{ingressClassName: wasm, {tls}rules: [{{host: {name}.test, http: {{paths: [{{path: /, pathType: Prefix, \
                 backend: {{service: {{name: {name}, port: {{number: 80}}}}}}}}]}}}}]}}\n"
            )
        };
        pair("web", "tls: [{hosts: [web.test], secretName: web-tls}], ") + &pair("api", "")
    }

    fn setup() -> (ClusterState, Translation) {
        let mut set = ManifestSet::default();
        set.apply_scan(BTreeMap::from([(PathBuf::from("a.yaml"), Ok(manifests()))]), Vec::new());
        let state = set.snapshot().state;
        let translation = translate(&state, &TranslateOptions::default());
        (state, translation)
    }

    fn concerned_by(resource_type: ResourceType, detail: &str) -> Vec<String> {
        let (state, translation) = setup();
        let mut rejections = Rejections::default();
        rejections.record(
            "envoy-0",
            &StreamEvent::Nacked {
                resource_type,
                rejected_version: "v2".into(),
                last_accepted_version: "v1".into(),
                error_detail: detail.into(),
            },
        );
        diagnostics(&rejections, &translation, &state).iter().map(|d| format!("{}/{}", d.object.namespace, d.object.name)).collect()
    }

    #[test]
    fn each_rejection_lands_on_the_ingresses_it_concerns() {
        let cases: [(ResourceType, &str, &[&str]); 6] = [
            (ResourceType::Cluster, "Error adding/updating cluster(s) shop/api/80: bad", &["shop/api"]),
            (ResourceType::Cluster, "something unspecific", &["shop/api", "shop/web"]),
            (ResourceType::Endpoint, "shop/web/80: bad endpoint", &["shop/web"]),
            (ResourceType::Secret, "secret shop/web-tls: bad key", &["shop/web"]),
            (ResourceType::ExtensionConfig, "Unable to create Wasm HTTP filter", &["shop/api", "shop/web"]),
            (ResourceType::Listener, "bad listener https", &["shop/api", "shop/web"]),
        ];
        for (resource_type, detail, expected) in cases {
            assert_eq!(concerned_by(resource_type, detail), expected, "{resource_type:?} {detail}");
        }
    }

    #[test]
    fn the_diagnostic_says_what_envoy_keeps_serving() {
        let (state, translation) = setup();
        let mut rejections = Rejections::default();
        rejections.record(
            "envoy-0",
            &StreamEvent::Nacked {
                resource_type: ResourceType::Cluster,
                rejected_version: "v2".into(),
                last_accepted_version: "v1".into(),
                error_detail: "shop/api/80: bad".into(),
            },
        );
        let lines: Vec<String> = diagnostics(&rejections, &translation, &state).iter().map(ToString::to_string).collect();
        assert_eq!(lines, ["error: Ingress shop/api: Envoy envoy-0 rejected the cds update v2 that carries this Ingress (it keeps serving version v1; changes since are not live): shop/api/80: bad"]);
        assert!(diagnostics(&Rejections::default(), &translation, &state).is_empty());
    }
}
