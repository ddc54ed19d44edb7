"""Progress lines for long Beam steps: rows done, rate and elapsed time, per worker.

`beam.ParDo(LogProgress("ContentEmbedder", "items embedded"))` passes every element through and,
on each worker, logs a line at most every `interval_s` seconds, e.g.

    ContentEmbedder: 412,800 items embedded (this worker), 1,010 rows/s, 408 s elapsed

It also counts the rows in a Beam metrics counter (namespace = the component's name), so a
Dataflow job shows the same figure in its console. A 1M-item run is then never silent for
minutes (the executors log their totals at the end). The per-element cost is one counter
increment and one clock read.

The lines go to the Python logger `semids.progress` (PROGRESS_LOGGER); `semids run` forwards
them to the console (pipeline/run.py), everything else TF/Beam/absl log goes to the log file only.
A line that reaches the log another way (absl's logger, or a Beam worker's log entry relayed by
the runner) is still recognised by its text: `find_progress_line`.
"""
from __future__ import annotations

import logging
import re
import time
from typing import Optional

import apache_beam as beam

# The line format and logger live in models/ (the trainers there log the same lines).
from models.progress import PROGRESS_LOGGER, log_progress, progress_line  # noqa: F401

# How often each worker reports; the first line comes after the first interval.
DEFAULT_INTERVAL_S = 30.0
# Plain loops (a one-worker writer) log every this many rows.
REPORT_EVERY_ROWS = 100_000
# A progress line (progress_line's format) anywhere in a log message.
_PROGRESS_RE = re.compile(r"[A-Za-z_][\w.-]*: [\d,]+ [^\n\"\\]*? \(this worker\), [\d,.]+ rows/s, "
                          r"[\d,.]+ s elapsed")

_log = logging.getLogger(PROGRESS_LOGGER)


def find_progress_line(message: str) -> Optional[str]:
    """The progress line in a log message, or None: the message itself, or a relayed log entry
    (e.g. the text form of a Beam worker's LogEntry proto) that quotes one."""
    if "rows/s" not in message:
        return None
    match = _PROGRESS_RE.search(message)
    return match.group(0) if match else None


class LogProgress(beam.DoFn):
    """Pass-through DoFn logging rows done, rate and elapsed time every `interval_s` seconds."""

    def __init__(self, component: str, what: str = "rows", interval_s: float = DEFAULT_INTERVAL_S):
        self._component = component
        self._what = what
        self._interval_s = float(interval_s)
        self._counter = beam.metrics.Metrics.counter(component, what.replace(" ", "_"))

    def setup(self):
        self._rows = 0
        self._start = None
        self._last_log = None

    def process(self, element):
        now = time.monotonic()
        if self._start is None:
            self._start = self._last_log = now
        self._rows += 1
        self._counter.inc()
        if now - self._last_log >= self._interval_s:
            self._last_log = now
            log_progress(self._component, self._what, self._rows, now - self._start)
        yield element
