"""A local stack for the demo, ``make airflow`` and the end-to-end tests.

It starts the RingCX simulator and moto's S3 server as child processes on free loopback ports, creates the
archive bucket (Object Lock enabled), prepares an Airflow home inside the repository (SQLite, migrated,
with the ``ringcx_default``/``aws_default`` connections and the pools) and stops everything it started by
PID. Nothing here is part of the provider package.

``python scripts/stack.py setup`` is the in-environment step (migrate, connections, pools); the
:class:`Stack` runs it with the right environment.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
S3_KEY, S3_SECRET, REGION = "demo-key", "demo-secret", "us-east-1"  # moto accepts anything; not secrets


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers (any status below 500)."""
    import requests

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException as err:
            last = err
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s ({last})")


def poll(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    interval: float = 1.0,
    details: Callable[[], str] | None = None,
) -> Any:
    """Call ``check`` every ``interval`` s until it returns something truthy, and return that.

    :raises AssertionError: not within ``timeout`` s; the message names ``what`` and adds ``details()``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}" + (details() if details else "")
    )


class Stack:
    """Simulator + S3 server + an Airflow home, wired together.

    :param home: the Airflow home (wiped and recreated by :meth:`prepare_home`).
    :param sim_args: extra simulator options (``--calls-per-hour 120`` ...).
    :param ringcx_extra: overrides of the ``ringcx_default`` connection's extras (e.g. budgets).
    """

    def __init__(
        self,
        home: Path,
        *,
        bucket: str = "ringcx-archive",
        prefix: str = "ringcx",
        sim_args: list[str] | None = None,
        ringcx_extra: Mapping[str, Any] | None = None,
        airflow_env: Mapping[str, str] | None = None,
    ) -> None:
        self.home = Path(home)
        self.bucket = bucket
        self.prefix = prefix
        self.sim_args = list(sim_args or [])
        self.ringcx_extra = dict(ringcx_extra or {})
        self.extra_env = dict(airflow_env or {})
        self.procs: list[subprocess.Popen] = []
        self._logs: list[IO[bytes]] = []
        self.sim_url = ""
        self.s3_url = ""
        # One JWT signing secret for all Airflow processes (else workers get "Invalid auth token").
        self.jwt_secret = secrets.token_urlsafe(32)

    # --- processes -------------------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> subprocess.Popen:
        """Start a child in its own process group, output to ``<home>/logs/<name>.log``."""
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        log = open(self.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs.append(log)
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env or os.environ), start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def start_services(self) -> Stack:
        """Start the simulator and the S3 server; create the bucket (Object Lock enabled)."""
        self.home.mkdir(parents=True, exist_ok=True)
        sim_port, s3_port = free_port(), free_port()
        sim_argv = [sys.executable, "-m", "ringcx_simulator", "--host", "127.0.0.1"]
        sim = self.spawn("simulator", [*sim_argv, "--port", str(sim_port), *self.sim_args])
        s3 = self.spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)])
        self.sim_url, self.s3_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{s3_port}"
        try:
            wait_http(f"{self.sim_url}/_sim/health", proc=sim)
            wait_http(f"{self.s3_url}/", proc=s3)
            self.s3_client().create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        except BaseException:
            self.stop()  # never leave a server behind when the other one failed to start
            raise
        return self

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=REGION,
        )

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT every child we started (by PID, newest first), then SIGKILL what is still alive."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    # --- Airflow -------------------------------------------------------------------------------------
    def connections(self) -> dict[str, str]:
        """Connection JSON by conn id: the simulator's test credentials and the S3 server."""
        sim_extra = {
            "auth_mode": "jwt",
            "jwt_token": "sim-jwt-assertion",
            "platform_url": self.sim_url,
            "api_url": self.sim_url,
            "rc_account_id": "980634004",
            "sub_account_id": "99999999",
            "timezone": "UTC",
            **self.ringcx_extra,
        }
        ringcx = {"conn_type": "ringcx", "login": "sim-client-id", "password": "sim-client-secret"}
        aws = {
            "conn_type": "aws",
            "login": S3_KEY,
            "password": S3_SECRET,
            "extra": {
                "region_name": REGION,
                "endpoint_url": self.s3_url,
                "config_kwargs": {"s3": {"addressing_style": "path"}},
            },
        }
        return {
            "ringcx_default": json.dumps({**ringcx, "extra": sim_extra}),
            "aws_default": json.dumps(aws),
        }

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process of this stack."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW")}
        env.update(
            PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__PARALLELISM="4",
            AIRFLOW__CORE__TEST_CONNECTION="Enabled",
            AIRFLOW__API_AUTH__JWT_SECRET=self.jwt_secret,
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home / 'airflow.db'}",
            RINGCX_BUCKET=self.bucket,
            RINGCX_PREFIX=self.prefix,
            AIRFLOW__RINGCX__BUDGET_DIR=str(self.home / "budgets"),
            AWS_ACCESS_KEY_ID=S3_KEY,
            AWS_SECRET_ACCESS_KEY=S3_SECRET,
            AWS_DEFAULT_REGION=REGION,
            RINGCX_STACK_CONNECTIONS=json.dumps(self.connections()),
        )
        env.update(self.extra_env)
        return env

    def prepare_home(self) -> None:
        """Migrate the SQLite metadata DB and create the connections and pools (one child process)."""
        for name in ("airflow.db", "airflow.cfg", "budgets"):
            path = self.home / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        with open(self.home / "logs" / "setup.log", "ab") as log:
            subprocess.run(
                [sys.executable, __file__, "setup"],
                env=self.env(),
                check=True,
                timeout=300,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def airflow(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run an ``airflow`` CLI command in this stack's environment, output captured."""
        return subprocess.run(
            [str(BIN / "airflow"), *args],
            env=self.env(),
            check=check,
            timeout=timeout,
            capture_output=True,
            text=True,
        )

    def start_airflow(
        self, port: int | None = None, timeout: float = 120.0, *, standalone: bool = True
    ) -> str:
        """Start Airflow; return the API server's URL. Stop it with :meth:`stop` (SIGINT, as Ctrl-C would).

        :param standalone: ``airflow standalone`` (scheduler, dag-processor, API server, triggerer in one
            command), else separate ``api-server``, ``scheduler`` and ``dag-processor`` processes (no
            triggerer; less CPU on a small machine).
        """
        if port is None:
            port = 8080 if port_is_free(8080) else free_port()
        url = f"http://127.0.0.1:{port}"
        self.extra_env.update(
            AIRFLOW__API__PORT=str(port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__BASE_URL=url,
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"{url}/execution/",
        )
        airflow = str(BIN / "airflow")
        if standalone:
            proc = self.spawn("standalone", [airflow, "standalone"], env=self.env())
        else:
            proc = self.spawn("api-server", [airflow, "api-server", "--port", str(port)], env=self.env())
            for component in ("scheduler", "dag-processor"):
                self.spawn(component, [airflow, component], env=self.env())
        wait_http(f"{url}/api/v2/version", timeout=timeout, proc=proc)
        return url

    @property
    def password_file(self) -> Path:
        """Where ``airflow standalone`` writes the generated admin password."""
        return self.home / "simple_auth_manager_passwords.json.generated"

    def api_token(self, url: str, timeout: float = 60.0) -> str:
        """A JWT for the REST API, from the admin password ``airflow standalone`` generated."""
        import requests

        deadline = time.monotonic() + timeout
        while not self.password_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        password = json.loads(self.password_file.read_text())["admin"]
        response = requests.post(
            f"{url}/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])

    def dags_test(self, run_after: str, *dag_ids: str, timeout: float = 900) -> dict[str, dict[str, Any]]:
        """``dag.test()`` of each DAG for one logical date, one after the other in ONE process (one Airflow
        start-up and one parse for all: the demo's two sub-accounts cost about one ``airflow dags test``
        more in task time only). Output goes to ``<home>/logs/dags-test.log``; returns ``{dag_id: {"state",
        "seconds"}}``."""
        results = self.home / "logs" / "dags-test.json"
        results.unlink(missing_ok=True)
        with open(self.home / "logs" / "dags-test.log", "ab") as log:
            subprocess.run(
                [sys.executable, __file__, "dags-test", run_after, *dag_ids],
                env=self.env(),
                check=False,
                timeout=timeout,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        done = json.loads(results.read_text()) if results.exists() else {}
        return {dag_id: done.get(dag_id, {"state": "not run", "seconds": 0.0}) for dag_id in dag_ids}

    @contextmanager
    def running(self) -> Iterator[Stack]:
        try:
            yield self.start_services()
        finally:
            self.stop()


def setup_airflow_home() -> None:
    """Inside the stack's environment: migrate the DB, then upsert the connections and pools."""
    from airflow.models import Connection, Pool
    from airflow.utils import db
    from airflow.utils.session import create_session

    from airflow_provider_ringcx.example_dags.per_sub_account import sub_account_pools
    from airflow_provider_ringcx.example_dags.settings import POOLS
    from airflow_provider_ringcx.subaccounts.listing import configured_sub_accounts

    db.initdb()
    connections = json.loads(os.environ["RINGCX_STACK_CONNECTIONS"])
    with create_session() as session:
        for conn_id, value in connections.items():
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
            data = json.loads(value)
            session.add(
                Connection(
                    conn_id=conn_id,
                    conn_type=data["conn_type"],
                    login=data.get("login"),
                    password=data.get("password"),
                    extra=json.dumps(data.get("extra") or {}),
                )
            )
    pools = {**POOLS, **sub_account_pools(configured_sub_accounts())}  # [ringcx] sub_accounts: theirs too
    for name, (slots, description) in pools.items():
        Pool.create_or_update_pool(name, slots, description, include_deferred=False)
    print(f"airflow home ready: connections {sorted(connections)}, pools {sorted(pools)}")


def run_dags_test(run_after: str, dag_ids: list[str]) -> None:
    """Inside the stack's environment: parse the DAG folder once, then ``dag.test()`` each DAG in turn
    (what ``airflow dags test`` does for one); write ``logs/dags-test.json``."""
    from datetime import datetime

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    bag = BundleDagBag(dag_folder=str(folder), bundle_path=folder, bundle_name="dags-folder")
    if bag.import_errors:
        print(f"import errors: {bag.import_errors}")
    sync_bag_to_db(bag, "dags-folder", None)
    done: dict[str, dict[str, Any]] = {}
    out = Path(os.environ["AIRFLOW_HOME"]) / "logs" / "dags-test.json"
    for dag_id in dag_ids:
        started = time.monotonic()
        try:
            state = str(bag.dags[dag_id].test(logical_date=datetime.fromisoformat(run_after)).state)
        except Exception as err:  # a DAG that is not there, or a test that could not start: the log says
            print(f"{dag_id}: {type(err).__name__}: {err}")
            state = "error"
        done[dag_id] = {"state": state, "seconds": round(time.monotonic() - started, 1)}
        out.write_text(json.dumps(done))


if __name__ == "__main__":
    if sys.argv[1:] == ["setup"]:
        setup_airflow_home()
    elif sys.argv[1:2] == ["dags-test"] and len(sys.argv) > 3:
        run_dags_test(sys.argv[2], sys.argv[3:])
    else:
        sys.exit("usage: python scripts/stack.py setup | dags-test RUN_AFTER DAG_ID...  (run by Stack)")
