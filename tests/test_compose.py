"""Structure of docker-compose.yaml (no Docker engine runs here, so the file is checked statically).

Services, pinned images, dependencies with conditions, healthchecks, ports, and that the environment,
connections, pools and volumes agree with what the DAG and the provider actually read.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_ringcx.example_dags import settings as dagconfig
from airflow_provider_ringcx.example_dags.ringcx_recordings_to_s3 import DAG_ID

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_every_component_is_there(services: dict[str, Any]) -> None:
    expected = {"postgres", "minio", "minio-init", "simulator", "airflow-init", *AIRFLOW_SERVICES}
    assert expected <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service.get("image")
        assert image, f"{name} has no image"
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: image {image!r} has no tag"
        assert tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.search(r"\d", tag), f"{name}: image {image!r} is not pinned"


def test_airflow_image_is_3_3_2_with_the_provider_from_the_repo(services: dict[str, Any]) -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(r"apache/airflow:3\.3\.2-python3\.\d+", dockerfile)
    assert "ENV AIRFLOW_VERSION=3.3.2" in dockerfile
    assert "COPY --chown=airflow:root airflow_provider_ringcx" in dockerfile
    assert re.search(r"pip install .*/opt/ringcx ", dockerfile)
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert pinned
    assert pinned.group(1) == "3.3.2"
    for name in [*AIRFLOW_SERVICES, "airflow-init", "simulator"]:
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == ROOT / "docker" / "Dockerfile"
        assert "3.3.2" in services[name]["image"]


def test_dependencies_have_conditions_and_healthchecks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            assert condition in {"service_healthy", "service_completed_successfully"}, (name, target)
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} needs a healthcheck for {name}"
    for name in ["postgres", "minio", "simulator", *AIRFLOW_SERVICES]:
        assert services[name]["healthcheck"]["test"], name
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["airflow-init"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["airflow-init"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_airflow_runs_local_executor_on_postgres_with_dags_mounted(services: dict[str, Any]) -> None:
    for name in [*AIRFLOW_SERVICES, "airflow-init"]:
        env = _env(services[name])
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"]  # one shared secret, or workers cannot call the API
        dags_folder = env["AIRFLOW__CORE__DAGS_FOLDER"]
        assert f"./dags:{dags_folder}:ro" in services[name]["volumes"]
        assert env["AIRFLOW__RINGCX__BUDGET_DIR"] in {v.split(":")[1] for v in services[name]["volumes"]}
    assert (ROOT / "dags" / f"{DAG_ID}.py").is_file()
    assert "8080:8080" in services["airflow-apiserver"]["ports"]


def test_dag_settings_in_the_environment_are_ones_the_dag_reads(services: dict[str, Any]) -> None:
    known = {setting.env for setting in dagconfig.SETTINGS} | {
        "RINGCX_SCHEDULE",
        "RINGCX_SCHEDULE_TZ",
        "RINGCX_INTERVAL_MINUTES",
        "RINGCX_START_DATE",
        "RINGCX_CATCHUP",
        "RINGCX_MAX_ACTIVE_RUNS",
        "RINGCX_RETRIES",
    }
    dag_files = ("ringcx_recordings_to_s3.py", "factory.py")  # the DAG reads its parse-time env there
    example_dags = ROOT / "airflow_provider_ringcx" / "example_dags"
    dag_source = "".join((example_dags / name).read_text() for name in dag_files)
    config_source = (ROOT / "airflow_provider_ringcx" / "example_dags" / "settings.py").read_text()
    budget_source = (ROOT / "airflow_provider_ringcx" / "hooks" / "budget.py").read_text()
    for name, service in services.items():
        for var in _env(service):
            if var.startswith("RINGCX_") and not var.endswith("_CONN_JSON"):
                assert var in known, f"{name}: {var} is not read by the DAG"
                if var not in {setting.env for setting in dagconfig.SETTINGS}:
                    assert var in dag_source + config_source + budget_source, f"nothing reads {var}"
    resolved = dagconfig.resolve_settings({}, lambda _name: None, _env(services["airflow-scheduler"]))
    assert resolved["bucket"] == "ringcx-archive"


def test_bucket_is_created_with_object_lock(services: dict[str, Any]) -> None:
    script = " ".join(services["minio-init"]["command"])
    bucket = _env(services["airflow-scheduler"])["RINGCX_BUCKET"]
    assert f"mc mb --with-lock local/{bucket}" in script
    minio_env = _env(services["minio"])
    aws = json.loads(_env(services["airflow-init"])["AWS_CONN_JSON"])
    assert aws["login"] == minio_env["MINIO_ROOT_USER"]
    assert aws["password"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert aws["extra"]["endpoint_url"] == "http://minio:9000"
    assert "9000:9000" in services["minio"]["ports"]
    assert "http://minio:9000" in script


def test_init_creates_the_connections_and_pools_the_dag_uses(services: dict[str, Any]) -> None:
    init = services["airflow-init"]
    script_path = ROOT / init["entrypoint"][-1].replace("/opt/ringcx/", "")
    script = script_path.read_text()
    assert "airflow db migrate" in script
    defaults = {setting.name: setting.default for setting in dagconfig.SETTINGS}
    assert f"upsert_connection {defaults['ringcx_conn_id']} " in script
    assert f"upsert_connection {defaults['aws_conn_id']} " in script
    for pool, (slots, _description) in dagconfig.POOLS.items():
        assert re.search(rf"airflow pools set {pool} {slots} ", script), pool
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "docker/airflow-init.sh /opt/ringcx/docker/airflow-init.sh" in dockerfile
    for volume in init["volumes"]:  # named volumes must exist in the image, owned by airflow
        source, target = volume.split(":")[:2]
        if not source.startswith("."):
            assert target in dockerfile or target == "/opt/airflow/logs", target
    ringcx = json.loads(_env(init)["RINGCX_CONN_JSON"])
    assert ringcx["conn_type"] == "ringcx"
    from airflow_provider_ringcx.provider_info import CONNECTION_FIELDS

    assert set(ringcx["extra"]) <= set(CONNECTION_FIELDS)


def test_simulator_service_matches_the_connection(services: dict[str, Any]) -> None:
    sim = services["simulator"]
    command = sim["command"] if isinstance(sim["command"], list) else shlex.split(sim["command"])
    assert command[:3] == ["python", "-m", "ringcx_simulator"]
    port = command[command.index("--port") + 1]
    assert f"{port}:{port}" in sim["ports"]
    assert f"localhost:{port}/_sim/health" in " ".join(sim["healthcheck"]["test"])
    ringcx = json.loads(_env(services["airflow-init"])["RINGCX_CONN_JSON"])
    assert ringcx["extra"]["api_url"] == ringcx["extra"]["platform_url"] == f"http://simulator:{port}"
    from ringcx_simulator.config import SimConfig

    defaults = SimConfig()
    assert ringcx["login"] == defaults.client_id
    assert ringcx["extra"]["sub_account_id"] in defaults.sub_account_ids
    assert ringcx["extra"]["rc_account_id"] == defaults.rc_account_id
    knobs = set(SimConfig.__dataclass_fields__) | {"host", "port"}
    for flag in command[3:]:
        if flag.startswith("--"):
            assert flag.lstrip("-").replace("-", "_") in knobs, f"simulator has no option {flag}"
