"""GETs a path of a Service through the API server's service proxy and prints status and body as JSON.

The same route `kubectl port-forward svc/...` would take, without a local port: the request goes
API server -> Service -> a ready pod.
"""

from __future__ import annotations

import argparse
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--service", required=True, help="name:port-name, e.g. jobmanager:http")
    parser.add_argument("--path", default="/health")
    parser.add_argument("--kubeconfig", default="", help="empty: KUBECONFIG or ~/.kube/config")
    parser.add_argument("--context", default="")
    args = parser.parse_args(argv)
    config.load_kube_config(config_file=args.kubeconfig or None, context=args.context or None)
    core = client.CoreV1Api()
    try:
        data, status, _headers = core.connect_get_namespaced_service_proxy_with_path_with_http_info(
            args.service, args.namespace, args.path.lstrip("/"), _preload_content=False
        )
        body = data.data.decode("utf-8", "replace")
    except ApiException as error:
        status, body = error.status, error.body if isinstance(error.body, str) else str(error.body)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    print(json.dumps({"service": args.service, "path": args.path, "status": status, "body": body, "json": document}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
