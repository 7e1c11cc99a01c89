//! The command line (a contract: tests, docs and users rely on these names). Parsing only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub const DEFAULT_INGRESS_CLASS: &str = "wasm";
pub const DEFAULT_CONTROLLER_NAME: &str = "wasm-ingress.dev/controller";

#[derive(Debug, Parser)]
#[command(name = "wasm-ingress", version, about = "Kubernetes Ingress controller: Envoy + a proxy-wasm routing filter, configured over xDS")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size difference between variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve xDS (ADS) to Envoy from a manifests folder or the Kubernetes API.
    Serve(ServeArgs),
    /// Print an Envoy bootstrap (YAML) that connects to this control plane over ADS.
    Bootstrap(BootstrapArgs),
    /// Make the CA and certificates for mutual TLS between Envoy and the control plane.
    Certgen(CertgenArgs),
    /// Report every problem in a manifests folder; exit status 1 if there is any.
    Validate(ValidateArgs),
    /// Show which Ingress, rule and path would serve a URL, and what is sent upstream.
    Explain(ExplainArgs),
    /// Report what would happen to each Ingress of an ingress-nginx class if this controller
    /// served it (read-only); exit status 0 identical, 1 something differs, 2 something refused.
    Migrate(MigrateArgs),
    /// Run beside Envoy in its pod: on SIGTERM, fail Envoy's health check through its admin API so
    /// that it tells clients to close their keep-alive connections while its `preStop` sleep lets
    /// it finish serving (a graceful drain); then exit.
    DrainOnStop(DrainArgs),
}

/// What decides how Ingresses translate, shared by `serve`, `validate` and `explain` so that a
/// folder is judged exactly as the controller would serve it.
#[derive(Debug, Clone, Args)]
pub struct TranslationArgs {
    /// IngressClass name we serve.
    #[arg(long, default_value = DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
    /// `spec.controller` of the IngressClasses that are ours.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
    /// Secret (NAMESPACE/NAME, type kubernetes.io/tls) offered to HTTPS clients that send no SNI or
    /// one no Ingress claims (ingress-nginx's flag). Without it: a self-signed certificate made at
    /// start, never a tenant's.
    #[arg(long, value_parser = parse_namespaced_name)]
    pub default_ssl_certificate: Option<crate::state::ObjectKey>,
    /// Service (NAMESPACE/NAME; its first port) that answers requests no Ingress serves and the
    /// `custom-http-errors` of Ingresses without a `default-backend` (ingress-nginx's flag).
    /// Without it (or while it has no ready endpoints): 404, as ingress-nginx's own default server.
    #[arg(long, value_parser = parse_namespaced_name)]
    pub default_backend_service: Option<crate::state::ObjectKey>,
    /// Hosts shared across namespaces: `merge` (ingress-nginx) or `namespace` (the oldest
    /// Ingress's namespace owns the host; other namespaces' rules for it are refused).
    #[arg(long, value_enum, default_value = "merge")]
    pub host_ownership: crate::translate::ingress::HostOwnership,
    /// Ignore Ingresses with a `spec.defaultBackend` (catch-all Ingresses: they take every request
    /// no other Ingress serves), with a warning on each (ingress-nginx's flag).
    #[arg(long)]
    pub disable_catch_all: bool,
    /// The ingress-nginx ConfigMap settings that give annotation defaults.
    #[command(flatten)]
    pub nginx: crate::translate::ingress::NginxDefaults,
}

