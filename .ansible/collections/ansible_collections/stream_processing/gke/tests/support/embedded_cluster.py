"""The embedded Kubernetes cluster (tools/embedded-cluster/cluster.sh) for tests.

`embedded_cluster` is a session fixture: it reuses a healthy running cluster, or starts one and
then stops it at the end of the session (set SPG_CLUSTER_KEEP=1 to leave it running for the next
session). Register it with `pytest_plugins = ["tests.support.embedded_cluster"]`.

Ansible and molecule reach the same cluster with K8S_AUTH_KUBECONFIG=<EmbeddedCluster.kubeconfig>
(see `EmbeddedCluster.ansible_env`).
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CLUSTER_SCRIPT = REPO_ROOT / "tools" / "embedded-cluster" / "cluster.sh"
# A cold start compiles nothing (cluster-build does that) but waits for every component.
START_TIMEOUT_SECONDS = 600


class ClusterError(RuntimeError):
    """cluster.sh failed; the message carries its output."""


def _run_script(command: str, env: Mapping[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLUSTER_SCRIPT), command],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass
class EmbeddedCluster:
    """One embedded cluster, named by its state directory (SPG_CLUSTER_DIR)."""

    state_dir: Path | None = None
    nodes: int | None = None
    started_here: bool = field(default=False, init=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment for cluster.sh that selects this cluster."""
        env = dict(os.environ)
        if self.state_dir is not None:
            env["SPG_CLUSTER_DIR"] = str(self.state_dir)
        if self.nodes is not None:
            env["SPG_CLUSTER_NODES"] = str(self.nodes)
        return env

    @cached_property
    def kubeconfig(self) -> Path:
        result = _run_script("kubeconfig", self.env, timeout=30)
        if result.returncode != 0:
            raise ClusterError(f"cluster.sh kubeconfig failed:\n{result.stderr}")
        return Path(result.stdout.strip().splitlines()[-1])

    @property
    def ansible_env(self) -> dict[str, str]:
        """Environment for ansible-playbook/molecule runs against this cluster."""
        return {**os.environ, "K8S_AUTH_KUBECONFIG": str(self.kubeconfig), "KUBECONFIG": str(self.kubeconfig)}

    def healthy(self) -> bool:
        return _run_script("status", self.env, timeout=60).returncode == 0

    def up(self) -> None:
        was_healthy = self.healthy()
        result = _run_script("up", self.env, timeout=START_TIMEOUT_SECONDS)
        if result.returncode != 0:
            raise ClusterError(f"cluster.sh up failed (exit {result.returncode}):\n{result.stderr}")
        self.started_here = self.started_here or not was_healthy

    def down(self) -> None:
        result = _run_script("down", self.env, timeout=120)
        if result.returncode != 0:
            raise ClusterError(f"cluster.sh down failed (exit {result.returncode}):\n{result.stderr}")

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raises with kubectl's stderr when check is true."""
        result = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed (exit {result.returncode}):\n{result.stderr}")
        return result

    def get_json(self, *args: str) -> dict:
        return json.loads(self.kubectl("get", *args, "--output", "json").stdout)

    def apply(self, manifest: str, namespace: str | None = None) -> None:
        extra: Sequence[str] = ("--namespace", namespace) if namespace else ()
        self.kubectl("apply", *extra, "--filename", "-", input=manifest)

    def api_client(self):
        """A `kubernetes` Python client ApiClient for this cluster."""
        from kubernetes import config  # noqa: PLC0415 - optional for users of kubectl only

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def component_pids(self) -> dict[str, int]:
        """Processes of this cluster still alive, found by their state directory in /proc."""
        marker = str(self.state_dir or Path(self.kubeconfig).parent)
        found: dict[str, int] = {}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(marker.encode() in arg for arg in argv[1:]):
                found[Path(argv[0].decode(errors="replace")).name] = int(proc.name)
        return found

    def namespace(self, labels: Mapping[str, str] | None = None) -> str:
        """Create a namespace with a unique name; delete it with `delete_namespace`."""
        name = f"test-{uuid.uuid4().hex[:10]}"
        label_lines = "".join(f"\n    {key}: {json.dumps(value)}" for key, value in (labels or {}).items())
        self.apply(f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:{label_lines or ' {}'}\n")
        return name

    def delete_namespace(self, name: str) -> None:
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found")


@pytest.fixture(scope="session")
def embedded_cluster() -> Iterator[EmbeddedCluster]:
    """The shared embedded cluster: reused when running, else started and stopped at the end."""
    cluster = EmbeddedCluster()
    cluster.up()
    yield cluster
    if cluster.started_here and os.environ.get("SPG_CLUSTER_KEEP") != "1":
        cluster.down()


@pytest.fixture
def cluster_namespace(embedded_cluster: EmbeddedCluster) -> Iterator[str]:
    """A fresh namespace on the shared cluster, deleted after the test."""
    name = embedded_cluster.namespace()
    yield name
    embedded_cluster.delete_namespace(name)
