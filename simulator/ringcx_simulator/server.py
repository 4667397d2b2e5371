"""Run the simulator: in a background thread (:class:`SimulatorServer`) or as a subprocess
(:class:`SimulatorProcess`), on a free 127.0.0.1 port by default.

uvicorn serves the app with a small protocol subclass that exposes each connection's transport to the app
(ASGI scope extension), so stream faults can cut a connection with a real TCP reset mid-body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any

import uvicorn

from ringcx_simulator.app import create_app
from ringcx_simulator.config import SimConfig
from ringcx_simulator.faults import TRANSPORT_EXTENSION, SimulatedDisconnect
from ringcx_simulator.state import SimState

URL_MARKER = "RINGCX_SIMULATOR_URL="

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class _SimProtocol(HttpToolsProtocol):
        """httptools protocol that puts the transport into ``scope["extensions"]``."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope["extensions"] = {TRANSPORT_EXTENSION: self.transport}  # type: ignore[dict-item]

    _HTTP: Any = _SimProtocol
except ImportError:  # pragma: no cover - httptools is installed with uvicorn[standard]
    _HTTP = "auto"


class _DropSimulatedDisconnects(logging.Filter):
    """Keep deliberate connection cuts out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, SimulatedDisconnect):
                return False
            nested = getattr(exc, "exceptions", None)  # an exception group from a task group
            exc = exc.__cause__ or exc.__context__ or (nested[0] if nested else None)
        return True


class _QuickServer(uvicorn.Server):
    """uvicorn with a 10 ms tick and an immediate shutdown (tests start and stop hundreds of these)."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await asyncio.sleep(0.01)

    async def on_tick(self, counter: int) -> bool:
        return await super().on_tick(counter // 10 if counter % 10 == 0 else 1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        await asyncio.sleep(0.01)
        for task in list(self.server_state.tasks):
            task.cancel()
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        for server in self.servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=2)


_FILTER = _DropSimulatedDisconnects()
logging.getLogger("uvicorn.error").addFilter(_FILTER)


class SimulatorServer:
    """The simulator on uvicorn in a daemon thread.

    :param config: knobs (default :class:`SimConfig`).
    :param host: interface to bind.
    :param port: TCP port; 0 picks a free one (read it from :attr:`port` / :attr:`url` after start).
    :param log_level: uvicorn log level.
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.app = create_app(config)
        self.host = host
        self.port = port
        self._server = _QuickServer(
            uvicorn.Config(
                self.app,
                host=host,
                port=port,
                http=_HTTP,
                lifespan="off",
                log_level=log_level,
                access_log=False,
                timeout_graceful_shutdown=2,
                timeout_keep_alive=30,
            )
        )
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> SimState:
        state: SimState = self.app.state.sim
        return state

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> SimulatorServer:
        """Start serving; return once the socket accepts connections."""
        self._thread = threading.Thread(target=self._server.run, name="ringcx-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"RingCX simulator did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        self.port = int(sockets[0].getsockname()[1])
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and join the thread."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class SimulatorProcess:
    """The simulator as a child process (``python -m ringcx_simulator --port 0``).

    :param config: knobs, passed as command-line options.
    :param host: interface to bind.
    :param port: TCP port; 0 picks a free one, announced on the child's stdout.
    """

    def __init__(self, config: SimConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> SimulatorProcess:
        argv = [sys.executable, "-m", "ringcx_simulator", "--host", self.host,
                "--port", str(self.port), *self.config.to_argv()]  # fmt: skip
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=dict(os.environ)
        )
        stdout: IO[str] | None = self._proc.stdout
        found: list[str] = []

        def read_marker() -> None:
            assert stdout is not None
            for line in stdout:
                if line.startswith(URL_MARKER):
                    found.append(line[len(URL_MARKER) :].strip())
                    return

        reader = threading.Thread(target=read_marker, daemon=True)
        reader.start()
        reader.join(timeout)
        if not found:
            self.stop()
            raise RuntimeError("RingCX simulator subprocess did not announce its URL")
        self.url = found[0]
        match = re.search(r":(\d+)$", self.url)
        self.port = int(match.group(1)) if match else self.port
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
