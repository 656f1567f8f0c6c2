# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE)
"""The platform_preflight action run by a real ansible-playbook: arguments, task variables, result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import ansible_collections.stream_processing.gke as collection
import pytest
import yaml

COLLECTION_ROOT = Path(list(collection.__path__)[0]).resolve()
COLLECTIONS_PATH = Path(list(collection.__path__)[0]).parents[1].parent
DEFAULTS_FILE = COLLECTION_ROOT / "roles" / "platform" / "defaults" / "main.yml"
LIVE_CLUSTER = {
    "reachable": True,
    "node_count": 3,
    "api_versions": [
        "v1",
        "apps/v1",
        "policy/v1",
        "autoscaling/v2",
        "networking.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
        "metrics.k8s.io/v1beta1",
    ],
}
SECRET = "never-print-this-4711"


def run_preflight(tmp_path, overrides, task_args):
    """Run the action in a real playbook; return the process and the task's registered result."""
    settings = yaml.safe_load(DEFAULTS_FILE.read_text())
    settings.update(overrides)
    result_file = tmp_path / "result.json"
    play = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": settings,
            "tasks": [
                {
                    "name": "Preflight",
                    "stream_processing.gke.platform_preflight": task_args,
                    "register": "result",
                    "ignore_errors": True,
                },
                {
                    "name": "Keep the result",
                    "ansible.builtin.copy": {"content": "{{ result | to_json }}", "dest": str(result_file)},
                },
            ],
        }
    ]
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(yaml.safe_dump(play))
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_NOCOLOR="true",
    )
    # The module form works both from .venv and under ansible-test, where no ansible-playbook script exists.
    command = [
        sys.executable,
        "-m",
        "ansible.cli.playbook",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        str(playbook),
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed, json.loads(result_file.read_text())


@pytest.fixture(scope="module")
def tmp_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("preflight")


def test_good_inventory_vars_pass(tmp_dir):
    completed, result = run_preflight(tmp_dir, {"platform_postgres_password": SECRET}, {"cluster": LIVE_CLUSTER})
    assert result["errors"] == []
    assert result["usage"]["requests.cpu"] == "7"
    assert SECRET not in completed.stdout + completed.stderr


def test_bad_inventory_vars_fail_with_named_variable(tmp_dir):
    completed, result = run_preflight(
        tmp_dir,
        {
            "platform_postgres_password": SECRET,
            "platform_taskmanager_pdb_min_available": 3,
            "platform_jobmanager_hpa_min_replicas": 6,
        },
        {"cluster": LIVE_CLUSTER},
    )
    assert result["failed"] is True
    assert (
        "platform_taskmanager_pdb_min_available (3) must be lower than platform_taskmanager_replicas (3)"
        in result["msg"]
    )
    assert "platform_jobmanager_hpa_min_replicas (6) must not be above" in result["msg"]
    assert SECRET not in completed.stdout + completed.stderr


def test_explicit_settings_and_unreachable_cluster_warn(tmp_dir):
    completed, result = run_preflight(
        tmp_dir, {"platform_postgres_password": SECRET}, {"cluster": {"reachable": False}, "fail_on_warnings": True}
    )
    assert result["failed"] is True
    assert "The served API versions were not checked" in result["msg"]


def test_wrong_argument_type_is_refused(tmp_dir):
    completed, result = run_preflight(
        tmp_dir, {"platform_postgres_password": SECRET}, {"cluster": {"node_count": "many"}}
    )
    assert result["failed"] is True
    assert "node_count" in result["msg"]


def test_overrides_are_analysed_in_place_of_the_variables(tmp_dir):
    completed, result = run_preflight(
        tmp_dir,
        {"platform_postgres_password": SECRET},
        {"cluster": LIVE_CLUSTER, "overrides": {"platform_jobmanager_hpa_max_replicas": 1}},
    )
    assert result["failed"] is True
    assert (
        "platform_jobmanager_hpa_min_replicas (2) must not be above platform_jobmanager_hpa_max_replicas (1)"
        in (result["msg"])
    )
