"""run_pipeline: prepares the inputs, runs the pipeline with LocalDagRunner and writes the
report.

The console of `semids run` gets a few lines only: what runs and where the full log is, a line
when each component starts and finishes, the progress lines of long Beam steps
(components/progress.py, at most one per component every 30 s), a "still running" line for a
component silent for a minute, and the results. Everything else
(TF, Keras, absl, Beam, SentencePiece's C++ logs, the pip output of TFX's user-code wheels) goes
to the full log under <output_dir>/logs/. Much of it is written by C++ code and subprocesses
straight to file descriptors 1 and 2, so `console_output` points those at the log file for the
run and keeps a copy of the original stdout for the console lines (the `Console`). `--verbose`
(`redirect=False`) leaves the descriptors alone: everything shows, and the log file is written
too. `run_pipeline(config, quiet=True)` (tests, the experiment) prints nothing and touches no
descriptor.
"""
import contextlib
import ctypes
import faulthandler
import logging
import os
import sys
import threading
import time
from typing import Callable, Dict, Iterator, Optional, Sequence

from data import locking
from pipeline.config import RunConfig

# The logger of the results lines (written to the log file too).
RESULTS_LOGGER = "semids.run"
# A component silent on the console this long gets a "still running" line.
STILL_RUNNING_S = 60.0


def fmt_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Console:
    """Where the console lines of a run go: `stream`, or sys.stdout as it is when none is set
    (while `console_output` redirects fd 1, `stream` is a copy of the original stdout). `prefix`
    starts every line: it names the process when several share one terminal."""

    def __init__(self, stream=None, prefix: str = ""):
        self.stream = stream
        self.prefix = prefix
        self._lock = threading.Lock()

    def line(self, text: str = "") -> None:
        stream = self.stream if self.stream is not None else sys.stdout
        with self._lock:
            stream.write(self.prefix + text + "\n")
            stream.flush()


# The console of the current process: ConsoleHandler and run_pipeline write to it.
CONSOLE = Console()


