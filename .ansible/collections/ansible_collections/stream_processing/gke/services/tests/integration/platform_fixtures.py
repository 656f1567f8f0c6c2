"""Per-test topics and platforms for the tests that run the services as processes."""

import pytest

from platform_harness import PARTITIONS, Platform, SinkReader


@pytest.fixture
def topics(kafka_broker):
    source = kafka_broker.create_topic(partitions=PARTITIONS)
    sink = kafka_broker.create_topic(partitions=3)
    reader = SinkReader(kafka_broker.bootstrap, sink)
    yield source, sink, reader
    reader.close()
    kafka_broker.delete_topic(source)
    kafka_broker.delete_topic(sink)


@pytest.fixture
def make_platform(tmp_path, topics, postgres_server, postgres_database, kafka_broker, gcs_emulator, gcs_bucket):
    """Platforms stop before the topics fixture deletes their topics."""
    platforms = []

    def make(bucket: str = gcs_bucket, endpoint: str = gcs_emulator.endpoint, **settings) -> Platform:
        platform = Platform(
            tmp_path, database_url=postgres_server.dsn(postgres_database, with_password=False),
            database_password=postgres_server.password, kafka_bootstrap=kafka_broker.bootstrap,
            gcs_endpoint=endpoint, bucket=bucket, **settings,
        )
        platforms.append(platform)
        return platform

    yield make
    for platform in platforms:
        platform.stop()
