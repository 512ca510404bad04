# oneloop: the two commands a newcomer needs are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test lint unit platforms platforms-check platforms-run release bench bench-quick bench-scaling bench-abuse bench-rules bench-profiles bench-http2 fuzz clean help

## run: serve the example site in ./site on http://127.0.0.1:4221/
run:
	$(CARGO) run --release -- site

## test: formatting, lints, every unit and black-box test, then every other platform
test: lint unit platforms

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Tests that cannot run here (no root, no curl, no IPv6...) skip, and note why
# in SKIP_LOG (tests/common/mod.rs, skip): the list is printed at the end,
# pass or fail, since cargo shows nothing of a test that passed.
SKIP_LOG := $(CURDIR)/target/skipped-tests.txt

unit:
	@mkdir -p target && rm -f $(SKIP_LOG)
	@status=0; ONELOOP_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --workspace --all-targets --no-fail-fast || status=$$?; \
	if [ -s $(SKIP_LOG) ]; then \
		echo; echo "Skipped here, and why ($$(wc -l < $(SKIP_LOG)) tests):"; sort $(SKIP_LOG) | sed 's/^/  /'; \
	else echo; echo "No test was skipped."; fi; \
	exit $$status

## platforms: clippy for FreeBSD, macOS and 32-bit ARM; the armv7 and aarch64 builds' tests under qemu
# What a machine cannot have (a target, a cross compiler, qemu) is skipped with
# the reason printed; .ci/run installs them. .ci/platforms says what runs where.
platforms:
	CARGO="$(CARGO)" .ci/platforms

## platforms-check: only the type checks and lints of the other platforms (about 2 minutes)
platforms-check:
	CARGO="$(CARGO)" .ci/platforms check

## platforms-run: only the emulated test runs (armv7 and aarch64 Linux under qemu)
platforms-run:
	CARGO="$(CARGO)" .ci/platforms run

## bench: the full benchmark (about 35 minutes; needs wrk); rewrites docs/benchmarks.md
bench:
	$(CARGO) run --release -p oneloop-bench -- --duration 5 --docs docs/benchmarks.md

## bench-quick: a short benchmark (about 30 seconds of load); report under bench/results/
bench-quick:
	$(CARGO) run --release -p oneloop-bench -- --quick

## bench-scaling: how --workers N scales (needs wrk and 4+ cores to show it); report under bench/results/
bench-scaling:
	$(CARGO) run --release -p oneloop-bench -- --scaling --duration 5

## bench-abuse: every model under attack beside nginx with the same limits (about 4 minutes); rewrites its section of docs/benchmarks.md
bench-abuse:
	$(CARGO) run --release -p oneloop-bench -- --abuse --duration 5 --docs docs/benchmarks.md

## bench-rules: what 20 rules of a configuration file cost a request (about 4 minutes); rewrites its section of docs/benchmarks.md
bench-rules:
	$(CARGO) run --release -p oneloop-bench -- --rules --duration 5 --rounds 7 --docs docs/benchmarks.md

## bench-profiles: binary size per target, and what opt-level, lto, codegen-units and panic cost (about 25 minutes: seven release builds); rewrites its section of docs/benchmarks.md
bench-profiles:
	$(CARGO) run --release -p oneloop-bench -- --profiles --duration 5 --rounds 3 --docs docs/benchmarks.md

## bench-http2: h2load rows (h2c and TLS) against nginx and h2o, and idle HTTP/2 memory (about 3 minutes; needs nghttp2-client, nginx, h2o); prints them, for docs/benchmarks.md's HTTP/2 section
bench-http2:
	$(CARGO) build --release
	bench/scripts/h2load-rows.sh 3 200000 1000

## fuzz: ten minutes on the structured product fuzz target (needs cargo-fuzz)
fuzz:
	cd fuzz && $(CARGO) fuzz run -s none session_requests corpus/session_requests seeds/session_requests -- -max_total_time=600

## release: build the optimised binary (target/release/oneloop)
release:
	$(CARGO) build --release

clean:
	$(CARGO) clean

help:
	@grep -E '^## ' Makefile | sed 's/^## //'
