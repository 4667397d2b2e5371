"""The wheel and the sdist ship the example DAGs, ``py.typed`` and the licence, and not the simulator.

Built from a copy of the sources (the working tree is shared, so no ``build/`` appears in it) with the
setuptools backend of this environment (no network), in a subprocess as a build frontend would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = (
    "airflow_provider_ringcx/example_dags/__init__.py",
    "airflow_provider_ringcx/example_dags/factory.py",
    "airflow_provider_ringcx/example_dags/ringcx_recordings_to_s3.py",
    "airflow_provider_ringcx/example_dags/settings.py",
    "airflow_provider_ringcx/operators/report.py",
    "airflow_provider_ringcx/py.typed",
)


@pytest.mark.integration
def test_the_wheel_and_sdist_ship_the_dags_and_not_the_simulator(tmp_path: Path) -> None:
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "airflow_provider_ringcx", source / "airflow_provider_ringcx", ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source)
    build = (
        "from setuptools import build_meta as b; w = b.build_wheel('out'); s = b.build_sdist('out'); "
        "print('=', w, s)"
    )
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel_name, sdist_name = done.stdout.strip().splitlines()[-1].split()[1:]  # setuptools logs before
    wheel = zipfile.ZipFile(source / "out" / wheel_name).namelist()
    for path in EXPECTED:
        assert path in wheel, path
    assert any(path.endswith(".dist-info/licenses/LICENSE") for path in wheel)
    assert not [path for path in wheel if "simulator" in path]
    with tarfile.open(source / "out" / sdist_name) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    for path in (*EXPECTED, "LICENSE"):
        assert path in names, path
    assert not [name for name in names if "simulator" in name]
