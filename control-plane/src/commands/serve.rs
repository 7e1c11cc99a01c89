//! `wasm-ingress serve`: wire a source, translation and the servers together.
//!
//! Source (`--manifests DIR`: the watched folder; else the Kubernetes API) -> on every new state:
//! `translate::ingress` -> `translate::envoy` -> `xds::cache` (an identical result publishes
//! nothing) -> ADS streams. Diagnostics are logged once each when they appear (and when they go
//! away), not on every rebuild. Also serves `/healthz`, `/readyz`, `/metrics` on `--admin-listen`.
//! SIGINT/SIGTERM: stop taking updates, end the ADS streams, stop the servers.
//!
//! No translation or protocol logic lives here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use wasm_ingress_filter::cluster::ClusterName;

use crate::cli::ServeArgs;
use crate::metrics::Metrics;
use crate::model::{Diagnostic, Model, Severity, UpstreamCluster};
use crate::source::files::{self, SourceSnapshot};
use crate::state::ObjectKind;
use crate::translate::clusters;
use crate::translate::envoy::{self, ListenerSettings};
use crate::translate::ingress::{self, TranslateOptions};
use crate::xds::cache::{Snapshot, SnapshotCache};
use crate::xds::rejections::Rejections;
use crate::xds::resources::{self, ResourceType};

/// How long shutdown waits for the servers to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wasm-ingress")
        .build()
        .context("starting the Tokio runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr; `RUST_LOG` overrides the default `info`.
pub(super) fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// Everything a rebuild needs besides the source snapshot.
struct Builder {
    options: TranslateOptions,
    settings: ListenerSettings,
    cache: SnapshotCache,
    metrics: Arc<Metrics>,
    ready: watch::Sender<bool>,
    /// Diagnostics already logged.
    reported: BTreeSet<Diagnostic>,
    /// Kubernetes source only (closed otherwise): each translation, for the leader's status and Events.
    translated: watch::Sender<Option<crate::status::TranslatedState>>,
    /// The NACKs standing now (from the ADS streams).
    rejections: watch::Receiver<Rejections>,
    /// The last translation, to report NACKs against when they change.
    last: Option<Built>,
}

/// How a rebuild made its translation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rebuild {
    /// Only EndpointSlices changed: the last translation with new endpoints, EDS alone pushed.
    EndpointsOnly,
    /// Only Ingresses changed: the hosts they touch translated again and spliced into the last
    /// translation (see `translate::ingress::incremental`).
    Spliced,
    /// A full translation of the source snapshot.
    Translated,
}

impl Rebuild {
    fn label(self) -> &'static str {
        match self {
            Rebuild::EndpointsOnly => "endpoints only",
            Rebuild::Spliced => "hosts spliced",
            Rebuild::Translated => "translated",
        }
    }
}

/// The clusters of `model` whose CDS and EDS resources `served` already holds, built from an equal
/// cluster (`same`: the cluster is the one the last translation had — endpoint-only changes are
/// applied to it, so it is what `served` was built from — with the same settings). A route change
/// keeps them as they are instead of building, encoding and hashing 10 000 clusters again.
fn served_clusters<'m>(model: &'m Model, served: &Snapshot, same: impl Fn(&ClusterName, &UpstreamCluster) -> bool) -> BTreeSet<&'m str> {
    let served_has = |t, name: &str| served.resource_hash(t, name).is_some();
    model
        .clusters
        .iter()
        .filter(|(name, cluster)| same(name, cluster))
        .filter(|(name, _)| served_has(ResourceType::Cluster, name) && served_has(ResourceType::Endpoint, name))
        .map(|(name, _)| name.as_str())
        .collect()
}

/// One translation and what it was made from.
struct Built {
    source: Arc<SourceSnapshot>,
    translation: Arc<crate::model::Translation>,
    /// What the Kubernetes writers get (made once per translation): the state and the Ingresses
    /// whose status is ours (an endpoint change keeps the same ones).
    for_writers: Option<(Arc<crate::state::ClusterState>, Arc<BTreeSet<crate::state::ObjectKey>>)>,
}

