"""The metadata task of a very large window, in its own process, measuring itself.

Runs :class:`~airflow_provider_ringcx.operators.metadata.RingCXInteractionMetadataOperator` once (connections
from the inherited environment; RingCX and S3 are other processes' servers over HTTP) and prints one JSON
line: what it returned (the XCom) and the peak of the Python memory it allocated while running
(``tracemalloc``, started after the imports, so the figure is the task's own working set).

    python -m tests.reliability.large_window_task BUCKET PREFIX START END
"""

from __future__ import annotations

import json
import sys
import time
import tracemalloc


def main(argv: list[str]) -> int:
    from airflow_provider_ringcx.operators.metadata import RingCXInteractionMetadataOperator
    from tests.operators.conftest import context, fast_hook

    bucket, prefix, start, end = argv
    operator = fast_hook(
        RingCXInteractionMetadataOperator(
            task_id="fetch", bucket=bucket, prefix=prefix, window_start=start, window_end=end
        )
    )
    ctx = context()
    tracemalloc.start()
    started = time.monotonic()
    batches = operator.execute(ctx)
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    xcom = json.dumps(batches)
    print(
        json.dumps(
            {
                "batches": batches,
                "xcom_bytes": len(xcom.encode()),
                "peak_traced_bytes": peak,
                "counts": ctx["ti"].pushed["counts"],
                "manifest_key": ctx["ti"].pushed["manifest_key"],
                "seconds": round(seconds, 1),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
