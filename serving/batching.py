"""Server-side batching: concurrent requests to one signature run as one model call.

A request thread that finds a free batch slot runs a batch itself: its own request plus every
compatible request queued behind it (up to `max_batch_size` rows), concatenated along axis 0.
Requests that arrive while a batch runs queue up and form the next batch. There is no batch
timeout: a lone request never waits, and under load batches grow by themselves. That is what
TF Serving's `--enable_batching` buys (one catalogue scan serves many queries) without the
fixed wait of `batch_timeout_micros`.

Only requests with the same key batch together; the caller's key holds the signature, every
input's dtype and non-batch shape, and the values of inputs that change the output's shape
(crossfade's `k`: a batch returns max(k) columns). If a batched call fails, each request runs
alone, so one bad request never fails the requests it was batched with.
"""
import dataclasses
import threading
from collections import deque
from typing import Callable, Deque, Dict, Hashable, List, Optional

import numpy as np

from crossfade.components.cpu import local_cores

Tensors = Dict[str, np.ndarray]
RunFn = Callable[[Hashable, Tensors], Tensors]


def default_batch_threads() -> int:
    """Model calls at once by default: one per core, at most 4 (past that, calls compete for
    the cores TensorFlow's intra-op pool already uses within each call)."""
    return min(4, local_cores())


@dataclasses.dataclass(frozen=True)
class BatchingOptions:
    """`max_batch_size`: rows per model call; `max_concurrent_batches`: model calls at once
    (about the number of cores: TensorFlow's own thread pool uses them within a call)."""

    max_batch_size: int = 64
    max_concurrent_batches: int = dataclasses.field(default_factory=default_batch_threads)

    def __post_init__(self):
        if self.max_batch_size < 1 or self.max_concurrent_batches < 1:
            raise ValueError(f"batching needs positive sizes, got {self}")


class _Pending:
    __slots__ = ("key", "inputs", "rows", "taken", "done", "outputs", "error")

    def __init__(self, key: Hashable, inputs: Tensors, rows: int):
        self.key, self.inputs, self.rows = key, inputs, rows
        self.taken = False
        self.done = threading.Event()
        self.outputs: Optional[Tensors] = None
        self.error: Optional[BaseException] = None


class Batcher:
    """Runs `run(key, inputs)` on merged batches of concurrent `submit` calls."""

    def __init__(self, run: RunFn, options: BatchingOptions = BatchingOptions()):
        self._run = run
        self._options = options
        self._cond = threading.Condition()
        self._queues: Dict[Hashable, Deque[_Pending]] = {}
        self._running = 0
        self.calls = 0  # model calls made for submitted requests (for logs and tests)
        self.requests = 0

    def submit(self, key: Hashable, inputs: Tensors, rows: int) -> Tensors:
        """Outputs of `inputs` (every input has `rows` rows along axis 0); raises what `run`
        raises for these inputs alone."""
        if rows > self._options.max_batch_size:
            return self._run(key, inputs)
        item = _Pending(key, inputs, rows)
        with self._cond:
            self._queues.setdefault(key, deque()).append(item)
        while True:
            with self._cond:
                while not item.taken and self._running >= self._options.max_concurrent_batches:
                    self._cond.wait()
                batch = None
                if not item.taken:
                    self._running += 1
                    batch = self._take(key)
            if batch is None:
                item.done.wait()
                break
            try:
                self._execute(batch)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
            if item.done.is_set():
                break
        if item.error is not None:
            raise item.error
        return item.outputs

    def _take(self, key: Hashable) -> List[_Pending]:
        """Oldest queued requests of `key`, up to max_batch_size rows (at least one)."""
        queue = self._queues[key]
        batch, rows = [], 0
        while queue and (not batch or rows + queue[0].rows <= self._options.max_batch_size):
            item = queue.popleft()
            item.taken = True
            batch.append(item)
            rows += item.rows
        if not queue:
            del self._queues[key]
        return batch

    def _execute(self, batch: List[_Pending]) -> None:
        self.calls += 1
        self.requests += len(batch)
        if len(batch) > 1 and self._execute_merged(batch):
            return
        for item in batch:
            self._execute_alone(item)

    def _execute_merged(self, batch: List[_Pending]) -> bool:
        """Runs `batch` as one call; False (nothing delivered) if that fails or the outputs
        cannot be split back into rows."""
        merged = {name: np.concatenate([item.inputs[name] for item in batch])
                  for name in batch[0].inputs}
        total = sum(item.rows for item in batch)
        try:
            outputs = self._run(batch[0].key, merged)
        except Exception:  # noqa: BLE001 -- each request reruns alone and gets its own error
            return False
        if any(np.ndim(value) == 0 or len(value) != total for value in outputs.values()):
            return False
        start = 0
        for item in batch:
            item.outputs = {name: value[start:start + item.rows]
                            for name, value in outputs.items()}
            start += item.rows
            item.done.set()
        return True

    def _execute_alone(self, item: _Pending) -> None:
        try:
            item.outputs = self._run(item.key, item.inputs)
        except BaseException as error:  # noqa: BLE001 -- handed to the request's own thread
            item.error = error
        item.done.set()