impl Builder {
    /// Translate one source snapshot and publish it if it differs from what is served. An
    /// EndpointSlice-only change that routing does not depend on is applied to the last
    /// translation instead, and pushes EDS alone (see `translate::ingress::endpoints`).
    fn rebuild(&mut self, source: &Arc<SourceSnapshot>) {
        let started = Instant::now();
        let (translation, snapshot, how) = match self.endpoints_only(source) {
            Some((translation, snapshot)) => (translation, snapshot, Rebuild::EndpointsOnly),
            None => {
                // Certificates are checked for expiry against the time of each translation.
                let options = TranslateOptions { now: Some(ingress::unix_now()), ..self.options.clone() };
                let served = self.cache.current();
                let (translation, how, changed) = match self.splice(source, &options) {
                    Ok((translation, changed)) => (translation, Rebuild::Spliced, Some(changed)),
                    Err(why) => {
                        tracing::debug!(why, "translating everything");
                        // Kept as a copy: the translation's own allocations sit among the freed
                        // ones of translating, and later splices change it in place, so the
                        // allocator could not give those pages back (at 10 000 Ingresses the
                        // control plane ended 30 MiB larger without the copy).
                        let translated = ingress::translate(&source.state, &options);
                        (Arc::new(translated.clone()), Rebuild::Translated, None)
                    }
                };
                let kept = match &changed {
                    Some(changed) => served_clusters(&translation.model, &served, |name, _| !changed.contains(name)),
                    None => {
                        let last = self.last.as_ref().map(|last| &last.translation.model.clusters);
                        served_clusters(&translation.model, &served, |name, cluster| last.and_then(|clusters| clusters.get(name)) == Some(cluster))
                    }
                };
                let translated = started.elapsed();
                let envoy_resources = envoy::build_except(&translation.model, &self.settings, |name| kept.contains(name));
                let built = started.elapsed();
                let kept = kept.into_iter().collect::<Vec<_>>();
                let kept = BTreeMap::from([(ResourceType::Cluster, kept.clone()), (ResourceType::Endpoint, kept)]);
                let snapshot = Snapshot::new_keeping(resources::by_type(&envoy_resources), &served, &kept);
                tracing::debug!(?translated, ?built, snapshot = ?started.elapsed(), "translated, Envoy resources built, snapshot encoded");
                (translation, snapshot, how)
            }
        };
        self.metrics.observe_translation(started.elapsed());
        self.metrics.count_rebuild(how.label());
        self.metrics.ingresses_served.set(i64::try_from(translation.served_ingresses.len()).unwrap_or(i64::MAX));
        self.metrics.ingresses_denied.set(i64::try_from(translation.denied_ingresses.len()).unwrap_or(i64::MAX));
        let for_writers = (!self.translated.is_closed()).then(|| {
            let same_loaded = self.last.as_ref().and_then(|last| last.for_writers.as_ref()).filter(|_| how == Rebuild::EndpointsOnly);
            let loaded = match same_loaded {
                Some((_, loaded)) => Arc::clone(loaded),
                None => Arc::new(translation.loaded_ingresses.clone()),
            };
            (Arc::new(source.state.clone()), loaded)
        });
        self.last = Some(Built { source: Arc::clone(source), translation: Arc::clone(&translation), for_writers });
        self.publish_diagnostics();
        tracing::debug!(elapsed = ?started.elapsed(), "diagnostics published");

        let versions: Vec<String> = resources::ResourceType::ALL
            .into_iter()
            .map(|t| format!("{}={}", t.label(), snapshot.version(t).unwrap_or("")))
            .collect();
        let changed = self.cache.update(snapshot);
        if changed.is_empty() {
            tracing::debug!(how = how.label(), elapsed = ?started.elapsed(), "rebuild: nothing changed, nothing pushed");
        } else {
            let changed: Vec<&str> = changed.iter().map(|t| t.label()).collect();
            tracing::info!(
                how = how.label(),
                changed = %changed.join(","),
                versions = %versions.join(" "),
                clusters = translation.model.clusters.len(),
                hosts = translation.model.route_table.hosts.len(),
                tls_servers = translation.model.tls_servers.len(),
                ingresses = translation.served_ingresses.len(),
                elapsed = ?started.elapsed(),
                "new configuration published"
            );
            self.metrics.snapshots_published.inc();
            self.metrics.set_snapshot_versions(&self.cache.current());
        }
        self.ready.send_replace(true);
    }