def _flush_c_stdio() -> None:
    """Flushes C's stdio buffers (C++ code and extensions printing through printf/std::cout)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
    _flush_c_stdio()


@contextlib.contextmanager
def console_output(log_path: str, redirect: bool = True,
                   console: Optional[Console] = None) -> Iterator[Console]:
    """Points fds 1 and 2 at `log_path` (appending) for the duration; yields the Console, which
    writes to a copy of the original stdout. Restores both descriptors on exit, error or not, so
    that an exception's traceback reaches the terminal. A crash of the process (a segfault, an
    abort) also shows there: faulthandler writes to the original stderr meanwhile.
    `redirect=False` (--verbose): nothing is redirected and the Console writes to sys.stdout."""
    console = console or CONSOLE
    if not redirect:
        previous, console.stream = console.stream, None
        try:
            yield console
        finally:
            console.stream = previous
        return
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding=encoding, errors="replace")
    err = os.fdopen(os.dup(2), "w", buffering=1, encoding=encoding, errors="replace")
    fault_handler_was_on = faulthandler.is_enabled()
    previous, console.stream = console.stream, out
    try:
        with fds_to_log(log_path, (1, 2)):
            faulthandler.enable(file=err)
            yield console
    finally:
        try:
            if fault_handler_was_on:
                faulthandler.enable(file=sys.__stderr__)  # fd 2, the original again
            else:
                faulthandler.disable()
        except (ValueError, OSError, AttributeError):
            pass
        console.stream = previous
        for stream in (out, err):
            with contextlib.suppress(OSError, ValueError):  # e.g. `| head` closed the pipe
                stream.close()


@contextlib.contextmanager
def fds_to_log(log_path: str, fds: Sequence[int]) -> Iterator[None]:
    """Points the file descriptors `fds` at `log_path` (appending) for the duration, flushing
    Python's and C's buffers on both sides; restores them on exit, error or not."""
    _flush_all()
    saved = [os.dup(fd) for fd in fds]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for fd in fds:
            os.dup2(log_fd, fd)
        yield
    finally:
        _flush_all()
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(log_fd)


def stderr_to_log(log_path: str):
    """fd 2 to `log_path`, fd 1 left alone (fds_to_log): for the commands that print their own
    progress on stdout (`semids experiment`, `tune`, `simulate`) while TensorFlow, SentencePiece
    and the worker processes they spawn (which inherit fd 2) write their C++ messages to stderr
    (cuDNN/cuFFT registration, the normalizer's LOG(INFO)). Restored on exit, so an error's
    message reaches the terminal."""
    return fds_to_log(log_path, (2,))


class ConsoleHandler(logging.Handler):
    """Passes to the console, from all the log records of a run: a line when LocalDagRunner
    starts and finishes a component ("Component X is running." / "... is finished."; a cached
    one says so), and the progress lines of components/progress.py (its logger, or a record that
    quotes one, e.g. a Beam worker's relayed log entry), at most one per component every
    `progress_interval_s`. Nothing else: the file handler has it all."""

    def __init__(self, console: Optional[Console] = None,
                 progress_interval_s: Optional[float] = None,
                 clock: Callable[[], float] = time.time):
        super().__init__(logging.INFO)
        from components import progress
        self._progress = progress
        self.console = console or CONSOLE
        self.progress_interval_s = (progress.DEFAULT_INTERVAL_S if progress_interval_s is None
                                    else progress_interval_s)
        self.clock = clock
        self.started: Dict[str, float] = {}  # running components, in start order
        self.cached = set()
        self._last_progress: Dict[str, float] = {}
        self._last_line: Dict[str, float] = {}  # when a component last had a console line

    def _line(self, name: str, what: str) -> None:
        now = self.clock()
        self._last_line[name] = now
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        self.console.line(f"  [{stamp}] {name:<32} {what}")

    def still_running(self, after_s: float = STILL_RUNNING_S) -> None:
        """A line for the running component when it has been silent on the console for
        `after_s` (Transform, the Trainers and the Evaluator log no row progress)."""
        for name, started in list(self.started.items()):
            now = self.clock()
            if now - self._last_line.get(name, started) >= after_s:
                self._line(name, f"still running ({now - started:.0f}s)")

    @contextlib.contextmanager
    def heartbeat(self, every_s: float = 5.0) -> Iterator[None]:
        """Calls still_running every `every_s` from a daemon thread while the block runs."""
        stop = threading.Event()

        def beat():
            while not stop.wait(every_s):
                self.still_running()

        thread = threading.Thread(target=beat, name="semids-console-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record of someone else's: not ours to show
            return
        try:
            self._handle(record, msg)
        except Exception:
            self.handleError(record)

    def _handle(self, record: logging.LogRecord, msg: str) -> None:
        if msg.startswith("Component ") and msg.endswith(" is running."):
            name = msg[len("Component "):-len(" is running.")]
            self.started[name] = self.clock()
            self._line(name, "started")
        elif msg.startswith("Component ") and msg.endswith(" is finished."):
            name = msg[len("Component "):-len(" is finished.")]
            took = self.clock() - self.started.pop(name, self.clock())
            if name in self.cached:
                self.cached.discard(name)
                self._line(name, f"cached  ({took:.1f}s)")
            else:
                self._line(name, f"done in {took:6.1f}s")
        elif msg.startswith("A cached execution ") and msg.endswith(" is used."):
            if self.started:  # LocalDagRunner runs one component at a time
                self.cached.add(next(reversed(self.started)))
        elif record.name == self._progress.PROGRESS_LOGGER or "rows/s" in msg:
            line = self._progress.find_progress_line(msg)
            if line is None:
                return
            key = line.split(":", 1)[0]
            now = self.clock()
            last = self._last_progress.get(key)
            if last is not None and now - last < self.progress_interval_s:
                return
            self._last_progress[key] = now
            self._last_line[key] = now
            stamp = time.strftime("%H:%M:%S", time.localtime(now))
            self.console.line(f"  [{stamp}]   {line}")


def log_file_path(config: RunConfig, name: Optional[str] = None) -> str:
    """A new log file under <output_dir>/logs/, named after `name` (default: the pipeline)."""
    log_dir = os.path.join(config.output_dir, "logs")
    os.makedirs(log_dir, exist_ok=True)
    return os.path.join(log_dir, f"{name or config.pipeline_name}-"
                                 f"{time.strftime('%Y%m%d-%H%M%S')}.log")


def setup_logging(config: RunConfig, log_path: Optional[str] = None,
                  console: Optional[Console] = None, verbose: bool = False,
                  console_handler: Optional[ConsoleHandler] = None) -> str:
    """All log records (absl's too) to the file `log_path` (a new one under
    <output_dir>/logs/ by default); the console gets the ConsoleHandler's lines only, and with
    `verbose` also the warnings and TF's messages on stderr (as TF's own handler would)."""
    from absl import logging as absl_logging
    log_path = log_path or log_file_path(config)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    absl_logging.use_python_logging(quiet=True)
    absl_logging.set_verbosity(absl_logging.INFO)
    fh = logging.FileHandler(log_path)
    fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(fh)
    root.addHandler(console_handler or ConsoleHandler(console))
    if verbose:
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        stderr.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith("tensorflow"))
        root.addHandler(stderr)
    else:
        logging.captureWarnings(True)  # Python warnings: to the log, like the rest
    root.setLevel(logging.INFO)
    return log_path


def run_pipeline(config: RunConfig, quiet: bool = False, verbose: bool = False,
                 to_nodes: Optional[Sequence[str]] = None) -> dict:
    """Prepares the data, runs the pipeline with LocalDagRunner, writes and returns metrics.
    quiet: print nothing, leave logging and the file descriptors alone (tests). verbose: all
    output on the console too (nothing is redirected; the log file is written as well).
    to_nodes: run only these nodes and the nodes upstream of them (TFX's partial run); nothing
    is evaluated, so no metrics are written and {} is returned."""
    if quiet:
        return _run(config, None, None, to_nodes)
    log_path = log_file_path(config)
    with console_output(log_path, redirect=not verbose) as console:
        handler = ConsoleHandler(console)
        setup_logging(config, log_path, console, verbose=verbose, console_handler=handler)
        with handler.heartbeat():
            return _run(config, console, log_path, to_nodes)


@contextlib.contextmanager
def one_run_at_a_time(config: RunConfig,
                      on_wait: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    """Holds an exclusive lock on the pipeline's metadata folder (one per pipeline) while a run
    executes and reports: the report reads the store's newest run, so a second process running
    the same pipeline (side-by-side `semids tune` processes, each starting with the cached base
    run) waits until the first has read its own. on_wait(folder) is called if it must wait."""
    with locking.exclusive(os.path.dirname(config.metadata_path), on_wait):
        yield


def check_reuse(config: RunConfig) -> None:
    """--rqvae_mode reuse needs an RQ-VAE and a catalog from an earlier run of this pipeline
    (otherwise its Resolvers come back empty and TFX would skip the item side quietly)."""
    if config.rqvae_mode != "reuse":
        return
    from pipeline import mlmd
    from pipeline.pipeline import RQVAE_TRAINER_ID, SEMANTIC_ID_GEN_ID, SPM_TRAINER_ID
    missing = [what for what, node, key in (
        ("RQ-VAE", RQVAE_TRAINER_ID, "model"), ("catalog", SEMANTIC_ID_GEN_ID, "catalog"),
        ("SentencePiece models", SPM_TRAINER_ID, "spm_models"))
        if mlmd.latest_node_output(config, node, key) is None]
    if missing:
        raise ValueError(
            f"--rqvae_mode reuse: pipeline '{config.pipeline_name}' has no earlier "
            f"{', '.join(missing)} to reuse (metadata {config.metadata_path}); run it once with "
            "--rqvae_mode train first")


def _run(config: RunConfig, console: Optional[Console], log_path: Optional[str],
         to_nodes: Optional[Sequence[str]] = None) -> dict:
    if console:
        console.line(f"semids: running pipeline '{config.pipeline_name}' on {config.dataset_name} "
                     f"({config.representation}); full log {log_path}")
    # Imported here, after the redirection: importing TF prints (cuDNN/cuFFT registration...).
    from tfx import v1 as tfx

    from pipeline import pipeline as pipeline_lib
    from pipeline import report
    from pipeline.inputs import prepare_inputs

    start = time.time()
    check_reuse(config)
    inputs = prepare_inputs(config)
    if console:
        console.line(f"  [{time.strftime('%H:%M:%S')}] {'prepare_inputs':<32} done in "
                     f"{time.time() - start:6.1f}s (data {inputs.data_dir})")

    def waiting(lock_path: str) -> None:
        if console:
            console.line(f"  [{time.strftime('%H:%M:%S')}] waiting for another process's run of "
                         f"pipeline '{config.pipeline_name}' to finish ({lock_path})")
    if to_nodes:
        from tfx.orchestration import pipeline as tfx_pipeline
        with one_run_at_a_time(config, waiting):
            tfx.orchestration.LocalDagRunner().run(
                pipeline_lib.create_pipeline(config, inputs),
                run_options=tfx_pipeline.RunOptions(to_nodes=list(to_nodes)))
        if console:
            console.line(f"semids: ran {', '.join(to_nodes)} and their upstream nodes only "
                         f"({fmt_duration(time.time() - start)})")
        return {}
    with one_run_at_a_time(config, waiting):
        tfx.orchestration.LocalDagRunner().run(pipeline_lib.create_pipeline(config, inputs))
        metrics = report.collect_metrics(config, time.time() - start)
        path = report.write_metrics(config, metrics)
        sid_report = report.copy_sid_report(config)
    if console:
        lines = []
        if sid_report:
            lines += ["", f"Semantic IDs ({sid_report['path']}):",
                      report.format_sid_summary(sid_report)]
        lines += ["", f"Results ({path}):", report.format_table([metrics])]
        lines += [f"Rows rejected from {table}: {n}" +
                  (f" (listed in {metrics['rejects_files'][table]})" if n else "")
                  for table, n in sorted(metrics["rows_rejected"].items())]
        lines += ["", f"Pushed SavedModel: "
                  f"{metrics['pushed_model_dir'] or '(not pushed: model not blessed)'}"]
        text = "\n".join(lines)
        logging.getLogger(RESULTS_LOGGER).info("results:%s", text)
        console.line(text)
    return metrics
