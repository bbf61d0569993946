"""``s.issues``: issues as crawled from the IMS (``queries/issues.sql``).

Issues are shared by every user. A re-crawl stores an issue with ``upsert`` or, in bulk,
``upsert_many``, which streams its input through COPY in batches; both keep the stored
value of every field the crawl left unset, keep ``first_crawled_at`` and move
``last_crawled_at`` and ``crawl_count``.

The lock order (issue 11). Concurrent crawlers of overlapping sets must never deadlock,
so every writer of issues, of their bookkeeping (``ims.issue_crawls``) or of their
children (``upsert``, ``upsert_many``, ``Database.upsert_issues``, the importer,
``create``, ``update``, ``update_many``, ``set_status``, ``replace_status``, ``delete``)
first runs ``issues.lock_issues``, in a savepoint, before it touches a row:

1. the coarse advisory lock: *exclusive* for an ``upsert_many`` that may write more than
   one batch in its transaction, *shared* for every other writer;
2. in shared mode, one advisory lock per *bucket* of the issues it writes (md5 of the
   ``issue_id`` mod ``LOCK_BUCKETS``), in ascending bucket order.

Why no cycle can form: a transaction that waits for an advisory lock holds only locks
that come earlier in that one order (the coarse lock, then lower buckets), and a row is
touched only once all its issues' buckets are held, so two writers never wait for each
other's rows: writers of one bucket run one after the other, and an exclusive writer
runs alone. Row locks cannot give this order: a batch inserts issues that no one can
lock before they exist, and a multi-batch transaction keeps its first batch's rows while
it locks the next. A hash order is total even for issue_ids not stored yet. Buckets, not
one lock per issue: the server's lock table holds about 10,000 locks in all (64 x
max_connections), and three transactions holding 5,000 each exhaust it (measured);
512 buckets bound a transaction at 513 locks, whatever its size.

A transaction that already holds the shared lock and writes again (a second
``upsert_many`` call, the importer's children after its issues) never waits for a
bucket: it only *tries* the ones it lacks (the importer's are all held already). If one
is busy, the savepoint is rolled back, which releases what the attempt took (checked on
PostgreSQL 15: advisory xact locks taken in a savepoint go with ``ROLLBACK TO``), and the
write is tried again after a jittered backoff, logged on the ``ims_repo.issues`` logger,
at most ``_ATTEMPTS`` times. The same bounded retry covers a deadlock with a writer outside
this order (hand-written SQL that does not call ``lock_for_write``). Only after the last
attempt does ``TransactionConflict`` reach the caller.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Mapping, Sequence, Sized
from datetime import datetime
from typing import Any, TypeVar

from psycopg.types.json import Jsonb
from pydantic import TypeAdapter
from pydantic_core import to_json

from ims_repo.core.errors import (
    DatabaseUnavailable,
    ImsRepoError,
    InvalidInput,
    NotFound,
    TransactionConflict,
)
from ims_repo.core.filters import After, Column, FilterSet
from ims_repo.core.inputs import as_list, iterable_of_items, positive_int
from ims_repo.core.loader import BoundStatement
from ims_repo.core.pages import Page, build_page
from ims_repo.core.records import (
    CrawlSession,
    Issue,
    IssueCrawl,
    IssueDetail,
    NewIssue,
    NewSearchQuery,
    PageIssue,
    SearchQuery,
    StoredPage,
    UpsertResult,
)
from ims_repo.core.records.types import Text, validate_changes, validate_input, validate_value
from ims_repo.core.staging import HASH_TYPES, STAGE_TYPES, Batch, add_results
from ims_repo.core.statements.imports import (
    LINK_ISSUES,
    REPLACE_ATTACHMENTS,
    REPLACE_COMMENTS,
    REPLACE_HISTORY,
)
from ims_repo.core.statements.issues import (
    ADD_MISSING_CRAWLS,
    CLEAR_HASH_STAGE,
    CLEAR_UPSERT_STAGE,
    COPY_HASH_STAGE,
    COPY_UPSERT_STAGE,
    COUNT,
    COUNT_BY_PRODUCT,
    CRAWL_UNCHANGED,
    CREATE,
    CREATE_HASH_STAGE,
    CREATE_UPSERT_STAGE,
    DELETE,
    DETAIL,
    FILL_UPSERT_STAGE,
    FIND,
    FIND_DETAILED,
    GET,
    GET_BY_ISSUE_ID,
    LOCK_ISSUES,
    REPLACE_STATUS,
    SESSIONS,
    SET_STATUS,
    UPDATE,
    UPDATE_MANY,
    UPSERT,
    UPSERT_STAGED,
    WITH_STATUS,
)
from ims_repo.core.statements.search_queries import LOG
from ims_repo.db._acompat import AItems, AWrite, abatches, asleep
from ims_repo.db._async.repositories.base import AsyncRepository, bind_find, changes_document

FILTERS = FilterSet(
    columns={
        "issue_pk": Column(int),
        "issue_id": Column(str),
        "title": Column(str),
        "product": Column(str),
        "module": Column(str, nullable=True),
        "version": Column(str, nullable=True),
        "status": Column(str, nullable=True),
        "priority": Column(str, nullable=True),
        "severity": Column(str, nullable=True),
        "reporter": Column(str, nullable=True),
        "assignee": Column(str, nullable=True),
        "issue_created_at": Column(datetime, nullable=True),
        "issue_updated_at": Column(datetime, nullable=True),
        "first_crawled_at": Column(datetime),
        "last_crawled_at": Column(datetime),
        "crawl_count": Column(int),
    },
    key="issue_pk",
)
"""``find``/``count``/``find_detailed`` filters, in the forms of ``ims_repo.core.filters``;
each is also an ``order_by`` key, the default order is ``issue_pk``. ``find``'s docstring
lists them all (written from this declaration by ``scripts/filter_docs.py``)."""

UPDATABLE = tuple(name for name in NewIssue.model_fields if name != "issue_id")
"""Fields ``update``/``update_many`` may change: every crawled field but the IMS id
(the natural key re-crawls upsert on). The crawl bookkeeping moves only on upserts."""

_ALL_FIELDS = frozenset(NewIssue.model_fields)
_ATTEMPTS = 6
"""Tries of a locked write: with the backoff below, about 1.5 s of waiting in all."""
_BACKOFF_S = 0.05
_log = logging.getLogger("ims_repo.issues")  # one name for the sync and async twins
T = TypeVar("T")
_SESSION_FIELDS = tuple(CrawlSession.model_fields)
_KEY = TypeAdapter(int)
_KEYS = TypeAdapter(list[int])
_IDS = TypeAdapter(list[Text])
_TEXT = TypeAdapter(Text)

IssueInput = NewIssue | Mapping[str, Any]
"""An issue to store: a record, or a mapping of its fields (validated as ``NewIssue``)."""


class AsyncIssueRepository(AsyncRepository):
    """Issues: shared by every user; crawled, re-crawled, searched."""

    async def get(self, issue_pk: int) -> Issue | None:
        """The issue with this surrogate key, or None."""
        bound = GET.bind({"issue_pk": validate_value(_KEY, issue_pk, "issue_pk")})
        return await self._session.fetch_one(bound, Issue)

    async def get_by_issue_id(self, issue_id: str) -> Issue | None:
        """The issue with this IMS id (e.g. ``SAMPLE-001``), or None."""
        bound = GET_BY_ISSUE_ID.bind({"issue_id": validate_value(_TEXT, issue_id, "issue_id")})
        return await self._session.fetch_one(bound, Issue)

    async def find(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[Issue]:
        """Issues matching ``filters`` (see ``FILTERS``), ordered by ``order_by`` keys
        (``-key`` descending; default ``issue_pk``); no ``limit`` returns all.

        ``after=page[-1]`` gives the page after that row (keyset paging, as cheap deep
        as the first page; see ``ims_repo.core.filters.After``); ``offset`` skips rows.

        Filters, ANDed (every column ``c`` below is a filter ``c=``, and ``c_not=``, ``c_in=[…]``):

        - ``issue_pk``: int
        - ``issue_id``: text; also ``issue_id_like``
        - ``title``: text; also ``title_like``
        - ``product``: text; also ``product_like``
        - ``module``: text, nullable; also ``module_like``, ``has_module``
        - ``version``: text, nullable; also ``version_like``, ``has_version``
        - ``status``: text, nullable; also ``status_like``, ``has_status``
        - ``priority``: text, nullable; also ``priority_like``, ``has_priority``
        - ``severity``: text, nullable; also ``severity_like``, ``has_severity``
        - ``reporter``: text, nullable; also ``reporter_like``, ``has_reporter``
        - ``assignee``: text, nullable; also ``assignee_like``, ``has_assignee``
        - ``issue_created_at``: timestamp, nullable; also ``has_issue_created_at``,
          ``issue_created_at_from``, ``issue_created_at_to``
        - ``issue_updated_at``: timestamp, nullable; also ``has_issue_updated_at``,
          ``issue_updated_at_from``, ``issue_updated_at_to``
        - ``first_crawled_at``: timestamp; also ``first_crawled_at_from``, ``first_crawled_at_to``
        - ``last_crawled_at``: timestamp; also ``last_crawled_at_from``, ``last_crawled_at_to``
        - ``crawl_count``: int

        Order keys (``-key`` for descending; ``issue_pk``, the default, is added last when left
        out): ``assignee``, ``crawl_count``, ``first_crawled_at``, ``issue_created_at``,
        ``issue_id``, ``issue_pk``, ``issue_updated_at``, ``last_crawled_at``, ``module``,
        ``priority``, ``product``, ``reporter``, ``severity``, ``status``, ``title``, ``version``.
        """
        bound = bind_find(FIND, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_all(bound, Issue)

    async def count(self, **filters: Any) -> int:
        """How many issues match ``filters`` (those of ``find``)."""
        bound = COUNT.bind({}, filters=FILTERS.where(filters))
        return int(await self._session.fetch_value(bound))

    async def count_by_product(self) -> dict[str, int]:
        """How many issues each product has, by product name."""
        rows = await self._session.fetch_rows(COUNT_BY_PRODUCT.bind({}))
        return {row["product"]: int(row["issues"]) for row in rows}

    async def create(self, new: IssueInput) -> Issue:
        """Add an issue; ``Duplicate`` when its ``issue_id`` is already stored (a
        re-crawl should use ``upsert``)."""
        issue = validate_input(NewIssue, new)
        params = issue.model_dump()
        params["raw_data"] = Jsonb(issue.raw_data)
        created = await self._locked(
            lambda: self._session.fetch_one(CREATE.bind(params), Issue),
            issue_ids=[issue.issue_id],
            sends=params,
        )
        assert created is not None  # INSERT … RETURNING gives the row
        return created

    async def update(self, issue_pk: int, /, **fields: Any) -> Issue:
        """Change the given fields (any of ``UPDATABLE``); ``NotFound`` if there is no
        such issue. An edit, not a crawl: ``last_crawled_at``/``crawl_count`` stay."""
        key = validate_value(_KEY, issue_pk, "issue_pk")
        changes = validate_changes(NewIssue, fields, allowed=UPDATABLE)
        return await self._locked(
            lambda: self._update(UPDATE, Issue, "issues", ("issue_pk", key), changes),
            issue_pks=[key],
            sends=changes,
        )

    async def delete(self, issue_pk: int) -> bool:
        """Remove an issue with its comments, history and attachments; False if there
        was none. ``ForeignKeyViolation`` while any crawl session links it, also one the
        caller cannot see (nothing is deleted through another user's rows)."""
        key = validate_value(_KEY, issue_pk, "issue_pk")
        bound = DELETE.bind({"issue_pk": key})
        return await self._locked(lambda: self._session.run(bound), issue_pks=[key]) > 0

    async def set_status(self, issue_pks: Sequence[int], status: str) -> int:
        """Give the listed issues ``status``; how many changed (issues that already
        have it, or do not exist, are not counted). An empty list sends nothing."""
        keys = validate_value(_KEYS, as_list(issue_pks, "issue_pks"), "issue_pks")
        checked = _status(status, "status")
        if not keys:
            return 0
        bound = SET_STATUS.bind({"issue_pks": keys, "status": checked})
        return await self._locked(lambda: self._session.run(bound), issue_pks=keys)

    async def replace_status(self, old: str, new: str) -> int:
        """The guide's bulk update (status ``New`` → ``Open``): every issue with status
        ``old`` gets ``new``; how many changed."""
        checked_old = validate_value(_TEXT, old, "old")
        bound = REPLACE_STATUS.bind({"old": checked_old, "new": _status(new, "new")})
        # Any issue may have status ``old``: the exclusive lock. A transaction that holds
        # the shared one already cannot take it, and tries the buckets of the issues
        # found with that status instead.
        found = await self._session.fetch_rows(WITH_STATUS.bind({"status": checked_old}))
        ids = [row["issue_id"] for row in found]
        return await self._locked(lambda: self._session.run(bound), issue_ids=ids, exclusive=True)

    async def update_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """The guide's ``bulk_update_mappings``, in one statement: each mapping has
        ``issue_pk`` and the fields to change (validated like ``update``); fields a
        mapping leaves out keep their value. Returns how many issues changed (missing
        issues and unchanged values are not counted).

        Mappings for the same ``issue_pk`` apply in order (a later one's fields win),
        as separate updates would. Every mapping is checked before anything is sent.
        """
        merged: dict[int, dict[str, Any]] = {}
        for index, row in enumerate(iterable_of_items(rows, "rows")):
            if not isinstance(row, Mapping):
                raise InvalidInput(f"rows[{index}] must be a mapping, not {type(row).__name__}")
            fields = dict(row)
            if "issue_pk" not in fields:
                raise InvalidInput(f"rows[{index}] has no issue_pk")
            key = validate_value(_KEY, fields.pop("issue_pk"), f"rows[{index}].issue_pk")
            try:
                changes = validate_changes(NewIssue, fields, allowed=UPDATABLE)
            except InvalidInput as error:
                raise InvalidInput(f"rows[{index}]: {error}") from error
            merged.setdefault(key, {}).update(changes)
        if not merged:
            return 0
        document = Jsonb(
            [
                {"issue_pk": key, "changes": changes_document(changes).obj}
                for key, changes in merged.items()
            ]
        )
        bound = UPDATE_MANY.bind({"rows": document})
        return await self._locked(
            lambda: self._session.run(bound), issue_pks=list(merged), sends=bound.params
        )

    async def upsert(self, new: IssueInput) -> Issue:
        """Store a crawled issue: insert it, or update the stored one with the same
        ``issue_id``. Fields the input leaves unset (not given to ``NewIssue``) keep
        their stored value (a new row gets the default); a stored issue whose content
        would not change is not rewritten. ``first_crawled_at`` is kept,
        ``last_crawled_at`` moves to the statement's time and ``crawl_count`` goes up 1.
        """
        issue = validate_input(NewIssue, new)
        params = issue.model_dump()
        params["raw_data"] = Jsonb(issue.raw_data)
        given = issue.model_fields_set
        params["set_fields"] = None if given >= _ALL_FIELDS else sorted(given)
        stored = await self._locked(
            lambda: self._session.fetch_one(UPSERT.bind(params), Issue),
            issue_ids=[issue.issue_id],
            sends=params,
        )
        assert stored is not None  # the row written, or the stored one
        return stored

    async def upsert_many(
        self, issues: AItems[IssueInput], *, batch_size: int = 5000
    ) -> UpsertResult:
        """Store many crawled issues with ``upsert``'s semantics, streaming.

        The iterable is consumed ``batch_size`` items at a time, so memory holds one
        batch whatever the input's length. Per batch, two steps (see
        ``issue_staging``): every item's digest is sent first, and the issues whose
        stored digest matches (stored by an earlier ``upsert_many`` of the same item,
        and not changed since) only have their crawl bookkeeping moved; the other items
        are validated (``InvalidInput`` names the item's position, and nothing of that
        batch is written), COPYed into a temporary staging table and written by one
        ``INSERT … SELECT … ON CONFLICT`` statement that skips stored issues whose
        content would not change. Everything runs in the session's current
        transaction: the block's end commits it all, an exception rolls it all back. A
        caller who wants to commit as it goes calls ``s.commit()`` between chunks it
        passes to ``upsert_many``, or from its generator between batches (when it has
        yielded a multiple of ``batch_size`` items). ``Database.upsert_issues`` spreads
        the batches over several connections.

        Concurrent callers never deadlock (the lock order, in the module's docstring): a
        call of one batch waits only for writers of the same lock buckets; a call that
        may write several batches in its transaction (more than ``batch_size`` items, or
        a full batch from an iterator) takes the exclusive writer lock, so other writers
        of issues wait until that transaction commits. Beside other crawlers, pass a long
        crawl in chunks of ``batch_size`` and commit after each call.

        The same ``issue_id`` twice in one batch is merged in order before the COPY, as
        if the items had been upserted one after the other: each field takes the value
        of the last item that set it (so the last wins), and ``crawl_count`` goes up once
        per item, so the stored result does not depend on ``batch_size``.

        Returns the rows ``inserted``, ``updated`` (some content field changed) and
        ``unchanged`` (only ``last_crawled_at``/``crawl_count`` moved), counting a
        merged ``issue_id`` once per batch.
        """
        size = positive_int(batch_size, "batch_size")
        length = len(issues) if isinstance(issues, Sized) else None
        items = iterable_of_items(issues, "issues")
        total = UpsertResult(inserted=0, updated=0, unchanged=0)
        start = 0
        async for batch in abatches(items, size):
            positions = range(start, start + len(batch))
            # A full batch of an input of unknown length may be followed by another in
            # this transaction: exclusive (a transaction that holds it already, or a
            # generator that committed in between, decides again on the server).
            exclusive = len(batch) == size and (length is None or length > start + size)
            written = await self.upsert_batch(Batch(batch, positions), exclusive=exclusive)
            total = add_results(total, written)
            start += len(batch)
        return total

    async def store_page(
        self,
        session_id: int,
        issues: Iterable[PageIssue | Mapping[str, Any]],
        *,
        first_crawl_order: int | None = None,
        search: NewSearchQuery | Mapping[str, Any] | None = None,
    ) -> StoredPage:
        """Store one crawled page, the crawler's unit of work: its issues (``upsert``'s
        semantics, as ``upsert_many``), each issue's comments, history and attachments
        when its item gives them (a list given replaces the stored one, see
        ``PageIssue``), the issues' links to crawl session ``session_id`` (issue ``i``
        with crawl order ``first_crawl_order + i`` when given; an issue already linked
        takes the new order), and ``search``, the search that found the page, logged.

        In a session with no transaction open, everything goes to the server in one
        pipeline, one round trip with the start of the transaction, whatever the
        page's length; in an open transaction, the issues' locks are taken first (a
        savepoint and one round trip more), as every other writer of issues does. Every
        item is validated before anything is sent (``InvalidInput`` names its position).
        ``NotFound`` when the context cannot see the crawl session; then, as on any
        error the server raises, nothing of the page is kept and the session goes on
        (what the transaction held before the call is kept). Attachments without
        ``session_id`` are recorded as downloaded by this session. The session's block
        commits the page.
        """
        session_key = validate_value(_KEY, session_id, "session_id")
        page = build_page(issues, first_crawl_order)
        logged = None if search is None else validate_input(NewSearchQuery, search)
        steps = self._page_steps(page, session_key, logged)
        issue_ids = page.issue_ids
        if not issue_ids:  # no issue to lock: at most the search to log
            results = await self._session.fetch_pipeline(steps) if steps else []
            return _stored_page(session_key, self._session.user_id, steps, results)
        lock = LOCK_ISSUES.bind({"issue_ids": issue_ids, "issue_pks": [], "exclusive": False})
        if not self._session.in_transaction:
            # A transaction that holds no issue lock yet waits for its buckets in the lock
            # order and never finds one busy: the lock goes in the page's pipeline.
            try:
                results = (await self._session.fetch_pipeline([lock, *steps]))[1:]
                return _stored_page(session_key, self._session.user_id, steps, results)
            except TransactionConflict:  # a deadlock with SQL outside the lock order
                await self._session.rollback()  # retried below, in a savepoint
            except DatabaseUnavailable:
                raise
            except ImsRepoError:
                # The transaction held the page alone: undone as a savepoint would be,
                # so the session goes on as after the other path's failure.
                await self._session.rollback()
                raise
        return await self._locked(
            lambda: self._stored(session_key, steps), issue_ids=issue_ids
        )

    async def _stored(self, session_id: int, steps: list[BoundStatement]) -> StoredPage:
        results = await self._session.fetch_pipeline(steps)
        return _stored_page(session_id, self._session.user_id, steps, results)

    def _page_steps(
        self, page: Page, session_id: int, search: NewSearchQuery | None
    ) -> list[BoundStatement]:
        """The statements that store ``page`` (after its locks), in order."""
        steps: list[BoundStatement] = []
        if page.issue_ids:
            rows = Jsonb(page.stage_documents(self._session.time_zone), dumps=to_json)
            steps += [
                CREATE_UPSERT_STAGE.bind({}),
                FILL_UPSERT_STAGE.bind({"rows": rows}),
                UPSERT_STAGED.bind({}),
                CLEAR_UPSERT_STAGE.bind({}),
            ]
            for kind, statement, param in _LIST_STATEMENTS:
                issue_ids, items = page.list_documents(kind)
                if issue_ids:
                    extra = {"session_id": session_id} if kind == "attachments" else {}
                    params = {"issue_ids": issue_ids, param: Jsonb(items, dumps=to_json)}
                    steps.append(statement.bind({**params, **extra}))
            links = Jsonb(page.links, dumps=to_json)
            steps.append(LINK_ISSUES.bind({"session_id": session_id, "links": links}))
        if search is not None:
            steps.append(LOG.bind(search.model_dump()))
        return steps

    async def upsert_batch(self, batch: Batch, *, exclusive: bool = False) -> UpsertResult:
        """Write one batch of ``upsert_many`` (its two steps) in the current transaction,
        in a savepoint, after taking its place in the lock order (``exclusive``: the
        coarse lock of a transaction that will write more batches): an item refused in
        the second step undoes the first, and a batch that meets a busy lock is undone
        and written again, so the rest of the transaction is kept."""
        return await self._locked(
            lambda: self._write_batch(batch), issue_ids=list(batch.digests), exclusive=exclusive
        )

    async def lock_for_write(
        self, *, issue_ids: Sequence[str] = (), issue_pks: Sequence[int] = ()
    ) -> None:
        """Take this transaction's place in the lock order of issue writers (the module's
        docstring) for these issues, held until the transaction ends. Every writer of
        this repository does it itself; SQL of the application's own that writes
        issues or their children calls it first, so it never deadlocks with crawlers."""
        ids = validate_value(_IDS, as_list(issue_ids, "issue_ids"), "issue_ids")
        keys = validate_value(_KEYS, as_list(issue_pks, "issue_pks"), "issue_pks")
        await self._locked(_nothing, issue_ids=ids, issue_pks=keys)

    async def _locked(
        self,
        write: AWrite[T],
        *,
        issue_ids: Sequence[str] = (),
        issue_pks: Sequence[int] = (),
        exclusive: bool = False,
        sends: Mapping[str, Any] | None = None,
    ) -> T:
        """``write()`` in a savepoint, after ``issues.lock_issues``; tried again after a
        jittered, growing backoff (each logged) while a lock is busy or the server picks
        the write as a deadlock victim, at most ``_ATTEMPTS`` times. ``sends``: the
        parameters ``write`` will send, refused before anything is (text PostgreSQL
        cannot store), as they would be without the lock."""
        self._session.refuse_write(LOCK_ISSUES)  # a replica session: before the savepoint
        if sends is not None:
            self._session.refuse_unstorable(sends)
        bound = LOCK_ISSUES.bind(
            {"issue_ids": list(issue_ids), "issue_pks": list(issue_pks), "exclusive": exclusive}
        )
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                async with self._session.savepoint():
                    busy = (await self._session.fetch_rows(bound))[0]["busy"]
                    if busy:
                        raise TransactionConflict(
                            f"{busy} issue lock bucket(s) held by another transaction, and "
                            "this transaction already holds issue locks it cannot wait with "
                            "(it wrote issues earlier); commit between writes of different "
                            "issue sets, or pass them to one upsert_many"
                        )
                    return await write()
            except TransactionConflict as error:
                if attempt == _ATTEMPTS:
                    raise
                delay = _BACKOFF_S * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                _log.warning(
                    "issue write attempt %d of %d undone, retrying in %.0f ms: %s",
                    attempt,
                    _ATTEMPTS,
                    delay * 1000,
                    error,
                )
                await asleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _write_batch(self, batch: Batch) -> UpsertResult:
        settled = await self._crawl_unchanged(batch)
        rows = batch.stage_rows(settled, self._session.time_zone, Jsonb)
        unchanged = UpsertResult(inserted=0, updated=0, unchanged=len(settled))
        if not rows:
            return unchanged
        # Per batch: a caller may commit between batches (the stage goes with it).
        await self._session.run(CREATE_UPSERT_STAGE.bind({}))
        await self._session.copy_rows(COPY_UPSERT_STAGE.bind({}), rows, types=STAGE_TYPES)
        written = await self._session.fetch_one(UPSERT_STAGED.bind({}), UpsertResult)
        assert written is not None  # an aggregate always returns one row
        await self._session.run(CLEAR_UPSERT_STAGE.bind({}))
        return add_results(written, unchanged)

    async def _crawl_unchanged(self, batch: Batch) -> list[str]:
        """Step 1: lock the bookkeeping of the batch's stored issues; return the
        issue_ids whose items are as stored (their bookkeeping moved)."""
        rows = batch.digest_rows()
        if not rows:
            return []
        await self._session.run(CREATE_HASH_STAGE.bind({}))
        await self._session.copy_rows(COPY_HASH_STAGE.bind({}), rows, types=HASH_TYPES)
        await self._session.run(ADD_MISSING_CRAWLS.bind({}))
        found = await self._session.fetch_rows(CRAWL_UNCHANGED.bind({}))
        settled = [row["issue_id"] for row in found]
        await self._session.run(CLEAR_HASH_STAGE.bind({}))
        return settled

    async def detail(self, issue_id: str) -> IssueDetail | None:
        """The issue with this IMS id with its comments (by ``comment_order``, then
        time), history (by time) and attachments, in one statement; or None."""
        bound = DETAIL.bind({"issue_id": validate_value(_TEXT, issue_id, "issue_id")})
        found = await self._session.fetch_json(bound, IssueDetail)
        return found[0] if found else None

    async def find_detailed(
        self,
        *,
        order_by: Sequence[str] | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: After | None = None,
        **filters: Any,
    ) -> list[IssueDetail]:
        """``find`` with each issue's comments, history and attachments (ordered as in
        ``detail``), in one statement: no query per issue."""
        bound = bind_find(FIND_DETAILED, FILTERS, filters, order_by, limit, offset, after)
        return await self._session.fetch_json(bound, IssueDetail)

    async def sessions(self, issue_pk: int) -> list[IssueCrawl]:
        """The crawl sessions that crawled this issue and the context may see (its
        own; an admin, all), each with the link's order, duration and time, by
        ``session_id``."""
        bound = SESSIONS.bind({"issue_pk": validate_value(_KEY, issue_pk, "issue_pk")})
        return [
            IssueCrawl(
                session=CrawlSession.model_validate({name: row[name] for name in _SESSION_FIELDS}),
                crawl_order=row["crawl_order"],
                crawl_duration_ms=row["crawl_duration_ms"],
                crawled_at=row["crawled_at"],
            )
            for row in await self._session.fetch_rows(bound)
        ]


_LIST_STATEMENTS = (
    ("comments", REPLACE_COMMENTS, "comments"),
    ("history", REPLACE_HISTORY, "changes"),
    ("attachments", REPLACE_ATTACHMENTS, "attachments"),
)
"""Each list a page item may give, the statement that replaces it, its JSON parameter."""


def _stored_page(
    session_id: int,
    user_id: int | None,
    steps: Sequence[BoundStatement],
    results: Sequence[list[dict[str, Any]]],
) -> StoredPage:
    """What ``store_page``'s statements did, from their rows; ``NotFound`` when the
    crawl session was not visible (the caller undoes the page)."""
    done: dict[str, Any] = {"inserted": 0, "updated": 0, "unchanged": 0, "linked": 0, "relinked": 0}
    by_statement = {bound.statement: rows for bound, rows in zip(steps, results, strict=True)}
    if UPSERT_STAGED in by_statement:
        done.update(by_statement[UPSERT_STAGED][0])
    for kind, statement, _ in _LIST_STATEMENTS:
        if statement in by_statement:
            replaced = by_statement[statement][0]
            done[f"{kind}_added"] = replaced["added"]
            done[f"{kind}_removed"] = replaced["removed"]
    if LINK_ISSUES in by_statement:
        linked = by_statement[LINK_ISSUES][0]
        if linked["sessions"] == 0:
            raise NotFound(
                f"crawl session {session_id} is not visible to user {user_id}; "
                "nothing of the page was stored",
                table="crawl_sessions",
                key=str(session_id),
            )
        done["linked"], done["relinked"] = linked["linked"], linked["relinked"]
    if LOG in by_statement:
        done["search"] = SearchQuery.model_validate(by_statement[LOG][0])
    return StoredPage.model_validate(done)


def _status(value: Any, name: str) -> str:
    """A status to write: text (not None), valid as ``NewIssue.status``."""
    checked = validate_value(_TEXT, value, name)
    try:
        changes = validate_changes(NewIssue, {"status": checked}, allowed=("status",))
    except InvalidInput as error:
        raise InvalidInput(f"{name}: {error}") from error
    return str(changes["status"])


async def _nothing() -> None:
    """The write of ``lock_for_write``: none (it only takes the locks)."""
