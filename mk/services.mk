# JobManager and TaskManager services (services/): integration tests and benchmarks. Their unit and
# in-process API tests run with `make units`. Dependencies (PostgreSQL, Kafka, fake-gcs-server)
# come from `make deps`; the tests start and stop them on 127.0.0.1.

SERVICES_IMAGE_TAG ?= dev
SERVICES_IMAGE_REGISTRY ?= localhost

.PHONY: test-services bench-services services-images

test-services: setup deps ## Service integration tests: JobManager + 3 TaskManagers, failover, GCS outage, restarts
	$(PYTEST) services/tests/integration --durations=10

bench-services: setup deps ## Service benchmarks: /health latency, window-count job and bare Kafka loop throughput
	PYTHONPATH=$(CURDIR) $(BIN)/python services/benchmarks/benchmark_services.py

services-images: ## Build both service images with docker or podman (not needed by any test)
	@engine=$$(command -v docker || command -v podman) || { echo "services-images: needs docker or podman" >&2; exit 1; }; \
	for role in jobmanager taskmanager; do \
	  $$engine build -f services/Dockerfile --target $$role \
	    -t $(SERVICES_IMAGE_REGISTRY)/stream-processing-$$role:$(SERVICES_IMAGE_TAG) .; \
	done

TEST_SUITES += test-services
