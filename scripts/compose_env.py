"""``make compose-env``: write the docker compose stack's secrets once into the git-ignored ``.env``.

``docker-compose.yaml`` requires the secrets every Airflow service must share (``${VAR:?...}``, no weak
default): the Fernet key that encrypts connection passwords in Postgres, the JWT secret that signs the
execution-API tokens of tasks, and the API secret key that signs the requests for logs served by Celery
workers. Docker Compose reads ``.env`` beside the compose file for that interpolation, so this script puts
freshly generated values there, plus ``AIRFLOW_UID`` (the host user, as Airflow's own compose docs do).
It needs only the standard library (``make compose-env`` runs it with the system ``python3``, no venv): a
Fernet key is 32 random bytes in URL-safe base64, exactly what ``cryptography``'s ``Fernet.generate_key()``
returns (the tests check the key with ``Fernet``).

It never overwrites: a new ``.env`` is created with ``O_EXCL``, and an existing one keeps every line; only
the names it lacks are appended. A replaced Fernet key would make every connection stored in Postgres
unreadable, and a replaced JWT secret would log out running tasks, so "once" matters. The file holds
secrets: it is created 0600, and an existing one is tightened to 0600 when secrets are appended. Values are
never printed.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The secrets ``docker-compose.yaml`` requires, and how each is generated.
SECRETS: dict[str, Callable[[], str]] = {
    "AIRFLOW__CORE__FERNET_KEY": lambda: base64.urlsafe_b64encode(os.urandom(32)).decode("ascii"),
    "AIRFLOW__API_AUTH__JWT_SECRET": lambda: secrets.token_urlsafe(48),
    "AIRFLOW__API__SECRET_KEY": lambda: secrets.token_urlsafe(32),
}

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


class ComposeEnvError(Exception):
    """``.env`` sets a required name to an empty value (Compose refuses it; this script never overwrites)."""


def defined(text: str) -> dict[str, str]:
    """The ``NAME=value`` assignments of a ``.env`` text (comments and blank lines skipped; last one wins)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip().strip("'\"")
    return found


def wanted(uid: int | None) -> dict[str, Callable[[], str]]:
    """Everything ``.env`` should define: the secrets, and ``AIRFLOW_UID`` unless the user is root (uid 0)
    or unknown (then the compose file's default, 50000, applies)."""
    names = dict(SECRETS)
    if uid:
        names["AIRFLOW_UID"] = lambda: str(uid)
    return names


def ensure_env(path: Path, uid: int | None = None) -> list[str]:
    """Create ``path`` (mode 0600) or append to it the names it lacks; return the names added.

    :param uid: the ``AIRFLOW_UID`` to write if missing (``None`` or 0: not written).
    :raises ComposeEnvError: an existing ``.env`` defines a required name with an empty value.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        existing: dict[str, str] = {}
        needs_newline = False
    except FileExistsError:
        text = path.read_text()
        existing = defined(text)
        empty = sorted(name for name in SECRETS if name in existing and not existing[name])
        if empty:
            raise ComposeEnvError(
                f"{path} sets {', '.join(empty)} to an empty value; compose needs a value. Put one in, or "
                "delete the line and run make compose-env again (it never overwrites a line)"
            ) from None
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        needs_newline = bool(text) and not text.endswith("\n")
    missing = {name: make for name, make in wanted(uid).items() if name not in existing}
    with os.fdopen(fd, "w") as handle:
        if missing:
            os.fchmod(handle.fileno(), 0o600)
            lines = [f"{name}={make()}" for name, make in missing.items()]
            header = "# docker compose secrets, written once by make compose-env (scripts/compose_env.py)"
            handle.write("\n" * needs_newline + "\n".join([header, *lines]) + "\n")
    return list(missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=REPO / ".env", help="the .env file (default: repo root)")
    args = parser.parse_args(argv)
    uid = os.getuid() if hasattr(os, "getuid") else None
    try:
        added = ensure_env(args.path, uid)
    except ComposeEnvError as err:
        print(f"compose-env: {err}", file=sys.stderr)
        return 1
    if added:
        print(f"compose-env: wrote {', '.join(added)} to {args.path} (mode 0600)")
    else:
        print(f"compose-env: {args.path} already defines everything; left unchanged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
