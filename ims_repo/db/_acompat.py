"""What differs between asyncio and threads, as pairs of names (psycopg-pool's way).

The async source in ``_async/`` uses the ``A…``/``a…`` name of each pair; the generator
(``scripts/async_to_sync.py``) renames it to its sync twin in ``_sync/``: ``AQueue`` ->
``Queue``, ``AEvent`` -> ``Event``, ``aspawn`` -> ``spawn``, ``agather`` -> ``gather``,
``abatches`` -> ``batches``, ``AItems`` -> ``Items``, ``ALock`` -> ``Lock``, …
Both halves are written here, once.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
)
from itertools import islice
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")

AItems = Iterable[T] | AsyncIterable[T]
"""What an async bulk method takes: an iterable or an async iterable of items."""
Items = Iterable[T]
"""What a sync bulk method takes: an iterable of items."""

AWrite = Callable[[], Awaitable[T]]
"""A write an async repository runs under its locks (retried): a coroutine function."""
Write = Callable[[], T]
"""A write a sync repository runs under its locks (retried)."""

AsyncLoginCheck = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]
"""A check run on each new pooled connection (the database's login check), async."""
LoginCheck = Callable[[psycopg.Connection[Any]], None]
"""The same check, for threads (``AsyncLoginCheck`` renamed by the generator)."""

asleep = asyncio.sleep
sleep = time.sleep

AQueue = asyncio.Queue
Queue = queue.Queue
AEvent = asyncio.Event
Event = threading.Event
ALock = asyncio.Lock
Lock = threading.Lock


async def abatches(items: AItems[T], size: int) -> AsyncIterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), read as they come."""
    if isinstance(items, AsyncIterable):
        batch: list[T] = []
        async for item in items:
            batch.append(item)
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    for sync_batch in batches(items, size):
        yield sync_batch


def batches(items: Items[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last may be shorter), read as they come."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
        if len(batch) < size:
            return


def aspawn(work: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> asyncio.Task[None]:
    """Run ``work(*args)`` concurrently: a task on the running loop."""
    return asyncio.create_task(work(*args))


def spawn(work: Callable[..., None], *args: Any) -> threading.Thread:
    """Run ``work(*args)`` concurrently: a daemon thread."""
    thread = threading.Thread(target=work, args=args, daemon=True)
    thread.start()
    return thread


async def agather(tasks: list[asyncio.Task[None]]) -> None:
    """Wait until every task has ended (their errors are theirs to record)."""
    await asyncio.gather(*tasks, return_exceptions=True)


def gather(threads: list[threading.Thread]) -> None:
    """Wait until every thread has ended."""
    for thread in threads:
        thread.join()


async def aiter_items(items: AItems[T]) -> AsyncIterator[T]:
    """Every item of an iterable or an async iterable, as an async iterator."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


def iter_items(items: Items[T]) -> Iterator[T]:
    """Every item of an iterable."""
    yield from items


def discard_queued(waiting: asyncio.Queue[Any] | queue.Queue[Any]) -> None:
    """Empty ``waiting`` without waiting (a consumer may take items meanwhile)."""
    while True:
        try:
            waiting.get_nowait()
        except (asyncio.QueueEmpty, queue.Empty):
            return
