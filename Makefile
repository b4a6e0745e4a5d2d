# autodeploy: `make run` serves the component locally, `make test` runs every test.
COMPONENT := target/wasm32-wasip2/release/autodeploy.wasm
HOST      := target/debug/autodeploy-host
LISTEN    ?= 127.0.0.1:3000
PLATFORM  ?= 127.0.0.1:3001
# Set PUBLIC_URL to the address providers reach you at (e.g. a tunnel) for webhook URLs.
PUBLIC_URL ?=

.PHONY: component host build run test lint clean bench fuzz

## The WebAssembly component (see scripts/build-component.sh for the two build paths).
component:
	scripts/build-component.sh

host:
	cargo build -p autodeploy-host

build: component host

## Serve on $(LISTEN) with an in-memory store, demo variables and a demo deploy platform
## on $(PLATFORM) that prints every deploy call it receives. As under `spin up`, spin.toml
## applies: its variable defaults, and only its allowed_outbound_hosts may be called
## ({{ platform_url }} allows the demo platform).
run: build
	$(HOST) serve --listen $(LISTEN) --manifest spin.toml \
	  --var admin_token=demo-admin-token \
	  --var platform_url=http://$(PLATFORM) \
	  --var platform_token=demo-platform-token \
	  $(if $(PUBLIC_URL),--var public_url=$(PUBLIC_URL)) \
	  --demo-platform $(PLATFORM) $(COMPONENT)

## Build the component, then run every test (core units, host units, end to end) with a
## throwaway Redis for the shared-store tests (installed from Debian packages when missing;
## stopped afterwards, pass or fail).
test: component
	scripts/with-redis.sh scripts/with-browser.sh cargo test --workspace

## Benchmarks (not part of `make test`): core micro-benchmarks, the component in
## runtime-host, and a load test against adnanh/webhook; writes bench/results.md.
## Knobs: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_THREADS, BENCH_ITERATIONS.
bench: component
	bench/run.sh

## Fuzz every target for FUZZ_SECONDS (default 60) each (nightly + cargo-fuzz).
fuzz:
	fuzz/run.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

clean:
	cargo clean
