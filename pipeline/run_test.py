"""The console of `semids run` (pipeline/run.py), without running the pipeline: which log records
and which writes to fds 1/2 reach the console, and which only the log file."""
import ctypes
import io
import logging
import os
import subprocess
import sys
import time

import pytest

from components import progress
from pipeline import cli
from pipeline import run


class FakeClock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def _handler(interval_s: float = 30.0):
    out = io.StringIO()
    clock = FakeClock()
    handler = run.ConsoleHandler(run.Console(out), progress_interval_s=interval_s, clock=clock)
    return handler, out, clock


def _record(msg: str, *args, name: str = "absl", level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def _lines(out: io.StringIO):
    # "  [HH:MM:SS] rest": the clock's local time is the test machine's; compare the rest.
    return [line[len("  [00:00:00] "):] for line in out.getvalue().splitlines()]


def test_components_start_and_finish_lines_and_nothing_else():
    handler, out, clock = _handler()
    handler.handle(_record("Component %s is running.", "Transform"))
    for noise in ("Running launcher for node_info {\n  id: \"Transform\"\n}",
                  "Going to run a new execution 13",
                  "Model's `__init__()` arguments contain non-serializable objects. Please "
                  "implement a `get_config()` method"):
        handler.handle(_record(noise))
    handler.handle(_record("From x.py:343: parse_example_dataset is deprecated", name="tensorflow",
                           level=logging.WARNING))
    handler.handle(_record("semids failed", name="pipeline.cli", level=logging.ERROR))
    clock.t += 170.6
    handler.handle(_record("Component %s is finished.", "Transform"))
    assert _lines(out) == [f"{'Transform':<32} started", f"{'Transform':<32} done in  170.6s"]


def test_a_cached_component_says_so():
    handler, out, clock = _handler()
    handler.handle(_record("Component %s is running.", "StatisticsGen"))
    handler.handle(_record("A cached execution %d is used.", 7))
    clock.t += 0.2
    handler.handle(_record("Component %s is finished.", "StatisticsGen"))
    handler.handle(_record("Component %s is running.", "Trainer"))
    clock.t += 3.0
    handler.handle(_record("Component %s is finished.", "Trainer"))
    assert _lines(out) == [f"{'StatisticsGen':<32} started",
                           f"{'StatisticsGen':<32} cached  (0.2s)",
                           f"{'Trainer':<32} started", f"{'Trainer':<32} done in    3.0s"]


def test_a_silent_component_gets_a_still_running_line_once_a_minute():
    handler, out, clock = _handler()
    handler.handle(_record("Component %s is running.", "Trainer"))
    clock.t += 59.0
    handler.still_running()  # silent for less than a minute: nothing
    clock.t += 1.0
    handler.still_running()
    clock.t += 30.0
    handler.still_running()  # 30 s after the last line: nothing
    clock.t += 30.0
    handler.still_running()
    clock.t += 5.0
    handler.handle(_record("Component %s is finished.", "Trainer"))
    handler.still_running()  # nothing runs
    assert _lines(out) == [f"{'Trainer':<32} started", f"{'Trainer':<32} still running (60s)",
                           f"{'Trainer':<32} still running (120s)",
                           f"{'Trainer':<32} done in  125.0s"]


def test_progress_lines_reach_the_console_at_most_every_interval_per_component():
    handler, out, clock = _handler(interval_s=30.0)
    line = progress.progress_line("ContentEmbedder", "items embedded", 30_000, 30.0)
    handler.handle(_record(line, name=progress.PROGRESS_LOGGER))
    clock.t += 10  # another worker's line, 10 s later: not on the console
    handler.handle(_record(progress.progress_line("ContentEmbedder", "items embedded", 9_000, 30.0),
                           name=progress.PROGRESS_LOGGER))
    # Another component's line is not held back by the first one's.
    other = progress.progress_line("SemanticIdGen", "catalog rows written", 100_000, 12.0)
    handler.handle(_record(other, name="absl"))  # through absl's logger: found by its text
    clock.t += 25
    later = progress.progress_line("ContentEmbedder", "items embedded", 61_000, 61.0)
    handler.handle(_record(later, name=progress.PROGRESS_LOGGER))
    # A Beam worker's log entry, relayed by the runner through the root logger.
    clock.t += 30
    relayed = progress.progress_line("SpmTrainer", "training rows read", 5_000, 30.0)
    handler.handle(_record('severity: INFO\nmessage: "%s"\n', relayed, name="root"))
    assert _lines(out) == ["  " + line, "  " + other, "  " + later, "  " + relayed]


def test_a_failing_console_does_not_break_the_run(monkeypatch):
    class Broken(io.StringIO):
        def write(self, s):
            raise BrokenPipeError

    errors = []
    handler = run.ConsoleHandler(run.Console(Broken()))
    monkeypatch.setattr(handler, "handleError", errors.append)
    handler.handle(_record("Component %s is running.", "Pusher"))  # must not raise
    assert len(errors) == 1


def test_fd_writes_go_to_the_log_and_console_lines_to_the_console(tmp_path, capfd):
    log_path = str(tmp_path / "run.log")
    console = run.Console()
    with run.console_output(log_path, console=console) as c:
        assert c is console
        os.write(1, b"cuda_fft.cc:479] Unable to register cuFFT factory\n")
        os.write(2, b"normalizer.cc(51) LOG(INFO) precompiled_charsmap is empty.\n")
        # Python's own streams on fds 1/2 (pytest replaces sys.stdout/stderr), left unflushed.
        print("Epoch 1/20", file=sys.__stdout__)
        print("WARNING:tensorflow:Model's `__init__()` arguments", file=sys.__stderr__)
        ctypes.CDLL(None).puts(b"from C stdio")  # buffered in C: flushed at the end
        subprocess.run([sys.executable, "-c", "print('Successfully installed tfx-user-code')"],
                       check=True)
        console.line("  [12:00:00] Transform                        started")
    out, err = capfd.readouterr()
    assert out == "  [12:00:00] Transform                        started\n"
    assert err == ""
    with open(log_path) as f:
        log = f.read()
    for text in ("cuFFT factory", "precompiled_charsmap", "Epoch 1/20", "WARNING:tensorflow",
                 "from C stdio", "Successfully installed tfx-user-code"):
        assert text in log
    # Restored: fds 1 and 2 are the console's again, and the Console writes to sys.stdout.
    os.write(1, b"after on 1\n")
    os.write(2, b"after on 2\n")
    console.line("a line after")
    out, err = capfd.readouterr()
    assert out == "after on 1\na line after\n" and err == "after on 2\n"


def test_fds_are_restored_when_the_run_fails(tmp_path, capfd):
    log_path = str(tmp_path / "run.log")
    with pytest.raises(KeyError):
        with run.console_output(log_path, console=run.Console()):
            os.write(2, b"noise before the error\n")
            raise KeyError("not one of ours")
    os.write(2, b"the traceback would show here\n")
    out, err = capfd.readouterr()
    assert err == "the traceback would show here\n"
    with open(log_path) as f:
        assert f.read() == "noise before the error\n"


def test_verbose_redirects_nothing(tmp_path, capfd):
    log_path = str(tmp_path / "run.log")
    with run.console_output(log_path, redirect=False, console=run.Console()) as console:
        os.write(2, b"noise\n")
        console.line("a line")
    out, err = capfd.readouterr()
    assert out == "a line\n" and err == "noise\n"
    assert not os.path.exists(log_path)


def test_setup_logging_sends_everything_to_the_file_and_only_our_lines_to_the_console(tmp_path):
    from pipeline.config import RunConfig
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    try:
        config = RunConfig(output_dir=str(tmp_path / "outputs"), results_dir=str(tmp_path / "res"))
        path = run.setup_logging(config, console=run.Console(out))
        assert os.path.dirname(path) == os.path.join(config.output_dir, "logs")
        from absl import logging as absl_logging
        absl_logging.info("Component %s is running.", "Evaluator")
        absl_logging.info("Going to run a new execution 3")
        logging.getLogger("tensorflow").warning("parse_example_dataset is deprecated")
        logging.getLogger(progress.PROGRESS_LOGGER).info(
            progress.progress_line("Evaluator", "rows", 10, 1.0))
        for h in root.handlers:
            h.flush()
        with open(path) as f:
            log = f.read()
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
            h.close()
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    assert _lines(out) == [f"{'Evaluator':<32} started",
                           "  " + progress.progress_line("Evaluator", "rows", 10, 1.0)]
    for text in ("Component Evaluator is running.", "Going to run a new execution 3",
                 "WARNING tensorflow: parse_example_dataset is deprecated",
                 "10 rows (this worker)"):
        assert text in log


def test_cli_run_passes_verbose_and_shows_errors(monkeypatch, capsys):
    calls = []

    def fake_run(config, verbose=False):
        calls.append(verbose)
        if len(calls) == 2:
            raise ValueError("interactions.csv row 12: field rating: 'x' is not a number")
        if len(calls) == 3:
            raise KeyError("something else")
        return {}

    monkeypatch.setattr(cli, "run_pipeline", fake_run)
    assert cli.main(["run", "--verbose"]) == 0
    assert cli.main(["run"]) == 1
    assert capsys.readouterr().err == (
        "semids: error: interactions.csv row 12: field rating: 'x' is not a number\n")
    with pytest.raises(KeyError):  # not one of ours: shown in full, by Python
        cli.main(["run"])
    assert calls == [True, False, False]


def test_a_config_error_is_one_line_without_a_log_file(monkeypatch, capsys):
    # No handler yet (the run never started): no traceback from logging's last resort.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    assert cli.main(["run", "--dataset", "nope"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("semids: error: RunConfig: dataset must be one of")
    assert err.count("\n") == 1


def test_stderr_to_log_takes_fd_2_and_its_subprocesses_and_leaves_stdout(tmp_path, capfd):
    log_path = str(tmp_path / "experiment.log")
    with pytest.raises(KeyError):
        with run.stderr_to_log(log_path):
            os.write(2, b"cuda_fft.cc:479] Unable to register cuFFT factory\n")
            subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('worker noise')"],
                           check=True)
            os.write(1, b"  [1/108] random_hash B=512\n")
            raise KeyError("an error after the noise")
    os.write(2, b"the error message shows here\n")
    out, err = capfd.readouterr()
    assert out == "  [1/108] random_hash B=512\n"
    assert err == "the error message shows here\n"
    with open(log_path) as f:
        log = f.read()
    assert "cuFFT factory" in log and "worker noise" in log