    /// The last translation with the hosts that `source`'s Ingress changes touch translated again,
    /// spliced into it in place, and the clusters the splice added or replaced (`Err`: why
    /// everything must be translated; the last translation's clusters are then intact, the rest of
    /// it may not be, and it is replaced).
    fn splice(&mut self, source: &SourceSnapshot, options: &TranslateOptions) -> Result<(Arc<crate::model::Translation>, BTreeSet<ClusterName>), ingress::incremental::FullBecause> {
        let last = self.last.as_mut().ok_or("first translation")?;
        // Copied first if shared (never in `serve` today).
        let translation = Arc::make_mut(&mut last.translation);
        let changed = ingress::incremental::retranslate_in_place(translation, &last.source.state, &source.state, options)?;
        Ok((Arc::clone(&last.translation), changed))
    }

    /// The last translation with `source`'s endpoints, and the served snapshot with those
    /// clusters' endpoints replaced, when only EndpointSlices changed and no Service port gained
    /// its first or lost its last ready endpoint; `None`: translate.
    fn endpoints_only(&mut self, source: &SourceSnapshot) -> Option<(Arc<crate::model::Translation>, Snapshot)> {
        let last = self.last.as_mut()?;
        if last.source.state.changed_kinds(&source.state) != BTreeSet::from([ObjectKind::EndpointSlice]) {
            return None;
        }
        let started = Instant::now();
        let refuse_local = self.options.refuse_local_endpoints;
        let (before, after) = (&last.source.state.endpoint_slices, &source.state.endpoint_slices);
        let reread = ingress::endpoints::reread(&last.translation.endpoint_reads, before, after, refuse_local)?;
        let reread_took = started.elapsed();
        // Updated in place unless the Kubernetes status writers still hold it.
        let translation = Arc::make_mut(&mut last.translation);
        let changed = reread.apply(translation);
        let applied = started.elapsed();
        let assignments = changed
            .iter()
            .filter_map(|name| translation.model.clusters.get(name))
            .map(|cluster| resources::endpoint(clusters::load_assignment(cluster)))
            .collect();
        let snapshot = self.cache.current().replacing(resources::ResourceType::Endpoint, assignments);
        tracing::debug!(?reread_took, ?applied, replaced = ?started.elapsed(), clusters = changed.len(), "endpoints only");
        Some((Arc::clone(&last.translation), snapshot))
    }

    /// Report the last translation's diagnostics plus those of the standing NACKs: log, gauge, and
    /// (Kubernetes) the leader's Events. Called after each rebuild and whenever the NACKs change.
    fn publish_diagnostics(&mut self) {
        let Some(built) = &self.last else { return };
        let rejected = crate::nacks::diagnostics(&self.rejections.borrow_and_update(), &built.translation, &built.source.state);
        let mut diagnostics: Vec<Diagnostic> =
            built.source.diagnostics.iter().chain(&built.translation.diagnostics).chain(&rejected).cloned().collect();
        diagnostics.sort();
        diagnostics.dedup();
        let diagnostics = Arc::new(diagnostics);
        let translated = built.for_writers.as_ref().map(|(state, loaded)| crate::status::TranslatedState {
            state: Arc::clone(state),
            addressed_ingresses: Arc::clone(loaded),
            diagnostics: Arc::clone(&diagnostics),
        });
        self.report(&diagnostics);
        self.metrics.set_diagnostics(&diagnostics);
        if let Some(translated) = translated {
            self.translated.send_replace(Some(translated));
        }
    }

