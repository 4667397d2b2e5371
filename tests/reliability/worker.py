"""A task process for the process-level scenarios: runs one window through the real operators (the same
:class:`~tests.reliability.harness.Pipeline` as the in-process scenarios) and prints a JSON line with what
it did. The test kills it (SIGKILL) or runs two at once; connections come from the inherited environment.

    python -m tests.reliability.worker BUCKET PREFIX START END
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime

import boto3


def main(argv: list[str]) -> int:
    from tests.fixtures.s3 import REGION, S3_KEY, S3_SECRET
    from tests.reliability.harness import Pipeline

    bucket, prefix, start, end, endpoint = argv
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=REGION,
    )
    pipe = Pipeline(bucket=bucket, prefix=prefix, retries=2)
    if os.environ.get("RINGCX_TEST_MULTIPART"):
        pipe.download_kwargs.update(single_part_threshold=1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    print(json.dumps({"event": "started"}), flush=True)
    result = pipe.run_window(s3, datetime.fromisoformat(start), datetime.fromisoformat(end))
    print(
        json.dumps(
            {
                "event": "done",
                "counts": result.counts,
                "complete": (result.report or {}).get("complete"),
                "errors": [f"{type(e).__name__}: {e}"[:300] for e in result.errors],
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
