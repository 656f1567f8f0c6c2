"""Service benchmarks, printed as figures (no pass/fail thresholds).

1. GET /health latency of a real waitress JobManager under 50 concurrent keep-alive clients, measured
   by tools/gomod/httpload: a closed loop (each client sends again as soon as answered, so latency
   includes queueing behind the other 49: p50 is about 50 / throughput) and open loops at fixed
   total rates (each request timed from its write; its lateness against the schedule is printed as
   send lag). Server-side p50/p99 come from the Server-Timing header the metrics middleware adds.
2. Throughput in records/s of the window-count job at parallelism 1 and 3 (3 TaskManagers).
3. Throughput of a bare consume -> produce loop with the same client (confluent-kafka) and broker.
4. JobManager failover: two JobManagers, the leader SIGKILLed, time until the standby leads and
   answers /api/v1 itself; repeated, at the default SP_LEADER_POLL_SECONDS and at 0.25 s.

Everything runs on 127.0.0.1 with bounded request and record counts. Run: make bench-services
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.kafka_broker import KafkaBroker  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402
from tests.support.processes import provisioned_path  # noqa: E402

from platform_harness import (  # noqa: E402
    Events,
    Platform,
    produce,
    produce_end_of_input,
    wait_for,
    window_count_job,
)

PARTITIONS = 6
PARTS = ["health", "throughput", "failover"]
HEALTH_TARGET_P50_MS, HEALTH_TARGET_P99_MS = 1.0, 5.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run_httpload(url: str, clients: int, seconds: float, rate: float = 0.0) -> dict:
    """One run of tools/gomod/httpload (Go, so the load generator leaves the server its CPU)."""
    httpload = provisioned_path("tools/go-build.sh", "httpload")
    command = [str(httpload), f"-url={url}", f"-clients={clients}", f"-duration={seconds}s", f"-rate={rate}"]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def _report(figures: dict) -> None:
    statuses = ", ".join(f"{count} x {status}" for status, count in sorted(figures["status_counts"].items()))
    print(f"/health, {figures['clients']} client(s), {figures['mode']} ({figures['requests_per_second']:.0f} req/s, "
          f"{statuses}, {figures['errors']} errors): p50 {figures['p50_ms']:.3f} ms, p90 {figures['p90_ms']:.3f} ms, "
          f"p99 {figures['p99_ms']:.3f} ms, max {figures['max_ms']:.3f} ms; "
          f"send lag p50 {figures['send_lag_p50_ms']:.3f} ms, p99 {figures['send_lag_p99_ms']:.3f} ms; "
          f"server p50 {figures['server_p50_ms']:.3f} ms, p99 {figures['server_p99_ms']:.3f} ms")


def bench_health(platform: Platform, clients: int, seconds: float, open_loop_rates: list[float]) -> None:
    url = f"{platform.jobmanager_url}/health"
    _report(run_httpload(url, 1, seconds))
    saturated = run_httpload(url, clients, seconds)
    _report(saturated)
    within, beyond = [], []
    for rate in open_loop_rates:
        figures = run_httpload(url, clients, seconds, rate)
        _report(figures)
        meets = figures["p50_ms"] <= HEALTH_TARGET_P50_MS and figures["p99_ms"] <= HEALTH_TARGET_P99_MS
        (within if meets else beyond).append(f"{rate:.0f}")
    print(f"/health target p50 <= {HEALTH_TARGET_P50_MS} ms, p99 <= {HEALTH_TARGET_P99_MS} ms with {clients} clients: "
          f"met at {', '.join(within) or 'no'} req/s, missed at {', '.join(beyond) or 'no'} req/s; "
          f"a closed loop saturates at {saturated['requests_per_second']:.0f} req/s, where p50 is about "
          f"{clients} / throughput = {clients / saturated['requests_per_second'] * 1e3:.1f} ms")


def bench_job(platform: Platform, broker: KafkaBroker, records: list[dict], parallelism: int) -> float:
    source = broker.create_topic(partitions=PARTITIONS)
    sink = broker.create_topic(partitions=3)
    produce(broker.bootstrap, source, records)
    produce_end_of_input(broker.bootstrap, source, PARTITIONS)
    total = len(records) + PARTITIONS
    job_id = platform.submit(window_count_job(source, sink, parallelism))
    first = wait_for(lambda: platform.records_in(job_id) > 0 and time.perf_counter(), 60, "the job to start", 0.02)
    wait_for(lambda: platform.records_in(job_id) >= total, 600, "the job to read every record", 0.02)
    elapsed = time.perf_counter() - first
    platform.session.post(f"{platform.jobmanager_url}/api/v1/jobs/{job_id}/cancel", timeout=5)
    return total / elapsed


def bench_bare_loop(broker: KafkaBroker, records: list[dict]) -> float:
    source = broker.create_topic(partitions=PARTITIONS)
    sink = broker.create_topic(partitions=3)
    produce(broker.bootstrap, source, records)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "bare-loop", "enable.auto.commit": False})
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5})
    consumer.assign([TopicPartition(source, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    seen, first = 0, None
    deadline = time.monotonic() + 600
    while seen < len(records) and time.monotonic() < deadline:
        for message in consumer.consume(1000, 0.1):
            if message.error() is None:
                first = first or time.perf_counter()
                producer.produce(sink, value=message.value(), key=message.key())
                seen += 1
        producer.poll(0)
    producer.flush(30)
    elapsed = time.perf_counter() - first
    consumer.close()
    return seen / elapsed


def bench_failover(workdir: Path, platform_settings: dict, poll_seconds: float, rounds: int) -> None:
    """Kills the leader `rounds` times; the killed one restarts as the standby of the new leader."""
    workdir.mkdir(parents=True, exist_ok=True)
    platform = Platform(workdir, **platform_settings, SP_LEADER_POLL_SECONDS=str(poll_seconds))
    try:
        leader = platform.jobmanager.start()
        wait_for(lambda: platform.leads_and_serves_the_api(leader), 30, "the first leader")
        standby = platform.add_jobmanager("jm-1").start()
        timings = []
        for _round_number in range(rounds):
            followed = leader.name
            wait_for(lambda s=standby, f=followed: platform.get("/health", base=s.url)["leader_id"] == f, 30,
                     "the standby to follow the leader")
            killed_at = time.perf_counter()
            leader.kill()
            wait_for(lambda s=standby: platform.leads_and_serves_the_api(s), 30, "the standby to take over",
                     interval=0.01)
            timings.append(time.perf_counter() - killed_at)
            leader.start()
            leader, standby = standby, leader
        print(f"JobManager failover (leader SIGKILL -> standby leading and serving /api/v1), "
              f"SP_LEADER_POLL_SECONDS={poll_seconds:g}, {rounds} rounds: min {min(timings):.3f} s, "
              f"median {percentile(timings, 0.5):.3f} s, max {max(timings):.3f} s")
    finally:
        platform.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="events per throughput run")
    parser.add_argument("--clients", type=int, default=50, help="concurrent /health clients")
    parser.add_argument("--health-seconds", type=float, default=10, help="length of each /health run")
    parser.add_argument("--open-loop-rates", type=float, nargs="+", default=[100, 500, 1000],
                        help="total req/s of each open-loop /health run")
    parser.add_argument("--failover-rounds", type=int, default=5, help="leader kills per failover run")
    parser.add_argument("--only", choices=PARTS, nargs="+", default=PARTS, help="run only these parts")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="spg-bench-"))
    with PostgresServer() as postgres, KafkaBroker() as broker, GcsEmulator() as gcs:
        bucket = gcs.create_bucket()
        database = postgres.create_database()
        platform_settings = dict(database_url=postgres.dsn(database, with_password=False),
                                 database_password=postgres.password, kafka_bootstrap=broker.bootstrap,
                                 gcs_endpoint=gcs.endpoint, bucket=bucket, SP_LOG_LEVEL="WARNING")
        platform = Platform(workdir, **platform_settings, SP_HEARTBEAT_INTERVAL_SECONDS="0.1",
                            SP_CHECKPOINT_INTERVAL_SECONDS="5", SP_HTTP_THREADS="8")
        try:
            platform.start(taskmanagers=3)
            if "health" in args.only:
                bench_health(platform, args.clients, args.health_seconds, args.open_loop_rates)
            if "throughput" in args.only:
                records = Events.generate(args.records).records
                print(f"bare consume->produce loop: {bench_bare_loop(broker, records):,.0f} records/s "
                      f"({len(records):,} records)")
                for parallelism in (1, 3):
                    rate = bench_job(platform, broker, records, parallelism)
                    print(f"window-count job, parallelism {parallelism}: {rate:,.0f} records/s "
                          f"({len(records):,} records)")
            platform.stop()
            # With throughput run first, the database holds its jobs: each new leader loads them, as in production.
            for poll_seconds in (1.0, 0.25) if "failover" in args.only else ():
                bench_failover(workdir / f"failover-{poll_seconds:g}", platform_settings, poll_seconds,
                               args.failover_rounds)
        finally:
            platform.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
