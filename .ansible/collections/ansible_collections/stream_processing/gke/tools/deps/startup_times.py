"""Print how long each test dependency takes to start and stop (median and worst of N runs).

Usage: .venv/bin/python tools/deps/startup_times.py [RUNS]   (or: make bench-deps)
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.kafka_broker import KafkaBroker  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402


def measure(factory, runs: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {"prepare": [], "start": [], "restart": [], "stop": []}
    for _run in range(runs):
        began = time.monotonic()
        server = factory()
        figures["prepare"].append(time.monotonic() - began)
        try:
            server.start()
            figures["start"].append(server.process.startup_seconds)
            server.stop()
            server.start()
            figures["restart"].append(server.process.startup_seconds)
            began = time.monotonic()
            server.stop()
            figures["stop"].append(time.monotonic() - began)
        finally:
            server.close()
    return figures


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    servers = {
        "fake-gcs-server": lambda: GcsEmulator(backend="filesystem"),
        "postgresql": PostgresServer,
        "kafka (KRaft)": KafkaBroker,
    }
    print(f"{'dependency':<18}{'step':<10}{'median s':>10}{'max s':>10}   ({runs} runs)")
    for name, factory in servers.items():
        for step, seconds in measure(factory, runs).items():
            print(f"{name:<18}{step:<10}{statistics.median(seconds):>10.2f}{max(seconds):>10.2f}")


if __name__ == "__main__":
    main()