impl TranslationArgs {
    /// The translation options these flags give; `Err` for `--global-auth-*` flags that the
    /// annotation parser refuses (the command stops rather than serve without global auth).
    pub fn options(&self, refuse_local_endpoints: bool) -> anyhow::Result<crate::translate::ingress::TranslateOptions> {
        crate::translate::ingress::global_auth(&self.nginx.global_auth).map_err(anyhow::Error::msg)?;
        crate::translate::ingress::behaviour::check_block_cidrs(&self.nginx.block_cidrs).map_err(|e| anyhow::anyhow!("--block-cidrs: {e}"))?;
        Ok(crate::translate::ingress::TranslateOptions {
            ingress_class: self.ingress_class.clone(),
            controller_name: self.controller_name.clone(),
            refuse_local_endpoints,
            host_ownership: self.host_ownership,
            default_certificate: self.default_ssl_certificate.clone(),
            now: None,
            defaults: self.nginx.clone(),
            default_backend_service: self.default_backend_service.clone(),
            error_page_token: crate::translate::ingress::PLACEHOLDER_ERROR_PAGE_TOKEN.into(),
            trust_forwarded_headers: false,
            proxy_protocol: false,
            log_route: false,
            default_server_logged: false,
            disable_catch_all: self.disable_catch_all,
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Folder of Kubernetes YAML manifests to serve (watched for changes). Without it, the
    /// Kubernetes API is used (in-cluster config or --kubeconfig).
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Path to a kubeconfig file (Kubernetes API source).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace (Kubernetes API source).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Address written to the status of served Ingresses (IP or hostname; several, comma-separated,
    /// as ingress-nginx's `--publish-status-address`).
    #[arg(long, conflicts_with = "status_service")]
    pub status_address: Option<String>,
    /// Write the addresses of this Envoy Service (NAMESPACE/NAME) to the status of served Ingresses,
    /// as ingress-nginx's `--publish-service` reads them (a LoadBalancer's load-balancer addresses
    /// and external IPs, a NodePort's external IPs or cluster IP, ...; Kubernetes API source).
    #[arg(long, value_parser = parse_namespaced_name)]
    pub status_service: Option<crate::state::ObjectKey>,
    /// Namespace of the leader-election Lease (only the leader writes status and events).
    #[arg(long, env = "POD_NAMESPACE", default_value = "wasm-ingress")]
    pub leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "wasm-ingress-leader")]
    pub lease_name: String,
    #[command(flatten)]
    pub translation: TranslationArgs,
    /// Where to serve ADS (gRPC).
    #[arg(long, default_value = "127.0.0.1:18000")]
    pub xds_listen: SocketAddr,
    /// Address Envoy listens on for HTTP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    /// Address Envoy listens on for HTTPS (SNI).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub https_listen: SocketAddr,
    /// Path of the filter's .wasm, as Envoy sees it.
    #[arg(long)]
    pub filter_wasm: PathBuf,
    /// Admin HTTP server: /healthz, /readyz, /metrics.
    #[arg(long)]
    pub admin_listen: Option<SocketAddr>,
    /// Serve ADS over mutual TLS with the credentials in this folder (`ca.crt`, `tls.crt`,
    /// `tls.key`, as `certgen` writes them and the Secret mounts them): only clients with a
    /// certificate from that CA are served. Required with the Kubernetes API source.
    #[arg(long)]
    pub xds_tls_dir: Option<PathBuf>,
    /// Serve ADS in plaintext even with the Kubernetes API source (anyone who reaches the port can
    /// read every TLS private key over SDS). Loopback file mode is plaintext without it.
    #[arg(long, conflicts_with = "xds_tls_dir")]
    pub xds_plaintext: bool,
    /// Most ADS streams served at once (each Envoy holds one); more are refused.
    #[arg(long, default_value_t = 1024)]
    pub xds_max_streams: usize,
    /// Largest xDS request accepted from Envoy (bytes).
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    pub xds_max_request_bytes: usize,
    /// Refuse EndpointSlice addresses that are loopback, link-local or unspecified (a pod must not
    /// make Envoy proxy to its own host or the cloud metadata service). Default: on with the
    /// Kubernetes API source, off for a manifests folder (local demos use loopback backends).
    #[arg(long)]
    pub refuse_local_endpoints: Option<bool>,
    /// Never look up ExternalName Services (ingress-nginx's `--disable-svc-external-name`): their
    /// paths answer 503, with an error diagnostic on each.
    #[arg(long)]
    pub disable_svc_external_name: bool,
    #[command(flatten)]
    pub edge: crate::translate::edge::EdgeSettings,
}

#[derive(Debug, Clone, Args)]
pub struct DrainArgs {
    /// Envoy's admin interface (the bootstrap's `--admin-address`), reachable in the pod.
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub envoy_admin: SocketAddr,
}

#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    /// host:port of the control plane's ADS server.
    #[arg(long)]
    pub xds_address: String,
    /// Envoy's own admin interface address.
    #[arg(long, default_value = "127.0.0.1:9901")]
    pub admin_address: SocketAddr,
    /// Envoy node id.
    #[arg(long, default_value = "wasm-ingress-envoy")]
    pub node_id: String,
    /// Connect over mutual TLS with Envoy's credentials in this folder, as Envoy sees it
    /// (`ca.crt`, `tls.crt`, `tls.key`: `certgen`'s `client/`, or the mounted client Secret).
    #[arg(long)]
    pub xds_tls_dir: Option<PathBuf>,
    /// Name the ADS server's certificate must carry (default: the host of --xds-address).
    #[arg(long)]
    pub xds_server_name: Option<String>,
    /// Most downstream connections Envoy holds at once (overload manager).
    #[arg(long, default_value_t = 50_000)]
    pub max_downstream_connections: u64,
    /// Envoy's heap limit (bytes): at 95 % it shrinks its heap, at 98 % it stops accepting requests.
    /// Set it below the memory limit of Envoy's container.
    #[arg(long, default_value_t = 2 * 1024 * 1024 * 1024)]
    pub max_heap_bytes: u64,
    /// The ADS protocol Envoy speaks: `delta` sends only what changed (a new Service is one
    /// cluster, not all of them again); `sotw` (state of the world) every listener and cluster.
    #[arg(long, value_enum, default_value_t = XdsProtocol::Delta)]
    pub xds_protocol: XdsProtocol,
}

/// The ADS protocol of the bootstrap (`api_type`); the control plane serves both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum XdsProtocol {
    /// Incremental xDS (`DELTA_GRPC`).
    Delta,
    /// State-of-the-world xDS (`GRPC`).
    Sotw,
}

