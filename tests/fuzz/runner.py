"""Run fuzz targets: per-input timeout, the "only TFRecordIOError may escape" oracle, memory.

Each input is made from its own seed (``seed * 1_000_003 + n``), so any finding is replayed by
``--seed S --start n --inputs 1``. A hang is an input that runs past ``timeout`` seconds (an
interval timer raises in the main thread). Allocation is traced with :mod:`tracemalloc` on one
input in ``trace_every``; its peak must stay under ``alloc_factor`` times the input's true
(uncompressed) size plus ``alloc_slack`` bytes: a length field must not buy memory the input
does not hold.
"""

from __future__ import annotations

import random
import resource
import signal
import tempfile
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz.targets import TARGETS, FuzzInput, Target, Violation
from tfrecord_io.errors import TFRecordIOError

__all__ = ["Finding", "Report", "run"]


class Hang(BaseException):
    """Raised by the interval timer when an input runs too long."""


@dataclass(frozen=True)
class Finding:
    """An input that broke an oracle: what kind, which target, how to replay it, and why."""

    kind: str  # "foreign", "hang", "violation", "memory"
    target: str
    index: int
    note: str
    detail: str
    saved: str | None = None


@dataclass
class Report:
    """What a run did and found."""

    seed: int
    inputs: int = 0
    seconds: float = 0.0
    per_target: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)  # inputs the library refused
    busy: Counter[str] = field(default_factory=Counter)  # seconds spent per target
    findings: list[Finding] = field(default_factory=list)
    traced: int = 0
    max_alloc_ratio: float = 0.0  # traced peak / (true size + slack), over traced inputs
    max_rss_mib: float = 0.0

    def count(self, kind: str) -> int:
        """Return how many findings of ``kind`` the run made."""
        return sum(f.kind == kind for f in self.findings)

    def summary(self) -> str:
        """Return the report as a few lines of text."""
        rate = self.inputs / self.seconds if self.seconds else 0.0
        targets = ", ".join(
            f"{name} {n} ({self.refused[name]} refused, {self.busy[name]:.0f} s)"
            for name, n in sorted(self.per_target.items())
        )
        lines = [
            f"seed {self.seed}: {self.inputs} inputs in {self.seconds:.1f} s ({rate:.0f}/s)",
            f"targets: {targets}",
            f"foreign exceptions: {self.count('foreign')}, hangs: {self.count('hang')}, "
            f"oracle violations: {self.count('violation')}, "
            f"allocations beyond the input's size: {self.count('memory')}",
            f"allocation traced on {self.traced} inputs: peak at most "
            f"{self.max_alloc_ratio:.2f} of the allowance; max RSS {self.max_rss_mib:.0f} MiB",
        ]
        for finding in self.findings[:20]:
            lines.append(
                f"  {finding.kind} in {finding.target} (input {finding.index}, {finding.note}): "
                f"{finding.detail.splitlines()[-1] if finding.detail else ''}"
                + (f" [saved {finding.saved}]" if finding.saved else "")
            )
        return "\n".join(lines)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _pick(rng: random.Random, targets: list[Target]) -> Target:
    return rng.choices(targets, weights=[t.weight for t in targets])[0]


def run(
    inputs: int,
    seed: int,
    *,
    targets: list[str] | None = None,
    start: int = 0,
    timeout: float = 10.0,
    trace_every: int = 50,
    alloc_factor: float = 4.0,
    alloc_slack: int = 16 << 20,
    save_dir: str | None = None,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Run ``inputs`` seeded inputs over the chosen targets and return the report.

    Parameters
    ----------
    inputs : int
        How many inputs to run.
    seed : int
        The run's seed; input ``n`` is made from ``seed * 1_000_003 + n``.
    targets : list of str, optional
        Names in :data:`~tests.fuzz.targets.TARGETS` (default: all, by weight).
    start : int
        Index of the first input (to replay one).
    timeout : float
        Seconds an input may take before it counts as a hang.
    trace_every : int
        Trace allocation on one input in this many (0: never).
    alloc_factor, alloc_slack : float, int
        An input may allocate at most ``alloc_factor * true_size + alloc_slack`` bytes at peak.
    save_dir : str, optional
        Save the bytes of every input with a finding here.
    progress : callable, optional
        Called with the report every 1000 inputs.
    """
    chosen = [TARGETS[name] for name in (targets or sorted(TARGETS))]
    report = Report(seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfrecord-io-fuzz-") as scratch:
        workdir = Path(scratch)
        for n in range(start, start + inputs):
            rng = random.Random(seed * 1_000_003 + n)
            target = _pick(rng, chosen)
            item = target.make(rng)
            clock = time.perf_counter()
            finding = _run_one(
                target,
                item,
                workdir,
                rng,
                n,
                timeout,
                report,
                trace_every,
                alloc_factor,
                alloc_slack,
            )
            if finding is not None:
                saved = None
                if save_dir is not None:
                    Path(save_dir).mkdir(parents=True, exist_ok=True)
                    saved = str(Path(save_dir) / f"{target.name}-{seed}-{n}.bin")
                    Path(saved).write_bytes(item.data)
                report.findings.append(
                    Finding(finding[0], target.name, n, item.note, finding[1], saved)
                )
            report.inputs += 1
            report.per_target[target.name] += 1
            report.busy[target.name] += time.perf_counter() - clock
            if progress is not None and report.inputs % 1000 == 0:
                report.seconds = time.perf_counter() - began
                report.max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                progress(report)
    report.seconds = time.perf_counter() - began
    report.max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return report


def _run_one(
    target: Target,
    item: FuzzInput,
    workdir: Path,
    rng: random.Random,
    n: int,
    timeout: float,
    report: Report,
    trace_every: int,
    alloc_factor: float,
    alloc_slack: int,
) -> tuple[str, str] | None:
    traced = trace_every > 0 and n % trace_every == 0
    if traced:
        tracemalloc.start()
    try:
        with _deadline(timeout):
            accepted = target.check(item, workdir, rng)
        if not accepted:
            report.refused[target.name] += 1
    except TFRecordIOError:
        report.refused[target.name] += 1
    except Violation:
        return "violation", traceback.format_exc()
    except Hang:
        return "hang", traceback.format_exc()
    except Exception:  # the oracle: nothing but TFRecordIOError may escape
        return "foreign", traceback.format_exc()
    finally:
        if traced:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    if traced:
        allowance = alloc_factor * item.true_size + alloc_slack
        report.traced += 1
        report.max_alloc_ratio = max(report.max_alloc_ratio, peak / allowance)
        if peak > allowance:
            return "memory", f"peak {peak} bytes for an input of {item.true_size} bytes"
    return None
