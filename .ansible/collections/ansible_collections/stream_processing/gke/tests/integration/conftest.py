"""Fixtures for the GCP module integration tests: ansible-playbook against fake-gcs-server and the IAM test server."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.iam_test_server import IamTestServer, IamTestState  # noqa: E402
from tests.integration.playbook_runner import PlaybookRunner  # noqa: E402
from tests.support.embedded_cluster import cluster_namespace, embedded_cluster  # noqa: E402, F401 (fixtures)
from tests.support.gcs_emulator import GcsEmulator  # noqa: E402

# Fixtures of the embedded cluster, used by test_workload_identity_ksa.py.
__all__ = ["cluster_namespace", "embedded_cluster"]

TEST_PROJECT = "test-project"
DEPLOYER_TOKEN = "deployer-token"
DEPLOYER = f"deployer@{TEST_PROJECT}.iam.gserviceaccount.com"


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections root whose stream_processing.gke is this checkout, whatever ANSIBLE_COLLECTIONS_PATH says."""
    root = tmp_path_factory.mktemp("collections")
    namespace = root / "ansible_collections" / "stream_processing"
    namespace.mkdir(parents=True)
    (namespace / "gke").symlink_to(REPO_ROOT, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def playbook_runner(collections_path: Path, tmp_path_factory: pytest.TempPathFactory) -> PlaybookRunner:
    return PlaybookRunner(collections_path, tmp_path_factory.mktemp("playbooks"))


@pytest.fixture(autouse=True)
def _no_ambient_cloud_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # GCP_* and K8S_AUTH_* from the caller's shell must not leak into the modules under test.
    for name in (
        "GCP_PROJECT",
        "GCP_AUTH_KIND",
        "GCP_SERVICE_ACCOUNT_FILE",
        "GCP_SERVICE_ACCOUNT_CONTENTS",
        "GCP_ACCESS_TOKEN",
        "GCP_SCOPES",
        "GCP_STORAGE_ENDPOINT",
        "GCP_IAM_ENDPOINT",
        "STORAGE_EMULATOR_HOST",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "K8S_AUTH_KUBECONFIG",
        "K8S_AUTH_CONTEXT",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[GcsEmulator]:
    """fake-gcs-server with the memory backend: its filesystem backend cannot enable bucket versioning."""
    with GcsEmulator(backend="memory") as emulator:
        yield emulator


@pytest.fixture(scope="session")
def iam_test_server() -> Iterator[IamTestServer]:
    with IamTestServer() as server:
        yield server


@pytest.fixture
def iam(iam_test_server: IamTestServer) -> IamTestState:
    """The IAM test server's state, reset to one project and one all-powerful deployer token."""
    state = iam_test_server.state
    state.reset()
    state.add_project(TEST_PROJECT)
    state.add_token(DEPLOYER_TOKEN, DEPLOYER)
    return state