    /// Log each diagnostic once when it appears and once when it is gone (a problem many objects
    /// share as one line: see `report`).
    fn report(&mut self, diagnostics: &[Diagnostic]) {
        let current: BTreeSet<Diagnostic> = diagnostics.iter().cloned().collect();
        for (severity, line) in crate::report::lines(current.difference(&self.reported)) {
            match severity {
                Severity::Error => tracing::error!("{line}"),
                Severity::Warning => tracing::warn!("{line}"),
            }
        }
        for (_, line) in crate::report::lines(self.reported.difference(&current)) {
            tracing::info!("resolved: {line}");
        }
        self.reported = current;
    }
}

/// Where cluster state comes from: a stream of complete snapshots (`None` until the first).
struct Feed {
    updates: watch::Receiver<Option<Arc<SourceSnapshot>>>,
    task: JoinHandle<()>,
    /// The stages after the source (see [`Feed::resolving_external_names`]).
    stages: Vec<JoinHandle<()>>,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
        self.stages.iter().for_each(JoinHandle::abort);
    }
}

impl Feed {
    /// This feed with the ExternalName Services' addresses looked up and merged in (see
    /// `source::external_names`).
    fn resolving_external_names(mut self, settings: crate::source::external_names::Settings) -> Feed {
        let (updates, stage) = crate::source::external_names::spawn(self.updates.clone(), settings);
        self.updates = updates;
        self.stages.push(stage);
        self
    }
}

/// The manifests folder, watched.
fn folder_feed(dir: PathBuf) -> anyhow::Result<Feed> {
    let folder = files::watch(dir.clone()).with_context(|| format!("watching manifests folder {}", dir.display()))?;
    let mut source = folder.updates.clone();
    let first = source.borrow_and_update().clone();
    let (sender, updates) = watch::channel(Some(first));
    let task = tokio::spawn(async move {
        let _folder = folder; // watching stops when this task ends
        while source.changed().await.is_ok() {
            let snapshot = source.borrow_and_update().clone();
            if sender.send(Some(snapshot)).is_err() {
                break;
            }
        }
    });
    Ok(Feed { updates, task, stages: Vec::new() })
}

/// What the Kubernetes source watches: `--namespace`, and the ConfigMaps the flags name.
fn kube_source_config(args: &ServeArgs) -> crate::source::kube::KubeSourceConfig {
    let nginx = &args.translation.nginx;
    let config_maps = nginx.add_headers.iter().chain(&nginx.proxy_set_headers).cloned().collect();
    crate::source::kube::KubeSourceConfig { config_maps, ..crate::source::kube::KubeSourceConfig::new(args.namespace.clone()) }
}

/// The Kubernetes API: watchers -> snapshots (none until every initial list is complete). Also
/// leader election, and the leader writing Ingress status and Events from each translation.
async fn kube_feed(
    args: &ServeArgs,
    translated: watch::Receiver<Option<crate::status::TranslatedState>>,
) -> anyhow::Result<Feed> {
    use crate::{events, leader, source::kube as kube_source, status};
    let client = kube_source::client(args.kubeconfig.as_deref())
        .await
        .context("Kubernetes source (no --manifests given): cannot configure a Kubernetes client")?;
    let kube_source::KubeSource { state: mut cluster, mut ready, task: watch_task } =
        kube_source::spawn(client.clone(), kube_source_config(args));
    let identity = leader::default_identity();
    let lease = leader::LeaseConfig::new(args.leader_election_namespace.clone(), args.lease_name.clone(), identity.clone());
    tracing::info!(%identity, namespace = %lease.namespace, lease = %lease.name, "leader election");
    let (is_leader, election) = leader::spawn(client.clone(), lease);
    let address = status::StatusAddressSource::from_flags(args.status_address.as_deref(), args.status_service.as_ref());
    if address == status::StatusAddressSource::Disabled {
        tracing::info!("neither --status-address nor --status-service: Ingress status is not written");
    }
    let status_writer = status::StatusWriter::new(client.clone(), address);
    // Our own name even when adopting another controller's class (`--controller-name
    // k8s.io/ingress-nginx`): Events must not claim to come from ingress-nginx.
    let reporter = events::Reporter { controller: crate::cli::DEFAULT_CONTROLLER_NAME.into(), instance: identity };
    let event_publisher = events::EventPublisher::new(client, reporter, events::DEFAULT_EVENTS_PER_MINUTE);
    let writers =
        tokio::spawn(status::run_writers(translated, is_leader, status_writer, event_publisher, status::WRITERS_RESYNC));
    let (sender, updates) = watch::channel(None);
    let task = tokio::spawn(async move {
        struct AbortOnDrop(Vec<JoinHandle<()>>);
        impl Drop for AbortOnDrop {
            fn drop(&mut self) {
                self.0.iter().for_each(JoinHandle::abort);
            }
        }
        let _tasks = AbortOnDrop(vec![watch_task, election, writers]);
        if ready.wait_for(|ready| *ready).await.is_err() {
            return;
        }
        loop {
            let state = cluster.borrow_and_update().clone();
            let snapshot = SourceSnapshot { state: (*state).clone(), diagnostics: Vec::new() };
            if sender.send(Some(Arc::new(snapshot))).is_err() || cluster.changed().await.is_err() {
                break;
            }
        }
    });
    Ok(Feed { updates, task, stages: Vec::new() })
}

