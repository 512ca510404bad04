# oneloop: the two commands a newcomer needs are `make run` and `make test`.

CARGO ?= cargo

.PHONY: run test lint unit build release clean help

## run: serve the example site in ./site on http://127.0.0.1:4221/
run:
	$(CARGO) run --release -- site

## test: formatting, lints, then every unit and black-box test
test: lint unit

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

## release: build the optimised binary (target/release/oneloop)
release:
	$(CARGO) build --release

clean:
	$(CARGO) clean

help:
	@grep -E '^## ' Makefile | sed 's/^## //'
