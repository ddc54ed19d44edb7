"""An exclusive lock on a folder that processes on one machine take turns over: a prepared
dataset's folder, a results folder, a pipeline's metadata folder."""
import contextlib
import fcntl
import os
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def exclusive(folder: str, on_wait: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    """Holds an exclusive flock on `folder` (made if missing) while the block runs. on_wait(folder)
    is called when another process holds it, before waiting."""
    os.makedirs(folder, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait(folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
