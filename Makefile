# Entry points for users and CI. Each target can be run on its own; all of them reuse .venv.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

include tools/versions.env

VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
# Built binaries, downloads and ansible-test's copy of the tree live here, outside the repo.
export SPG_CACHE_DIR ?= $(HOME)/.cache/stream-processing-gke
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/build/collections
PYTEST := $(BIN)/python -m pytest

# Each mk/*.mk appends its suites to TEST_SUITES and documents its targets with '## '.
TEST_SUITES :=
include $(sort $(wildcard mk/*.mk))

.PHONY: help setup lint sanity units test build collection-link clean

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

setup: ## Create or refresh .venv (a no-op when it is current)
	@tools/setup.sh

# Lets ansible-playbook, molecule and ansible-lint resolve stream_processing.gke from this checkout.
collection-link: setup
	@mkdir -p build/collections/ansible_collections/stream_processing
	@ln -sfn $(CURDIR) build/collections/ansible_collections/stream_processing/gke

# ANSIBLE_HOME keeps ansible-lint's copy of this collection inside the (ignored) project .ansible/.
lint: setup collection-link ## ansible-lint (production profile), yamllint and ruff
	yamllint --strict .
	ruff check .
	ANSIBLE_HOME=$(CURDIR)/.ansible ansible-lint --profile production

sanity: setup ## ansible-test sanity (offline, from a copy under ansible_collections/)
	tools/ansible-test.sh sanity --venv --python $(PYTHON_VERSION) --color no

units: setup ## ansible-test units for plugins, pytest for everything else that needs no services
	tools/ansible-test.sh units --venv --python $(PYTHON_VERSION) --color no
	$(PYTEST) services/tests/unit

# The suites share one embedded cluster; it is stopped at the end unless it was already running.
test: setup ## Everything: lint, sanity, units and every test suite
	@cluster_was_up=false; \
	$(CLUSTER_SH) status >/dev/null 2>&1 && cluster_was_up=true; \
	trap '$$cluster_was_up || $(CLUSTER_SH) down >/dev/null 2>&1 || true' EXIT; \
	SPG_CLUSTER_KEEP=1 $(MAKE) --no-print-directory lint sanity units $(TEST_SUITES); \
	echo "make test: all suites passed (lint sanity units $(TEST_SUITES))"

build: setup ## Build the collection tarball into build/
	@mkdir -p build
	ansible-galaxy collection build --force --output-path build .

clean: ## Remove build outputs (keeps .venv and the binary cache)
	rm -rf build tests/output .pytest_cache .ruff_cache
