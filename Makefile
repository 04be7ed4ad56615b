# `make demo` and `make test` each set everything up first (idempotent, into the repo).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
ENVOY   := $(VENV)/bin/envoy
WASM    := target/wasm32-wasip1/release/ai_gateway.wasm
NODE_MODULES := test-harness/node_modules
# cargo-fuzz, installed into the repo (crates.io, pinned): `make fuzz` and the fuzz-smoke step.
CARGO_FUZZ_VERSION := 0.13.2
# A stamp per version, so changing the version reinstalls.
CARGO_FUZZ := .tools/.cargo-fuzz-$(CARGO_FUZZ_VERSION)
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 4
# Runs the pure modules' unit tests compiled to wasm under Node's WASI.
WASI_RUNNER := node --no-warnings $(CURDIR)/test-harness/wasi-runner.mjs

.PHONY: help setup toolchain system-packages build demo test lint unit-native unit-wasm unit-js \
	integration validate clean bench fuzz fuzz-smoke

help:
	@echo "make demo   set up, build, and run the gateway on 127.0.0.1:8080"
	@echo "make test   set up, then run every check and test"
	@echo "make setup  install what the build and tests need (into the repo)"
	@echo "make fuzz   fuzz every parser for FUZZ_SECONDS (default 60) each"

setup: toolchain system-packages $(VENV)/.installed $(NODE_MODULES)/.installed $(CARGO_FUZZ)

# From Debian: Chromium for the chat page's browser test (driven by playwright-core, which never
# downloads a browser), docker-compose 1.29 to check docker-compose.yml offline (no engine runs),
# openssl for the demo's throwaway TLS certificate (scripts/gen-tls.sh) and the TLS tests, Redis
# for the mesh-wide rate-limit service's counters (ratelimit-service/, test-harness/src/redis.rs).
SYSTEM_PACKAGES := chromium docker-compose openssl redis-server
SUDO := $(shell test "$$(id -u)" -eq 0 || echo sudo)
system-packages:
	@command -v chromium >/dev/null && command -v docker-compose >/dev/null && \
		command -v openssl >/dev/null && command -v redis-server >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			$(SYSTEM_PACKAGES) >/dev/null; }

toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

$(VENV)/.installed: test-harness/requirements.txt
	@test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r test-harness/requirements.txt
	@touch $@

$(CARGO_FUZZ):
	cargo install --locked --quiet --version $(CARGO_FUZZ_VERSION) cargo-fuzz --root .tools
	@touch $@

$(NODE_MODULES)/.installed: test-harness/package.json test-harness/package-lock.json
	cd test-harness && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

build: toolchain
	cargo build --release --target wasm32-wasip1 -p ai-gateway
	@ls -l $(WASM)

demo: setup build
	cargo build --release -p test-harness --bin ollama-standin
	./scripts/demo.sh

test: setup lint unit-native unit-wasm unit-js fuzz-smoke build validate integration
	@echo "make test: all checks passed"

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cd fuzz && cargo fmt -- --check
	cargo clippy -p ai-gateway -p gateway-core --target wasm32-wasip1 -- -D warnings

unit-native:
	cargo test -p gateway-core
	cargo test -p ai-gateway

unit-wasm:
	CARGO_TARGET_WASM32_WASIP1_RUNNER="$(WASI_RUNNER)" \
		cargo test -p gateway-core --lib --target wasm32-wasip1 -- --nocapture

# The chat page's Markdown renderer (sanitising model output), under Node's test runner.
unit-js:
	node --test demo/chat/

# Validation runs the plugin's on_configure, which needs the secrets: throwaway ones, and loads
# the https listener's certificate: the demo's throwaway one (scripts/gen-tls.sh, made once).
# envoy.yaml is checked alone, with the opt-in debug listener and with the https redirect overlaid.
NEW_SECRET = $$(python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
validate: build
	@./scripts/gen-tls.sh target/demo-tls
	@for config in envoy.yaml deploy/envoy-global-ratelimit.yaml deploy/envoy-mesh-limits.yaml \
		"envoy.yaml deploy/dev-listener.yaml" \
		"envoy.yaml deploy/tls-redirect.yaml"; do \
		set -- $$config; overlay=(); \
		if [ -n "$${2:-}" ]; then overlay=(--config-yaml "$$(cat $$2)"); fi; \
		echo "validate $$config"; \
		GATEWAY_JWT_SECRET=$(NEW_SECRET) OAUTH_CLIENT_SECRET=$(NEW_SECRET) SESSION_SECRET=$(NEW_SECRET) \
			$(ENVOY) --mode validate -c $$1 "$${overlay[@]}" 2>&1 | tail -n 1; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

# The rate-limit service's own tests build its binary (debug); the harness uses that one
# (RLS_BIN) instead of building a release one.
integration: build
	cargo test -p ai-gateway-rls
	GATEWAY_WASM=$(CURDIR)/$(WASM) ENVOY_BIN=$(CURDIR)/$(ENVOY) \
		RLS_BIN=$(CURDIR)/target/debug/ai-gateway-rls cargo test -p test-harness

# Every parser of the gateway under libFuzzer (README: Fuzzing); stops by itself, fails on a crash
# and leaves its input in fuzz/artifacts/. `make test` runs each target a few seconds.
fuzz: toolchain $(CARGO_FUZZ)
	./fuzz/run.sh $(FUZZ_SECONDS)

fuzz-smoke: toolchain $(CARGO_FUZZ)
	FUZZ_FRESH=1 ./fuzz/run.sh $(FUZZ_SMOKE_SECONDS)

# Not part of `make test`: a few minutes of load on this machine (see bench/README.md).
bench: setup build
	@command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	cargo build --release --target wasm32-wasip1 --manifest-path bench/sdk-floor/Cargo.toml
	GATEWAY_WASM=$(CURDIR)/$(WASM) ENVOY_BIN=$(CURDIR)/$(ENVOY) \
		cargo run --release -p test-harness --bin bench

clean:
	cargo clean