/// Envoy resolves a relative `--filter-wasm` from its own working directory; make it absolute
/// when the file is visible here, and warn when it is not (Envoy may see another file system).
fn filter_wasm_for_envoy(path: &Path) -> String {
    if path.is_file() {
        if let Ok(absolute) = std::path::absolute(path) {
            return absolute.display().to_string();
        }
    } else {
        tracing::warn!(path = %path.display(), "--filter-wasm is not a file here; Envoy must find it at that path");
    }
    path.display().to_string()
}

async fn bind(address: std::net::SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} ({what})"))
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

/// The ADS server's protection. SDS carries every TLS private key, so with the Kubernetes API
/// source mutual TLS is required (`--xds-tls-dir`) unless `--xds-plaintext` accepts the risk; a
/// manifests folder on a non-loopback address without TLS is served with a warning.
fn xds_server_options(args: &ServeArgs) -> anyhow::Result<crate::xds::server::ServerOptions> {
    let tls = match &args.xds_tls_dir {
        Some(dir) => Some(xds_tls_config(dir)?),
        None if args.manifests.is_none() && !args.xds_plaintext => anyhow::bail!(
            "--xds-tls-dir is required with the Kubernetes API source: ADS hands every TLS private key to whoever connects \
             (make credentials with `wasm-ingress certgen`; --xds-plaintext to serve without TLS anyway)"
        ),
        None => {
            if !args.xds_listen.ip().is_loopback() {
                tracing::warn!(address = %args.xds_listen, "ADS is served in plaintext on a non-loopback address: anyone who reaches it can read every TLS private key (use --xds-tls-dir)");
            }
            None
        }
    };
    Ok(crate::xds::server::ServerOptions { tls, max_streams: args.xds_max_streams, max_request_bytes: args.xds_max_request_bytes })
}

