"""The transfer: list a window into a manifest, land each segment, verify it, archive a batch.

``manifest`` / ``manifest_reader`` / ``manifest_integrity`` (the window's segment list in S3),
``landing`` (one segment: stream, write once, prove), ``sidecar`` (the JSON record beside each recording),
``verdict`` (the one decision "archived and verified"), ``batch`` (a batch of segments). S3 building blocks
(write-once, checksums, options, existing objects) live in ``airflow_provider_ringcx.s3``; key naming lives in
``airflow_provider_ringcx.keys``.
"""
