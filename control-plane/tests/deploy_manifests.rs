//! Every manifest in `deploy/` parses into its k8s-openapi type, and the pieces fit together: names
//! and references (ServiceAccount, ConfigMap, Services' selectors and ports), the control plane's
//! arguments (parsed with the real CLI), the bootstrap (equal to what `wasm-ingress bootstrap`
//! renders), the IngressClass controller, and RBAC rules equal to exactly the API access the code
//! declares (`API_ACCESS` in source/kube.rs, status.rs, events.rs, leader.rs — which the mocked
//! apiserver tests check against the requests actually sent).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{IngressClass, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use wasm_ingress::cli::{BootstrapArgs, Cli, Command, ServeArgs, DEFAULT_CONTROLLER_NAME, DEFAULT_INGRESS_CLASS};
use wasm_ingress::source::kube::{AccessScope, ApiAccess};

const NAMESPACE: &str = "wasm-ingress";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[derive(Default)]
struct Manifests {
    namespaces: Vec<Namespace>,
    service_accounts: Vec<ServiceAccount>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    ingress_classes: Vec<IngressClass>,
    config_maps: Vec<ConfigMap>,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    network_policies: Vec<NetworkPolicy>,
}

fn load() -> Manifests {
    let mut manifests = Manifests::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = serde_yaml::Value::deserialize(document).unwrap();
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_else(|| panic!("{}: a document without kind", file.display())).to_string();
            let api_version = value["apiVersion"].as_str().unwrap().to_string();
            let context = format!("{}: {kind}", file.display());
            fn typed<T: serde::de::DeserializeOwned>(value: serde_yaml::Value, context: &str) -> T {
                serde_yaml::from_value(value).unwrap_or_else(|error| panic!("{context}: {error}"))
            }
            match (api_version.as_str(), kind.as_str()) {
                ("v1", "Namespace") => manifests.namespaces.push(typed(value, &context)),
                ("v1", "ServiceAccount") => manifests.service_accounts.push(typed(value, &context)),
                ("rbac.authorization.k8s.io/v1", "ClusterRole") => manifests.cluster_roles.push(typed(value, &context)),
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => manifests.cluster_role_bindings.push(typed(value, &context)),
                ("rbac.authorization.k8s.io/v1", "Role") => manifests.roles.push(typed(value, &context)),
                ("rbac.authorization.k8s.io/v1", "RoleBinding") => manifests.role_bindings.push(typed(value, &context)),
                ("networking.k8s.io/v1", "IngressClass") => manifests.ingress_classes.push(typed(value, &context)),
                ("v1", "ConfigMap") => manifests.config_maps.push(typed(value, &context)),
                ("apps/v1", "Deployment") => manifests.deployments.push(typed(value, &context)),
                ("v1", "Service") => manifests.services.push(typed(value, &context)),
                ("networking.k8s.io/v1", "NetworkPolicy") => manifests.network_policies.push(typed(value, &context)),
                _ => panic!("{context}: unexpected {api_version} {kind} (add it to this test)"),
            }
        }
    }
    manifests
}

fn named<'a, T: kube::Resource<DynamicType = ()>>(objects: &'a [T], name: &str) -> &'a T {
    objects.iter().find(|o| o.meta().name.as_deref() == Some(name)).unwrap_or_else(|| panic!("no {} {name}", T::kind(&())))
}

fn pod_spec(deployment: &Deployment) -> &PodSpec {
    deployment.spec.template.spec.as_ref().unwrap()
}

fn container<'a>(deployment: &'a Deployment, name: &str) -> &'a Container {
    pod_spec(deployment).containers.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no container {name}"))
}

fn container_port(container: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(number) => *number,
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("container {} has no port named {name}", container.name))
            .container_port,
    }
}

fn serve_args(container: &Container) -> ServeArgs {
    let args = ["wasm-ingress".to_string()].into_iter().chain(container.args.clone().unwrap_or_default());
    match Cli::try_parse_from(args).unwrap_or_else(|error| panic!("control-plane args do not parse: {error}")) {
        Cli { command: Command::Serve(args) } => args,
        other => panic!("control plane does not run `serve`: {other:?}"),
    }
}