/// `ca.crt`, `tls.crt`, `tls.key` from `dir`: serve with that certificate, require client
/// certificates signed by that CA.
fn xds_tls_config(dir: &std::path::Path) -> anyhow::Result<tonic::transport::ServerTlsConfig> {
    use crate::commands::certgen::{CA_FILE, CERT_FILE, KEY_FILE};
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).with_context(|| format!("--xds-tls-dir: reading {}", path.display()))
    };
    let (ca, cert, key) = (read(CA_FILE)?, read(CERT_FILE)?, read(KEY_FILE)?);
    Ok(tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(cert, key))
        .client_ca_root(tonic::transport::Certificate::from_pem(ca))
        .client_auth_optional(false))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if let Some(warning) = args.edge.log_format.warning() {
        tracing::warn!("{warning}");
    }
    let settings = ListenerSettings {
        http_address: args.http_listen,
        https_address: args.https_listen,
        filter_wasm: filter_wasm_for_envoy(&args.filter_wasm),
        edge: args.edge.clone(),
        fallback_certificate: Some(crate::controller_certificate::ControllerCertificate::generate()?),
    };
    let options = crate::translate::ingress::TranslateOptions {
        error_page_token: crate::translate::ingress::random_error_page_token()?,
        trust_forwarded_headers: args.edge.trusted_proxy_hops > 0,
        proxy_protocol: args.edge.use_proxy_protocol,
        log_route: args.edge.log_format.log_format_upstream.logs_route(),
        default_server_logged: args.edge.enable_access_log_for_default_backend,
        ..args.translation.options(args.refuse_local_endpoints.unwrap_or(args.manifests.is_none()))?
    };
    let metrics = Arc::new(Metrics::new());
    let cache = SnapshotCache::new();
    let (ready, ready_rx) = watch::channel(false);
    let (stop, stopped) = watch::channel(false);
    let wait_stop = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        }
    };

    let xds_options = xds_server_options(&args)?;
    // Bind before anything else, so a taken port fails the command at once.
    let xds_listener = bind(args.xds_listen, "--xds-listen").await?;
    let admin_listener = match args.admin_listen {
        Some(address) => Some(bind(address, "--admin-listen").await?),
        None => None,
    };
    let (translated, translated_rx) = watch::channel(None);
    let mut feed = match &args.manifests {
        Some(dir) => {
            drop(translated_rx); // no status or Events for a manifests folder
            folder_feed(dir.clone())?
        }
        None => kube_feed(&args, translated_rx).await?,
    }
    .resolving_external_names(crate::source::external_names::Settings {
        refuse_local: options.refuse_local_endpoints,
        disabled: args.disable_svc_external_name,
    });

    let mutual_tls = xds_options.tls.is_some();
    let (rejections, rejections_rx) = watch::channel(Rejections::default());
    let rejections = Arc::new(rejections);
    let xds_server = tokio::spawn(crate::xds::server::serve(
        xds_listener,
        cache.subscribe(),
        Arc::clone(&metrics),
        Arc::clone(&rejections),
        xds_options,
        wait_stop(),
    ));
    tracing::info!(address = %args.xds_listen, mutual_tls, "ADS server listening");
    let admin_server = admin_listener.map(|listener| {
        tracing::info!(address = %args.admin_listen.map(|a| a.to_string()).unwrap_or_default(), "admin server listening (/healthz, /readyz, /metrics)");
        tokio::spawn(crate::admin::serve(listener, ready_rx.clone(), Arc::clone(&metrics), rejections_rx.clone(), wait_stop()))
    });
    tracing::info!(
        source = %args.manifests.as_ref().map(|d| d.display().to_string()).unwrap_or_else(|| "Kubernetes API".into()),
        http = %settings.http_address,
        https = %settings.https_address,
        filter_wasm = %settings.filter_wasm,
        ingress_class = %options.ingress_class,
        "serving"
    );

    let mut builder = Builder {
        options,
        settings,
        cache,
        metrics,
        ready,
        reported: BTreeSet::new(),
        translated,
        rejections: rejections_rx.clone(),
        last: None,
    };
    let mut nacks = rejections_rx;
    feed.updates.mark_changed();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            changed = feed.updates.changed() => {
                if changed.is_err() {
                    tracing::error!("the source stopped; no more updates (serving the last configuration until shutdown)");
                    shutdown.as_mut().await;
                    break;
                }
                let latest = feed.updates.borrow_and_update().clone();
                if let Some(snapshot) = latest {
                    builder.rebuild(&snapshot);
                }
            }
            changed = nacks.changed() => {
                if changed.is_ok() {
                    builder.publish_diagnostics();
                }
            }
            () = &mut shutdown => break,
        }
    }

    tracing::info!("shutting down");
    drop(feed);
    // Closing the snapshot channel ends every ADS stream; then the servers stop.
    drop(builder);
    let _ = stop.send(true);
    let finished = tokio::time::timeout(SHUTDOWN_GRACE, async {
        if let Ok(Err(error)) = xds_server.await {
            tracing::error!(%error, "ADS server error");
        }
        if let Some(admin_server) = admin_server {
            if let Ok(Err(error)) = admin_server.await {
                tracing::error!(%error, "admin server error");
            }
        }
    })
    .await;
    if finished.is_err() {
        tracing::warn!("servers did not stop within {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::source::files::ManifestSet;
    use crate::xds::resources::ResourceType;

    const APP: &str = r#"
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: wasm}
spec: {controller: wasm-ingress.dev/controller}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: shop, namespace: web}
spec:
  ingressClassName: wasm
  rules:
  - host: shop.example
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: shop, namespace: web}
spec: {ports: [{name: http, port: 80}]}
"#;

    fn slice(address: &str, ready: bool) -> String {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: shop-1, namespace: web, labels: {{kubernetes.io/service-name: shop}}}}\naddressType: IPv4\nports: [{{name: http, port: 8080}}]\nendpoints: [{{addresses: [{address}], conditions: {{ready: {ready}}}}}]\n"
        )
    }

    fn builder() -> Builder {
        let settings = ListenerSettings::for_tests();
        Builder {
            options: TranslateOptions::default(),
            settings,
            cache: SnapshotCache::new(),
            metrics: Arc::new(Metrics::new()),
            ready: watch::channel(false).0,
            reported: BTreeSet::new(),
            translated: watch::channel(None).0,
            rejections: watch::channel(Rejections::default()).1,
            last: None,
        }
    }

    /// What a full translation of `source` publishes.
    fn translated(builder: &Builder, source: &SourceSnapshot) -> Snapshot {
        let translation = ingress::translate(&source.state, &builder.options);
        Snapshot::new(resources::by_type(&envoy::build(&translation.model, &builder.settings)))
    }

    #[test]
    fn an_endpoint_only_change_pushes_eds_alone_and_equals_a_full_translation() {
        struct Case {
            name: &'static str,
            slice: String,
            /// Applied without translating again (the other types' resources are shared).
            endpoints_only: bool,
        }
        let cases = [
            Case { name: "an address changes", slice: slice("10.0.0.2", true), endpoints_only: true },
            Case { name: "the only endpoint stops being ready", slice: slice("10.0.0.1", false), endpoints_only: false },
        ];
        for case in cases {
            let mut builder = builder();
            let mut set = ManifestSet::default();
            let files = |slice: &str| BTreeMap::from([("app.yaml".into(), Ok(APP.to_string())), ("slice.yaml".into(), Ok(slice.to_string()))]);
            set.apply_scan(files(&slice("10.0.0.1", true)), Vec::new());
            builder.rebuild(&Arc::new(set.snapshot()));
            let before = builder.cache.current();

            set.apply_scan(files(&case.slice), Vec::new());
            let source = Arc::new(set.snapshot());
            builder.rebuild(&source);
            let after = builder.cache.current();

            assert_eq!(*after, translated(&builder, &source), "{}: what a full translation publishes", case.name);
            let changed: Vec<ResourceType> = ResourceType::ALL.into_iter().filter(|t| before.version(*t) != after.version(*t)).collect();
            let shared = ResourceType::ALL
                .into_iter()
                .filter(|t| *t != ResourceType::Endpoint)
                .all(|t| std::ptr::eq(before.get(t).unwrap(), after.get(t).unwrap()));
            assert_eq!(shared, case.endpoints_only, "{}: taken without translating again", case.name);
            if case.endpoints_only {
                assert_eq!(changed, vec![ResourceType::Endpoint], "{}: only EDS is pushed", case.name);
                let last = builder.last.as_ref().unwrap();
                assert_eq!(*last.translation, ingress::translate(&source.state, &builder.options), "{}", case.name);
            }
        }
    }

    #[test]
    fn a_route_change_keeps_unchanged_clusters_and_equals_a_full_translation() {
        const OTHER: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: other, namespace: web}\nspec:\n  ingressClassName: wasm\n  rules:\n  - host: other.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: shop, port: {number: 80}}}}\n";
        const SHOP: &str = "web/shop/80";
        struct Case {
            name: &'static str,
            app: String,
            slice: String,
            /// The shop cluster's CDS and EDS resources are the served ones, not built again.
            kept: bool,
        }
        let https = APP.replace("metadata: {name: shop, namespace: web}\nspec:\n  ingressClassName", "metadata: {name: shop, namespace: web, annotations: {nginx.ingress.kubernetes.io/backend-protocol: HTTPS}}\nspec:\n  ingressClassName");
        assert_ne!(https, APP);
        let cases = [
            Case { name: "another Ingress of the same Service", app: format!("{APP}---\n{OTHER}"), slice: slice("10.0.0.1", true), kept: true },
            Case { name: "routes and endpoints change together", app: format!("{APP}---\n{OTHER}"), slice: slice("10.0.0.2", true), kept: false },
            Case { name: "the Service is spoken to another way (a new cluster)", app: https, slice: slice("10.0.0.1", true), kept: false },
            Case { name: "the Ingress goes", app: APP.split("---").take(1).collect(), slice: slice("10.0.0.1", true), kept: false },
        ];
        for case in cases {
            let mut builder = builder();
            let mut set = ManifestSet::default();
            let files = |app: &str, slice: &str| BTreeMap::from([("app.yaml".into(), Ok(app.to_string())), ("slice.yaml".into(), Ok(slice.to_string()))]);
            set.apply_scan(files(APP, &slice("10.0.0.1", true)), Vec::new());
            builder.rebuild(&Arc::new(set.snapshot()));
            let before = builder.cache.current();
            assert!(before.resource_hash(ResourceType::Cluster, SHOP).is_some(), "{}: served before", case.name);

            set.apply_scan(files(&case.app, &case.slice), Vec::new());
            let source = Arc::new(set.snapshot());
            builder.rebuild(&source);
            let after = builder.cache.current();

            assert_eq!(*after, translated(&builder, &source), "{}: what a full translation publishes", case.name);
            for resource_type in [ResourceType::Cluster, ResourceType::Endpoint] {
                assert_eq!(after.shares(&before, resource_type, SHOP), case.kept, "{}: {resource_type:?} kept", case.name);
            }
        }
    }

    #[test]
    fn an_ingress_only_change_is_spliced_and_publishes_what_a_full_translation_does() {
        let (class_and_service, shop) = APP.split_at(APP.find("---\napiVersion: networking.k8s.io/v1\nkind: Ingress").unwrap());
        let (shop, service) = shop.split_at(shop.find("---\napiVersion: v1\nkind: Service").unwrap());
        let new_path = shop.replace("- {path: /, pathType: Prefix", "- {path: /new, pathType: Exact, backend: {service: {name: shop, port: {number: 80}}}}\n      - {path: /, pathType: Prefix");
        assert_ne!(new_path, shop);
        let mut builder = builder();
        let mut set = ManifestSet::default();
        let files = |ingress: &str| {
            let objects = format!("{class_and_service}{service}");
            BTreeMap::from([("objects.yaml".into(), Ok(objects)), ("ingress.yaml".into(), Ok(ingress.to_string())), ("slice.yaml".into(), Ok(slice("10.0.0.1", true)))])
        };
        set.apply_scan(files(shop), Vec::new());
        builder.rebuild(&Arc::new(set.snapshot()));
        let rebuilds = |how: Rebuild| builder.metrics.rebuilds.get_or_create(&vec![("how", how.label().to_string())]).get();
        assert_eq!(rebuilds(Rebuild::Translated), 1, "the first translation");

        set.apply_scan(files(&new_path), Vec::new());
        let source = Arc::new(set.snapshot());
        builder.rebuild(&source);
        let rebuilds = |how: Rebuild| builder.metrics.rebuilds.get_or_create(&vec![("how", how.label().to_string())]).get();
        assert_eq!((rebuilds(Rebuild::Spliced), rebuilds(Rebuild::Translated)), (1, 1), "only the Ingress's file changed");
        let last = builder.last.as_ref().unwrap();
        assert!(last.translation.model.route_table.hosts.iter().any(|h| h.routes.iter().any(|r| r.path == wasm_ingress_filter::table::PathMatch::Exact("/new".into()))));
        assert_eq!(*builder.cache.current(), translated(&builder, &source), "what a full translation publishes");
    }
}
