# GCP modules (gcs_bucket_info, gcs_bucket, workload_identity): real ansible-playbook runs against
# fake-gcs-server (built by tools/go-build.sh), the IAM test server in tests/iam_test_server, and,
# for the KSA annotation, the embedded cluster. Unit tests run with `make units`.

.PHONY: test-gcp test-gcp-cluster

test-gcp: setup ## GCP modules against fake-gcs-server and the IAM test server (check, apply, rerun)
	$(PYTEST) tests/iam_test_server tests/integration -m "integration and not cluster"

test-gcp-cluster: setup cluster-build ## workload_identity's KSA annotation against the embedded cluster
	$(PYTEST) tests/integration -m "integration and cluster"

TEST_SUITES += test-gcp test-gcp-cluster
