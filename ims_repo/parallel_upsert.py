"""``Database.upsert_issues``: ``upsert_many`` spread over several connections.

A fresh bulk ingest is bound by the server (parsing, ``to_tsvector`` over title and
description, the GIN indexes), and one connection keeps one server process, i.e. one
core, busy. Several connections, each upserting its own share of the batches, use the
other cores (docs/BENCHMARKS.md).

Items are routed by the lock-order bucket of their ``issue_id`` (``lock_bucket``, see
``repositories/issues.py``), so every item of one issue goes to the same connection, in
the caller's order: the merge rules of ``upsert_many`` (the last item wins, every item
counts a crawl) hold as they do on one connection, two connections never write the same
issue, and they never take the same bucket lock, so they never wait for each other. Each
connection commits each batch on its own (a single-batch writer in the lock order, the
shared mode): the whole is not one transaction.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ims_repo.records import UpsertResult
from ims_repo.repositories.issue_staging import Batch, issue_id_of
from ims_repo.repositories.issues import (
    add_results,
    iterable_of_items,
    lock_bucket,
    positive_int,
)

if TYPE_CHECKING:
    from ims_repo.database import Database

_QUEUED_BATCHES = 2
"""Batches waiting per connection: with the one being written and the one being filled,
memory holds at most (2 + 2) batches per connection, whatever the input's length."""


@dataclass
class _Worker:
    """One connection's share: a thread draining a queue of batches."""

    batches: queue.Queue[Batch | None] = field(
        default_factory=lambda: queue.Queue(maxsize=_QUEUED_BATCHES)
    )
    result: UpsertResult = field(default_factory=UpsertResult)
    error: BaseException | None = None
    thread: threading.Thread | None = None


def upsert_issues(
    database: Database,
    issues: Iterable[Any],
    *,
    user_id: int | None,
    connections: int,
    batch_size: int,
) -> UpsertResult:
    """See ``Database.upsert_issues``."""
    positive_int(connections, "connections")
    positive_int(batch_size, "batch_size")
    iterable_of_items(issues, "issues")
    failed = threading.Event()
    workers = [_Worker() for _ in range(connections)]
    for worker in workers:
        worker.thread = threading.Thread(
            target=_drain, args=(database, user_id, worker, failed), daemon=True
        )
        worker.thread.start()
    try:
        _route(issues, workers, batch_size, failed)
    finally:
        for worker in workers:
            _put(worker, None, failed)
        for worker in workers:
            assert worker.thread is not None
            worker.thread.join()
    errors = [worker.error for worker in workers if worker.error is not None]
    if errors:
        raise errors[0]
    total = UpsertResult()
    for worker in workers:
        total = add_results(total, worker.result)
    return total


def _route(
    issues: Iterable[Any], workers: list[_Worker], batch_size: int, failed: threading.Event
) -> None:
    """Deal the items to the workers by issue_id, a batch at a time."""
    pending: list[tuple[list[Any], list[int]]] = [([], []) for _ in workers]
    for position, item in enumerate(issues):
        if failed.is_set():
            return
        index = _route_of(item, len(workers))
        items, positions = pending[index]
        items.append(item)
        positions.append(position)
        if len(items) == batch_size:
            _put(workers[index], Batch(items, positions), failed)
            pending[index] = ([], [])
    for worker, (items, positions) in zip(workers, pending, strict=True):
        if items:
            _put(worker, Batch(items, positions), failed)


def _route_of(item: Any, routes: int) -> int:
    """The worker of an item: its issue_id's lock bucket, modulo the workers (an item
    without a usable one goes to the first worker, whose validation refuses it)."""
    issue_id = issue_id_of(item)
    if not isinstance(issue_id, str):
        return 0
    return lock_bucket(issue_id) % routes


def _put(worker: _Worker, batch: Batch | None, failed: threading.Event) -> None:
    """Queue ``batch`` (None: no more) unless the worker has stopped."""
    while worker.thread is not None and worker.thread.is_alive():
        try:
            worker.batches.put(batch, timeout=0.1)
            return
        except queue.Full:
            if failed.is_set() and batch is not None:
                return


def _drain(
    database: Database, user_id: int | None, worker: _Worker, failed: threading.Event
) -> None:
    """Write the worker's batches on one connection, committing each; on the first error
    (here or in another worker) stop taking batches."""
    try:
        with database.session(user_id=user_id) as s:
            while (batch := worker.batches.get()) is not None and not failed.is_set():
                worker.result = add_results(worker.result, s.issues.upsert_batch(batch))
                s.commit()
    except BaseException as error:  # re-raised by upsert_issues in the caller's thread
        worker.error = error
        failed.set()
