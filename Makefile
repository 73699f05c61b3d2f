# raftflow developer tasks. Every target is idempotent; `make install` is quick when nothing changed.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Touched after a successful install: pip runs again only when pyproject.toml is newer.
STAMP := $(VENV)/.installed

.PHONY: install run test lint fuzz bench chaos

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# A local 3-node cluster (node i serves HTTP on 8080 + i) and the sample worker of
# examples/order_app.py. Stop both with Ctrl-C.
run: install
	$(BIN)/raftflow dev --nodes 3 --data-dir data --http-port 8080 \
		--worker-command "$(BIN)/python examples/order_app.py worker"

# Two pytest-xdist workers: the tests marked xdist_group("heavy") (chaos, fuzz, load) run one
# after another on one worker, everything else beside them on both.
test: install
	$(BIN)/pytest -n 2 --dist loadgroup

# Style, types and the package layers (import-linter contracts in pyproject.toml); CI runs it
# before the tests.
lint: install
	$(BIN)/ruff check raftflow tests
	$(BIN)/mypy raftflow
	$(BIN)/lint-imports

# Schemathesis against the OpenAPI document a live 3-node dev cluster serves (docs/api.md);
# `make test` runs it too (tests/fuzz/test_fuzz_openapi.py), so CI does.
fuzz: install
	$(BIN)/python -m tests.fuzz.fuzz_openapi

# The standard configurations recorded in docs/benchmarks.md: workflow starts, then workflows
# of 3 sequential activities (each launches and tears down its own 3-node cluster).
bench: install
	$(BIN)/python -m raftflow.bench.starts --concurrency 64 --duration 20 --warmup 3 --json
	$(BIN)/raftflow bench --workflows 2000 --concurrency 64 --activities 3 --json

# The standard chaos run recorded in docs/chaos.md: 10 minutes of every fault kind against a
# 3-node cluster under load; the report lands in chaos-report/. A short run is part of `make test`.
chaos: install
	$(BIN)/raftflow chaos run --nodes 3 --duration 600 --faults all --seed 1 --report chaos-report --json
