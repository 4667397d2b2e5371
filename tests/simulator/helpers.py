"""Helpers for the simulator tests: vendor-schema validation and small HTTP clients for the vendor paths."""

from __future__ import annotations

import copy
import io
import json
import wave
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import requests

SPEC_PATH = Path("/work/shared/vendor/ringcx-openapi-subset.json")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
WINDOW = {"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 3600, "timeZone": "UTC"}
SMALL = {"segmentEndTime": "2026-03-02 14:00:00", "timeInterval": 60, "timeZone": "UTC"}


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON-Schema ``type: [X, "null"]`` (recursively)."""
    if isinstance(node, dict):
        out = {key: _openapi_to_jsonschema(value) for key, value in node.items() if key != "example"}
        if out.pop("nullable", False) and "type" in out:
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item) for item in node]
    return node


@lru_cache(maxsize=1)
def _components() -> dict[str, Any]:
    spec = json.loads(SPEC_PATH.read_text())
    return _openapi_to_jsonschema(copy.deepcopy(spec["components"]))


def _check_date_times(instance: Any, schema_name: str) -> None:
    """jsonschema ignores ``format: date-time`` without extra packages; check the vendor's timestamps here."""
    if schema_name not in ("WEMInteractionSegmentMetaData2Array", "WEMDialogSegmentMetaData"):
        return
    rows = instance if isinstance(instance, list) else [instance]
    for row in rows:
        stamps = [v for k, v in row.items() if k.endswith("TimeMs") and isinstance(v, str)]
        stamps += [
            v for e in row.get("segmentEvents") or [] for v in (e["eventTimeMs"], e["clientEventTimeMs"])
        ]
        for stamp in stamps:
            assert stamp.endswith("Z"), stamp
            datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def validate(instance: Any, schema_name: str) -> None:
    """Validate ``instance`` against ``#/components/schemas/<schema_name>`` of the vendor spec."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _components()}
    jsonschema.Draft202012Validator(schema).validate(instance)
    _check_date_times(instance, schema_name)


def rc_token(
    url: str, secret: str = "sim-client-secret", assertion: str = "sim-jwt-assertion"
) -> requests.Response:
    return requests.post(
        url + "/restapi/oauth/token",
        auth=("sim-client-id", secret),
        data={"grant_type": JWT_GRANT, "assertion": assertion},
        timeout=10,
    )


def exchange(url: str, rc_access: str, include_refresh: bool = True) -> requests.Response:
    query = "?includeRefresh=true" if include_refresh else ""
    return requests.post(
        url + "/api/auth/login/rc/accesstoken" + query,
        data={"rcAccessToken": rc_access, "rcTokenType": "Bearer"},
        timeout=10,
    )


def login(url: str) -> dict[str, Any]:
    """RC JWT grant + exchange; the exchange JSON (accessToken, refreshToken...)."""
    rc = rc_token(url)
    assert rc.status_code == 200, rc.text
    response = exchange(url, rc.json()["access_token"])
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_metadata(
    sim: Any, token: str, body: Any = None, sub: str | None = None, **kwargs: Any
) -> requests.Response:
    payload = WINDOW if body is None else body
    kwargs.setdefault("timeout", 30)
    return requests.post(sim.url + sim.metadata_path(sub), json=payload, headers=bearer(token), **kwargs)


def get_recording(
    sim: Any, token: str, dialog_id: str, segment_id: str, sub: str | None = None, **kwargs: Any
) -> requests.Response:
    headers = {**bearer(token), "Accept": "audio/wav", **kwargs.pop("headers", {})}
    kwargs.setdefault("timeout", 30)
    return requests.get(sim.url + sim.recording_path(dialog_id, segment_id, sub), headers=headers, **kwargs)


def wav_info(body: bytes) -> tuple[int, int, int, int]:
    """``(channels, sample_rate, sample_width, frames)`` parsed by the standard ``wave`` module."""
    with wave.open(io.BytesIO(body)) as reader:
        return reader.getnchannels(), reader.getframerate(), reader.getsampwidth(), reader.getnframes()
