# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE)
"""Action side of stream_processing.gke.platform_preflight; the documentation is in plugins/modules."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.stream_processing.gke.plugins.plugin_utils.platform_consistency import (
    ClusterFacts,
    analyse,
)

ARGUMENT_SPEC = {
    "settings": {"type": "dict"},
    "overrides": {"type": "dict", "default": {}},
    "cluster": {
        "type": "dict",
        "default": {},
        "options": {
            "reachable": {"type": "bool", "default": False},
            "node_count": {"type": "int"},
            "api_versions": {"type": "list", "elements": "str"},
            "storage_classes": {"type": "list", "elements": "str"},
            "bucket_exists": {"type": "bool"},
        },
    },
    "fail_on_warnings": {"type": "bool", "default": False},
}
SETTINGS_PREFIX = "platform_"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail("platform_preflight: " + "; ".join(validation.error_messages))
        args = validation.validated_parameters

        settings = args["settings"]
        if settings is None:
            settings = {
                name: self._templar.template(value)
                for name, value in task_vars.items()
                if name.startswith(SETTINGS_PREFIX)
            }
        settings = {**settings, **args["overrides"]}
        report = analyse(settings, ClusterFacts.from_dict(args["cluster"]))

        result.update(
            changed=False,
            errors=report.errors,
            preflight_warnings=report.warnings,
            usage=report.usage,
            workloads=report.workloads,
        )
        if report.warnings:
            result["warnings"] = list(report.warnings)
        problems = report.errors + (report.warnings if args["fail_on_warnings"] else [])
        if problems:
            result["failed"] = True
            result["msg"] = (
                f"Preflight found {len(problems)} problem(s) in the configuration; nothing was applied:\n- "
                + "\n- ".join(problems)
            )
        else:
            result["msg"] = f"Preflight passed ({len(report.warnings)} warning(s))"
        return result
