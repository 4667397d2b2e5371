"""``python -m ringcx_simulator --host 127.0.0.1 --port N [options]`` (see ``--help``).

Prints ``RINGCX_SIMULATOR_URL=<url>`` on stdout once it accepts connections; stops on SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from ringcx_simulator.config import build_parser, config_from_args
from ringcx_simulator.server import URL_MARKER, SimulatorServer


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = SimulatorServer(config, host=args.host, port=args.port, log_level=args.log_level)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    server.start()
    print(f"{URL_MARKER}{server.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
