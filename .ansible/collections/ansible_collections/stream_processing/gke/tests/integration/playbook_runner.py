"""Run collection modules through real ansible-playbook invocations and return their registered results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

COLLECTION = "stream_processing.gke"


@dataclass
class Task:
    """One module call in a generated play."""

    module: str
    args: dict
    check: bool = False
    diff: bool = True


@dataclass
class PlaybookRun:
    """The registered result of each task, plus the ansible-playbook output (warnings are printed there)."""

    results: list[dict]
    stdout: str
    stderr: str
    returncode: int = 0

    def __getitem__(self, index: int) -> dict:
        return self.results[index]


class PlaybookRunner:
    """Writes a play for a list of tasks, runs ansible-playbook on localhost and reads back every result."""

    def __init__(self, collections_path: Path, workdir: Path, env: dict[str, str] | None = None):
        self.collections_path = collections_path
        self.workdir = workdir
        self.env = env or {}

    def run(self, *tasks: Task, env: dict[str, str] | None = None) -> PlaybookRun:
        with tempfile.TemporaryDirectory(dir=self.workdir) as tmp:
            tmp_path = Path(tmp)
            output = tmp_path / "results.json"
            play_tasks = []
            for index, task in enumerate(tasks):
                play_tasks.append(
                    {
                        "name": f"Task {index}: {task.module}",
                        f"{COLLECTION}.{task.module}": task.args,
                        "check_mode": task.check,
                        "diff": task.diff,
                        "register": f"result_{index}",
                        "ignore_errors": True,
                    }
                )
            names = ", ".join(f"result_{index}" for index in range(len(tasks)))
            play_tasks.append(
                {
                    "name": "Save the registered results",
                    "ansible.builtin.copy": {
                        "content": f"{{{{ [{names}] | to_json }}}}",
                        "dest": str(output),
                        "mode": "0600",
                    },
                    "check_mode": False,
                    "diff": False,
                }
            )
            playbook = tmp_path / "play.yml"
            playbook.write_text(
                yaml.safe_dump(
                    [{"name": "Integration", "hosts": "localhost", "gather_facts": False, "tasks": play_tasks}],
                    sort_keys=False,
                )
            )
            process_env = dict(os.environ)
            process_env.update(
                {
                    "ANSIBLE_COLLECTIONS_PATH": str(self.collections_path),
                    "ANSIBLE_NOCOLOR": "1",
                    "ANSIBLE_FORCE_COLOR": "0",
                    "ANSIBLE_RETRY_FILES_ENABLED": "0",
                    "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
                    "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
                    "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
                }
            )
            process_env.update(self.env)
            process_env.update(env or {})
            completed = subprocess.run(
                [
                    str(Path(sys.executable).with_name("ansible-playbook")),
                    "-i",
                    "localhost,",
                    "-c",
                    "local",
                    "-e",
                    f"ansible_python_interpreter={sys.executable}",
                    str(playbook),
                ],
                capture_output=True,
                text=True,
                env=process_env,
                cwd=tmp,
                timeout=600,
                check=False,
            )
            if not output.exists():
                raise AssertionError(
                    f"ansible-playbook failed (rc {completed.returncode}):\n"
                    f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
                )
            results = json.loads(output.read_text())
        return PlaybookRun(results, completed.stdout, completed.stderr, completed.returncode)
