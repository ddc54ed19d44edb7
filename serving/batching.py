"""A small dynamic batcher (TF Serving's `--enable_batching`, in miniature).

Concurrent requests for the same servable version and signature whose inputs agree beyond the
batch dimension are concatenated along axis 0, run as one call and split back. A batch closes
after `batch_timeout_s` from its first request or at `max_batch_size` rows; a request larger than
`max_batch_size` runs alone. Requests are validated before they are queued, so one bad request
cannot fail a batch; if a batch call fails anyway, its requests are rerun one by one.
The batch waits only for requests already inside the server (the REST and gRPC handlers count
themselves in with `track()`): a lone client is not delayed by the timeout.
"""
import contextlib
import collections
import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import Dict, List

import numpy as np

from serving.errors import ServingError
from serving.signatures import SignatureInfo

log = logging.getLogger(__name__)


class _Task:
    __slots__ = ("servable", "sig", "arrays", "rows", "future", "key")

    def __init__(self, servable, sig: SignatureInfo, arrays: Dict[str, np.ndarray], rows: int):
        self.servable, self.sig, self.arrays, self.rows = servable, sig, arrays, rows
        self.future: Future = Future()
        self.key = (id(servable), sig.name,
                    tuple((k, v.shape[1:], v.dtype.str) for k, v in sorted(arrays.items())))


class Batcher:
    def __init__(self, max_batch_size: int = 512, batch_timeout_s: float = 0.002,
                 num_batch_threads: int = 1):
        self.max_batch_size = max_batch_size
        self.batch_timeout_s = batch_timeout_s
        self._queue: "queue.Queue[_Task]" = queue.Queue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"semids-batcher-{i}",
                                          daemon=True) for i in range(num_batch_threads)]
        self._active = 0  # requests inside the server's handlers (track())
        self._active_lock = threading.Lock()
        self.batches_run = 0
        self.requests_batched = 0
        for t in self._threads:
            t.start()

    @contextlib.contextmanager
    def track(self):
        """Around a whole request in a handler: tells the batcher that it may still come."""
        with self._active_lock:
            self._active += 1
        try:
            yield
        finally:
            with self._active_lock:
                self._active -= 1

    def run(self, servable, sig: SignatureInfo, arrays: Dict[str, np.ndarray]):
        """Runs validated arrays, batched with concurrent requests when possible (blocking)."""
        rows = sig.batch_size(arrays)
        if rows is None or rows >= self.max_batch_size or self._stop.is_set():
            return sig.run(arrays)
        task = _Task(servable, sig, arrays, rows)
        self._queue.put(task)
        return task.future.result()

    def stop(self):
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout=5)

    def _loop(self):
        while not self._stop.is_set():
            first = self._queue.get()
            if first is None:
                break
            tasks, rows = [first], first.rows
            deadline = time.monotonic() + self.batch_timeout_s
            while rows < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if self._active <= len(tasks) and self._queue.empty():
                    break  # nobody else is on the way: do not wait
                try:
                    task = self._queue.get(timeout=remaining) if remaining > 0 \
                        else self._queue.get_nowait()
                except queue.Empty:
                    break
                if task is None:
                    self._queue.put(None)
                    break
                tasks.append(task)
                rows += task.rows
            groups: Dict[tuple, List[_Task]] = collections.OrderedDict()
            for task in tasks:
                groups.setdefault(task.key, []).append(task)
            for group in groups.values():
                self._run_group(group)

    def _run_group(self, group: List[_Task]):
        if len(group) == 1:
            self._run_one(group[0])
            return
        sig = group[0].sig
        try:
            merged = {k: np.concatenate([t.arrays[k] for t in group], axis=0) for k in sig.inputs}
            outputs = sig.run(merged)
            total = sum(t.rows for t in group)
            if any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
                raise ValueError("outputs are not batch-aligned")
        except Exception:  # rerun one by one: each request gets its own answer or error
            for t in group:
                self._run_one(t)
            return
        self.batches_run += 1
        self.requests_batched += len(group)
        start = 0
        for t in group:
            t.future.set_result({k: v[start:start + t.rows] for k, v in outputs.items()})
            start += t.rows

    @staticmethod
    def _run_one(task: _Task):
        try:
            task.future.set_result(task.sig.run(task.arrays))
        except ServingError as e:
            task.future.set_exception(e)
        except Exception as e:  # noqa: BLE001 - delivered to the waiting request
            log.exception("batched call failed")
            task.future.set_exception(e)
