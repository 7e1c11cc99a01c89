#!/usr/bin/env bash
# `make run`: demo backends + control plane serving examples/ + real Envoy with the filter.
# Ctrl-C stops all of it. Expects `make build envoy` to have run (the Makefile does that first).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

envoy_bin="${WASM_INGRESS_ENVOY:-$root/.venv/envoy}"
wasm="${WASM_INGRESS_FILTER_WASM:-$root/target/wasm32-wasip1/release/wasm_ingress_filter.wasm}"
control_plane="${WASM_INGRESS_BIN:-$root/target/release/wasm-ingress}"
echo_backend="${WASM_INGRESS_ECHO_BACKEND:-$root/target/release/echo-backend}"
for f in "$envoy_bin" "$wasm" "$control_plane" "$echo_backend"; do
  [[ -x "$f" || -f "$f" ]] || { echo "missing $f: run 'make build envoy'" >&2; exit 1; }
done

HTTP=127.0.0.1:8080 HTTPS=127.0.0.1:8443 XDS=127.0.0.1:18000 CP_ADMIN=127.0.0.1:9100 ENVOY_ADMIN=127.0.0.1:9901
run_dir="$root/target/run"
mkdir -p "$run_dir"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap cleanup INT TERM EXIT

# The demo backends the examples/ EndpointSlices point at.
"$echo_backend" --listen 127.0.0.1:9081 --name echo-a >"$run_dir/echo-a.log" 2>&1 & pids+=($!)
"$echo_backend" --listen 127.0.0.1:9082 --name echo-b >"$run_dir/echo-b.log" 2>&1 & pids+=($!)

"$control_plane" serve --manifests "$root/examples" --filter-wasm "$wasm" \
  --xds-listen "$XDS" --http-listen "$HTTP" --https-listen "$HTTPS" --admin-listen "$CP_ADMIN" \
  --https-redirect-port "${HTTPS##*:}" \
  2> >(tee "$run_dir/control-plane.log" >&2) & pids+=($!)

"$control_plane" bootstrap --xds-address "$XDS" --admin-address "$ENVOY_ADMIN" >"$run_dir/bootstrap.yaml"
"$envoy_bin" -c "$run_dir/bootstrap.yaml" --concurrency 2 --log-level warn --file-flush-interval-msec 1000 \
  >"$run_dir/envoy-access.log" 2>"$run_dir/envoy.log" & pids+=($!)

# Wait (bounded) until Envoy serves the HTTP listener.
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "http://$HTTP/" 2>/dev/null; then break; fi
  sleep 0.1
done
curl -s -o /dev/null "http://$HTTP/" || { echo "Envoy did not come up; see $run_dir/envoy.log" >&2; exit 1; }

cat <<MSG

wasm-ingress is running (Envoy + filter + control plane serving examples/):
  curl http://demo.localhost:8080/a            -> echo-a
  curl http://demo.localhost:8080/b/anything   -> echo-b
  curl http://x.apps.localhost:8080/           -> wildcard host *.apps.localhost
  curl http://demo.localhost:8080/rewrite/new  -> echo-a receives /new (rewrite-target)
  curl http://unknown.localhost:8080/          -> default backend
  curl --cacert examples/demo-ca.crt https://secure.localhost:8443/   (HTTPS, SNI, demo certificate)
  curl -i http://secure.localhost:8080/a/      -> 308 to https://secure.localhost:8443/a (ssl-redirect)
  curl -H 'X-Canary: always' http://shop.localhost:8080/   -> echo-b (canary; 1 in 10 without the header)
  curl -i -X OPTIONS -H 'Origin: https://app.localhost' http://shop.localhost:8080/   -> 204 (CORS preflight)
  (*.localhost resolves to 127.0.0.1 in curl; elsewhere add: --resolve demo.localhost:8080:127.0.0.1)

Try:   target/release/wasm-ingress explain examples --url http://demo.localhost/rewrite/new
Edit examples/*.yaml: changes apply without restart.
Control plane: http://$CP_ADMIN/metrics   Envoy admin: http://$ENVOY_ADMIN/   Logs: $run_dir/
Access log: tail -f $run_dir/envoy-access.log      Ctrl-C stops everything.
MSG
wait -n "${pids[@]}" || true
echo "a process exited; stopping" >&2
