"""LogProgress: a pass-through that reports rows, rate and elapsed time."""
import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to
from absl import logging

from components import progress


def test_progress_line():
    line = progress.progress_line("ContentEmbedder", "items embedded", 412_800, 408.0)
    assert line == ("ContentEmbedder: 412,800 items embedded (this worker), 1,012 rows/s, "
                    "408 s elapsed")


def test_log_progress_passes_every_element_through_and_logs(monkeypatch):
    lines = []
    monkeypatch.setattr(logging, "info", lambda msg, *a: lines.append(msg % a if a else msg))
    with beam.Pipeline() as p:
        out = (p | beam.Create(list(range(50)))
               | beam.ParDo(progress.LogProgress("Step", "rows", interval_s=0.0)))
        assert_that(out, equal_to(list(range(50))))
    assert lines and all(line.startswith("Step: ") and "rows/s" in line for line in lines)
