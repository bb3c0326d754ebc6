"""What ships but cannot run here (no Docker engine, no Kubernetes, no helm): the Dockerfile,
deploy/docker-compose.yaml and deploy/helm/values.yaml, checked for structure.

The Helm keys are checked against Dagster's chart schema (helm/dagster/schema/schema/charts in
github.com/dagster-io/dagster, the pydantic models `values.schema.json` is generated from, as
of dagster 1.13): only the parts of it these values use are written out below.
"""

from __future__ import annotations

import re

import yaml

from pipeline.settings import API_KEY_ENV
from pipeline_tests.deploy.conftest import DEPLOY, REPO

# From the chart's schema models (DagsterHelmValues and its subschemas).
CHART_TOP = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount",
    "global", "retention", "additionalInstanceConfig", "concurrency",
}  # fmt: skip
USER_DEPLOYMENTS = {"enabled", "enableSubchart", "imagePullSecrets", "deployments"}
USER_DEPLOYMENT = {
    "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
    "deploymentNamespace", "port", "replicaCount", "env", "envConfigMaps", "envSecrets",
    "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels",
    "volumeMounts", "volumes", "schedulerName", "initContainers", "sidecarContainers",
    "deploymentStrategy",
}  # fmt: skip
K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
POSTGRESQL = {
    "image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
    "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service",
}  # fmt: skip
DAEMON = {
    "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps",
    "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations",
    "podSecurityContext", "securityContext", "resources", "checkDbReadyInitContainer",
    "livenessProbe", "readinessProbe", "startupProbe", "annotations", "runMonitoring",
    "runRetries", "sensors", "schedules", "backfills", "schedulerName", "logFormat",
    "volumeMounts", "volumes", "initContainerResources", "extraContainers",
    "extraPrependedInitContainers",
}  # fmt: skip
QUEUED_RUN_COORDINATOR = {
    "maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds", "dequeueNumWorkers",
    "dequeueUseThreads", "blockOpConcurrencyLimitedRuns",
}  # fmt: skip
RUN_RETRIES = {"enabled", "maxRetries", "retryOnAssetOrOpFailure"}
CONCURRENCY = {"enabled", "pools", "runs"}
POOLS = {"defaultLimit", "granularity", "opGranularityRunBuffer"}
RUNS = {"maxConcurrentRuns", "tagConcurrencyLimits"}
TAG_LIMIT = {"key", "value", "limit"}

SECRET_NAMES = re.compile(r"(KEY|PASSWORD|SECRET|TOKEN)", re.IGNORECASE)


def _keys_within(values: dict, allowed: set[str], where: str) -> None:
    extra = set(values) - allowed
    assert not extra, f"{where}: keys the chart does not know: {sorted(extra)}"


def _production_instance() -> dict:
    return yaml.safe_load((DEPLOY / "dagster.yaml").read_text())


