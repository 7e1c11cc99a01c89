//! `envoy/docker-compose.yml` (there is no Docker engine here, so it is checked, not run): the
//! control plane's command parses with the real CLI and uses the ports `make run` and the tests use;
//! the bootstrap job points Envoy at that xDS port; the filter `.wasm` path announced in ECDS exists
//! in the control-plane image (Dockerfile COPY target) and in Envoy's volume; the demo backends
//! listen exactly where the EndpointSlices in examples/ point; Envoy is the version the tests run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_yaml::Value;
use wasm_ingress::cli::{Cli, Command, ServeArgs};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("envoy/docker-compose.yml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
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

/// `(host path, container path)` of a `HOST:CONTAINER[:ro]` volume, host paths relative to envoy/.
fn volumes(service: &Value) -> Vec<(String, String)> {
    strings(&service["volumes"])
        .into_iter()
        .map(|volume| {
            let parts: Vec<&str> = volume.split(':').collect();
            (parts[0].to_string(), parts[1].to_string())
        })
        .collect()
}

fn bootstrap_script(compose: &Value) -> String {
    let bootstrap = service(compose, "bootstrap");
    assert_eq!(strings(&bootstrap["entrypoint"]), vec!["/bin/sh", "-c"]);
    strings(&bootstrap["command"]).join(" ")
}

#[test]
fn control_plane_serves_the_examples_on_the_project_ports() {
    let compose = compose();
    let args = serve_args(&compose);
    let defaults = cli_defaults();
    assert_eq!(args.manifests.as_deref(), Some(Path::new("/manifests")));
    let examples = volumes(service(&compose, "control-plane"))
        .into_iter()
        .find(|(_, container)| container == "/manifests")
        .expect("examples mounted at /manifests");
    let host = root().join("envoy").join(&examples.0);
    assert_eq!(host.canonicalize().unwrap(), root().join("examples").canonicalize().unwrap(), "mounts examples/");

    assert_eq!(args.xds_listen, defaults.xds_listen, "xDS on the default 127.0.0.1:18000 (shared namespace)");
    assert_eq!(args.http_listen.port(), defaults.http_listen.port());
    assert_eq!(args.https_listen.port(), defaults.https_listen.port());
    assert!(args.http_listen.ip().is_unspecified() && args.https_listen.ip().is_unspecified(), "reachable through published ports");
    let ports: BTreeSet<String> = strings(&service(&compose, "control-plane")["ports"]).into_iter().collect();
    for port in [args.http_listen.port(), args.https_listen.port()] {
        assert!(ports.contains(&format!("{port}:{port}")), "port {port} published: {ports:?}");
    }
    let admin = args.admin_listen.expect("--admin-listen");
    assert!(ports.contains(&format!("127.0.0.1:{0}:{0}", admin.port())), "admin published on loopback: {ports:?}");
}

#[test]
fn envoy_bootstrap_points_at_the_control_plane_and_shares_its_network() {
    let compose = compose();
    let args = serve_args(&compose);
    let script = bootstrap_script(&compose);
    let words: Vec<String> = script.split_whitespace().map(str::to_string).collect();
    assert!(script.contains("wasm-ingress bootstrap"), "{script}");
    let xds: SocketAddr = flag(&words, "--xds-address").expect("--xds-address").parse().unwrap();
    assert_eq!(xds, args.xds_listen, "Envoy connects where the control plane listens");
    let envoy_admin: SocketAddr = flag(&words, "--admin-address").expect("--admin-address").parse().unwrap();
    let ports = strings(&service(&compose, "control-plane")["ports"]);
    assert!(ports.contains(&format!("127.0.0.1:{0}:{0}", envoy_admin.port())), "Envoy admin published on loopback");
    for name in ["envoy", "echo-a", "echo-b"] {
        assert_eq!(service(&compose, name)["network_mode"].as_str(), Some("service:control-plane"), "{name}");
    }
    let depends = &service(&compose, "envoy")["depends_on"]["bootstrap"]["condition"];
    assert_eq!(depends.as_str(), Some("service_completed_successfully"));
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
        dockerfile.lines().any(|line| line.starts_with("COPY --from=builder") && line.split_whitespace().last() == Some(wasm.as_str())),
        "Dockerfile.control-plane does not COPY the filter to {wasm}"
    );
    // The bootstrap job copies it into the shared volume, which Envoy mounts at the same folder.
    let script = bootstrap_script(&compose);
    let (volume, shared) = volumes(service(&compose, "bootstrap")).into_iter().next().expect("bootstrap volume");
    assert!(script.contains(&format!("cp {wasm} {shared}/{file_name}")), "{script}");
    let envoy_volumes = volumes(service(&compose, "envoy"));
    let (_, envoy_dir) = envoy_volumes.iter().find(|(name, _)| *name == volume).expect("Envoy mounts the shared volume");
    assert_eq!(Path::new(envoy_dir), args.filter_wasm.parent().unwrap());
    assert!(compose["volumes"][volume.as_str()].is_mapping(), "named volume {volume} declared");

    // Envoy reads the bootstrap the job wrote into the same volume.
    let bootstrap_file = script.rsplit("> ").next().unwrap().trim().to_string();
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
    assert!(envoy_dockerfile.lines().any(|line| line == format!("FROM envoyproxy/envoy:v{version}")), "Dockerfile.envoy is not Envoy {version}");
}

#[test]
fn demo_backends_listen_where_the_examples_endpoint_slices_point() {
    let compose = compose();
    let (state, _) = wasm_ingress::source::files::load_dir(&root().join("examples"));
    let wanted: BTreeSet<SocketAddr> = state
        .endpoint_slices
        .values()
        .flat_map(|slice| {
            let ports: Vec<i32> = slice.ports.iter().flatten().filter_map(|p| p.port).collect();
            slice.endpoints.iter().flatten().flat_map(|e| e.addresses.clone()).flat_map(move |a| ports.clone().into_iter().map(move |p| (a.clone(), p)))
        })
        .filter(|(address, _)| address.starts_with("127."))
        .map(|(address, port)| format!("{address}:{port}").parse().unwrap())
        .collect();
    assert!(!wanted.is_empty(), "examples/ has no EndpointSlice pointing at a local demo backend");
    let mut served = BTreeSet::new();
    for name in ["echo-a", "echo-b"] {
        let args = strings(&service(&compose, name)["command"]);
        assert_eq!(flag(&args, "--name").as_deref(), Some(name));
        served.insert(flag(&args, "--listen").expect("--listen").parse::<SocketAddr>().unwrap());
    }
    assert_eq!(served, wanted, "compose backends vs examples/ EndpointSlices");
}
