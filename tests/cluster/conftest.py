"""The embedded cluster acceptance tests share one cluster (session fixture `embedded_cluster`)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support.embedded_cluster import cluster_namespace, embedded_cluster  # noqa: E402

# Re-exported so pytest finds these fixtures by name in the cluster tests.
__all__ = ["cluster_namespace", "embedded_cluster"]
