"""A local RingCentral RingCX simulator: the vendor's auth, interaction-metadata and recording APIs over
real HTTP, with deterministic traffic, synthesised audio, budgets, faults and a ``/_sim/`` control API.

Start it with ``python -m airflow_provider_ringcx.simulator --help``, or from Python::

    with SimulatorServer(SimConfig(time_scale=60)) as sim:
        print(sim.url)
"""

from __future__ import annotations

from airflow_provider_ringcx.simulator.app import create_app
from airflow_provider_ringcx.simulator.config import SimConfig
from airflow_provider_ringcx.simulator.server import SimulatorProcess, SimulatorServer

__all__ = ["SimConfig", "SimulatorProcess", "SimulatorServer", "create_app"]
