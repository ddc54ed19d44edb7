import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline.interrupts import stops_like_ctrl_c

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def stopped_while_beam_waits(sig: int, workers: list) -> None:
    """Beam's shape: a thread waits for a worker process busy with a bundle (appended to
    `workers`), `sig` arrives (`kill PID`), and the cleanup after the interrupt joins that
    thread."""
    worker = subprocess.Popen(SLEEPER)
    workers.append(worker)
    waiter = threading.Thread(target=worker.wait, daemon=True)
    waiter.start()
    try:
        os.kill(os.getpid(), sig)
        time.sleep(60)  # a bundle in progress: the signal interrupts it
    finally:
        waiter.join(timeout=30)  # Beam's join has no timeout: a hang, not a failure
        assert not waiter.is_alive(), "the worker was not ended"


def end(processes) -> None:
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_workers_started_inside_then_interrupts(sig):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    earlier = subprocess.Popen(SLEEPER)  # started before the block: not ours to end
    workers = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with stops_like_ctrl_c():
                stopped_while_beam_waits(sig, workers)
        assert workers[0].returncode == -signal.SIGTERM
        assert earlier.poll() is None
        assert {s: signal.getsignal(s) for s in before} == before
    finally:
        end([earlier] + workers)


def test_an_interrupt_rewrapped_on_its_way_out_still_leaves_as_one():
    def beam_like():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
        except KeyboardInterrupt as e:  # Beam re-raises what a DoFn raised, augmented
            raise RuntimeError("KeyboardInterrupt [while running 'Parse']") from e

    with pytest.raises(KeyboardInterrupt):
        with stops_like_ctrl_c():
            beam_like()
    with pytest.raises(RuntimeError, match="no signal"):  # a failure without a signal stays one
        with stops_like_ctrl_c():
            raise RuntimeError("no signal")


def test_a_block_off_the_main_thread_just_runs():
    ran = []

    def block():
        with stops_like_ctrl_c():
            ran.append(signal.getsignal(signal.SIGTERM))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=block)
    thread.start()
    thread.join()
    assert ran == [before]


BEAM_SCRIPT = """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from pipeline.interrupts import stops_like_ctrl_c

def slow(x, marker):
    import pathlib, time
    pathlib.Path(marker).touch()
    time.sleep(0.5)
    return x

options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                           "--direct_num_workers=2"])
try:
    with stops_like_ctrl_c():
        with beam.Pipeline(options=options) as p:
            p | beam.Create(list(range(1000))) | beam.Map(slow, sys.argv[1])
except KeyboardInterrupt:
    print("stopped")
"""


@pytest.mark.slow
def test_kill_pid_stops_a_multiprocess_beam_pipeline(tmp_path):
    """The real thing: `kill PID` (the main process only) while Beam's workers run a bundle."""
    marker = tmp_path / "running"
    command = subprocess.Popen([sys.executable, "-c", BEAM_SCRIPT, str(marker)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        deadline = time.time() + 120
        while not marker.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert marker.exists(), "the pipeline did not start"
        command.send_signal(signal.SIGTERM)
        out, _ = command.communicate(timeout=60)
        assert out.strip() == "stopped"
    finally:
        command.kill()
