from platform_fixtures import make_platform, topics
from tests.support.fixtures import (
    gcs_bucket,
    gcs_emulator,
    isolated_gcs_emulator,
    kafka_broker,
    postgres_database,
    postgres_server,
)

# Re-exported so pytest finds these fixtures by name in the integration tests.
__all__ = [
    "gcs_bucket",
    "gcs_emulator",
    "isolated_gcs_emulator",
    "kafka_broker",
    "make_platform",
    "postgres_database",
    "postgres_server",
    "topics",
]
