"""An exclusive lock that processes on one machine take turns over: a prepared dataset's folder,
a results folder, a pipeline's metadata store."""
import contextlib
import fcntl
import os
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def exclusive(path: str, on_wait: Optional[Callable[[str], None]] = None) -> Iterator[None]:
    """Holds an exclusive flock on `path` (a folder, or a lock file, created if missing) while
    the block runs. on_wait(path) is called when another process holds it, before waiting."""
    flags = os.O_RDONLY if os.path.isdir(path) else os.O_RDONLY | os.O_CREAT
    fd = os.open(path, flags, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                on_wait(path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
