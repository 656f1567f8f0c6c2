# Copyright: stream_processing.gke contributors
# Apache License 2.0 (see LICENSE)
"""Consistency analysis of the platform_* settings, run by the platform_preflight action.

Each check takes the settings (every platform_* variable, already templated) and what is known
about the live cluster, and returns findings whose messages name the variable and the problem.
The workload model below mirrors what the deployment roles render; a role that adds a container
or a volume claim adds it to workloads() too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Dict, List, Optional, Tuple

ERROR = "error"
WARNING = "warning"

# The API versions the roles' manifests use, and the settings that make them needed.
REQUIRED_API_VERSIONS = ("v1", "apps/v1", "policy/v1", "networking.k8s.io/v1", "rbac.authorization.k8s.io/v1")
HPA_API_VERSION = "autoscaling/v2"
METRICS_API_VERSION = "metrics.k8s.io/v1beta1"

_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?)$")
_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_CLOUDSQL_CONNECTION = re.compile(r"^[a-z0-9.:-]+:[a-z0-9-]+:[a-z0-9][a-z0-9-]*$")
_SERVICE_ACCOUNT_EMAIL = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z0-9.:-]+\.iam\.gserviceaccount\.com$")
_QUOTA_RESOURCES = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
# ResourceQuota accepts the short names as aliases of the requests.
_QUOTA_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}


class QuantityError(ValueError):
    """A value that is not a Kubernetes resource quantity."""


def parse_quantity(value: Any) -> Decimal:
    """Return a Kubernetes quantity ("500m", "2Gi", 1.5, "1e3") as a Decimal in base units."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 1Gi)")
    number, exponent, suffix = match.groups()
    try:
        base = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex only lets numbers through
        raise QuantityError(f"{value!r} is not a quantity") from exc
    if exponent:
        return base * (Decimal(10) ** int(exponent[1:]))
    return base * _SUFFIXES[suffix or ""]


def format_quantity(value: Decimal, resource: str) -> str:
    """Readable form of a summed quantity: cores for CPU, binary units for memory and storage."""
    if resource.endswith("cpu"):
        millis = value * 1000
        if millis == millis.to_integral_value() and millis % 1000:
            return f"{int(millis)}m"
        return f"{value.normalize():f}"
    if resource in ("pods", "persistentvolumeclaims"):
        return f"{int(value)}"
    for suffix in ("Ti", "Gi", "Mi", "Ki"):
        unit = _SUFFIXES[suffix]
        if value >= unit and value % unit == 0:
            return f"{int(value / unit)}{suffix}"
    for suffix in ("Ti", "Gi", "Mi"):
        unit = _SUFFIXES[suffix]
        if value >= unit:
            return f"{(value / unit).quantize(Decimal('0.01'))}{suffix}"
    return f"{int(value)}"


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str


@dataclass(frozen=True)
class Container:
    name: str
    preset_variable: str
    requests: Dict[str, Decimal]
    limits: Dict[str, Decimal]


@dataclass(frozen=True)
class VolumeClaim:
    name: str
    size_variable: str
    size: Decimal


@dataclass
class Workload:
    name: str
    kind: str
    replicas: Optional[int]
    replicas_variable: str
    containers: List[Container] = field(default_factory=list)
    volume_claims: List[VolumeClaim] = field(default_factory=list)
    anti_affinity_variable: Optional[str] = None


@dataclass(frozen=True)
class ClusterFacts:
    """What preflight learned from the live cluster; None where it could not ask."""

    reachable: bool = False
    node_count: Optional[int] = None
    api_versions: Optional[Tuple[str, ...]] = None
    storage_classes: Optional[Tuple[str, ...]] = None
    bucket_exists: Optional[bool] = None

    @classmethod
    def from_dict(cls, data: Optional[Dict[str, Any]]) -> ClusterFacts:
        data = data or {}
        versions = data.get("api_versions")
        classes = data.get("storage_classes")
        return cls(
            reachable=bool(data.get("reachable", False)),
            node_count=None if data.get("node_count") is None else int(data["node_count"]),
            api_versions=None if versions is None else tuple(versions),
            storage_classes=None if classes is None else tuple(classes),
            bucket_exists=data.get("bucket_exists"),
        )


