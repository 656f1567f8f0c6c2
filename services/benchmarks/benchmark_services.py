"""Service benchmarks, printed as figures (no pass/fail thresholds).

1. GET /health latency of a real waitress JobManager under 50 concurrent keep-alive clients:
   client-observed p50/p99 (includes queueing in the 50-deep closed loop) and server-side p50/p99
   (from the Server-Timing header the metrics middleware adds).
2. Throughput in records/s of the window-count job at parallelism 1 and 3 (3 TaskManagers).
3. Throughput of a bare consume -> produce loop with the same client (confluent-kafka) and broker.
4. JobManager failover: two JobManagers, the leader SIGKILLed, time until the standby leads and
   answers /api/v1 itself; repeated, at the default SP_LEADER_POLL_SECONDS and at 0.25 s.

Everything runs on 127.0.0.1 with bounded request and record counts. Run: make bench-services
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from tests.support.gcs_emulator import GcsEmulator  # noqa: E402
from tests.support.kafka_broker import KafkaBroker  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402

from platform_harness import (  # noqa: E402
    Events,
    Platform,
    produce,
    produce_end_of_input,
    wait_for,
    window_count_job,
)

PARTITIONS = 6


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


async def _health_client(port: int, requests: int, latencies: list[float], server_times: list[float],
                         interval: float = 0.0) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    next_send = time.perf_counter() + interval * random.random()
    try:
        for _request_number in range(requests):
            if interval:
                await asyncio.sleep(max(0.0, next_send - time.perf_counter()))
                next_send += interval
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(
                line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
            )
            await reader.readexactly(int(headers["Content-Length"]))
            latencies.append(time.perf_counter() - started)
            server_times.append(float(headers["Server-Timing"].split("dur=")[1]) / 1000)
    finally:
        writer.close()


async def _health_load(port: int, clients: int, requests_per_client: int,
                       interval: float = 0.0) -> tuple[list, list, float]:
    """Closed loop (interval 0: each client sends as soon as it has an answer) or one request per interval."""
    latencies: list[float] = []
    server_times: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(_health_client(port, requests_per_client, latencies, server_times, interval)
                           for _client_number in range(clients)))
    return latencies, server_times, time.perf_counter() - started


def _report(label: str, latencies: list[float], server_times: list[float], elapsed: float) -> None:
    print(f"/health, {label} ({len(latencies) / elapsed:.0f} req/s): "
          f"client p50 {percentile(latencies, .5) * 1e3:.3f} ms, p99 {percentile(latencies, .99) * 1e3:.3f} ms; "
          f"server p50 {percentile(server_times, .5) * 1e3:.3f} ms, p99 {percentile(server_times, .99) * 1e3:.3f} ms")


def bench_health(platform: Platform, clients: int, requests_per_client: int, open_loop_rate: float) -> None:
    port = platform.jobmanager_port
    asyncio.run(_health_load(port, clients, 20))  # warm-up
    _report("1 client, closed loop", *asyncio.run(_health_load(port, 1, 2000)))
    _report(f"{clients} concurrent clients, closed loop",
            *asyncio.run(_health_load(port, clients, requests_per_client)))
    _report(f"{clients} concurrent clients, open loop at {open_loop_rate:.0f} req/s",
            *asyncio.run(_health_load(port, clients, requests_per_client // 2, clients / open_loop_rate)))


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
    parser.add_argument("--requests-per-client", type=int, default=400)
    parser.add_argument("--open-loop-rate", type=float, default=500, help="total req/s of the open-loop run")
    parser.add_argument("--failover-rounds", type=int, default=5, help="leader kills per failover run")
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
            bench_health(platform, args.clients, args.requests_per_client, args.open_loop_rate)
            records = Events.generate(args.records).records
            print(f"bare consume->produce loop: {bench_bare_loop(broker, records):,.0f} records/s "
                  f"({len(records):,} records)")
            for parallelism in (1, 3):
                rate = bench_job(platform, broker, records, parallelism)
                print(f"window-count job, parallelism {parallelism}: {rate:,.0f} records/s ({len(records):,} records)")
            platform.stop()
            # The database now holds the jobs above: each new leader loads them, as in production.
            for poll_seconds in (1.0, 0.25):
                bench_failover(workdir / f"failover-{poll_seconds:g}", platform_settings, poll_seconds,
                               args.failover_rounds)
        finally:
            platform.stop()
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
