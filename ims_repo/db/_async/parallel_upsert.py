"""``db.upsert_issues``: ``upsert_many`` spread over several connections.

A fresh bulk ingest is bound by the server (parsing, ``to_tsvector`` over title and
description, the GIN indexes), and one connection keeps one server process, i.e. one
core, busy. Several connections, each upserting its own share of the batches, use the
other cores (docs/BENCHMARKS.md). The sync twin runs each connection's share on a
thread, the async one on a task (``_acompat``'s ``spawn``/``aspawn``).

Items are routed by the lock-order bucket of their ``issue_id`` (``lock_bucket``, see
``repositories/issues.py``), so every item of one issue goes to the same connection, in
the caller's order: the merge rules of ``upsert_many`` (the last item wins, every item
counts a crawl) hold as they do on one connection, two connections never write the same
issue, and they never take the same bucket lock, so they never wait for each other. Each
connection commits each batch on its own (a single-batch writer in the lock order, the
shared mode): the whole is not one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from ims_repo.core.inputs import iterable_of_items, positive_int
from ims_repo.core.records import UpsertResult
from ims_repo.core.staging import Batch, add_results, issue_id_of, lock_bucket
from ims_repo.db._acompat import (
    AEvent,
    AItems,
    AQueue,
    agather,
    aiter_items,
    aspawn,
    discard_queued,
)
from ims_repo.db._async.session import AsyncSession

OpenSession = Callable[[], AbstractAsyncContextManager[AsyncSession]]
"""Checks out one session of the ingest (``db.session(user_id=…)``)."""

_QUEUED_BATCHES = 2
"""Batches waiting per connection: with the one being written and the one being filled,
memory holds at most (2 + 2) batches per connection, whatever the input's length."""


@dataclass
class _Worker:
    """One connection's share: batches to write, and what came of them."""

    batches: AQueue[Batch | None] = field(default_factory=lambda: AQueue(_QUEUED_BATCHES))
    result: UpsertResult = field(default_factory=UpsertResult)
    error: BaseException | None = None


async def upsert_issues(
    open_session: OpenSession,
    issues: AItems[Any],
    *,
    connections: int,
    batch_size: int,
) -> UpsertResult:
    """See ``Database.upsert_issues``."""
    positive_int(connections, "connections")
    positive_int(batch_size, "batch_size")
    iterable_of_items(issues, "issues")
    failed = AEvent()
    workers = [_Worker() for _ in range(connections)]
    running = [aspawn(_drain, open_session, worker, failed) for worker in workers]
    try:
        await _route(issues, workers, batch_size, failed)
    except BaseException:
        failed.set()  # the others stop after their current batch
        if True:  # ASYNC
            for task in running:
                task.cancel()  # a cancelled caller does not wait for their batches
        raise
    finally:
        for worker in workers:
            if failed.is_set():
                discard_queued(worker.batches)  # unwritten anyway; the mark then fits
            await worker.batches.put(None)  # a worker takes batches until this mark
        await agather(running)
    errors = [worker.error for worker in workers if worker.error is not None]
    if errors:
        raise errors[0]
    total = UpsertResult()
    for worker in workers:
        total = add_results(total, worker.result)
    return total


async def _route(
    issues: AItems[Any], workers: list[_Worker], batch_size: int, failed: AEvent
) -> None:
    """Deal the items to the workers by issue_id, a batch at a time."""
    pending: list[tuple[list[Any], list[int]]] = [([], []) for _ in workers]
    position = 0
    async for item in aiter_items(issues):
        if failed.is_set():
            return
        index = _route_of(item, len(workers))
        items, positions = pending[index]
        items.append(item)
        positions.append(position)
        position += 1
        if len(items) == batch_size:
            await workers[index].batches.put(Batch(items, positions))
            pending[index] = ([], [])
    for worker, (items, positions) in zip(workers, pending, strict=True):
        if items and not failed.is_set():
            await worker.batches.put(Batch(items, positions))


def _route_of(item: Any, routes: int) -> int:
    """The worker of an item: its issue_id's lock bucket, modulo the workers (an item
    without a usable one goes to the first worker, whose validation refuses it)."""
    issue_id = issue_id_of(item)
    if not isinstance(issue_id, str):
        return 0
    return lock_bucket(issue_id) % routes


async def _drain(open_session: OpenSession, worker: _Worker, failed: AEvent) -> None:
    """Write the worker's batches on one connection, committing each. On the first error
    (here or in another worker) write no more, but keep taking batches until the end
    mark, so that the router never waits on a full queue."""
    try:
        async with open_session() as s:
            while (batch := await worker.batches.get()) is not None:
                if failed.is_set():
                    continue
                worker.result = add_results(worker.result, await s.issues.upsert_batch(batch))
                await s.commit()
    except BaseException as error:  # re-raised by upsert_issues in the caller
        worker.error = error
        failed.set()
        while await worker.batches.get() is not None:
            pass
