//! `envoy/docker-compose.yml` checked without a container runtime (`make compose-test` runs it for
//! real, see tests/tests/compose.rs; this runs in every `make test`): the control plane's command
//! parses with the real CLI, serves examples/ with the compose copy of its EndpointSlices, and ADS
//! over mutual TLS only; the bootstrap job makes the credentials for the name Envoy dials and points
//! Envoy at that port; the filter `.wasm` path announced in ECDS exists in the control-plane image
//! and in Envoy's volume; the demo backends listen at the addresses and ports the compose
//! EndpointSlices name; Envoy is the version the tests run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize as _;
use serde_yaml::Value;
use wasm_ingress::cli::{Cli, Command, ServeArgs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

fn compose() -> Value {
    yaml("envoy/docker-compose.yml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_mapping(), "no service {name}");
    service
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().unwrap_or_else(|| panic!("not a list: {value:?}")).iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// The value of `--flag VALUE` or `--flag=VALUE` in an argument list.
fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter().enumerate().find_map(|(i, arg)| {
        if arg == name {
            args.get(i + 1).cloned()
        } else {
            arg.strip_prefix(&format!("{name}=")).map(str::to_string)
        }
    })
}

fn serve_args(compose: &Value) -> ServeArgs {
    let args = strings(&service(compose, "control-plane")["command"]);
    match Cli::try_parse_from(std::iter::once("wasm-ingress".to_string()).chain(args)).unwrap() {
        Cli { command: Command::Serve(args) } => args,
        other => panic!("control-plane does not run `serve`: {other:?}"),
    }
}

/// Defaults of `serve` (the ports `make run` and the tests use).
fn cli_defaults() -> ServeArgs {
    match Cli::try_parse_from(["wasm-ingress", "serve", "--filter-wasm", "x.wasm"]).unwrap() {
        Cli { command: Command::Serve(args) } => args,
        _ => unreachable!(),
    }
}

/// A compose value with `${VAR:-default}` replaced by its default (what runs when VAR is unset).
fn with_defaults(text: &str) -> String {
    match text.split_once("${") {
        None => text.to_string(),
        Some((before, rest)) => {
            let (expression, after) = rest.split_once('}').expect("closing brace");
            let default = expression.split_once(":-").map(|(_, default)| default).unwrap_or_default();
            format!("{before}{default}{}", with_defaults(after))
        }
    }
}

/// `(host path, container path)` of a `HOST:CONTAINER[:ro]` volume, host paths relative to envoy/.
fn volumes(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .into_iter()
        .map(|volume| {
            let volume = with_defaults(&volume);
            let parts: Vec<&str> = volume.split(':').collect();
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

/// The host path (relative to envoy/) mounted at `container` in `service`.
fn mounted_at(service: &Value, container: &str) -> PathBuf {
    let (host, _) = volumes(service).into_iter().find(|(_, c)| c == container).unwrap_or_else(|| panic!("nothing mounted at {container}"));
    root().join("envoy").join(host).canonicalize().unwrap()
}

fn bootstrap_script(compose: &Value) -> String {
    let bootstrap = service(compose, "bootstrap");
    assert_eq!(strings(&bootstrap["entrypoint"]), vec!["/bin/sh", "-c"]);
    strings(&bootstrap["command"]).join(" ")
}

#[test]
fn control_plane_serves_the_examples_with_the_compose_endpoints_and_ads_over_mutual_tls() {
    let compose = compose();
    let control_plane = service(&compose, "control-plane");
    let args = serve_args(&compose);
    let defaults = cli_defaults();
    assert_eq!(args.manifests.as_deref(), Some(Path::new("/manifests")));
    assert_eq!(mounted_at(control_plane, "/manifests"), root().join("examples").canonicalize().unwrap(), "mounts examples/");
    let backends = mounted_at(control_plane, "/manifests/backends.yaml");
    assert_eq!(backends, root().join("envoy/compose-backends.yaml").canonicalize().unwrap());
    assert!(root().join("examples/backends.yaml").is_file(), "the file mounted over must exist in examples/");

    assert_eq!(args.xds_listen.port(), defaults.xds_listen.port());
    assert!(args.xds_listen.ip().is_unspecified(), "ADS reachable on the compose network");
    assert!(args.xds_tls_dir.is_some() && !args.xds_plaintext, "ADS off loopback is mutual TLS only");
    assert_eq!(args.http_listen.port(), defaults.http_listen.port());
    assert_eq!(args.https_listen.port(), defaults.https_listen.port());
    assert!(args.http_listen.ip().is_unspecified() && args.https_listen.ip().is_unspecified(), "reachable through published ports");
    let admin = args.admin_listen.expect("--admin-listen");
    let ports = strings(&control_plane["ports"]);
    assert_eq!(ports, [format!("127.0.0.1:{0}:{0}", admin.port())], "only the admin port, on host loopback");
}

#[test]
fn envoy_dials_the_control_plane_by_name_with_credentials_made_for_that_name() {
    let compose = compose();
    let args = serve_args(&compose);
    let script = bootstrap_script(&compose);
    let words: Vec<String> = script.split_whitespace().map(|w| w.trim_end_matches(';').to_string()).collect();
    assert!(script.contains("wasm-ingress bootstrap"), "{script}");
    let xds = flag(&words, "--xds-address").expect("--xds-address");
    assert_eq!(xds, format!("control-plane:{}", args.xds_listen.port()), "Envoy dials the control-plane service");
    assert_eq!(flag(&words, "--server-name").as_deref(), Some("control-plane"), "certgen names the server as Envoy dials it");
    assert!(script.contains("[ -f /xds/server/tls.key ] || wasm-ingress certgen"), "credentials made once (compose may rerun the job): {script}");

    // The control plane reads certgen's server/ folder from the credentials volume.
    let (volume, job_dir) = volumes(service(&compose, "bootstrap")).into_iter().find(|(_, dir)| dir == "/xds").expect("/xds in the job");
    let (_, in_control_plane) = volumes(service(&compose, "control-plane")).into_iter().find(|(v, _)| *v == volume).expect("credentials mounted");
    assert_eq!(args.xds_tls_dir.unwrap(), Path::new(&in_control_plane).join("server"));
    // Envoy's copy of the client credentials is where its bootstrap says.
    for file in ["ca.crt", "tls.crt", "tls.key"] {
        assert!(script.contains(&format!("{job_dir}/client/{file}")), "{file} copied for Envoy: {script}");
    }
    let tls_dir = flag(&words, "--xds-tls-dir").expect("--xds-tls-dir");
    for (file, overrides) in [("docker-compose.yml", "envoy"), ("docker-compose.two-envoys.yml", "envoy-2")] {
        let compose = yaml(&format!("envoy/{file}"));
        let envoy = service(&compose, overrides);
        let (_, envoy_dir) = volumes(envoy).into_iter().find(|(v, _)| v == "envoy-shared").expect("Envoy mounts envoy-shared");
        assert_eq!(envoy_dir, tls_dir, "{overrides}: credentials where the bootstrap points");
        assert_eq!(strings(&envoy["networks"]), ["ingress"], "{overrides} on the compose network");
        assert_eq!(envoy["depends_on"]["bootstrap"]["condition"].as_str(), Some("service_completed_successfully"), "{overrides}");
        let envoy_admin: SocketAddr = flag(&words, "--admin-address").expect("--admin-address").parse().unwrap();
        let ports = strings(&envoy["ports"]);
        assert!(ports.iter().any(|p| p.starts_with("127.0.0.1:") && p.ends_with(&format!(":{}", envoy_admin.port()))), "{overrides}: admin on host loopback: {ports:?}");
        for port in [args.http_listen.port(), args.https_listen.port()] {
            assert!(ports.iter().any(|p| p.ends_with(&format!(":{port}"))), "{overrides}: port {port} published: {ports:?}");
        }
    }
}

#[test]
fn the_filter_wasm_announced_in_ecds_is_in_the_image_and_in_envoys_volume() {
    let compose = compose();
    let args = serve_args(&compose);
    let wasm = args.filter_wasm.display().to_string();
    let file_name = args.filter_wasm.file_name().unwrap().to_str().unwrap().to_string();

    // The control-plane image has the file at exactly that path.
    let dockerfile = std::fs::read_to_string(root().join("envoy/Dockerfile.control-plane")).unwrap();
    assert!(
        dockerfile.lines().any(|line| line.starts_with("COPY --from=binaries") && line.split_whitespace().last() == Some(wasm.as_str())),
        "Dockerfile.control-plane does not COPY the filter to {wasm}"
    );
    // The bootstrap job copies it into the shared volume, which Envoy mounts at the same folder.
    let script = bootstrap_script(&compose);
    let (volume, shared) = volumes(service(&compose, "bootstrap")).into_iter().find(|(_, dir)| dir == "/shared").expect("bootstrap volume");
    assert!(script.contains(&format!("cp {wasm} {shared}/{file_name}")), "{script}");
    let envoy_volumes = volumes(service(&compose, "envoy"));
    let (_, envoy_dir) = envoy_volumes.iter().find(|(name, _)| *name == volume).expect("Envoy mounts the shared volume");
    assert_eq!(Path::new(envoy_dir), args.filter_wasm.parent().unwrap());
    assert!(compose["volumes"][volume.as_str()].is_mapping(), "named volume {volume} declared");

    // Envoy reads the bootstrap the job wrote into the same volume.
    let bootstrap_file = script.rsplit("> ").next().unwrap().split(';').next().unwrap().trim().to_string();
    let in_envoy = bootstrap_file.replacen(&shared, envoy_dir, 1);
    let envoy_dockerfile = std::fs::read_to_string(root().join("envoy/Dockerfile.envoy")).unwrap();
    assert!(envoy_dockerfile.contains(&format!("\"-c\", \"{in_envoy}\"")), "Dockerfile.envoy must start Envoy with -c {in_envoy}");
}

#[test]
fn images_build_from_existing_dockerfiles_and_targets_and_envoy_is_the_tested_version() {
    let compose = compose();
    for (name, service) in compose["services"].as_mapping().unwrap() {
        let name = name.as_str().unwrap();
        let build = &service["build"];
        assert!(build.is_mapping(), "{name}: every image is built here (never pulled from a registry that lacks it)");
        let context = root().join("envoy").join(build["context"].as_str().unwrap());
        let dockerfile = context.join(build["dockerfile"].as_str().unwrap());
        let text = std::fs::read_to_string(&dockerfile).unwrap_or_else(|_| panic!("{name}: {} missing", dockerfile.display()));
        if let Some(target) = build["target"].as_str() {
            assert!(text.lines().any(|line| line.starts_with("FROM ") && line.ends_with(&format!(" AS {target}"))), "{name}: no stage {target}");
        }
    }
    let makefile = std::fs::read_to_string(root().join("Makefile")).unwrap();
    let version = makefile
        .lines()
        .find_map(|line| line.strip_prefix("ENVOY_VERSION").map(|rest| rest.trim_start_matches([' ', ':', '=']).trim().to_string()))
        .expect("ENVOY_VERSION in Makefile");
    let envoy_dockerfile = std::fs::read_to_string(root().join("envoy/Dockerfile.envoy")).unwrap();
    assert!(envoy_dockerfile.lines().any(|line| line == format!("ARG ENVOY_BASE=envoyproxy/envoy:v{version}")), "Dockerfile.envoy is not Envoy {version}");
    assert!(envoy_dockerfile.lines().any(|line| line == "FROM ${ENVOY_BASE}"), "Dockerfile.envoy starts from ENVOY_BASE");
    let args = &service(&compose, "envoy")["build"]["args"]["ENVOY_BASE"];
    assert_eq!(with_defaults(args.as_str().unwrap()), format!("envoyproxy/envoy:v{version}"), "compose builds on the official image by default");
}

fn documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml::Deserializer::from_str(&text).map(|d| Value::deserialize(d).unwrap()).collect()
}

/// `(address, port)` of every endpoint of the EndpointSlices in `path`.
fn endpoints(path: &str) -> BTreeSet<SocketAddr> {
    let slices = documents(path).into_iter().filter(|d| d["kind"].as_str() == Some("EndpointSlice"));
    slices
        .flat_map(|slice| {
            let ports: Vec<u16> = slice["ports"].as_sequence().unwrap().iter().map(|p| p["port"].as_u64().unwrap() as u16).collect();
            let addresses: Vec<Ipv4Addr> =
                slice["endpoints"].as_sequence().unwrap().iter().flat_map(|e| strings(&e["addresses"])).map(|a| a.parse().unwrap()).collect();
            addresses.into_iter().flat_map(move |a| ports.clone().into_iter().map(move |p| SocketAddr::from((a, p))))
        })
        .collect()
}

#[test]
fn compose_endpoints_are_the_examples_with_the_demo_backends_addresses() {
    // Identical to examples/backends.yaml but for the endpoint addresses (and the comment on top).
    let local = |documents: Vec<Value>| -> Vec<Value> {
        let text = serde_yaml::to_string(&documents).unwrap().replace("10.89.77.11", "127.0.0.1").replace("10.89.77.12", "127.0.0.1");
        serde_yaml::from_str(&text).unwrap()
    };
    assert_eq!(local(documents("envoy/compose-backends.yaml")), documents("examples/backends.yaml"));

    let compose = compose();
    let subnet = compose["networks"]["ingress"]["ipam"]["config"][0]["subnet"].as_str().expect("a fixed subnet");
    let (network, bits) = subnet.split_once('/').unwrap();
    let (network, bits): (Ipv4Addr, u32) = (network.parse().unwrap(), bits.parse().unwrap());
    let mut served = BTreeSet::new();
    for name in ["echo-a", "echo-b"] {
        let echo = service(&compose, name);
        let args = strings(&echo["command"]);
        assert_eq!(flag(&args, "--name").as_deref(), Some(name));
        let listen: SocketAddr = flag(&args, "--listen").expect("--listen").parse().unwrap();
        let address: Ipv4Addr = echo["networks"]["ingress"]["ipv4_address"].as_str().expect("fixed address").parse().unwrap();
        assert_eq!(u32::from(address) >> (32 - bits), u32::from(network) >> (32 - bits), "{name}: {address} in {subnet}");
        served.insert(SocketAddr::from((address, listen.port())));
    }
    assert_eq!(served, endpoints("envoy/compose-backends.yaml"), "compose backends vs the compose EndpointSlices");
}
