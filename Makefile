# Entry points for developers and CI. Every target sets up what it needs first.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NODE_STAMP := tests/e2e/js/node_modules/.installed
BENCH_STAMP := bench/node_modules/.installed
PROTO_OUT := protos

.PHONY: run test proto lint bench fuzz clean install

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(NODE_STAMP): tests/e2e/js/package.json tests/e2e/js/package-lock.json
	cd tests/e2e/js && npm ci --no-audit --no-fund --loglevel=error
	touch $(NODE_STAMP)

$(BENCH_STAMP): bench/package.json bench/package-lock.json
	cd bench && npm ci --no-audit --no-fund --loglevel=error
	touch $(BENCH_STAMP)

# promtool (Debian's prometheus package) for the alert-rule and metrics-format tests;
# redis-server (Debian's redis-server package) for the Redis store tests, which start
# their own servers on free loopback ports.
SYSTEM_STAMP := $(VENV)/.system-tools

$(SYSTEM_STAMP): $(STAMP)
	@command -v promtool >/dev/null 2>&1 || { \
		echo "installing Debian's prometheus package (promtool, prometheus)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@command -v promtool >/dev/null
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "installing Debian's redis-server package"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }
	@command -v redis-server >/dev/null
	touch $(SYSTEM_STAMP)

install: $(STAMP) $(NODE_STAMP) $(SYSTEM_STAMP)

## run: both tiers with the in-memory store and the demo meetings (Ctrl-C stops both).
run: $(STAMP)
	$(PY) -m tools.run_local

## test: the whole suite (unit, integration, end to end, fault tests), TEST_WORKERS
## pytest-xdist workers (default 2, one per core of CI's machine; a test file stays on one
## worker so its fixtures are shared; most tests wait on real processes, not the CPU).
## Load tests (marker `solo`) then run alone: beside another test on two cores they measure
## the neighbour, not the system.
TEST_WORKERS ?= 2
test: $(STAMP) $(NODE_STAMP) $(SYSTEM_STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m 'not bench and not slow_fuzz and not solo'
	$(PY) -m pytest -m solo

## proto: regenerate the Python code (and type stubs) from protos/. google/rpc/status.proto
## comes from the installed googleapis-common-protos (tools/proto_include.py finds it).
proto: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -I protos \
		-I "$$($(PY) -m tools.proto_include)" \
		--python_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
		--mypy_out=$(PROTO_OUT) --mypy_grpc_out=$(PROTO_OUT) \
		protos/meeting/v1/room_service.proto

## lint: ruff (format check and lint) and mypy --strict.
lint: $(STAMP)
	$(PY) -m ruff format --check .
	$(PY) -m ruff check .
	$(PY) -m mypy

## bench: this stack against a one-process Node socket.io reference (not part of make test);
## fresh servers per run, alternating; prints medians and ratios. BENCH_RUNS=1 for a quick look.
bench: $(STAMP) $(BENCH_STAMP)
	$(PY) bench/compare.py

## fuzz: the long property-based fuzzing runs (make test runs a bounded budget).
fuzz: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -m slow_fuzz -p no:cacheprovider tests/security

clean:
	rm -rf $(VENV) tests/e2e/js/node_modules bench/node_modules .pytest_cache .mypy_cache .ruff_cache