/// (group, resource, verb) triples a set of RBAC rules grants.
fn granted(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut triples = BTreeSet::new();
    for rule in rules {
        assert!(rule.resource_names.is_none() && rule.non_resource_urls.is_none(), "unexpected rule shape {rule:?}");
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    assert_ne!(verb, "*", "no wildcard verbs");
                    assert_ne!(resource, "*", "no wildcard resources");
                    triples.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    triples
}

fn declared(scope: AccessScope) -> BTreeSet<(String, String, String)> {
    let lists: [&[ApiAccess]; 4] = [
        wasm_ingress::source::kube::API_ACCESS,
        wasm_ingress::status::API_ACCESS,
        wasm_ingress::events::API_ACCESS,
        wasm_ingress::leader::API_ACCESS,
    ];
    lists
        .iter()
        .flat_map(|list| list.iter())
        .filter(|access| access.scope == scope)
        .flat_map(|access| access.verbs.iter().map(|verb| (access.group.to_string(), access.resource.to_string(), verb.to_string())))
        .collect()
}

#[test]
fn every_namespaced_object_is_in_our_namespace() {
    let m = load();
    assert_eq!(m.namespaces.iter().map(|n| n.metadata.name.clone().unwrap()).collect::<Vec<_>>(), vec![NAMESPACE]);
    let namespaced: Vec<(String, Option<String>)> = m
        .service_accounts
        .iter()
        .map(|o| (format!("ServiceAccount {:?}", o.metadata.name), o.metadata.namespace.clone()))
        .chain(m.roles.iter().map(|o| (format!("Role {:?}", o.metadata.name), o.metadata.namespace.clone())))
        .chain(m.role_bindings.iter().map(|o| (format!("RoleBinding {:?}", o.metadata.name), o.metadata.namespace.clone())))
        .chain(m.config_maps.iter().map(|o| (format!("ConfigMap {:?}", o.metadata.name), o.metadata.namespace.clone())))
        .chain(m.deployments.iter().map(|o| (format!("Deployment {:?}", o.metadata.name), o.metadata.namespace.clone())))
        .chain(m.services.iter().map(|o| (format!("Service {:?}", o.metadata.name), o.metadata.namespace.clone())))
        .chain(m.network_policies.iter().map(|o| (format!("NetworkPolicy {:?}", o.metadata.name), o.metadata.namespace.clone())))
        .collect();
    for (what, namespace) in namespaced {
        assert_eq!(namespace.as_deref(), Some(NAMESPACE), "{what}");
    }
}

#[test]
fn ingress_class_is_ours() {
    let m = load();
    let class = named(&m.ingress_classes, DEFAULT_INGRESS_CLASS);
    assert_eq!(class.spec.as_ref().unwrap().controller.as_deref(), Some(DEFAULT_CONTROLLER_NAME));
    let control_plane = serve_args(container(named(&m.deployments, "wasm-ingress-control-plane"), "control-plane"));
    assert_eq!(control_plane.translation.ingress_class, DEFAULT_INGRESS_CLASS);
    assert_eq!(control_plane.translation.controller_name, DEFAULT_CONTROLLER_NAME);
}

#[test]
fn rbac_grants_exactly_what_the_code_calls() {
    let m = load();
    assert_eq!(m.cluster_roles.len(), 1, "one ClusterRole");
    assert_eq!(granted(m.cluster_roles[0].rules.as_deref().unwrap_or_default()), declared(AccessScope::Cluster));
    assert_eq!(m.roles.len(), 1, "one Role (leader election)");
    assert_eq!(granted(m.roles[0].rules.as_deref().unwrap_or_default()), declared(AccessScope::OwnNamespace));

    // The Role is where the Lease is: the control plane's namespace (POD_NAMESPACE).
    let deployment = named(&m.deployments, "wasm-ingress-control-plane");
    let cp = container(deployment, "control-plane");
    let pod_namespace = cp.env.iter().flatten().find(|e| e.name == "POD_NAMESPACE").expect("POD_NAMESPACE env");
    let field = pod_namespace.value_from.as_ref().unwrap().field_ref.as_ref().unwrap();
    assert_eq!(field.field_path, "metadata.namespace");
    assert_eq!(m.roles[0].metadata.namespace, deployment.metadata.namespace);
    assert_eq!(serve_args(cp).lease_name, wasm_ingress::leader::DEFAULT_LEASE_NAME);

    // Bindings point at the roles and at the ServiceAccount the control plane runs as.
    let service_account = pod_spec(deployment).service_account_name.clone().expect("serviceAccountName");
    named(&m.service_accounts, &service_account);
    let cluster_binding = &m.cluster_role_bindings[0];
    assert_eq!((cluster_binding.role_ref.kind.as_str(), cluster_binding.role_ref.name.as_str()), ("ClusterRole", m.cluster_roles[0].metadata.name.as_deref().unwrap()));
    let binding = &m.role_bindings[0];
    assert_eq!((binding.role_ref.kind.as_str(), binding.role_ref.name.as_str()), ("Role", m.roles[0].metadata.name.as_deref().unwrap()));
    for subjects in [cluster_binding.subjects.as_ref().unwrap(), binding.subjects.as_ref().unwrap()] {
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, service_account);
        assert_eq!(subjects[0].namespace.as_deref(), Some(NAMESPACE));
    }
}

