"""Configuration errors fail the task at once: no Airflow retry can fix a wrong setting.

A :class:`~airflow_provider_ringcx.exceptions.RingCXConfigError` (a bad param, Variable or connection
extra, a run without a data interval, an off-grid manual run, a bucket without Object Lock...) raised
from a task is turned into :class:`RingCXConfigFailure`, an ``AirflowFailException``: Airflow fails the
task without spending its retries (3 by default, with exponential back-off up to 15 minutes) on an error
that will be the same every time. The message is the configuration error's, which names the setting and
the fix.

It is applied once, where tasks start: :class:`~airflow_provider_ringcx.operators.base.RingCXToS3BaseOperator`
wraps every ``execute*`` method of its subclasses (``execute``, ``execute_complete`` and the other resume
methods), and the example DAG's ``resolve_run`` body runs under :func:`config_errors_fail_fast`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_ringcx.exceptions import RingCXConfigError

F = TypeVar("F", bound=Callable[..., Any])


class RingCXConfigFailure(AirflowFailException, RingCXConfigError):  # type: ignore[misc]
    """A configuration error, raised so that Airflow does not retry the task.

    Still a :class:`~airflow_provider_ringcx.exceptions.RingCXConfigError` (and a ``ValueError``), so code
    that catches those keeps working.
    """

    def __init__(self, message: str) -> None:
        RingCXConfigError.__init__(self, message)


@contextmanager
def config_errors_fail_fast() -> Iterator[None]:
    """Re-raise a ``RingCXConfigError`` from the block as :class:`RingCXConfigFailure` (not retried)."""
    try:
        yield
    except RingCXConfigFailure:
        raise
    except RingCXConfigError as err:
        raise RingCXConfigFailure(f"configuration error (not retried): {err}") from err


def fail_fast(func: F) -> F:
    """Decorate a task entry point with :func:`config_errors_fail_fast`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with config_errors_fail_fast():
            return func(*args, **kwargs)

    wrapper.__ringcx_fail_fast__ = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def wrap_entry_points(cls: type) -> None:
    """Apply :func:`fail_fast` to the ``execute`` and ``execute_*`` methods ``cls`` defines itself."""
    for name, value in list(vars(cls).items()):
        entry = name == "execute" or name.startswith("execute_")
        if entry and callable(value) and not getattr(value, "__ringcx_fail_fast__", False):
            setattr(cls, name, fail_fast(value))
