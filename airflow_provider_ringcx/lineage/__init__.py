"""OpenLineage for the RingCX operators: one input (a RingCX API path), one output (an S3 prefix or object).

Why datasets this coarse: a window archives hundreds of recordings, and a dataset per recording would bury
the lineage graph (the Amazon provider's automatic S3Hook lineage stops at 100 objects for that reason).
The unit a compliance reviewer asks about is "this sub-account's recordings API fed this window of the
archive", so each task names:

* **input** - the RingCX API as an HTTP dataset (OpenLineage naming: namespace ``https://{host}[:{port}]``,
  name the path): ``.../accounts/{rcAccountId}/sub-accounts/{subAccountId}/interaction-metadata`` for the
  metadata task, ``.../sub-accounts/{subAccountId}/recordings`` for the downloads. Never a query string, a
  token or a user part of the URL (:func:`~.datasets.http_dataset` keeps scheme, host, port and path only).
* **output** - ``s3://{bucket}`` and, as name, the window manifest's key (metadata task), the narrowest
  prefix holding the window's recordings (downloads: their hour with the default key template, the same
  for every batch of the window, see :func:`~airflow_provider_ringcx.keys.partition_prefix`), or the
  report's key (report task). On completion the output carries ``outputStatistics``: the files written and
  their bytes (rows too for the manifest).

Every run facet (``ringcx_archive``, :func:`~.datasets.archive_run_facet`) holds the window, the
sub-account and the outcome counts; on failure it holds what was done before the failure, and the
OpenLineage listener adds its own ``errorMessage`` facet from the exception (whose messages name items,
never secrets).

The OpenLineage provider is optional: this module imports nothing of it at import time, only inside the
functions the operators' ``get_openlineage_facets_on_*`` methods call, and Airflow calls those only when
the provider is installed and enabled.
"""

from __future__ import annotations
