//! `wasm-ingress migrate (DIR | --kubeconfig PATH [--namespace NS])`: read-only. Loads the Ingresses
//! of an ingress-nginx class (default `nginx`, controller `k8s.io/ingress-nginx`, the legacy
//! annotation included), translates them exactly as `serve --ingress-class nginx` would, under the
//! ingress-nginx ConfigMap's settings when `--configmap` is given, and prints what would happen to
//! each (`migrate::report`). Exit status: 0 identical, 1 something differs, 2 something is refused
//! or broken (or the input cannot be read).

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize as _;

use crate::cli::{MigrateArgs, OutputFormat};
use crate::migrate::{self, configmap, render};
use crate::source::files::load_dir;
use crate::state::{ClusterState, ObjectKey};
use crate::translate::ingress::{translate_with_notes, unix_now, HostOwnership, NginxDefaults, TranslateOptions};

/// How long the Kubernetes source may take to list everything.
const LIST_TIMEOUT: Duration = Duration::from_secs(120);

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let reading = args.configmap.as_deref().map(read_configmap).transpose()?;
    let state = match (&args.dir, &args.kubeconfig) {
        (Some(dir), _) => from_folder(dir)?,
        (None, Some(kubeconfig)) => {
            let named = reading.as_ref().map(|r| r.defaults.add_headers.iter().chain(&r.defaults.proxy_set_headers).cloned().collect());
            from_cluster(kubeconfig, args.namespace.clone(), named.unwrap_or_default())?
        }
        (None, None) => bail!("give a manifests folder or --kubeconfig PATH"),
    };
    let options = TranslateOptions {
        ingress_class: args.ingress_class.clone(),
        controller_name: args.controller_name.clone(),
        refuse_local_endpoints: false,
        host_ownership: HostOwnership::Merge,
        default_certificate: None,
        default_backend_service: args.default_backend_service.clone(),
        now: Some(unix_now()),
        defaults: NginxDefaults {
            enable_ssl_passthrough: args.enable_ssl_passthrough,
            ..reading.as_ref().map(|r| r.defaults.clone()).unwrap_or_default()
        },
        error_page_token: crate::translate::ingress::PLACEHOLDER_ERROR_PAGE_TOKEN.into(),
        trust_forwarded_headers: false,
        proxy_protocol: false,
        log_route: false,
        default_server_logged: false,
        disable_catch_all: false,
    };
    let (translation, notes) = translate_with_notes(&state, &options);
    let scope = migrate::Scope { ingress_class: args.ingress_class, controller: args.controller_name };
    let report = migrate::report(&state, &translation, &notes, &scope, reading.map(|r| r.settings));
    match args.output {
        OutputFormat::Text => {
            let stdout = std::io::stdout();
            let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print!("{}", render::text(&report, colour));
        }
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(ExitCode::from(report.exit_code()))
}

fn from_folder(dir: &Path) -> anyhow::Result<ClusterState> {
    if !dir.is_dir() {
        bail!("{}: not a folder (or does not exist)", dir.display());
    }
    let (state, problems) = load_dir(dir);
    // Files that could not be read are not Ingresses the report can speak of: say so on stderr.
    for problem in problems {
        eprintln!("{problem}");
    }
    Ok(state)
}

/// One complete snapshot from the Kubernetes API (`kube::snapshot`), with the ConfigMaps the
/// ingress-nginx ConfigMap's `add-headers` and `proxy-set-headers` name.
fn from_cluster(kubeconfig: &Path, namespace: Option<String>, config_maps: BTreeSet<ObjectKey>) -> anyhow::Result<ClusterState> {
    use crate::source::kube as kube_source;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the Tokio runtime")?;
    runtime.block_on(async {
        let client = kube_source::client(Some(kubeconfig)).await.context("connecting to the Kubernetes API")?;
        let config = kube_source::KubeSourceConfig { config_maps, ..kube_source::KubeSourceConfig::new(namespace) };
        match kube_source::snapshot(client, config, LIST_TIMEOUT).await {
            Some(state) => Ok(ClusterState::clone(&state)),
            None => bail!("listing Ingresses, IngressClasses, Services, EndpointSlices and Secrets took over {LIST_TIMEOUT:?}"),
        }
    })
}

/// An ingress-nginx ConfigMap from a YAML file (the first document of kind ConfigMap, as
/// `kubectl get configmap -o yaml` writes it).
fn read_configmap(path: &Path) -> anyhow::Result<configmap::Reading> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_yaml::Value::deserialize(document).with_context(|| format!("{}: not YAML", path.display()))?;
        if value.get("kind").and_then(serde_yaml::Value::as_str) != Some("ConfigMap") {
            continue;
        }
        let config_map: k8s_openapi::api::core::v1::ConfigMap =
            serde_yaml::from_value(value).with_context(|| format!("{}: not a ConfigMap", path.display()))?;
        let data: BTreeMap<String, String> = config_map.data.unwrap_or_default();
        return Ok(configmap::read(&data));
    }
    bail!("{}: no ConfigMap in this file", path.display())
}
