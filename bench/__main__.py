"""``make bench`` / ``python -m bench``: every benchmark, side by side, with targets and the machine.

    python -m bench                       # the full suite (about 10 minutes on 2 cores)
    python -m bench --quick               # tiny sizes: a smoke run in about a minute
    python -m bench --only throughput     # one or more names: see --help
    python -m bench --only history        # the history backfill through Airflow (about 5 minutes)
    python -m bench --only scale          # segments per minute with 1, 2 and 4 sub-accounts (~2-3 minutes)

Each benchmark starts its own simulator and S3 server (``moto_server``) as child processes on free
loopback ports and stops them by PID afterwards. Results are printed as tables; the last table gathers
every measure with its target and whether it is met. Exit status 0 unless a benchmark crashed (a missed
target is a finding, not a crash).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.common import Section, machine_info, print_section, services, table

ALL = ("throughput", "memory", "budget", "scale", "airflow", "profile", "coverage", "redis_budget", "history")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run, not a measurement")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=ALL,
        default=list(ALL),
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(ALL)})",
    )
    parser.add_argument("--segments", type=int, help="throughput: segments (default 200; quick 8)")
    parser.add_argument("--segment-mb", type=float, help="throughput: MB per segment (default 5; quick 0.5)")
    parser.add_argument("--wan-segments", type=int, help="throughput, WAN model: segments (32; quick 4)")
    parser.add_argument("--wan-segment-mb", type=float, help="throughput, WAN model: MB each (5; quick 0.5)")
    parser.add_argument("--wan-rate", type=float, default=8.0, help="WAN model: MB/s per stream")
    parser.add_argument("--wan-latency-ms", type=float, default=30.0, help="WAN model: first-byte latency")
    parser.add_argument(
        "--big-mib", type=float, help="memory: the big recording in MiB (default 1024; quick 64)"
    )
    parser.add_argument("--small-mib", type=float, default=10.0, help="memory: the small recording (MiB)")
    parser.add_argument("--airflow-segments", type=int, help="airflow: segments in the window (default 1000)")
    parser.add_argument("--airflow-kb", type=int, help="airflow: KB per segment (default 3000; quick 50)")
    parser.add_argument(
        "--repeat", type=int, help="throughput: interleaved rounds, best kept (default 2; quick 1)"
    )
    parser.add_argument("--coverage-days", type=int, help="coverage: days of reports (default 365; quick 20)")
    parser.add_argument(
        "--coverage-quarter-days", type=int, help="coverage: days of 96 quarter-hour reports (30; quick 3)"
    )
    parser.add_argument("--workdir", help="where logs and temp files go (default: a temp dir)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.segments = args.segments or (8 if quick else 200)
    args.segment_mb = args.segment_mb or (0.5 if quick else 5.0)
    args.wan_segments = args.wan_segments or (4 if quick else 32)
    args.wan_segment_mb = args.wan_segment_mb or (0.5 if quick else 5.0)
    args.big_mib = args.big_mib or (64.0 if quick else 1024.0)
    args.airflow_segments = args.airflow_segments or (40 if quick else 1000)
    args.airflow_kb = args.airflow_kb or (50 if quick else 3000)
    args.repeat = args.repeat or (1 if quick else 2)
    args.coverage_days = args.coverage_days or (20 if quick else 365)
    if args.coverage_quarter_days is None:
        args.coverage_quarter_days = 3 if quick else 30
    return args


def run_throughput(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import throughput

    return throughput.bench(
        workdir / "throughput",
        segments=args.segments,
        segment_mb=args.segment_mb,
        repeat=args.repeat,
        wan_segments=args.wan_segments,
        wan_segment_mb=args.wan_segment_mb,
        wan_rate_mb=args.wan_rate,
        wan_latency_ms=args.wan_latency_ms,
    )


def run_memory(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import memory

    with services(workdir / "memory") as svc:
        return memory.bench(svc, small_mib=args.small_mib, big_mib=args.big_mib)


def run_budget(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import budget

    return budget.bench(workdir / "budget", quick=args.quick)


def run_scale(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import scale

    return scale.bench(workdir / "scale", quick=args.quick)


def run_airflow(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import airflow_overhead

    return airflow_overhead.bench(workdir / "airflow", segments=args.airflow_segments, kb=args.airflow_kb)


def run_profile(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import profile

    with services(workdir / "profile") as svc:
        return profile.bench(svc, workdir / "profile", quick=args.quick)


def run_coverage(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import coverage

    return coverage.bench(
        workdir / "coverage", days=args.coverage_days, quarter_days=args.coverage_quarter_days
    )


def run_history(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import history

    return history.bench(workdir / "history", quick=args.quick)


def run_redis_budget(args: argparse.Namespace, workdir: Path) -> Section:
    from bench import redis_budget

    return redis_budget.bench(workdir / "redis_budget", quick=args.quick)


RUNNERS: dict[str, Callable[[argparse.Namespace, Path], Section]] = {
    "throughput": run_throughput,
    "memory": run_memory,
    "budget": run_budget,
    "scale": run_scale,
    "airflow": run_airflow,
    "profile": run_profile,
    "coverage": run_coverage,
    "redis_budget": run_redis_budget,
    "history": run_history,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.monotonic()
    print(
        "# airflow-provider-ringcx benchmarks"
        + (" (--quick: smoke sizes, not a measurement)" if args.quick else "")
    )
    for name, value in machine_info().items():
        print(f"- {name}: {value}")
    sys.stdout.flush()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="ringcx-bench-"))
    sections: list[Section] = []
    crashed = []
    for name in ALL:
        if name not in args.only:
            continue
        started = time.monotonic()
        try:
            section = RUNNERS[name](args, workdir)
        except Exception:
            crashed.append(name)
            section = Section(f"{name}: CRASHED")
            section.details = traceback.format_exc().splitlines()
        section.notes.append(f"({name} took {time.monotonic() - started:.0f} s)")
        print_section(section)
        sections.append(section)
    rows = [
        (s.title.split(":")[0], m.name, m.value, m.target or "-", m.verdict)
        for s in sections
        for m in s.measures
    ]
    print("\n## Summary\n")
    for line in table(rows, ("benchmark", "measure", "value", "target", "verdict")):
        print(line)
    missed = sum(1 for s in sections for m in s.measures if m.met is False)
    print(
        f"\n{missed} target(s) not met; {len(crashed)} benchmark(s) crashed {crashed or ''}; "
        f"total {time.monotonic() - began:.0f} s; logs in {workdir}"
    )
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