@dataclass
class Report:
    findings: List[Finding] = field(default_factory=list)
    usage: Dict[str, str] = field(default_factory=dict)
    workloads: List[Dict[str, Any]] = field(default_factory=list)

    @property
    def errors(self) -> List[str]:
        return [f.message for f in self.findings if f.level == ERROR]

    @property
    def warnings(self) -> List[str]:
        return [f.message for f in self.findings if f.level == WARNING]


class _Analysis:
    def __init__(self, settings: Dict[str, Any], cluster: ClusterFacts):
        self.settings = settings
        self.cluster = cluster
        self.findings: List[Finding] = []

    def error(self, check: str, message: str) -> None:
        self.findings.append(Finding(ERROR, check, message))

    def warn(self, check: str, message: str) -> None:
        self.findings.append(Finding(WARNING, check, message))

    def get(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)

    def integer(self, name: str) -> Optional[int]:
        value = self.settings.get(name)
        if isinstance(value, bool) or value is None:
            self.error("types", f"{name} must be an integer, got {value!r}")
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            self.error("types", f"{name} must be an integer, got {value!r}")
            return None

    # --- Building the workload model -------------------------------------------------------

    def preset(self, variable: str) -> Optional[Tuple[Dict[str, Decimal], Dict[str, Decimal]]]:
        presets = self.get("platform_resource_presets") or {}
        name = self.get(variable)
        if name not in presets:
            known = ", ".join(sorted(presets)) or "none defined"
            self.error("presets", f"{variable} ({name!r}) is not a preset in platform_resource_presets ({known})")
            return None
        parsed: List[Dict[str, Decimal]] = []
        for section in ("requests", "limits"):
            values = (presets[name] or {}).get(section) or {}
            section_parsed = {}
            for resource in ("cpu", "memory"):
                where = f"platform_resource_presets.{name}.{section}.{resource}"
                if resource not in values:
                    self.error("presets", f"{where} is missing (used by {variable})")
                    return None
                try:
                    section_parsed[resource] = parse_quantity(values[resource])
                except QuantityError as exc:
                    self.error("presets", f"{where}: {exc}")
                    return None
            parsed.append(section_parsed)
        requests, limits = parsed
        for resource in ("cpu", "memory"):
            if requests[resource] > limits[resource]:
                request, limit = (values_of(presets[name], section, resource) for section in ("requests", "limits"))
                self.error(
                    "presets",
                    f"platform_resource_presets.{name}: requests.{resource} ({request}) is above"
                    f" limits.{resource} ({limit}), which the API server rejects",
                )
        return requests, limits

    def container(self, name: str, preset_variable: str) -> Optional[Container]:
        preset = self.preset(preset_variable)
        if preset is None:
            return None
        return Container(name, preset_variable, preset[0], preset[1])

    def claim(self, name: str, size_variable: str) -> Optional[VolumeClaim]:
        try:
            return VolumeClaim(name, size_variable, parse_quantity(self.get(size_variable)))
        except QuantityError as exc:
            self.error("storage", f"{size_variable}: {exc}")
            return None

    def workload(self, name, kind, replicas, replicas_variable, containers, claims=(), anti_affinity=None):
        return Workload(
            name=name,
            kind=kind,
            replicas=replicas,
            replicas_variable=replicas_variable,
            containers=[c for c in containers if c is not None],
            volume_claims=[c for c in claims if c is not None],
            anti_affinity_variable=anti_affinity,
        )

    def workloads(self) -> List[Workload]:
        """Every pod template the roles create, at the largest scale the settings allow."""
        result = []
        cloudsql = self.get("platform_database_mode") == "cloudsql"

        jobmanager_containers = [self.container("jobmanager", "platform_jobmanager_resources")]
        if cloudsql:
            jobmanager_containers.append(self.container("cloud-sql-proxy", "platform_cloudsql_proxy_resources"))
        if self.get("platform_jobmanager_hpa_enabled"):
            replicas_variable = "platform_jobmanager_hpa_max_replicas"
        else:
            replicas_variable = "platform_jobmanager_replicas"
        replicas = self.integer(replicas_variable)
        result.append(
            self.workload(
                "jobmanager",
                "Deployment",
                replicas,
                replicas_variable,
                jobmanager_containers,
                anti_affinity="platform_jobmanager_anti_affinity",
            )
        )

        taskmanager_containers = [self.container("taskmanager", "platform_taskmanager_resources")]
        if self.get("platform_taskmanager_mode") == "daemonset":
            result.append(
                self.workload(
                    "taskmanager", "DaemonSet", self.cluster.node_count, "live node count", taskmanager_containers
                )
            )
        else:
            result.append(
                self.workload(
                    "taskmanager",
                    "StatefulSet",
                    self.integer("platform_taskmanager_replicas"),
                    "platform_taskmanager_replicas",
                    taskmanager_containers,
                    [self.claim("checkpoints", "platform_taskmanager_storage_size")],
                    anti_affinity="platform_taskmanager_anti_affinity",
                )
            )

        if not cloudsql:
            result.append(
                self.workload(
                    "postgres",
                    "StatefulSet",
                    1,
                    "one PostgreSQL pod",
                    [self.container("postgres", "platform_postgres_resources")],
                    [self.claim("data", "platform_postgres_storage_size")],
                )
            )
        result.append(
            self.workload(
                "kafka",
                "StatefulSet",
                self.integer("platform_kafka_replicas"),
                "platform_kafka_replicas",
                [self.container("kafka", "platform_kafka_resources")],
                [self.claim("data", "platform_kafka_storage_size")],
            )
        )
        if self.get("platform_monitoring_enabled"):
            result.append(
                self.workload(
                    "prometheus",
                    "StatefulSet",
                    1,
                    "one Prometheus pod",
                    [self.container("prometheus", "platform_prometheus_resources")],
                    [self.claim("data", "platform_prometheus_storage_size")],
                )
            )
            result.append(
                self.workload(
                    "grafana",
                    "Deployment",
                    1,
                    "one Grafana pod",
                    [self.container("grafana", "platform_grafana_resources")],
                )
            )
        return result

    # --- Checks ----------------------------------------------------------------------------

    def check_scaling(self) -> None:
        hpa_enabled = bool(self.get("platform_jobmanager_hpa_enabled"))
        jm_pdb = self.integer("platform_jobmanager_pdb_min_available")
        if hpa_enabled:
            hpa_min = self.integer("platform_jobmanager_hpa_min_replicas")
            hpa_max = self.integer("platform_jobmanager_hpa_max_replicas")
            if hpa_min is not None and hpa_min < 1:
                self.error("hpa", f"platform_jobmanager_hpa_min_replicas ({hpa_min}) must be at least 1")
            if None not in (hpa_min, hpa_max) and hpa_min > hpa_max:
                self.error(
                    "hpa",
                    f"platform_jobmanager_hpa_min_replicas ({hpa_min}) must not be above"
                    f" platform_jobmanager_hpa_max_replicas ({hpa_max}): the HPA would be rejected",
                )
            if None not in (hpa_min, jm_pdb) and hpa_min <= jm_pdb:
                self.error(
                    "pdb",
                    f"platform_jobmanager_pdb_min_available ({jm_pdb}) must be lower than"
                    f" platform_jobmanager_hpa_min_replicas ({hpa_min}): at the HPA minimum no JobManager"
                    " could ever be evicted, so no node could be drained",
                )
            for util in ("platform_jobmanager_hpa_cpu_utilization", "platform_jobmanager_hpa_memory_utilization"):
                value = self.integer(util)
                if value is not None and not 1 <= value <= 100:
                    self.error("hpa", f"{util} ({value}) must be a percentage between 1 and 100")
        else:
            replicas = self.integer("platform_jobmanager_replicas")
            if None not in (replicas, jm_pdb) and jm_pdb >= replicas:
                self.error(
                    "pdb",
                    f"platform_jobmanager_pdb_min_available ({jm_pdb}) must be lower than"
                    f" platform_jobmanager_replicas ({replicas}): no node could ever be drained",
                )

        tm_pdb = self.integer("platform_taskmanager_pdb_min_available")
        if self.get("platform_taskmanager_mode") == "daemonset":
            nodes = self.cluster.node_count
            if nodes is None:
                self.warn(
                    "pdb",
                    "platform_taskmanager_pdb_min_available was not compared with the TaskManager count:"
                    " in daemonset mode that is the node count, and the cluster could not be asked",
                )
            elif tm_pdb is not None and tm_pdb >= nodes:
                self.error(
                    "pdb",
                    f"platform_taskmanager_pdb_min_available ({tm_pdb}) must be lower than the number of"
                    f" TaskManagers, which in daemonset mode is the node count ({nodes}):"
                    " no node could ever be drained",
                )
        else:
            replicas = self.integer("platform_taskmanager_replicas")
            if None not in (replicas, tm_pdb) and tm_pdb >= replicas:
                self.error(
                    "pdb",
                    f"platform_taskmanager_pdb_min_available ({tm_pdb}) must be lower than"
                    f" platform_taskmanager_replicas ({replicas}): no node could ever be drained",
                )
        for name in ("platform_jobmanager_pdb_min_available", "platform_taskmanager_pdb_min_available"):
            value = self.settings.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 0:
                self.error("pdb", f"{name} ({value}) must not be negative")

    def check_quota(self, workloads: List[Workload], report: Report) -> None:
        quota_settings = self.get("platform_resource_quota") or {}
        quota: Dict[str, Decimal] = {}
        for key, value in quota_settings.items():
            resource = _QUOTA_ALIASES.get(key, key)
            try:
                quota[resource] = parse_quantity(value)
            except QuantityError as exc:
                self.error("quota", f"platform_resource_quota['{key}']: {exc}")
        totals = {resource: Decimal(0) for resource in _QUOTA_RESOURCES}
        totals.update({"pods": Decimal(0), "requests.storage": Decimal(0), "persistentvolumeclaims": Decimal(0)})
        parts: Dict[str, List[str]] = {resource: [] for resource in totals}
        unknown = []
        for workload in workloads:
            if workload.replicas is None:
                unknown.append(workload.name)
                continue
            count = Decimal(workload.replicas)
            for section, resource in (
                ("requests", "cpu"),
                ("requests", "memory"),
                ("limits", "cpu"),
                ("limits", "memory"),
            ):
                key = f"{section}.{resource}"
                per_pod = sum((getattr(c, section)[resource] for c in workload.containers), Decimal(0))
                totals[key] += per_pod * count
                parts[key].append(f"{workload.name} {workload.replicas} x {format_quantity(per_pod, key)}")
            totals["pods"] += count
            parts["pods"].append(f"{workload.name} {workload.replicas}")
            for claim in workload.volume_claims:
                totals["requests.storage"] += claim.size * count
                totals["persistentvolumeclaims"] += count
                size = format_quantity(claim.size, "storage")
                parts["requests.storage"].append(
                    f"{workload.name} {workload.replicas} x {size} ({claim.size_variable})"
                )
                parts["persistentvolumeclaims"].append(f"{workload.name} {workload.replicas}")
        if unknown:
            self.warn(
                "quota",
                "The quota check leaves out "
                + ", ".join(unknown)
                + ": in daemonset mode their count is the node count, and the cluster could not be asked",
            )
        for resource, total in totals.items():
            report.usage[resource] = format_quantity(total, resource)
            if resource in quota and total > quota[resource]:
                key = quota_key(quota_settings, resource)
                self.error(
                    "quota",
                    f"platform_resource_quota['{key}'] ({quota_settings[key]})"
                    f" is below what the workloads need at maximum scale ({format_quantity(total, resource)}:"
                    f" {', '.join(parts[resource])}); raise the quota or lower the sizing",
                )

    def check_limit_range(self, workloads: List[Workload]) -> None:
        limit_range = self.get("platform_limit_range") or {}
        bounds: Dict[str, Dict[str, Decimal]] = {}
        for bound in ("min", "max", "default", "default_request"):
            bounds[bound] = {}
            for resource, value in (limit_range.get(bound) or {}).items():
                try:
                    bounds[bound][resource] = parse_quantity(value)
                except QuantityError as exc:
                    self.error("limit_range", f"platform_limit_range.{bound}.{resource}: {exc}")
        for resource in ("cpu", "memory"):
            low, high = bounds["min"].get(resource), bounds["max"].get(resource)
            if low is not None and high is not None and low > high:
                self.error(
                    "limit_range",
                    f"platform_limit_range.min.{resource} is above platform_limit_range.max.{resource}",
                )
            for bound in ("default", "default_request"):
                value = bounds[bound].get(resource)
                if value is None:
                    continue
                if (low is not None and value < low) or (high is not None and value > high):
                    self.error(
                        "limit_range",
                        f"platform_limit_range.{bound}.{resource} ({limit_range[bound][resource]}) is outside"
                        f" platform_limit_range min/max for {resource}",
                    )
        seen = set()
        for workload in workloads:
            for container in workload.containers:
                if (container.name, container.preset_variable) in seen:
                    continue
                seen.add((container.name, container.preset_variable))
                preset_name = self.get(container.preset_variable)
                for section in ("requests", "limits"):
                    for resource, value in getattr(container, section).items():
                        low, high = bounds["min"].get(resource), bounds["max"].get(resource)
                        shown = format_quantity(value, resource)
                        if low is not None and value < low:
                            self.error(
                                "limit_range",
                                f"{container.preset_variable} ({preset_name!r}): the {container.name} container's"
                                f" {section}.{resource} ({shown}) is below platform_limit_range.min.{resource}"
                                f" ({limit_range['min'][resource]}); the API server would refuse the pod",
                            )
                        if high is not None and value > high:
                            self.error(
                                "limit_range",
                                f"{container.preset_variable} ({preset_name!r}): the {container.name} container's"
                                f" {section}.{resource} ({shown}) is above platform_limit_range.max.{resource}"
                                f" ({limit_range['max'][resource]}); the API server would refuse the pod",
                            )

    def check_anti_affinity(self, workloads: List[Workload]) -> None:
        for workload in workloads:
            variable = workload.anti_affinity_variable
            if not variable or self.get(variable) != "required" or workload.replicas is None:
                continue
            nodes = self.cluster.node_count
            if nodes is None:
                self.warn(
                    "anti_affinity",
                    f"{variable} is required: {workload.name} needs {workload.replicas} nodes"
                    f" ({workload.replicas_variable}), which could not be checked without a reachable cluster",
                )
            elif nodes < workload.replicas:
                self.error(
                    "anti_affinity",
                    f"{variable} is required but {workload.replicas_variable} ({workload.replicas}) is above the"
                    f" {nodes} schedulable nodes: {workload.replicas - nodes} {workload.name} pod(s)"
                    " would stay Pending;"
                    " use preferred or add nodes",
                )

    def check_api_versions(self) -> None:
        served = self.cluster.api_versions
        if served is None:
            self.warn("api_versions", "The served API versions were not checked: the cluster could not be asked")
            return
        needed = list(REQUIRED_API_VERSIONS)
        if self.get("platform_jobmanager_hpa_enabled"):
            needed.append(HPA_API_VERSION)
        missing = [version for version in needed if version not in served]
        if missing:
            self.error(
                "api_versions",
                "The cluster does not serve "
                + ", ".join(missing)
                + ", which the manifests use (Kubernetes 1.25 or later serves them all)",
            )
        if self.get("platform_jobmanager_hpa_enabled") and METRICS_API_VERSION not in served:
            self.warn(
                "api_versions",
                f"The cluster serves no {METRICS_API_VERSION} (metrics-server): the JobManager HPA"
                " (platform_jobmanager_hpa_enabled) will report unknown metrics and never scale",
            )

    def check_storage_class(self) -> None:
        wanted = self.get("platform_storage_class")
        known = self.cluster.storage_classes
        if wanted and known is not None and wanted not in known:
            self.error(
                "storage",
                f"platform_storage_class ({wanted!r}) is not a StorageClass of the cluster"
                f" ({', '.join(sorted(known)) or 'none'}): every claim would stay Pending",
            )

    def check_database(self) -> None:
        mode = self.get("platform_database_mode")
        if mode == "cloudsql":
            name = self.get("platform_cloudsql_connection_name") or ""
            if not _CLOUDSQL_CONNECTION.match(name):
                self.error(
                    "database",
                    f"platform_cloudsql_connection_name ({name!r}) must be PROJECT:REGION:INSTANCE"
                    " when platform_database_mode is cloudsql",
                )
        if not self.get("platform_postgres_password"):
            self.error(
                "database",
                "platform_postgres_password is empty: supply it from an ansible-vault encrypted variable"
                " (see inventories/README.md)",
            )

    def check_gcp(self) -> None:
        if self.get("platform_target") != "gke":
            for name in ("platform_workload_identity_enabled", "platform_gcp_preflight_enabled"):
                if self.get(name):
                    self.warn("gcp", f"{name} is true but platform_target is {self.get('platform_target')!r}, not gke")
            return
        for name in ("platform_gcp_project", "platform_gcp_region", "platform_gke_cluster", "platform_gcs_bucket"):
            if not self.get(name):
                self.error("gcp", f"{name} is empty but platform_target is gke")
        if self.get("platform_workload_identity_enabled"):
            account = self.get("platform_gcp_service_account") or ""
            if not _SERVICE_ACCOUNT_EMAIL.match(account):
                self.error(
                    "gcp",
                    f"platform_gcp_service_account ({account!r}) must be a GCP service account e-mail"
                    " (NAME@PROJECT.iam.gserviceaccount.com) when platform_workload_identity_enabled is true",
                )
        elif self.get("platform_database_mode") == "cloudsql":
            self.error(
                "gcp",
                "platform_database_mode is cloudsql but platform_workload_identity_enabled is false:"
                " the Cloud SQL Auth Proxy authenticates through Workload Identity",
            )
        if self.cluster.bucket_exists is False:
            self.error(
                "gcp",
                f"platform_gcs_bucket ({self.get('platform_gcs_bucket')!r}) does not exist in"
                f" project {self.get('platform_gcp_project')!r}: create it or fix the name",
            )

    def check_service_timing(self) -> None:
        interval = self.integer("platform_heartbeat_interval_seconds")
        timeout = self.integer("platform_heartbeat_timeout_seconds")
        if None not in (interval, timeout) and timeout <= interval:
            self.error(
                "timing",
                f"platform_heartbeat_timeout_seconds ({timeout}) must be above"
                f" platform_heartbeat_interval_seconds ({interval}), or every TaskManager would be declared lost",
            )

    def run(self) -> Report:
        report = Report()
        self.check_scaling()
        workloads = self.workloads()
        self.check_quota(workloads, report)
        self.check_limit_range(workloads)
        self.check_anti_affinity(workloads)
        self.check_api_versions()
        self.check_storage_class()
        self.check_database()
        self.check_gcp()
        self.check_service_timing()
        # A bad value can be read by several checks; report it once.
        report.findings = list(dict.fromkeys(self.findings))
        report.workloads = [
            {
                "name": w.name,
                "kind": w.kind,
                "replicas": w.replicas,
                "containers": [c.name for c in w.containers],
                "volume_claims": [c.name for c in w.volume_claims],
            }
            for w in workloads
        ]
        return report


def values_of(preset: Dict[str, Any], section: str, resource: str) -> Any:
    return (preset.get(section) or {}).get(resource)


def quota_key(quota_settings: Dict[str, Any], resource: str) -> str:
    """The key the user wrote for a quota resource (it may be an alias such as "cpu")."""
    if resource in quota_settings:
        return resource
    for alias, canonical in _QUOTA_ALIASES.items():
        if canonical == resource and alias in quota_settings:
            return alias
    return resource


def analyse(settings: Dict[str, Any], cluster: Optional[ClusterFacts] = None) -> Report:
    """Check the platform_* settings as a whole; see the module docstring."""
    return _Analysis(settings, cluster or ClusterFacts()).run()
