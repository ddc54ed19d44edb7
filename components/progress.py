"""Progress lines for long Beam steps: rows done, rate and elapsed time, per worker.

`beam.ParDo(LogProgress("ContentEmbedder", "items embedded"))` passes every element through and,
on each worker, logs a line at most every `interval_s` seconds, e.g.

    ContentEmbedder: 412,800 items embedded (this worker), 1,010 rows/s, 408 s elapsed

It also counts the rows in a Beam metrics counter (namespace = the component's name), so a
Dataflow job shows the same figure in its console. A 1M-item run is then never silent for
minutes (the executors log their totals at the end). The per-element cost is one counter
increment and one clock read.
"""
from __future__ import annotations

import time

import apache_beam as beam
from absl import logging

# How often each worker reports; the first line comes after the first interval.
DEFAULT_INTERVAL_S = 30.0
# Plain loops (a one-worker writer) log every this many rows.
REPORT_EVERY_ROWS = 100_000


def progress_line(component: str, what: str, rows: int, elapsed_s: float) -> str:
    rate = rows / elapsed_s if elapsed_s > 0 else 0.0
    return (f"{component}: {rows:,} {what} (this worker), {rate:,.0f} rows/s, "
            f"{elapsed_s:,.0f} s elapsed")


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
            logging.info(progress_line(self._component, self._what, self._rows, now - self._start))
        yield element
