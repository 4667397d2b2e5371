"""Secret hygiene: a successful run and failing ones (wrong client secret, revoked tokens), then every
place a secret could leak - log records and captured output, XComs, operator attributes (what rendered
templates show), exception texts, and every object written to S3 (sidecars, manifest, report) - is scanned
for the client secret, the JWT and every token the simulator issued (``/_sim/stats``). Zero hits."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from tests.fixtures.simulator import SimulatorHandle, ringcx_connection_json
from tests.reliability.conftest import FAST_RETRIES, W_END, W_START
from tests.reliability.harness import Pipeline, RunResult


def _secrets(sim: SimulatorHandle) -> set[str]:
    tokens = {t["token"] for t in sim.control.stats()["tokens_issued"]}
    assert tokens, "the simulator issued no token: nothing was tested"
    return {sim.config.client_secret, sim.config.jwt, "wrong-client-secret-0123456789", *tokens}


def _s3_texts(s3_client: Any, bucket: str) -> list[tuple[str, str]]:
    texts = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith(".wav"):
                body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                if obj["Key"].endswith(".gz"):  # the archive index: scanned as the text it holds
                    body = gzip.decompress(body)
                texts.append((obj["Key"], body.decode()))
    return texts


def _scan(places: list[tuple[str, str]], secrets: set[str]) -> list[str]:
    hits = []
    for where, text in places:
        for secret in secrets:
            if secret and secret in text:
                hits.append(f"{where}: contains a secret ({secret[:6]}...)")
    return hits


def _places(result: RunResult, pipe: Pipeline, caplog: Any, capfd: Any) -> list[tuple[str, str]]:
    out, err = capfd.readouterr()
    places = [("log records", caplog.text), ("stdout", out), ("stderr", err)]
    places += [(f"xcom {i}", json.dumps(x, default=str)) for i, x in enumerate(result.xcoms)]
    places += [(f"xcom summary {i}", json.dumps(s, default=str)) for i, s in enumerate(result.summaries)]
    places += [(f"exception {type(e).__name__}", f"{e!s} {e!r} {e.__cause__!r} {e.__context__!r}")
               for e in result.errors]  # fmt: skip
    places += [(f"hook {h!r}", f"{h!r} {h.__dict__.get('settings')!r}") for h in pipe.hooks]
    return places


def test_successful_and_failing_runs_leak_no_secret(
    rsim: SimulatorHandle,
    pipe: Pipeline,
    s3_client: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level("DEBUG")
    pipe.download_kwargs["include_transcripts"] = True  # transcript objects (issue 17) are scanned too
    pipe.download_kwargs["include_summaries"] = "both"  # and AI summaries (sent the token as a cookie)
    places: list[tuple[str, str]] = []
    ok = pipe.run_window(s3_client, W_START, W_END)
    assert ok.report is not None
    assert ok.report["complete"] is True
    places += _places(ok, pipe, caplog, capfd)

    # tokens revoked mid-run: the hook re-authenticates (new tokens), and their values must not leak either
    rsim.control.revoke()
    rsim.control.set_faults([{"route": "download", "kind": "expire_token", "times": 2}])
    revoked = pipe.run_window(s3_client, W_START.replace(hour=15), W_END.replace(hour=15))
    places += _places(revoked, pipe, caplog, capfd)

    # a wrong client secret: the run fails with an auth error that names the fix, not the secret
    monkeypatch.setenv(
        "AIRFLOW_CONN_RINGCX_DEFAULT",
        ringcx_connection_json(rsim, **FAST_RETRIES).replace(
            json.dumps(rsim.config.client_secret), json.dumps("wrong-client-secret-0123456789")
        ),
    )
    pipe.hooks.clear()
    wrong = pipe.run_window(s3_client, W_START.replace(hour=16), W_END.replace(hour=16))
    assert wrong.errors
    assert "RingCXAuthError" in {type(e).__name__ for e in wrong.errors}
    assert any("client" in str(e).lower() for e in wrong.errors)  # names what to fix
    places += _places(wrong, pipe, caplog, capfd)
    places += _s3_texts(s3_client, pipe.bucket)
    assert any(where.endswith(".transcript.json") for where, _ in places)
    assert any(where.endswith((".summary.agent.json", ".summary.auto.json")) for where, _ in places)
    secrets = _secrets(rsim)
    assert len(secrets) >= 6
    assert _scan(places, secrets) == []
