"""stops_like_ctrl_c: SIGTERM and SIGINT stop a pipeline command the way Ctrl-C does, also
while Beam runs.

Python turns a signal into KeyboardInterrupt in the main thread, and the `finally` blocks then
record what finished. While a Beam pipeline runs on the DirectRunner in multi_processing mode,
though, Beam's cleanup after the interrupt joins the thread that waits for each SDK worker
process, and a worker in the middle of a bundle never ends by itself: `kill PID` (a stopped
session) left the command hanging there, its `finally` never reached. Ctrl-C in a terminal
signals the workers too (the whole foreground process group); `kill PID` reaches one process.
So the handler first ends the worker processes started inside the block (SIGTERM; SIGKILL for
a later signal), then raises KeyboardInterrupt; an exception that leaves the block after a
signal (Beam and TFX re-wrap the interrupt, or a worker ended under it) leaves as
KeyboardInterrupt too, so the command says it was stopped rather than that it failed.
"""
import contextlib
import signal
import threading
from typing import Iterator, Set, Tuple

import psutil

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _descendants() -> Set[Tuple[int, float]]:
    """This process's descendants, as (pid, create_time): a pid alone may be reused."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            found.add((child.pid, child.create_time()))
    return found


def end_workers(before: Set[Tuple[int, float]], kill: bool = False) -> None:
    """Ends this process's descendants not in `before` (those the block started): SIGTERM, or
    SIGKILL with `kill`."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # it ended meanwhile
            if (child.pid, child.create_time()) not in before:
                child.kill() if kill else child.terminate()


@contextlib.contextmanager
def stops_like_ctrl_c() -> Iterator[None]:
    """For the duration, SIGTERM and SIGINT end the worker processes the block started, then
    raise KeyboardInterrupt in the main thread (and what leaves the block after one is a
    KeyboardInterrupt); the previous handlers come back on exit. Off the main thread (where
    Python cannot set handlers) the block just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = _descendants()
    received = []

    def handler(signum, frame):
        received.append(signum)
        end_workers(before, kill=len(received) > 1)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in SIGNALS}
    try:
        yield
    except Exception as e:
        if received:
            # The interrupt, re-wrapped on its way out: Beam re-raises what a DoFn raised as
            # e.g. RuntimeError("KeyboardInterrupt [while running 'Parse']").
            raise KeyboardInterrupt from e
        raise
    finally:
        for sig, old in previous.items():
            # None: a handler set outside Python; the default is the nearest to it.
            signal.signal(sig, signal.SIG_DFL if old is None else old)
