# Real dependencies the tests start and stop on 127.0.0.1 (tests/support/): PostgreSQL from the
# Debian package, Kafka jars from Maven into $(SPG_CACHE_DIR)/kafka-<scala>-<version>/, and
# fake-gcs-server built by tools/go-build.sh. Each script is a no-op when its part is in place.

.PHONY: deps deps-postgresql deps-kafka deps-fake-gcs-server test-deps bench-deps

deps: deps-postgresql deps-kafka deps-fake-gcs-server ## Install PostgreSQL, download Kafka, build fake-gcs-server (no-op when present)

deps-postgresql: ## apt-get install postgresql when it is missing (apt-get update only if needed)
	@tools/deps/postgresql.sh >/dev/null

deps-kafka: ## Download the pinned Kafka broker jars with Maven into the cache
	@tools/deps/kafka.sh >/dev/null

deps-fake-gcs-server: ## Build the pinned fake-gcs-server into the cache
	@tools/go-build.sh fake-gcs-server >/dev/null

test-deps: setup deps ## The test fixtures themselves: SQL, produce/consume, GCS round trips, restarts, loopback only
	$(PYTEST) -p tests.support.fixtures tests/support_tests --durations=5

TEST_SUITES += test-deps

bench-deps: setup deps ## Print start-up, restart and stop times of each test dependency
	$(BIN)/python tools/deps/startup_times.py
