"""LogProgress: a pass-through that reports rows, rate and elapsed time."""
import logging

import apache_beam as beam
from apache_beam.testing.util import assert_that, equal_to

from components import progress


def test_progress_line():
    line = progress.progress_line("ContentEmbedder", "items embedded", 412_800, 408.0)
    assert line == ("ContentEmbedder: 412,800 items embedded (this worker), 1,012 rows/s, "
                    "408 s elapsed")


def test_log_progress_passes_every_element_through_and_logs(caplog):
    caplog.set_level(logging.INFO, logger=progress.PROGRESS_LOGGER)
    with beam.Pipeline() as p:
        out = (p | beam.Create(list(range(50)))
               | beam.ParDo(progress.LogProgress("Step", "rows", interval_s=0.0)))
        assert_that(out, equal_to(list(range(50))))
    lines = [r.getMessage() for r in caplog.records if r.name == progress.PROGRESS_LOGGER]
    assert lines and all(line.startswith("Step: ") and "rows/s" in line for line in lines)


def test_log_progress_lines_go_to_the_progress_logger(caplog):
    caplog.set_level(logging.INFO, logger=progress.PROGRESS_LOGGER)
    progress.log_progress("SemanticIdGen", "catalog rows written", 200_000, 20.0)
    [record] = caplog.records
    assert record.name == progress.PROGRESS_LOGGER
    assert record.getMessage() == ("SemanticIdGen: 200,000 catalog rows written (this worker), "
                                   "10,000 rows/s, 20 s elapsed")


def test_find_progress_line_in_plain_and_relayed_messages():
    line = progress.progress_line("SpmTrainer", "training rows read", 1_234_567, 61.0)
    assert progress.find_progress_line(line) == line
    # A Beam worker's log entry as the runner relays it (the text form of its LogEntry proto).
    relayed = (f'severity: INFO\ntimestamp {{\n  seconds: 1\n}}\nmessage: "{line}"\n'
               'log_location: "components.progress:57"\n')
    assert progress.find_progress_line(relayed) == line
    assert progress.find_progress_line("absl: Component Transform is running.") is None
    assert progress.find_progress_line("throughput 1,000 rows/s overall") is None


def test_the_rqvae_trainers_progress_line_reaches_the_console():
    from models.rqvae.train import _progress_line
    line = _progress_line(1_234_567, 3, 200, 0.01234, 30.2)
    assert progress.find_progress_line("INFO " + line) == line
