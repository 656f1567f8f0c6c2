"""While every dependency runs, each of their listening sockets is bound to 127.0.0.1."""

import subprocess

import pytest

pytestmark = pytest.mark.integration


def listening_addresses_by_pid() -> dict[int, set[str]]:
    output = subprocess.run(["ss", "-H", "-ltnp"], capture_output=True, text=True, check=True).stdout
    addresses: dict[int, set[str]] = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) < 6:  # ss shows no process for sockets of other users' namespaces
            continue
        local_address = fields[3].rsplit(":", 1)[0]
        for pid in (int(part.split("=")[1]) for part in fields[5].split(",") if part.startswith("pid=")):
            addresses.setdefault(pid, set()).add(local_address)
    return addresses


def test_every_dependency_listens_on_loopback_only(gcs_emulator, postgres_server, kafka_broker):
    listening = listening_addresses_by_pid()

    for server in (gcs_emulator, postgres_server, kafka_broker):
        assert listening.get(server.process.pid) == {"127.0.0.1"}, server
