# make test  — lint, type-check and run every test (installs what it needs on a fresh machine)
# make demo  — the no-setup demo: simulator + monitor + metrics, alerts in the terminal
#              (options in ARGS, e.g. make demo ARGS="--port 9000 --speed 10")
# make bench — the benchmark suite (bench/README.md)
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEBIAN_BINARIES := redis-server:redis-server redis-sentinel:redis-sentinel prometheus:prometheus \
	promtool:prometheus \
	prometheus-alertmanager:prometheus-alertmanager amtool:prometheus-alertmanager

.PHONY: test demo bench lint typecheck deps system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

deps: $(STAMP)

# Debian packages for the real binaries the tests run; installed only when missing and root.
system-deps:
	@missing=""; for pair in $(DEBIAN_BINARIES); do bin=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$bin >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing$$missing (not root; tests needing them will be skipped)"; fi; \
	fi

lint: deps
	$(BIN)/ruff check monitor tests bench
	$(BIN)/ruff format --check monitor tests bench

typecheck: deps
	$(BIN)/mypy

test: deps system-deps lint typecheck
	$(BIN)/python -m pytest -q

ARGS ?=
demo: deps
	$(BIN)/puzzel-monitor demo $(ARGS)

bench: deps system-deps
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
