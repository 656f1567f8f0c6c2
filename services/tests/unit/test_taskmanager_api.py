"""The TaskManager app in-process, before it has reached a JobManager."""

from __future__ import annotations

from webtest import TestApp

from stream_processing.config import load_config
from stream_processing.taskmanager.api import create_app
from stream_processing.taskmanager.service import TaskManagerService
from stream_processing.wsgi_metrics import RequestMetricsMiddleware


def make_client(tmp_path):
    config = load_config({"SP_ROLE": "taskmanager", "SP_KAFKA_BOOTSTRAP": "127.0.0.1:1",
                          "SP_JOBMANAGER_URL": "http://127.0.0.1:1", "SP_CHECKPOINT_DIR": str(tmp_path),
                          "SP_TASKMANAGER_ID": "tm-test"})
    service = TaskManagerService(config)
    return TestApp(RequestMetricsMiddleware(create_app(config, service), service.registry)), service


def test_health_is_503_without_a_jobmanager_and_reports_local_storage(tmp_path):
    client, _service = make_client(tmp_path)
    body = client.get("/health", status=503).json
    assert body["checks"]["jobmanager_connection"]["status"] == "failing"
    # Without SP_GCS_BUCKET local storage is the configuration, not a degradation.
    assert body["checks"]["checkpoint_storage"] == {"status": "ok", "mode": "local", "bucket": None,
                                                    "local_dir": str(tmp_path), "error": "SP_GCS_BUCKET is not set"}
    assert client.get("/health/ready", status=503).json["status"] == "not_ready"
    assert client.get("/health/live").json["status"] == "alive"


def test_metrics_cover_tasks_checkpoints_and_requests(tmp_path):
    client, _service = make_client(tmp_path)
    client.get("/health/live")
    text = client.get("/metrics").text
    for family in ("sp_tasks_running 0.0", "sp_task_records_in_total 0.0", "sp_checkpoint_local_fallbacks_total 0.0",
                   "sp_checkpoint_storage_degraded 0.0", "sp_heartbeat_failures_total 0.0",
                   'sp_http_requests_total{method="GET",route="/health/live",status="200"} 1.0'):
        assert family in text, family
