"""A local RingCentral RingCX simulator: the vendor's auth, interaction-metadata and recording APIs over
real HTTP, with deterministic traffic, synthesised audio, budgets, faults and a ``/_sim/`` control API.

Module map: ``config`` (every knob, CLI), ``clock`` (data clock and scaled budget clock), ``traffic``
(deterministic dialogs), ``audio`` (streamed WAV synthesis), ``auth`` (tokens), ``limits`` (budgets),
``faults`` (fault rules), ``metadata`` (window rule - the boundary rule is documented there), ``bulk``
(100,000-row windows for volume tests, knob ``bulk_segments``), ``errors``,
``guards``/``vendor_auth``/``vendor_data`` (vendor routes), ``control`` (``/_sim/``), ``state``, ``app``,
``server`` (thread or subprocess).

Start it with ``python -m ringcx_simulator --help``, or from Python::

    with SimulatorServer(SimConfig(time_scale=60)) as sim:
        print(sim.url)
"""

from __future__ import annotations

from ringcx_simulator.app import create_app
from ringcx_simulator.config import SimConfig
from ringcx_simulator.server import SimulatorProcess, SimulatorServer

__all__ = ["SimConfig", "SimulatorProcess", "SimulatorServer", "create_app"]