fn selects(service: &Service, deployment: &Deployment) -> bool {
    let selector = service.spec.as_ref().unwrap().selector.clone().unwrap_or_default();
    let labels: BTreeMap<String, String> =
        deployment.spec.template.metadata.as_ref().unwrap().labels.clone().unwrap_or_default();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Where `container` mounts the Secret `secret_name` (a volume of `pod`), readable by the pod's group.
fn secret_mount(pod: &PodSpec, container: &Container, secret_name: &str) -> PathBuf {
    let volume = pod
        .volumes
        .iter()
        .flatten()
        .find(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(secret_name))
        .unwrap_or_else(|| panic!("a volume of Secret {secret_name}"));
    let mode = volume.secret.as_ref().and_then(|s| s.default_mode).unwrap();
    assert_eq!(mode & 0o007, 0, "{secret_name}: not readable by others");
    assert!(pod.security_context.as_ref().and_then(|s| s.fs_group).is_some(), "fsGroup makes {secret_name} readable");
    let mount = container.volume_mounts.iter().flatten().find(|m| m.name == volume.name).unwrap_or_else(|| panic!("{secret_name} mounted"));
    PathBuf::from(&mount.mount_path)
}

#[test]
fn xds_is_mutual_tls_and_only_envoy_pods_reach_it() {
    let m = load();
    let deployment = named(&m.deployments, "wasm-ingress-control-plane");
    let cp = container(deployment, "control-plane");
    let args = serve_args(cp);
    let dir = args.xds_tls_dir.clone().expect("--xds-tls-dir in a cluster");
    assert!(!args.xds_plaintext);
    assert_eq!(secret_mount(pod_spec(deployment), cp, wasm_ingress::commands::certgen::SERVER_SECRET), dir);

    let policy = m.network_policies.iter().find(|p| {
        let selector = p.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
        selector.and_then(|s| s.match_labels.as_ref()) == pod_spec_labels(deployment).as_ref()
    });
    let spec = policy.expect("a NetworkPolicy for the control-plane pods").spec.as_ref().unwrap();
    assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_string()][..]));
    let envoy_labels = pod_spec_labels(named(&m.deployments, "wasm-ingress-envoy"));
    for rule in spec.ingress.iter().flatten() {
        let ports: Vec<String> = rule.ports.iter().flatten().filter_map(|p| p.port.as_ref()).map(|p| match p {
            IntOrString::String(name) => name.clone(),
            IntOrString::Int(n) => n.to_string(),
        }).collect();
        if ports.iter().any(|p| p == "xds" || p == &args.xds_listen.port().to_string()) {
            let from = rule.from.as_ref().expect("xDS port restricted by source");
            assert_eq!(from.len(), 1);
            assert_eq!(from[0].pod_selector.as_ref().and_then(|s| s.match_labels.as_ref()), envoy_labels.as_ref(), "only Envoy pods");
            assert!(from[0].namespace_selector.is_none());
        }
    }
}

fn pod_spec_labels(deployment: &Deployment) -> Option<BTreeMap<String, String>> {
    deployment.spec.template.metadata.as_ref().and_then(|m| m.labels.clone())
}

