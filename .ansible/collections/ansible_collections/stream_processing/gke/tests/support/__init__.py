"""Real dependencies for tests, started and stopped on 127.0.0.1 (see fixtures.py for the pytest side).

- gcs_emulator.GcsEmulator: fake-gcs-server built by tools/go-build.sh.
- postgres_server.PostgresServer: a throwaway cluster from Debian's postgresql package.
- kafka_broker.KafkaBroker: Apache Kafka in KRaft combined mode, jars from tools/deps/kafka.sh.
- processes: ManagedProcess (one child process group with log, readiness probe and clean stop)
  and LocalServer, the base of the three servers.
"""
