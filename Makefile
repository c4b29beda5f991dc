# The verbs of the project. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LC := hack/localcluster
# Go builds the cluster, helm and test images; its usual home may be off PATH in CI.
export PATH := $(PATH):/usr/local/go/bin
HOST_PACKAGES := debootstrap lua5.1 wrk prometheus chromium containerd runc containernetworking-plugins iptables conntrack

.DEFAULT_GOAL := help

help: ## list the verbs
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[operator,serving,dev]'
	touch $@

venv: $(BIN)/.installed ## create .venv with every extra installed

lint: venv ## ruff (lint + format) and mypy, as CI runs them
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv ## format the code
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

crds: venv ## regenerate crds/ from the pydantic models
	$(BIN)/python -m coalmine.api.crdgen crds

protos: venv ## regenerate the gRPC modules of serving_image/coalmine_serving/oip/inference.proto
	$(BIN)/python -m coalmine_serving.oip.protogen

helm: ## build helm from Go modules (cached) and print its path
	@hack/helm/build.sh

kind: ## build kind from Go modules (cached) and print its path (COALMINE_TEST_CLUSTER=kind uses it)
	@hack/kind/build.sh

chart: crds ## copy crds/ into the chart and regenerate dist/install.yaml
	hack/helm/render.sh

check-generated: chart ## fail when generated files differ from what is checked in
	@git diff --exit-code --stat -- crds charts/coalmine/files/crds dist \
	  || { echo "generated files are stale: run 'make chart' and commit"; exit 1; }

# "installed" only: a package removed but not purged still answers `dpkg -s`.
host-deps: ## Debian packages the tests and the demo use (root; installed only when missing)
	@missing=""; for p in $(HOST_PACKAGES); do \
	  [ "$$(dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null)" = installed ] || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing$$missing"; apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi

test: venv host-deps lint check-generated ## everything CI runs: lint, generated files, all tests on a real cluster
	$(BIN)/pytest

unit: venv ## the fast tests only (no cluster)
	$(BIN)/pytest tests/unit

cluster-up: ## start the offline single-node Kubernetes (builds it on first use)
	$(LC)/up.sh

cluster-down: ## stop the local cluster and remove everything it left behind
	$(LC)/down.sh

cluster-status: ## show the local cluster's processes and node
	$(LC)/status.sh

-include hack/images/images.mk

.PHONY: help venv lint fmt crds protos helm kind chart check-generated host-deps test unit cluster-up cluster-down cluster-status

demo: venv host-deps ## the story in one command: v1 served, v2 promoted, v3 rolled back, a report (DEMO_PACE=fast: no pauses)
	$(BIN)/python hack/demo/demo.py up

demo-down: venv ## remove what `make demo` created (the cluster only stays or goes as before the demo)
	$(BIN)/python hack/demo/demo.py down

.PHONY: demo demo-down
