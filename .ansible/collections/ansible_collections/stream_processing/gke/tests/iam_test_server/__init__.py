"""A small in-process server for the IAM v1 service-account API, following Google's documented behaviour.

No IAM emulator exists, so the workload_identity tests run against this server. It implements:

- projects.serviceAccounts.get and .create;
- projects.serviceAccounts.getIamPolicy (``options.requestedPolicyVersion``) and .setIamPolicy with etag
  checking: a stale etag is answered with 409 ABORTED;
- policy version 3 with conditional bindings, and the ``_withcond_`` role names returned to version-1 readers;
- an OAuth 2 token endpoint (``/token``) for service-account keys whose token_uri points here;
- bearer-token identities with per-identity permissions: 401 UNAUTHENTICATED, 403 PERMISSION_DENIED
  (``IAM_PERMISSION_DENIED`` ErrorInfo naming the permission), 403 SERVICE_DISABLED and 404 NOT_FOUND, in the
  error JSON format of Google APIs;
- hooks for tests: run a concurrent writer right after a getIamPolicy answer, and queue transient faults.
"""

from tests.iam_test_server.server import IamTestServer, IamTestState

__all__ = ["IamTestServer", "IamTestState"]
