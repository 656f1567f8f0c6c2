# Deployment roles: deploy and tear down the platform with an inventory, molecule scenarios,
# end-to-end tests of the playbooks, and the deploy benchmark. The local inventory targets the
# embedded cluster (mk/cluster.mk starts it and exports K8S_AUTH_KUBECONFIG).

DEPLOY_INVENTORY ?= inventories/local
# Extra ansible-playbook arguments, e.g. DEPLOY_ARGS="--tags postgres" or "--check --diff".
DEPLOY_ARGS ?=
LOCAL_VAULT_ARGS := --vault-id local@inventories/local/vault-password.txt
deploy_is_local = $(filter inventories/local inventories/local/,$(DEPLOY_INVENTORY))
# Other inventories take their vault password from ANSIBLE_VAULT_PASSWORD_FILE or DEPLOY_ARGS.
DEPLOY_VAULT_ARGS ?= $(if $(deploy_is_local),$(LOCAL_VAULT_ARGS))
MOLECULE_ARGS ?=

.PHONY: deploy teardown molecule test-roles bench-deploy

deploy: collection-link $(if $(deploy_is_local),cluster-up) ## Deploy the platform (DEPLOY_INVENTORY=inventories/local, DEPLOY_ARGS=...)
	ansible-playbook playbooks/deploy.yml -i $(DEPLOY_INVENTORY) $(DEPLOY_VAULT_ARGS) $(DEPLOY_ARGS)

teardown: collection-link ## Remove what deploy created; PVCs kept unless DEPLOY_ARGS="-e teardown_delete_pvcs=true"
	ansible-playbook playbooks/teardown.yml -i $(DEPLOY_INVENTORY) $(DEPLOY_VAULT_ARGS) $(DEPLOY_ARGS)

# molecule copies this collection into ANSIBLE_HOME; keep that copy in the ignored project .ansible/.
# SCENARIO=<name> runs one scenario (a folder of extensions/molecule) instead of all of them.
SCENARIO ?=
molecule: collection-link cluster-up ## Every molecule scenario (extensions/molecule), or SCENARIO=<name>; each in its own namespace
	ANSIBLE_HOME=$(CURDIR)/.ansible molecule test $(if $(SCENARIO),--scenario-name $(SCENARIO),--all) $(MOLECULE_ARGS)

test-roles: molecule ## Molecule, then end-to-end deploy checks: check/diff, bad configs, secrets, teardown
	$(PYTEST) tests/roles

bench-deploy: collection-link cluster-up ## Time a full deploy, the no-change rerun and kubectl apply of the same manifests
	benchmarks/deploy_benchmark.sh

TEST_SUITES += test-roles
