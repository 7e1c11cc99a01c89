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
    /// Report every problem in a manifests folder; exit status 1 if there is any.
    Validate(ValidateArgs),
    /// Show which Ingress, rule and path would serve a URL, and what is sent upstream.
    Explain(ExplainArgs),
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
    /// Address written to the status of served Ingresses (IP or hostname).
    #[arg(long, conflicts_with = "status_service")]
    pub status_address: Option<String>,
    /// Write the load balancer address of this Envoy Service (NAMESPACE/NAME) to the status of served
    /// Ingresses (Kubernetes API source).
    #[arg(long, value_parser = parse_namespaced_name)]
    pub status_service: Option<crate::state::ObjectKey>,
    /// Namespace of the leader-election Lease (only the leader writes status and events).
    #[arg(long, env = "POD_NAMESPACE", default_value = "wasm-ingress")]
    pub leader_election_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "wasm-ingress-leader")]
    pub lease_name: String,
    /// IngressClass name we serve.
    #[arg(long, default_value = DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
    /// `spec.controller` of the IngressClasses that are ours.
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
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
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// Manifests folder.
    pub dir: PathBuf,
    #[arg(long, default_value = DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
}

#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// Manifests folder.
    pub dir: PathBuf,
    /// The request, e.g. http://shop.example.com/api/users?x=1
    #[arg(long)]
    pub url: String,
    #[arg(long, default_value = DEFAULT_INGRESS_CLASS)]
    pub ingress_class: String,
    #[arg(long, default_value = DEFAULT_CONTROLLER_NAME)]
    pub controller_name: String,
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
