"""The project's own fuzzing: seeded mutators, targets with oracles, and a runner.

Layout, so that more targets (whole exports, mixers) can be added on top:

- :mod:`.mutators`: byte-level mutations (bit flips, byte runs, truncation, insertion, deletion)
  and record-aware ones that keep the CRCs valid (forged lengths, mutated payloads), so inputs
  reach past the checksums.
- :mod:`.targets`: a :class:`~.targets.Target` makes one input from a seeded generator and checks
  it; the oracle raises :class:`~.targets.Violation` for a wrong answer. Register new targets
  with :func:`~.targets.register`.
- :mod:`.runner`: runs inputs with a per-input timeout, lets only ``TFRecordIOError`` escape a
  target (anything else is a *foreign* exception), measures allocation on a sample of inputs,
  and reports.

- :mod:`.targets_export`: whole exports: mixer mutations, re-sharding under every naming, and
  records dropped, duplicated or swapped (registered as ``mixer_mutation``, ``reshard`` and
  ``records_mutation``).

Run ``python -m tests.fuzz --help`` from the repository root.
"""

from tests.fuzz import targets_export  # noqa: F401 - importing it registers the export targets
from tests.fuzz.runner import Report, run
from tests.fuzz.targets import TARGETS, Target, Violation, register

__all__ = ["TARGETS", "Report", "Target", "Violation", "register", "run"]
