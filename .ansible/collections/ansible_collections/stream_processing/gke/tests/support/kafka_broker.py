"""A single-node Apache Kafka broker (KRaft, broker and controller in one JVM) on 127.0.0.1 for tests."""

from __future__ import annotations

import base64
import contextlib
import functools
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from .processes import LocalServer, ManagedProcess, ProcessError, free_loopback_port, port_is_open, provisioned_path

JVM_OPTIONS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true", "-Djava.net.preferIPv4Stack=true"]
# Formatting and the class-data-sharing archive both depend on this staying the same.
NODE_ID = "1"

# Only warnings, plus the line that says the server is up, so a failed start is easy to read.
LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = console
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
"""


@functools.cache
def kafka_home() -> Path:
    """Download Kafka if needed (see tools/deps/kafka.sh) and return the directory holding libs/."""
    return provisioned_path("tools/deps/kafka.sh")


def random_cluster_id() -> str:
    """A cluster id as `kafka-storage random-uuid` makes one: URL-safe base64, not starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def java_command(home: Path) -> list[str]:
    """`java` with the broker's JVM options and an explicit classpath (class-data sharing needs a fixed order)."""
    java = shutil.which("java")
    if java is None:
        raise ProcessError(
            "java is not on PATH; Kafka needs Java 17 or newer (apt-get install -y openjdk-17-jre-headless)"
        )
    classpath = ":".join(sorted(str(jar) for jar in (home / "libs").glob("*.jar")))
    return [java, *JVM_OPTIONS, "-cp", classpath]


def server_properties(port: int, controller_port: int, log_dir: Path, extra: dict[str, str] | None = None) -> str:
    """server.properties for a single node that is both broker and KRaft controller on 127.0.0.1."""
    properties = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        # A single node cannot hold more replicas; fewer internal partitions make group joins fast.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "5",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "5",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        **(extra or {}),
    }
    return "".join(f"{name}={value}\n" for name, value in properties.items())


@functools.cache
def formatted_storage_template() -> Path:
    """A log directory formatted once per Kafka download; each broker starts from a copy of it,
    which saves a storage-tool JVM run (2-4 s) per broker."""
    home = kafka_home()
    template = home / "storage-template"
    if (template / "meta.properties").exists():
        return template
    staging = Path(tempfile.mkdtemp(prefix=".storage-template-", dir=home))
    try:
        properties = staging / "format.properties"
        # Ports are not used by formatting; 0 passes the configuration checks.
        properties.write_text(server_properties(0, 0, staging / "data"))
        command = [*java_command(home), "kafka.tools.StorageTool", "format"]
        command += ["--cluster-id", random_cluster_id(), "--config", str(properties)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ProcessError(
                f"formatting Kafka storage failed ({result.returncode}):\n{result.stdout}{result.stderr}"
            )
        with contextlib.suppress(OSError):  # another session may have made it meanwhile
            (staging / "data").rename(template)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return template


def class_data_sharing_archive(home: Path) -> Path:
    """Where the broker's class-data-sharing archive lives; with it the JVM starts about 40% faster.

    The archive is only valid for one JDK build, so its name carries the JDK's release string.
    """
    java_home = Path(shutil.which("java") or "java").resolve().parents[1]
    release = "unknown"
    with contextlib.suppress(OSError):
        for line in (java_home / "release").read_text().splitlines():
            if line.startswith("JAVA_RUNTIME_VERSION="):
                release = line.split("=", 1)[1].strip('"')
    return home / f"kafka-broker-jdk-{release}.jsa"


class KafkaBroker(LocalServer):
    """Kafka in KRaft combined mode, with the broker and controller listeners on 127.0.0.1.

    Topics are created automatically on first use with one partition, as on a default broker;
    `create_topic()` makes them with a chosen number of partitions.
    """

    def __init__(self, *, workdir: Path | None = None, extra_properties: dict[str, str] | None = None):
        self.home = kafka_home()
        self._admin = None
        self._archive = class_data_sharing_archive(self.home)
        super().__init__("spg-kafka-", workdir)
        self._new_archive = self.workdir / "kafka-broker.jsa"
        with self._removing_workdir_on_error():
            self.port = free_loopback_port()
            self.controller_port = free_loopback_port()
            self.bootstrap = f"127.0.0.1:{self.port}"
            self.properties_path = self.workdir / "server.properties"
            self.properties_path.write_text(
                server_properties(self.port, self.controller_port, self.workdir / "data", extra_properties)
            )
            log4j_path = self.workdir / "log4j2.properties"
            log4j_path.write_text(LOG4J2_PROPERTIES)
            shutil.copytree(formatted_storage_template(), self.workdir / "data")
            if self._archive.exists():
                sharing = f"-XX:SharedArchiveFile={self._archive}"
            else:
                # The first broker records the classes it loads; the JVM writes them out when it exits.
                sharing = f"-XX:ArchiveClassesAtExit={self._new_archive}"
            java = java_command(self.home)
            command = [*java[:1], sharing, f"-Dlog4j2.configurationFile={log4j_path}", *java[1:], "kafka.Kafka"]
            self.process = ManagedProcess(
                "kafka",
                [*command, self.properties_path],
                log_path=self.workdir / "kafka.log",
                cwd=self.workdir,
                ready=self._serves_metadata,
                ready_timeout=60,
                stop_timeout=20,
            )

    @property
    def address(self) -> str:
        return self.bootstrap

    def _serves_metadata(self) -> bool:
        return port_is_open(self.port) and bool(self.admin().list_topics(timeout=2).brokers)

    def stop(self) -> None:
        """Controlled shutdown; clients see the broker as unavailable until `start()`."""
        # The admin client would keep reconnecting (and logging about it) while the broker is down.
        self._admin = None
        super().stop()
        if self._new_archive.exists() and not self._archive.exists():
            self._new_archive.replace(self._archive)

    def admin(self):
        """A confluent_kafka AdminClient for this broker (shared; create one per thread if needed)."""
        if self._admin is None:
            from confluent_kafka.admin import AdminClient

            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def create_topic(self, name: str | None = None, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        """Create a topic (a unique name by default), wait until the broker serves it, return its name."""
        from confluent_kafka.admin import NewTopic

        name = name or f"test-{uuid.uuid4().hex[:12]}"
        topic = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        self.admin().create_topics([topic], operation_timeout=30)[name].result(timeout=30)
        self._wait_for_metadata(lambda: len(self._partitions(name)) == partitions, f"topic {name} to appear")
        return name

    def delete_topic(self, name: str) -> None:
        """Delete a topic and wait until the broker no longer lists it."""
        self.admin().delete_topics([name], operation_timeout=30)[name].result(timeout=30)
        self._wait_for_metadata(lambda: name not in self.topics(), f"topic {name} to disappear")

    def _partitions(self, topic: str) -> dict:
        metadata = self.admin().list_topics(topic, timeout=10).topics.get(topic)
        return metadata.partitions if metadata is not None and metadata.error is None else {}

    def _wait_for_metadata(self, done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
        # The controller acknowledges before the broker's metadata cache has caught up.
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what} on {self.bootstrap}")
            time.sleep(0.05)

    def topics(self) -> set[str]:
        """Names of the topics that are not Kafka's own internal ones."""
        return {name for name in self.admin().list_topics(timeout=10).topics if not name.startswith("__")}
