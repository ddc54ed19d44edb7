"""The progress-line format of long steps, shared by the Beam components (components/progress.py
adds the Beam DoFn) and the trainers in models/ (which may not import components/).

    ContentEmbedder: 412,800 items embedded (this worker), 1,010 rows/s, 408 s elapsed

The lines go to the Python logger `semids.progress` (PROGRESS_LOGGER); `semids run` shows its
records on the console (pipeline/run.py).
"""
import logging

# The logger of the progress lines: the console of `semids run` shows its records.
PROGRESS_LOGGER = "semids.progress"

_log = logging.getLogger(PROGRESS_LOGGER)


def progress_line(component: str, what: str, rows: int, elapsed_s: float) -> str:
    rate = rows / elapsed_s if elapsed_s > 0 else 0.0
    return (f"{component}: {rows:,} {what} (this worker), {rate:,.0f} rows/s, "
            f"{elapsed_s:,.0f} s elapsed")


def log_progress(component: str, what: str, rows: int, elapsed_s: float) -> None:
    """Logs progress_line(...) to PROGRESS_LOGGER."""
    _log.info(progress_line(component, what, rows, elapsed_s))
