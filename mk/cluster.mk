# Embedded Kubernetes cluster: upstream control plane built from pinned Go modules, kwok nodes.
# Kubeconfig: $(SPG_CACHE_DIR)/cluster/kubeconfig.yaml (also printed by `make cluster-kubeconfig`).
# ansible-playbook and molecule target it through K8S_AUTH_KUBECONFIG, exported below unless the
# caller already set it (point it at another kubeconfig to deploy elsewhere).

CLUSTER_SH := tools/embedded-cluster/cluster.sh
CLUSTER_KUBECONFIG := $(SPG_CACHE_DIR)/cluster/kubeconfig.yaml
export K8S_AUTH_KUBECONFIG ?= $(CLUSTER_KUBECONFIG)
# Every Go component tools/go-build.sh knows; the first five make up the cluster.
CLUSTER_COMPONENTS := kubernetes etcd kwok kwokctl metrics-server
GO_COMPONENTS := $(CLUSTER_COMPONENTS) fake-gcs-server promtool

.PHONY: cluster-build go-tools cluster-up cluster-down cluster-status cluster-kubeconfig test-cluster

cluster-build: ## Build the pinned control-plane binaries into the cache (first time 15-30 min)
	@for component in $(CLUSTER_COMPONENTS); do tools/go-build.sh $$component >/dev/null; done

go-tools: ## Build every pinned Go tool (cluster, fake-gcs-server, promtool) into the cache
	@for component in $(GO_COMPONENTS); do tools/go-build.sh $$component; done

cluster-up: cluster-build ## Start the embedded cluster, or check the running one (kubeconfig path printed)
	@$(CLUSTER_SH) up

cluster-down: ## Stop the embedded cluster's processes and delete its state
	@$(CLUSTER_SH) down

cluster-status: ## Components with pid and memory; fails when the cluster is not healthy
	@$(CLUSTER_SH) status

cluster-kubeconfig: ## Print the kubeconfig path (the default K8S_AUTH_KUBECONFIG of every target)
	@$(CLUSTER_SH) kubeconfig

test-cluster: setup cluster-build ## Acceptance tests of the embedded cluster (reuses a running one)
	$(PYTEST) tests/cluster -m cluster

TEST_SUITES += test-cluster
