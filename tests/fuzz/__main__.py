"""Command line: ``python -m tests.fuzz --inputs 1000000 --seed 1`` (from the repository root)."""

from __future__ import annotations

import argparse
import sys

import tests.fuzz.writes  # noqa: F401 - registers the "write" target
from tests.fuzz.runner import Report, run
from tests.fuzz.targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer and print its report; exit status 1 when anything was found."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs to run")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed")
    parser.add_argument("--start", type=int, default=0, help="index of the first input")
    parser.add_argument(
        "--targets", default=",".join(sorted(TARGETS)), help="comma-separated target names"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--trace-every", type=int, default=50, help="trace allocation 1 in N")
    parser.add_argument("--save", default="fuzz-findings", help="folder for inputs with findings")
    args = parser.parse_args(argv)

    def progress(report: Report) -> None:
        if report.inputs % 50_000 == 0:
            print(report.summary(), flush=True)

    report = run(
        args.inputs,
        args.seed,
        targets=args.targets.split(","),
        start=args.start,
        timeout=args.timeout,
        trace_every=args.trace_every,
        save_dir=args.save,
        progress=progress,
    )
    print(report.summary(), flush=True)
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
