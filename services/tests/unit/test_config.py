from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys

import pytest

from stream_processing.config import ConfigError, load_config

JOBMANAGER = {"SP_ROLE": "jobmanager", "SP_DATABASE_URL": "postgresql://sp@db:5432/sp",
              "SP_ADVERTISED_URL": "http://10.0.0.5:8081"}
TASKMANAGER = {"SP_ROLE": "taskmanager", "SP_KAFKA_BOOTSTRAP": "kafka:9092",
               "SP_JOBMANAGER_URL": "http://jobmanager:8081", "SP_TASKMANAGER_ID": "tm-0"}


def test_defaults_per_role():
    jobmanager = load_config(JOBMANAGER)
    taskmanager = load_config(TASKMANAGER)
    assert (jobmanager.http_port, taskmanager.http_port) == (8081, 8082)
    assert jobmanager.checkpoint_dir == "/var/lib/stream-processing/checkpoints"
    assert taskmanager.jobmanager_url == "http://jobmanager:8081"


def test_config_is_frozen_and_hides_the_password():
    config = load_config({**JOBMANAGER, "SP_DATABASE_PASSWORD": "s3cret"})
    assert config.database_password == "s3cret"
    assert "s3cret" not in repr(config)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.http_port = 1


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"SP_ROLE": "worker"}, "SP_ROLE"),
        ({**JOBMANAGER, "SP_HTTP_PORT": "http"}, "SP_HTTP_PORT"),
        ({**JOBMANAGER, "SP_HTTP_PORT": "70000"}, "SP_HTTP_PORT"),
        ({"SP_ROLE": "jobmanager"}, "SP_DATABASE_URL"),
        ({**JOBMANAGER, "SP_DATABASE_URL": "mysql://x"}, "SP_DATABASE_URL"),
        ({**JOBMANAGER, "SP_CHECKPOINT_INTERVAL_SECONDS": "-1"}, "SP_CHECKPOINT_INTERVAL_SECONDS"),
        ({**JOBMANAGER, "SP_CHECKPOINT_RETAINED": "0"}, "SP_CHECKPOINT_RETAINED"),
        ({**JOBMANAGER, "SP_CHECKPOINT_DIR": "relative/dir"}, "SP_CHECKPOINT_DIR"),
        ({**JOBMANAGER, "SP_GCS_BUCKET": "gs://bucket"}, "SP_GCS_BUCKET"),
        ({**JOBMANAGER, "SP_LOG_LEVEL": "chatty"}, "SP_LOG_LEVEL"),
        ({**JOBMANAGER, "SP_HEARTBEAT_INTERVAL_SECONDS": "5", "SP_HEARTBEAT_TIMEOUT_SECONDS": "5"},
         "SP_HEARTBEAT_TIMEOUT_SECONDS"),
        ({**TASKMANAGER, "SP_KAFKA_BOOTSTRAP": ""}, "SP_KAFKA_BOOTSTRAP"),
        ({**TASKMANAGER, "SP_KAFKA_BOOTSTRAP": "kafka"}, "SP_KAFKA_BOOTSTRAP"),
        ({**TASKMANAGER, "SP_JOBMANAGER_URL": ""}, "SP_JOBMANAGER_URL"),
        ({**TASKMANAGER, "SP_TASKMANAGER_ID": "bad id"}, "SP_TASKMANAGER_ID"),
        ({**TASKMANAGER, "SP_TASKMANAGER_SLOTS": "0"}, "SP_TASKMANAGER_SLOTS"),
    ],
)
def test_bad_values_fail_naming_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        load_config(env)


def test_jobmanager_identity_and_advertised_url():
    named = load_config({**JOBMANAGER, "SP_JOBMANAGER_ID": "jm-a", "SP_LEADER_POLL_SECONDS": "0.5"})
    assert (named.jobmanager_id, named.advertised_url, named.leader_poll_seconds) == (
        "jm-a", "http://10.0.0.5:8081", 0.5)
    assert load_config(JOBMANAGER).jobmanager_id == socket.gethostname()
    assert load_config(JOBMANAGER).leader_poll_seconds == 1.0
    # Derived from the listen address when that address is one the other replicas can reach.
    without = {k: v for k, v in JOBMANAGER.items() if k != "SP_ADVERTISED_URL"}
    assert load_config({**without, "SP_HTTP_HOST": "10.1.2.3", "SP_HTTP_PORT": "9000"}).advertised_url == (
        "http://10.1.2.3:9000")
    assert load_config({**without, "SP_HTTP_HOST": "fd00::7"}).advertised_url == "http://[fd00::7]:8081"
    assert load_config({**JOBMANAGER, "SP_ADVERTISED_URL": "https://jm-0.jobmanager:8443/"}).advertised_url == (
        "https://jm-0.jobmanager:8443")
    assert load_config(TASKMANAGER).advertised_url == ""  # TaskManagers are not elected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SP_ADVERTISED_URL": ""}, "SP_ADVERTISED_URL is required when SP_HTTP_HOST='0.0.0.0'"),
        ({"SP_ADVERTISED_URL": "", "SP_HTTP_HOST": "::"}, "SP_ADVERTISED_URL is required when SP_HTTP_HOST='::'"),
        ({"SP_ADVERTISED_URL": "", "SP_HTTP_HOST": "127.0.0.1", "SP_HTTP_PORT": "0"},
         "SP_ADVERTISED_URL is required when SP_HTTP_HOST='127.0.0.1' and SP_HTTP_PORT=0"),
        ({"SP_ADVERTISED_URL": "jm-0:8081"}, "SP_ADVERTISED_URL='jm-0:8081' must start with http:// or https://"),
        ({"SP_ADVERTISED_URL": "http://0.0.0.0:8081"}, "SP_ADVERTISED_URL='http://0.0.0.0:8081' must name a host"),
        ({"SP_JOBMANAGER_ID": "jm 0"}, "SP_JOBMANAGER_ID='jm 0' must match"),
        ({"SP_LEADER_POLL_SECONDS": "0"}, "SP_LEADER_POLL_SECONDS='0' must be between 0.05 and 60"),
        ({"SP_LEADER_POLL_SECONDS": "soon"}, "SP_LEADER_POLL_SECONDS='soon' is not a valid float"),
    ],
)
def test_bad_high_availability_settings_fail_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as error:
        load_config({**JOBMANAGER, **env})
    assert str(error.value).startswith(message)


def test_the_service_refuses_to_start_naming_the_bad_variable():
    result = subprocess.run(
        [sys.executable, "-m", "stream_processing"], capture_output=True, text=True, timeout=60, check=False,
        env={"SP_ROLE": "taskmanager", "SP_KAFKA_BOOTSTRAP": "kafka:9092", "SP_JOBMANAGER_URL": "http://jm:8081",
             "SP_TASKMANAGER_SLOTS": "many"},
    )
    assert result.returncode == 2
    assert "SP_TASKMANAGER_SLOTS='many' is not a valid int" in result.stderr
