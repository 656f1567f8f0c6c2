from platform_fixtures import make_platform, topics  # noqa: F401 - pytest finds fixtures by name
from tests.support.fixtures import (  # noqa: F401 - pytest finds fixtures by name
    gcs_bucket,
    gcs_emulator,
    isolated_gcs_emulator,
    kafka_broker,
    postgres_database,
    postgres_server,
)
