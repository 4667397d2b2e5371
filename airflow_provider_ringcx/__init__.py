"""Apache Airflow provider for RingCentral RingCX call recordings."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Describe this provider to Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""
    from airflow_provider_ringcx.provider_info import PROVIDER_INFO

    return PROVIDER_INFO