#[test]
fn control_plane_deployment_listens_where_probes_and_the_xds_service_point() {
    let m = load();
    let deployment = named(&m.deployments, "wasm-ingress-control-plane");
    let cp = container(deployment, "control-plane");
    let args = serve_args(cp);
    assert!(args.manifests.is_none(), "in a cluster the Kubernetes API is the source");
    assert_eq!(args.xds_listen, "0.0.0.0:18000".parse::<SocketAddr>().unwrap());
    let admin = args.admin_listen.expect("--admin-listen for the probes");
    assert!(admin.ip().is_unspecified(), "kubelet probes reach the pod IP");

    for (probe, path) in [(cp.liveness_probe.as_ref(), "/healthz"), (cp.readiness_probe.as_ref(), "/readyz")] {
        let http = probe.and_then(|p| p.http_get.as_ref()).unwrap_or_else(|| panic!("{path} probe"));
        assert_eq!(http.path.as_deref(), Some(path));
        assert_eq!(container_port(cp, &http.port), i32::from(admin.port()));
    }

    let xds = named(&m.services, "wasm-ingress-xds");
    assert!(selects(xds, deployment), "xDS Service selects the control-plane pods");
    let port = &xds.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(container_port(cp, port.target_port.as_ref().unwrap()), i32::from(args.xds_listen.port()));

    let security = cp.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(pod_spec(deployment).security_context.as_ref().unwrap().run_as_non_root, Some(true));
    let resources = cp.resources.as_ref().unwrap();
    assert!(resources.requests.as_ref().is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")));
    assert!(resources.limits.as_ref().is_some_and(|r| r.contains_key("memory")));

    // Status comes from the Envoy LoadBalancer Service.
    let status_service = args.status_service.expect("--status-service");
    assert_eq!(status_service.namespace, NAMESPACE);
    let envoy_service = named(&m.services, &status_service.name);
    assert_eq!(envoy_service.spec.as_ref().unwrap().type_.as_deref(), Some("LoadBalancer"));
}

#[test]
fn envoy_gets_the_rendered_bootstrap_and_the_filter_at_the_path_the_control_plane_announces() {
    let m = load();
    let cp_deployment = named(&m.deployments, "wasm-ingress-control-plane");
    let cp = container(cp_deployment, "control-plane");
    let args = serve_args(cp);
    let envoy_deployment = named(&m.deployments, "wasm-ingress-envoy");
    let pod = pod_spec(envoy_deployment);
    let envoy = container(envoy_deployment, "envoy");
    assert_eq!(pod.automount_service_account_token, Some(false), "Envoy needs no API access");

    // Bootstrap: the ConfigMap equals `wasm-ingress bootstrap --xds-address <xds Service>:<port>`.
    let xds = named(&m.services, "wasm-ingress-xds");
    let xds_port = xds.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port;
    let xds_address = format!("{}.{}.svc:{xds_port}", xds.metadata.name.as_deref().unwrap(), NAMESPACE);
    let envoy_args = envoy.args.clone().unwrap();
    let mounts = envoy.volume_mounts.clone().unwrap_or_default();
    // Envoy's xDS client credentials: the client Secret, mounted where the bootstrap reads them.
    let tls_dir = secret_mount(pod, envoy, wasm_ingress::commands::certgen::CLIENT_SECRET);
    let rendered = wasm_ingress::commands::bootstrap::render(&BootstrapArgs {
        xds_address,
        admin_address: "127.0.0.1:9901".parse().unwrap(),
        node_id: "wasm-ingress-envoy".into(),
        xds_tls_dir: Some(tls_dir),
        xds_server_name: None,
        max_downstream_connections: 50_000,
        max_heap_bytes: 805_306_368,
        xds_protocol: wasm_ingress::cli::XdsProtocol::Delta,
    })
    .unwrap();
    let config_path = PathBuf::from(&envoy_args[envoy_args.iter().position(|a| a == "-c").expect("-c") + 1]);
    let bootstrap_mount = mounts.iter().find(|m| config_path.starts_with(&m.mount_path)).expect("bootstrap mounted");
    let volume = pod.volumes.iter().flatten().find(|v| v.name == bootstrap_mount.name).unwrap();
    let config_map_name = volume.config_map.as_ref().expect("bootstrap from a ConfigMap").name.clone();
    let config_map = named(&m.config_maps, &config_map_name);
    let key = config_path.file_name().unwrap().to_str().unwrap();
    let stored = &config_map.data.as_ref().unwrap()[key];
    assert_eq!(
        serde_yaml::from_str::<serde_yaml::Value>(stored).unwrap(),
        serde_yaml::from_str::<serde_yaml::Value>(&rendered).unwrap(),
        "deploy/ bootstrap differs from `wasm-ingress bootstrap` output: regenerate it (see the comment in 40-envoy.yaml)"
    );

    // The .wasm: an emptyDir at --filter-wasm's folder in Envoy, filled by an init container from the
    // control-plane image that copies that same path out of the image.
    let wasm_dir = args.filter_wasm.parent().unwrap();
    let wasm_mount = mounts.iter().find(|m| Path::new(&m.mount_path) == wasm_dir).expect("filter folder mounted in Envoy");
    let wasm_volume = pod.volumes.iter().flatten().find(|v| v.name == wasm_mount.name).unwrap();
    assert!(wasm_volume.empty_dir.is_some());
    let init = pod.init_containers.iter().flatten().find(|c| c.name == "copy-filter-wasm").expect("init container");
    assert_eq!(init.image, cp.image, "the .wasm must come from the same control-plane image");
    let init_mount = init.volume_mounts.iter().flatten().find(|m| m.name == wasm_mount.name).expect("init mounts the volume");
    let command = init.command.clone().unwrap();
    let file_name = args.filter_wasm.file_name().unwrap().to_str().unwrap();
    assert_eq!(
        command,
        vec!["cp".to_string(), args.filter_wasm.display().to_string(), format!("{}/{file_name}", init_mount.mount_path)]
    );

    // The Envoy Service: 80/443 to the listeners the control plane configures.
    let envoy_service = named(&m.services, "wasm-ingress-envoy");
    assert!(selects(envoy_service, envoy_deployment));
    assert!(!selects(envoy_service, cp_deployment) && !selects(xds, envoy_deployment), "selectors are distinct");
    let ports: BTreeMap<i32, i32> = envoy_service
        .spec
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .flatten()
        .map(|p| (p.port, container_port(envoy, p.target_port.as_ref().unwrap())))
        .collect();
    assert_eq!(
        ports,
        BTreeMap::from([(80, i32::from(args.http_listen.port())), (443, i32::from(args.https_listen.port()))])
    );
    assert!(args.http_listen.ip().is_unspecified() && args.https_listen.ip().is_unspecified(), "Envoy must listen on the pod IP");
    // On the ports clients use, as nginx: X-Forwarded-Port and from-to-www redirects say 80/443.
    assert_eq!((args.http_listen.port(), args.https_listen.port()), (80, 443));
    let sysctls = pod_spec(envoy_deployment).security_context.as_ref().and_then(|s| s.sysctls.clone()).unwrap_or_default();
    assert!(sysctls.iter().any(|s| s.name == "net.ipv4.ip_unprivileged_port_start" && s.value == "0"), "ports below 1024 without root: {sysctls:?}");
    let readiness = envoy.readiness_probe.as_ref().and_then(|p| p.tcp_socket.as_ref()).expect("Envoy readiness");
    assert_eq!(container_port(envoy, &readiness.port), i32::from(args.http_listen.port()));
    assert!(envoy.image.as_deref().unwrap().ends_with("v1.40.0"), "Envoy 1.40, as the tests use");
    assert_eq!(envoy.security_context.as_ref().unwrap().read_only_root_filesystem, Some(true));
}

#[test]
fn a_terminating_envoy_keeps_serving_while_it_leaves_the_endpoints() {
    let m = load();
    let envoy_deployment = named(&m.deployments, "wasm-ingress-envoy");
    let pod = pod_spec(envoy_deployment);
    let envoy = container(envoy_deployment, "envoy");
    let sleep = envoy.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).and_then(|h| h.sleep.as_ref()).expect("a preStop sleep (no shell in the distroless image)");
    let grace = pod.termination_grace_period_seconds.unwrap_or(30);
    assert!(sleep.seconds >= 10, "long enough for endpoint removal to reach load balancers: {}", sleep.seconds);
    assert!(sleep.seconds + 10 <= grace, "the grace period ({grace} s) must outlast the sleep ({} s), or Envoy is killed", sleep.seconds);
    // Meanwhile `drain-on-stop`, stopped at once (no preStop of its own), fails Envoy's health
    // check at the admin address the bootstrap gives Envoy, so Envoy closes keep-alive connections.
    let drainer = container(envoy_deployment, "drain-on-stop");
    assert!(drainer.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()).is_none(), "SIGTERM must reach it while Envoy sleeps");
    assert_eq!(drainer.image, envoy_deployment_image(envoy_deployment, "copy-filter-wasm"), "the control plane's image");
    let args = ["wasm-ingress".to_string()].into_iter().chain(drainer.args.clone().unwrap_or_default());
    let Cli { command: Command::DrainOnStop(args) } = Cli::try_parse_from(args).unwrap() else { panic!("not drain-on-stop") };
    assert_eq!(args.envoy_admin, bootstrap_admin(&m), "Envoy's admin address");
}

/// The admin address of the bootstrap in the Envoy ConfigMap.
fn bootstrap_admin(m: &Manifests) -> SocketAddr {
    let config_map = named(&m.config_maps, "wasm-ingress-envoy-bootstrap");
    let bootstrap: serde_yaml::Value = serde_yaml::from_str(&config_map.data.as_ref().unwrap()["envoy.yaml"]).unwrap();
    let socket = &bootstrap["admin"]["address"]["socket_address"];
    format!("{}:{}", socket["address"].as_str().unwrap(), socket["port_value"].as_u64().unwrap()).parse().unwrap()
}

fn envoy_deployment_image(deployment: &Deployment, init_container: &str) -> Option<String> {
    pod_spec(deployment).init_containers.iter().flatten().find(|c| c.name == init_container).and_then(|c| c.image.clone())
}