#[derive(Debug, Clone, Args)]
pub struct CertgenArgs {
    /// Write `server/` and `client/` folders (each `ca.crt`, `tls.crt`, `tls.key`) here. Without
    /// it, print two kubernetes.io/tls Secrets (YAML) for `kubectl apply -f -`.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Namespace of the printed Secrets.
    #[arg(long, default_value = "wasm-ingress")]
    pub namespace: String,
    /// Names (DNS or IP) of the ADS server certificate; repeat the flag for several.
    #[arg(long, default_values_t = [
        "wasm-ingress-xds".to_string(),
        "wasm-ingress-xds.wasm-ingress.svc".to_string(),
        "wasm-ingress-xds.wasm-ingress.svc.cluster.local".to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ])]
    pub server_name: Vec<String>,
    /// Validity of the certificates, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Manifests folder.
    pub dir: PathBuf,
    #[command(flatten)]
    pub translation: TranslationArgs,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Manifests folder (or --kubeconfig).
    #[arg(required_unless_present = "kubeconfig", conflicts_with = "kubeconfig")]
    pub dir: Option<PathBuf>,
    /// Read the cluster through this kubeconfig instead of a folder (list only, nothing written).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Only this namespace (with --kubeconfig).
    #[arg(long, requires = "kubeconfig")]
    pub namespace: Option<String>,
    /// The IngressClass to migrate (Ingresses naming it, or its legacy annotation).
    #[arg(long, default_value = "nginx")]
    pub ingress_class: String,
    /// `spec.controller` of the IngressClass objects to migrate.
    #[arg(long, default_value = "k8s.io/ingress-nginx")]
    pub controller_name: String,
    /// ingress-nginx's ConfigMap (YAML, as `kubectl get configmap -o yaml` prints it): its
    /// settings become the defaults, and each is classified. Without it: ingress-nginx's defaults.
    #[arg(long)]
    pub configmap: Option<PathBuf>,
    /// ingress-nginx's `--default-backend-service` (NAMESPACE/NAME), if it ran with one: judge
    /// unserved requests and `custom-http-errors` as `serve --default-backend-service` would.
    #[arg(long, value_parser = parse_namespaced_name)]
    pub default_backend_service: Option<crate::state::ObjectKey>,
    /// ingress-nginx ran with `--enable-ssl-passthrough` (its `ssl-passthrough` annotations worked):
    /// judge them as `serve --enable-ssl-passthrough` would serve them.
    #[arg(long)]
    pub enable_ssl_passthrough: bool,
    /// `text` (for a person; colour on a terminal) or `json` (schema `wasm-ingress.dev/migrate/v1`).
    #[arg(long, value_enum, default_value = "text")]
    pub output: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Manifests folder.
    pub dir: PathBuf,
    /// The request, e.g. http://shop.example.com/api/users?x=1
    #[arg(long)]
    pub url: String,
    /// A request header as `Name: value` (repeatable; `Cookie: name=value` for cookies): what a
    /// canary's `canary-by-header` / `canary-by-cookie` rules decide for this request.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    #[command(flatten)]
    pub translation: TranslationArgs,
}

/// `NAMESPACE/NAME` (both non-empty) as an `ObjectKey`.
pub fn parse_namespaced_name(text: &str) -> Result<crate::state::ObjectKey, String> {
    match text.split_once('/') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(crate::state::ObjectKey::new(namespace, name))
        }
        _ => Err(format!("expected NAMESPACE/NAME, got {text:?}")),
    }
}
