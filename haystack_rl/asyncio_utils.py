"""Run a coroutine to completion from synchronous code, also where an event loop already runs (notebooks)."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """
    `asyncio.run(coroutine)`, or, inside a running event loop (Jupyter, an async caller), the same in a worker
    thread with its own loop, so synchronous APIs work everywhere.

    Usage example:
    ```python
    import asyncio
    from haystack_rl.asyncio_utils import run_sync

    async def answer() -> int:
        return 42

    async def caller() -> int:
        return run_sync(answer())  # a sync API called from inside a running loop

    assert run_sync(answer()) == 42 and asyncio.run(caller()) == 42
    ```
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
