"""Micro-batching: concurrent async requests gathered into batches for a blocking batch function."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

R = TypeVar("R")
C = TypeVar("C")
BATCH_WINDOW_S = 0.002


class MicroBatcher(Generic[R, C]):
    """
    Gathers concurrent `submit` calls into batches of up to `max_batch_size` for `generate`, run in a worker thread.

    Each event loop gets its own queue. A failing batch hands its exception to every caller waiting on it.

    Usage example:
    ```python
    import asyncio
    from haystack_rl.backends import MicroBatcher

    sizes = []
    batcher = MicroBatcher(lambda batch: sizes.append(len(batch)) or [x * 2 for x in batch], max_batch_size=8)

    async def main():
        return await asyncio.gather(*(batcher.submit(i) for i in range(5)))

    assert asyncio.run(main()) == [0, 2, 4, 6, 8] and sizes == [5]
    ```
    """

    def __init__(self, generate: Callable[[list[R]], list[C]], max_batch_size: int) -> None:
        """
        :param generate: Runs a batch (blocking); one result per request, in order.
        :param max_batch_size: Most requests per batch.
        """
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self._generate = generate
        self.max_batch_size = max_batch_size
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopQueue[R, C]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    async def submit(self, request: R) -> C:
        """Queue `request` and wait for its result."""
        loop = asyncio.get_running_loop()
        with self._lock:
            queue = self._queues.get(loop)
            if queue is None:
                queue = self._queues[loop] = _LoopQueue(self._generate, self.max_batch_size)
        return await queue.submit(request)


class _LoopQueue(Generic[R, C]):
    """The pending requests of one event loop and the task that drains them."""

    def __init__(self, generate: Callable[[list[R]], list[C]], max_batch_size: int) -> None:
        self._generate = generate
        self._max_batch_size = max_batch_size
        self._pending: list[tuple[R, asyncio.Future[C]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, request: R) -> C:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[C] = loop.create_future()
        self._pending.append((request, future))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let requests started in the same loop iteration join
        while self._pending:
            if len(self._pending) < self._max_batch_size:
                await asyncio.sleep(BATCH_WINDOW_S)
            batch = [(r, f) for r, f in self._pending[: self._max_batch_size] if not f.done()]
            del self._pending[: self._max_batch_size]
            if not batch:
                continue
            try:
                results = await asyncio.to_thread(self._generate, [request for request, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
            await asyncio.sleep(0)  # let the callers resume and queue their next turn
