"""Apache Airflow provider for RingCentral RingCX call recordings."""

from __future__ import annotations

import copy
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``).

    Each call returns a fresh copy, as the Apache providers' generated function returns a new literal:
    ProvidersManager writes ``documentation-url`` into the dict it is given (Airflow 3.2 writes it with a
    leading space), and that write must not change what the next caller sees.
    """
    from airflow_provider_ringcx.provider_info import PROVIDER_INFO

    return copy.deepcopy(PROVIDER_INFO)