def test_one_run_at_a_time_makes_a_second_process_wait_for_the_first(tmp_path):
    from pipeline.config import RunConfig
    config = RunConfig(output_dir=str(tmp_path))
    order = tmp_path / "order.txt"
    # The child takes the lock, says so, and keeps it until it is told to let go.
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys\n"
         "from pipeline import run\n"
         "from pipeline.config import RunConfig\n"
         f"with run.one_run_at_a_time(RunConfig(output_dir={str(tmp_path)!r})):\n"
         f"    open({str(order)!r}, 'a').write('child holds\\n')\n"
         "    sys.stdin.readline()\n"
         f"    open({str(order)!r}, 'a').write('child lets go\\n')\n"],
        stdin=subprocess.PIPE, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        while not order.exists():
            child.poll()
            assert child.returncode is None, "the child stopped before taking the lock"
            time.sleep(0.01)
        waited = []

        def let_the_child_go(lock_path):  # called only once the lock was found held
            waited.append(lock_path)
            child.stdin.write("\n")
            child.stdin.flush()

        with run.one_run_at_a_time(config, on_wait=let_the_child_go):
            order.open("a").write("parent holds\n")
    finally:
        child.stdin.close()
        child.wait()
    assert order.read_text().splitlines() == ["child holds", "child lets go", "parent holds"]
    assert waited == [os.path.dirname(config.metadata_path)]
    waited = []
    with run.one_run_at_a_time(config, on_wait=waited.append):  # free now: no wait
        pass
    assert waited == []
