# Kencana developer entry points. Infrastructure (PostgreSQL + Kafka) runs as local processes; see scripts/infra.sh.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export KENCANA_STATE_DIR ?= $(CURDIR)/.local

VENV := .venv
PY := $(VENV)/bin/python
PYPROJECT_SHA = $(shell sha256sum pyproject.toml | cut -c1-16)

.PHONY: help setup infra-up infra-down infra-status migrate test test-slow test-faults test-fuzz test-compose lint up down demo clean-state bench bench-scale

help:
	@echo "targets: demo setup infra-up infra-down infra-status migrate test test-slow test-faults test-fuzz test-compose lint up down clean-state bench bench-scale"

# Create the venv once; reinstall only when pyproject.toml changed (stamp .venv/.installed-<sha>).
setup:
	@if [ ! -x $(PY) ]; then python3 -m venv $(VENV); fi
	@stamp=$(VENV)/.installed-$(PYPROJECT_SHA); \
	if [ ! -f $$stamp ]; then \
	  echo "[setup] installing kencana[dev] into $(VENV)"; \
	  $(VENV)/bin/pip install -q -e '.[dev]'; \
	  rm -f $(VENV)/.installed-*; touch $$stamp; \
	fi

infra-up: setup
	scripts/infra.sh up

infra-down:
	scripts/infra.sh down

infra-status:
	scripts/infra.sh status

migrate:
	$(VENV)/bin/kencana migrate

# The suite talks to the managed broker as the test principal (SASL/SCRAM over TLS unless
# KENCANA_KAFKA_SECURITY=plaintext; `scripts/infra.sh env` prints nothing for a Kafka of your own).
test: setup infra-up
	eval "$$(scripts/infra.sh env kencana-test)"; $(VENV)/bin/pytest -q -m "not slow"

test-slow: setup infra-up
	eval "$$(scripts/infra.sh env kencana-test)"; $(VENV)/bin/pytest -q -s -m "slow and not faults"

# The fault scenarios (issue 14) on their own PostgreSQL (5442) and Kafka (9192) in .local-faults, started and
# stopped by scripts/faults.sh: they kill and stop those servers, never the usual ones. Figures: bench/faults/,
# then docs/reliability.md. FAULTS_ARGS passes pytest arguments (e.g. -k s03).
test-faults: setup
	rc=0; scripts/faults.sh run $(FAULTS_ARGS) || rc=$$?; $(PY) -m tests.faults.report; exit $$rc

# The Docker images and docker-compose.yml running (issue 18), not part of `make test`: installs what is missing
# (Debian's docker.io and a dockerd it stops again at the end, the compose plugin built from the Go module proxy, a
# Python base image from Debian's packages when Docker Hub is unreachable), builds the four images, `docker compose
# up --wait`, the end-to-end flows against the containers (tests/compose), every container healthy and its log
# free of the personal data sent, then down. Mode (full file, or docker-compose.host.yml on this project's
# PostgreSQL and Kafka) chosen automatically; see scripts/compose-test.sh and the README's Docker section.
test-compose: setup infra-up
	scripts/compose-test.sh run

# Schemathesis' long run against the four APIs (the bounded one is part of `make test`); prints requests and
# answers per service, exit 1 on any 5xx or conformance failure. FUZZ_ARGS="--service registry" for one service.
test-fuzz: setup infra-up
	eval "$$(scripts/infra.sh env kencana-test)"; $(PY) -m tests.openapi.fuzz --long $(FUZZ_ARGS)

# Figures measured side by side in one run (speed targets are checked here, never in tests). The benches and the
# rehearsal run as the Kafka admin: they create their own topics, and Kafka users for the services they start.
bench: setup infra-up
	eval "$$(scripts/infra.sh env kencana-admin)"; $(VENV)/bin/python -m bench

# The national-scale rehearsal (not in `make test`): a province file through the import, every consumer caught up;
# figures to docs/scale.md and bench/scale_results.json. `make bench-scale FAMILIES=2000` for a small run.
FAMILIES ?= 1000000
bench-scale: setup infra-up
	eval "$$(scripts/infra.sh env kencana-admin)"; $(VENV)/bin/python -m bench.scale --families $(FAMILIES) $(SCALE_ARGS)

lint:
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy shared cli services

up: infra-up migrate
	scripts/services.sh up

# The first command for a new user: everything up, then a synthetic programme and its story (services stay up).
# The demo is infra tooling: it runs as the Kafka admin (it creates the demo ministry's own Kafka user).
demo: up
	eval "$$(scripts/infra.sh env kencana-admin)"; $(VENV)/bin/kencana demo

down:
	scripts/services.sh down
	scripts/infra.sh down

# Stops everything, then deletes the state folder (and a PostgreSQL cluster relocated under /var/tmp).
clean-state: down
	@loc="$(KENCANA_STATE_DIR)/pg.location"; \
	if [ -s "$$loc" ]; then pg="$$(cat "$$loc")"; rm -rf "$$pg"; rmdir "$$(dirname "$$pg")" 2>/dev/null || true; fi
	rm -rf "$(KENCANA_STATE_DIR)"
