"""The title server's request batcher (the HTTP app is pipeline/serve/api.py; its `serve:` section is in pipeline/config.py).

Requests from many HTTP clients go into one bounded queue; a single worker thread takes the
first waiting request, keeps collecting for `batch_window_ms` (up to COLLECT_BATCHES x
`max_batch` titles) and hands them all to the title generator at once, which draws requests
without a seed together, at most `max_batch` titles per draw (pipeline.serve.generator.TitleGenerator.run). A full queue is refused at once
(QueueFull; the API answers 503) instead of letting clients wait without bound.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Sequence



# One collection hands the generator up to this many batches' worth of requests: prompts of
# different token lengths cannot share a draw, so a collection is split by length anyway.
COLLECT_BATCHES = 4


class QueueFull(RuntimeError):
    """The batcher's queue holds `queue_size` requests already."""


class Batcher:
    """One worker thread running batches of queued requests through `run`.

    run: takes a list of requests and the most rows per draw, returns one result per request
    (TitleGenerator.run); rows: how many titles a request asks for; window_s, max_rows,
    queue_size: as ServeConfig's batch_window_ms (in seconds), max_batch, queue_size.
    """

    def __init__(self, run: Callable[[Sequence[Any], int], list], rows: Callable[[Any], int],
                 window_s: float, max_rows: int, queue_size: int):
        self._run, self._rows = run, rows
        self.window_s, self.max_rows = window_s, max_rows
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._held: tuple[Any, Future] | None = None  # taken from the queue but left for the next batch
        self.batches = self.requests = self.taken = 0  # taken: requests handed to `run` so far
        self._thread = threading.Thread(target=self._work, name="title-batcher", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def submit(self, request: Any) -> Future:
        """A Future of `request`'s result; raises QueueFull at once when the queue is full."""
        future: Future = Future()
        try:
            self._queue.put_nowait((request, future))
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} requests are waiting already") from None
        return future

    def _collect(self) -> list[tuple[Any, Future]] | None:
        """The next batch (blocking for its first request); None when closed."""
        first = self._held or self._queue.get()
        self._held = None
        if first is None:
            return None
        batch, rows = [first], self._rows(first[0])
        deadline = time.monotonic() + self.window_s
        while rows < COLLECT_BATCHES * self.max_rows:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # close() after this batch
                break
            if rows + self._rows(item[0]) > COLLECT_BATCHES * self.max_rows:
                self._held = item
                break
            batch.append(item)
            rows += self._rows(item[0])
        return batch

    def _work(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                return
            live = [(req, fut) for req, fut in batch if fut.set_running_or_notify_cancel()]
            if not live:
                continue
            self.taken += len(live)
            try:
                results = self._run([req for req, _ in live], self.max_rows)
            except Exception as exc:  # the callers get it; the worker keeps serving
                for _, fut in live:
                    fut.set_exception(exc)
            else:
                for (_, fut), result in zip(live, results):
                    fut.set_result(result)
            self.batches += 1
            self.requests += len(live)

    def close(self, timeout: float = 30.0) -> None:
        """Finish the batch under way, then stop the worker (requests still queued are not run)."""
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                try:
                    _, fut = self._queue.get_nowait()
                    fut.cancel()
                except queue.Empty:
                    pass
        self._thread.join(timeout)