def test_helm_values_use_only_the_charts_keys_and_match_the_production_instance():
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    _keys_within(values, CHART_TOP, "values")
    users = values["dagster-user-deployments"]
    _keys_within(users, USER_DEPLOYMENTS, "dagster-user-deployments")
    assert users["enabled"] is True
    (ours,) = users["deployments"]
    _keys_within(ours, USER_DEPLOYMENT, "deployment")
    assert {"name", "image", "port"} <= set(ours)
    args = ours["codeServerArgs"]
    assert args[args.index("-m") + 1] == "pipeline.definitions"
    assert {"name": "cloudglue"} in ours["envSecrets"]
    assert not any(SECRET_NAMES.search(k) for k in ours.get("env", {}))

    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    _keys_within(launcher["config"]["k8sRunLauncher"], K8S_RUN_LAUNCHER, "k8sRunLauncher")
    assert {"name": "cloudglue"} in launcher["config"]["k8sRunLauncher"]["envSecrets"]

    pg = values["postgresql"]
    _keys_within(pg, POSTGRESQL, "postgresql")
    assert "postgresqlPassword" not in pg and values["generatePostgresqlPasswordSecret"] is False

    daemon = values["dagsterDaemon"]
    _keys_within(daemon, DAEMON, "dagsterDaemon")
    coordinator = daemon["runCoordinator"]
    assert coordinator["type"] == "QueuedRunCoordinator"
    _keys_within(
        coordinator["config"]["queuedRunCoordinator"], QUEUED_RUN_COORDINATOR, "queued"
    )
    _keys_within(daemon["runRetries"], RUN_RETRIES, "runRetries")

    # The chart renders `concurrency` into dagster.yaml as deploy/dagster.yaml has it.
    concurrency = values["concurrency"]
    _keys_within(concurrency, CONCURRENCY, "concurrency")
    _keys_within(concurrency["pools"], POOLS, "concurrency.pools")
    _keys_within(concurrency["runs"], RUNS, "concurrency.runs")
    for limit in concurrency["runs"]["tagConcurrencyLimits"]:
        _keys_within(limit, TAG_LIMIT, "tagConcurrencyLimits")
    instance = _production_instance()["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["defaultLimit"] == instance["pools"]["default_limit"]
    assert concurrency["pools"]["granularity"] == instance["pools"]["granularity"]
    assert (
        concurrency["pools"]["opGranularityRunBuffer"]
        == instance["pools"]["op_granularity_run_buffer"]
    )
    assert concurrency["runs"]["maxConcurrentRuns"] == instance["runs"]["max_concurrent_runs"]
    assert (
        concurrency["runs"]["tagConcurrencyLimits"] == instance["runs"]["tag_concurrency_limits"]
    )
    retries = _production_instance()["run_retries"]
    assert daemon["runRetries"]["maxRetries"] == retries["max_retries"]
    assert (
        daemon["runRetries"]["retryOnAssetOrOpFailure"] == retries["retry_on_asset_or_op_failure"]
    )


def test_compose_has_the_services_their_env_and_their_order():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "seaweedfs", "code", "webserver", "daemon"} <= set(services)
    assert services["code"]["build"]["dockerfile"] == "Dockerfile"
    assert (DEPLOY / services["code"]["build"]["context"] / "Dockerfile").is_file()
    instance_env = {"DAGSTER_HOME", "DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME",
                    "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB"}  # fmt: skip
    for name in ("code", "webserver", "daemon"):
        service = services[name]
        assert instance_env <= set(service["environment"]), name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    for name in ("webserver", "daemon"):
        assert "code" in services[name]["depends_on"], name
        assert "/opt/dagster/workspace.yaml" in " ".join(services[name]["command"])
    assert "healthcheck" in services["postgres"]
    code_env = services["code"]["environment"]
    assert {API_KEY_ENV, "CLOUDGLUE_DATA_DIR"} <= set(code_env)
    # Secrets come from the caller's environment, never from the file.
    for env in [s.get("environment", {}) for s in services.values()]:
        for key, value in env.items():
            if SECRET_NAMES.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]*)?\}", str(value)), key
    # Ports published on loopback only.
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (location,) = workspace["load_from"]
    assert location["grpc_server"] == {
        "host": "code", "port": 4000, "location_name": "cloudglue_pipeline"
    }  # fmt: skip


def test_the_dockerfile_is_slim_non_root_self_contained_and_holds_no_secret():
    lines = [
        line.strip()
        for line in (REPO / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    instructions = [(line.split()[0].upper(), line.split(None, 1)[1]) for line in lines]
    (base,) = [arg for op, arg in instructions if op == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    users = [arg for op, arg in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    # The last USER comes after every RUN (nothing runs as root at run time).
    last_user = max(i for i, (op, _) in enumerate(instructions) if op == "USER")
    assert all(i < last_user for i, (op, _) in enumerate(instructions) if op == "RUN")
    for op, arg in instructions:
        if op in ("ENV", "ARG"):
            assert not SECRET_NAMES.search(arg), arg
            assert API_KEY_ENV not in arg
        if op in ("ADD", "RUN"):
            assert not re.search(r"https?://", arg), f"{op} fetches from the network: {arg}"
    copies = [arg for op, arg in instructions if op == "COPY"]
    for arg in copies:
        for source in arg.split()[:-1]:
            if not source.startswith("--"):
                assert (REPO / source).exists(), source
    installs = [arg for op, arg in instructions if op == "RUN" and "pip install" in arg]
    assert installs and all('".[deploy]"' in arg or "'.[deploy]'" in arg for arg in installs)
    cmd = next(arg for op, arg in instructions if op == "CMD")
    assert "code-server" in cmd and "pipeline.definitions" in cmd
    assert "deploy/dagster.yaml" in " ".join(copies)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "data" in ignored
