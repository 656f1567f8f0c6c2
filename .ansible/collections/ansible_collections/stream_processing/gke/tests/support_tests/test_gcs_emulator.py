"""fake-gcs-server round trips through google-cloud-storage, preconditions, and outages."""

import os
import subprocess
import sys

import pytest
import requests
from google.api_core import exceptions

pytestmark = pytest.mark.integration


def test_upload_and_download_round_trip(gcs_emulator, gcs_bucket):
    bucket = gcs_emulator.client().bucket(gcs_bucket)
    bucket.blob("job-1/chk-1/state.json").upload_from_string(b'{"offset": 42}', content_type="application/json")

    blob = bucket.get_blob("job-1/chk-1/state.json")
    assert blob.download_as_bytes() == b'{"offset": 42}'
    assert blob.content_type == "application/json"
    assert gcs_emulator.list_objects(gcs_bucket, prefix="job-1/") == ["job-1/chk-1/state.json"]


def test_resumable_upload_in_several_chunks(gcs_emulator, gcs_bucket):
    payload = os.urandom(3 * 256 * 1024 + 17)
    blob = gcs_emulator.client().bucket(gcs_bucket).blob("large.bin", chunk_size=256 * 1024)

    blob.upload_from_string(payload)

    assert gcs_emulator.client().bucket(gcs_bucket).blob("large.bin").download_as_bytes() == payload


def test_generation_precondition_is_enforced(gcs_emulator, gcs_bucket):
    bucket = gcs_emulator.client().bucket(gcs_bucket)
    first = bucket.blob("checkpoint")
    first.upload_from_string(b"v1")

    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("checkpoint").upload_from_string(b"stale writer", if_generation_match=first.generation + 1)
    with pytest.raises(exceptions.PreconditionFailed):
        bucket.blob("checkpoint").upload_from_string(b"create only", if_generation_match=0)
    bucket.blob("checkpoint").upload_from_string(b"v2", if_generation_match=first.generation)

    assert bucket.blob("checkpoint").download_as_bytes() == b"v2"


def test_bucket_versioning_and_the_server_wide_location(gcs_emulator):
    name = gcs_emulator.create_bucket(versioning=True)
    try:
        bucket = gcs_emulator.client().get_bucket(name)
        assert bucket.versioning_enabled is True
        assert bucket.location == gcs_emulator.location == "US-CENTRAL1"
    finally:
        gcs_emulator.delete_bucket(name)
    assert not gcs_emulator.bucket_exists(name)


def test_storage_emulator_host_points_a_child_process_at_the_emulator(gcs_emulator, gcs_bucket):
    # What the services do: a plain storage.Client() configured only by the environment.
    script = (
        "import sys; from google.cloud import storage; "
        "storage.Client().bucket(sys.argv[1]).blob('from-child').upload_from_string(b'hi')"
    )
    env = {**os.environ, **gcs_emulator.env}
    subprocess.run([sys.executable, "-c", script, gcs_bucket], env=env, check=True, timeout=60)

    assert gcs_emulator.env == {"STORAGE_EMULATOR_HOST": gcs_emulator.endpoint}
    assert gcs_emulator.client().bucket(gcs_bucket).blob("from-child").download_as_bytes() == b"hi"


def test_stop_and_start_keep_the_port_and_the_data(isolated_gcs_emulator):
    emulator = isolated_gcs_emulator
    bucket = emulator.create_bucket()
    emulator.client().bucket(bucket).blob("chk-1/state").upload_from_string(b"before the outage")
    endpoint = emulator.endpoint

    emulator.stop()
    assert not emulator.running
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{endpoint}/storage/v1/b/{bucket}", timeout=2)

    emulator.start()
    assert emulator.endpoint == endpoint
    client = emulator.client()
    assert client.bucket(bucket).blob("chk-1/state").download_as_bytes() == b"before the outage"
    client.bucket(bucket).blob("chk-2/state").upload_from_string(b"after the outage")
    assert emulator.list_objects(bucket) == ["chk-1/state", "chk-2/state"]


def test_reset_deletes_every_bucket(isolated_gcs_emulator):
    names = [isolated_gcs_emulator.create_bucket(), isolated_gcs_emulator.create_bucket()]

    isolated_gcs_emulator.reset()

    assert not any(isolated_gcs_emulator.bucket_exists(name) for name in names)
