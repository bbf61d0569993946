"""The floor: hand-written psycopg 3 doing each workload's work as fast as it allows and
returning the same pydantic records as ims_repo.

Every read is one pooled checkout (a ``psycopg_pool`` pool of autocommit connections)
that sends ``set_config('ims.current_user_id', …, true)`` and the query in one pipeline:
one round trip, no BEGIN/COMMIT. PostgreSQL runs the statements before a pipeline's Sync
in one implicit transaction, so the transaction-local context holds for the query and
ends at the Sync; nothing is left behind for the next checkout. (``read_in_transaction``
is the explicit ``BEGIN; set_config; query; COMMIT`` pipeline, also one round trip with
two statements more; a reference row of the table.) Rows come back as tuples and are
validated into the records by pydantic (tuples zipped with the column names were the
fastest way measured here); ``find_detailed`` aggregates its page to one JSON text
validated by pydantic-core in one call. Writes validate their input with the same
``NewIssue`` model, then stream it with binary COPY into a temporary staging table
(PostgreSQL refuses ``COPY FROM`` into a table under row-level security) and write it
with one ``INSERT … SELECT``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import islice
from operator import attrgetter
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool
from pydantic import BaseModel, TypeAdapter

from ims_repo import (
    CrawlSession,
    DurationStats,
    Issue,
    IssueDetail,
    NewIssue,
    SearchHit,
    UpsertResult,
)

M = TypeVar("M", bound=BaseModel)

_SET_CONTEXT = "SELECT set_config('ims.current_user_id', %s, true)"

ISSUE_COLUMNS = tuple(Issue.model_fields)
SESSION_COLUMNS = tuple(CrawlSession.model_fields)
_ISSUE_LIST = ", ".join(ISSUE_COLUMNS)
_SESSION_LIST = ", ".join(SESSION_COLUMNS)

# The fields of NewIssue in the order COPY sends them (raw_data last, as JSON).
NEW_ISSUE_FIELDS = (
    "issue_id",
    "title",
    "description",
    "product",
    "module",
    "version",
    "status",
    "priority",
    "severity",
    "reporter",
    "assignee",
    "issue_created_at",
    "issue_updated_at",
    "url",
    "raw_data",
)
_NEW_ISSUE_LIST = ", ".join(NEW_ISSUE_FIELDS)
_NEW_ISSUE_TYPES = [*("text",) * 11, "timestamptz", "timestamptz", "text", "jsonb"]
_NEW_VALUES = attrgetter(*NEW_ISSUE_FIELDS[:-1])
_NEW_ISSUES = TypeAdapter(list[NewIssue])
_CONTENT = ", ".join(NEW_ISSUE_FIELDS[1:])

_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _records(model: type[M], columns: Sequence[str], rows: list[tuple[Any, ...]]) -> list[M]:
    adapter = _ADAPTERS.get(model)
    if adapter is None:
        adapter = _ADAPTERS[model] = TypeAdapter(list[model])  # type: ignore[valid-type]
    dicts = [dict(zip(columns, row, strict=True)) for row in rows]
    result: list[M] = adapter.validate_python(dicts)
    return result


def _record(model: type[M], columns: Sequence[str], row: tuple[Any, ...] | None) -> M | None:
    return None if row is None else model.model_validate(dict(zip(columns, row, strict=True)))


# --- statements (what ims_repo's named statements do, written by hand) --------------------

# Issues are read through the view ims.issues_with_crawls (migration 0007), as ims_repo
# reads them: the issue row with its current crawl bookkeeping.
GET_ISSUE = f"SELECT {_ISSUE_LIST} FROM ims.issues_with_crawls WHERE issue_pk = %s"
GET_SESSION = f"SELECT {_SESSION_LIST} FROM ims.crawl_sessions WHERE session_id = %s"
FIND_ISSUES = (
    f"SELECT {_ISSUE_LIST} FROM ims.issues_with_crawls"
    " WHERE product = %s AND status = ANY(%s)"
    " ORDER BY issue_updated_at DESC, issue_pk LIMIT %s OFFSET %s"
)
# The next page after (issue_updated_at, issue_pk), written by hand in the shape ims_repo
# emits: the range on the first key is where the index scan starts. Assumes a non-NULL
# issue_updated_at (the bench data has no NULL; ims_repo handles NULLs).
FIND_ISSUES_AFTER = (
    f"SELECT {_ISSUE_LIST} FROM ims.issues_with_crawls"
    " WHERE product = %s AND status = ANY(%s) "
    "AND issue_updated_at <= %s AND (issue_updated_at <> %s OR issue_pk > %s) "
    "ORDER BY issue_updated_at DESC, issue_pk LIMIT %s"
)
FIND_DETAILED = f"""
SELECT {", ".join("i." + c for c in ISSUE_COLUMNS)},
       (SELECT coalesce(json_agg(c ORDER BY c.comment_order NULLS LAST, c.commented_at,
                                 c.comment_id), '[]'::json)
        FROM (SELECT comment_id, issue_pk, author, content, commented_at, comment_order
              FROM ims.issue_comments WHERE issue_pk = i.issue_pk) AS c) AS comments,
       (SELECT coalesce(json_agg(h ORDER BY h.changed_at, h.history_id), '[]'::json)
        FROM (SELECT history_id, issue_pk, changed_at, changed_by, field_name, old_value,
                     new_value
              FROM ims.issue_history WHERE issue_pk = i.issue_pk) AS h) AS history,
       (SELECT coalesce(json_agg(a ORDER BY a.attachment_id), '[]'::json)
        FROM (SELECT attachment_id, issue_pk, session_id, filename, file_type, file_size,
                     storage_path, checksum_sha256, downloaded_at
              FROM ims.attachments WHERE issue_pk = i.issue_pk) AS a) AS attachments
FROM ims.issues_with_crawls AS i
WHERE i.product = %s
ORDER BY i.issue_pk
LIMIT %s
"""
DETAIL_COLUMNS = (*ISSUE_COLUMNS, "comments", "history", "attachments")
# The same page as one JSON document, parsed and validated by pydantic-core in one call.
FIND_DETAILED_JSON = f"SELECT coalesce(json_agg(d), '[]')::text FROM ({FIND_DETAILED}) AS d"
_DETAILS = TypeAdapter(list[IssueDetail])
SEARCH = (
    "SELECT issue_pk, issue_id, title, product, status, rank "
    "FROM ims.search_issues(%s::text, %s::text, %s::integer) ORDER BY rank DESC, issue_pk"
)
SEARCH_COLUMNS = tuple(SearchHit.model_fields)
METADATA_CONTAINS = (
    f"SELECT {_SESSION_LIST} FROM ims.crawl_sessions WHERE session_metadata @> %s "
    "ORDER BY session_id"
)
METADATA_KEY = (
    f"SELECT {_SESSION_LIST} FROM ims.crawl_sessions WHERE session_metadata ? %s "
    "ORDER BY session_id"
)
COUNT_BY_PRODUCT = "SELECT product, count(*) FROM ims.issues GROUP BY product ORDER BY product"
DURATION_STATS = (
    "SELECT avg(duration_seconds), min(duration_seconds), max(duration_seconds) "
    "FROM ims.crawl_sessions"
)
LIST_FOR_USER = (
    f"SELECT {_SESSION_LIST} FROM ims.crawl_sessions WHERE user_id = %s ORDER BY session_id"
)
FIND_SESSIONS = (
    f"SELECT {_SESSION_LIST} FROM ims.crawl_sessions WHERE status = %s "
    "ORDER BY started_at DESC, session_id LIMIT %s"
)

CREATE_STAGE = f"""
CREATE TEMP TABLE bench_stage ON COMMIT DROP AS
SELECT {_NEW_ISSUE_LIST} FROM ims.issues WITH NO DATA
"""
COPY_STAGE = f"COPY bench_stage ({_NEW_ISSUE_LIST}) FROM STDIN (FORMAT BINARY)"
COUNT_STAGED = f"""
SELECT count(*) FILTER (WHERE i.issue_pk IS NULL),
       count(*) FILTER (WHERE i.issue_pk IS NOT NULL
                          AND ({", ".join("i." + c for c in NEW_ISSUE_FIELDS[1:])})
                              IS DISTINCT FROM
                              ({", ".join("s." + c for c in NEW_ISSUE_FIELDS[1:])})),
       count(*)
FROM bench_stage AS s
LEFT JOIN ims.issues AS i ON i.issue_id = s.issue_id
"""
INSERT_STAGED = f"""
INSERT INTO ims.issues ({_NEW_ISSUE_LIST})
SELECT {_NEW_ISSUE_LIST} FROM bench_stage
"""
UPSERT_STAGED = f"""
INSERT INTO ims.issues AS i ({_NEW_ISSUE_LIST})
SELECT {_NEW_ISSUE_LIST} FROM bench_stage
ON CONFLICT (issue_id) DO UPDATE
SET ({_CONTENT}) = ({", ".join("EXCLUDED." + c for c in NEW_ISSUE_FIELDS[1:])}),
    last_crawled_at = statement_timestamp(),
    crawl_count = i.crawl_count + 1
"""


# The plain table of issue 13: what a user who skips the layer builds (same columns, one
# english search vector + GIN, a few btrees, no RLS, no audit), in the bench database's
# public schema, written by ``Raw.ingest_plain`` (the ingest's ``ref:plain_table``).
PLAIN_TABLE = """
CREATE TABLE IF NOT EXISTS public.plain_issues (
    issue_pk bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    issue_id text NOT NULL UNIQUE,
    title text NOT NULL,
    description text,
    product text NOT NULL,
    module text,
    version text,
    status text,
    priority text,
    severity text,
    reporter text,
    assignee text,
    issue_created_at timestamptz,
    issue_updated_at timestamptz,
    url text,
    raw_data jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_crawled_at timestamptz NOT NULL DEFAULT now(),
    last_crawled_at timestamptz NOT NULL DEFAULT now(),
    crawl_count integer NOT NULL DEFAULT 1,
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english'::regconfig, COALESCE(title, '')), 'A')
        || setweight(to_tsvector('english'::regconfig, COALESCE(description, '')), 'B')
    ) STORED
);
CREATE INDEX IF NOT EXISTS plain_issues_search_idx
    ON public.plain_issues USING gin (search_vector);
CREATE INDEX IF NOT EXISTS plain_issues_product_idx ON public.plain_issues (product);
CREATE INDEX IF NOT EXISTS plain_issues_status_idx ON public.plain_issues (status)
"""
COPY_PLAIN = f"COPY public.plain_issues ({_NEW_ISSUE_LIST}) FROM STDIN"


class Raw:
    """The floor's "database module": a pool and one function per operation."""

    def __init__(self, conninfo: str, *, max_size: int = 4) -> None:
        self.conninfo = conninfo
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            name="bench_raw",
            open=True,
        )

    def close(self) -> None:
        self.pool.close()

    # --- one checkout, one round trip --------------------------------------------------------

    def read(self, user_id: int | None, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """``query``'s rows, in one checkout and one round trip: the context and the query
        pipelined in the pipeline's implicit transaction."""
        with self.pool.connection() as conn:
            cursor = conn.cursor()
            with conn.pipeline():
                conn.execute(_SET_CONTEXT, ("" if user_id is None else str(user_id),))
                cursor.execute(query, params)
            return cursor.fetchall()

    def read_in_transaction(
        self, user_id: int | None, query: str, params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """As ``read``, in an explicit transaction: BEGIN, context, query, COMMIT pipelined."""
        with self.pool.connection() as conn:
            cursor = conn.cursor()
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(_SET_CONTEXT, ("" if user_id is None else str(user_id),))
                cursor.execute(query, params)
                conn.execute("COMMIT")
            return cursor.fetchall()

    # --- reads -------------------------------------------------------------------------------

    def get_issue(self, user_id: int, issue_pk: int) -> Issue | None:
        rows = self.read(user_id, GET_ISSUE, (issue_pk,))
        return _record(Issue, ISSUE_COLUMNS, rows[0] if rows else None)

    def get_issue_in_transaction(self, user_id: int, issue_pk: int) -> Issue | None:
        rows = self.read_in_transaction(user_id, GET_ISSUE, (issue_pk,))
        return _record(Issue, ISSUE_COLUMNS, rows[0] if rows else None)

    def get_session(self, user_id: int, session_id: int) -> CrawlSession | None:
        rows = self.read(user_id, GET_SESSION, (session_id,))
        return _record(CrawlSession, SESSION_COLUMNS, rows[0] if rows else None)

    def find_issues(
        self,
        user_id: int,
        product: str,
        statuses: list[str],
        limit: int,
        offset: int,
        after: tuple[Any, int] | None = None,
    ) -> list[Issue]:
        """A page by ``offset``, or (``after``: the last row's issue_updated_at and
        issue_pk) the keyset page after that row."""
        if after is None:
            rows = self.read(user_id, FIND_ISSUES, (product, statuses, limit, offset))
        else:
            updated, pk = after
            params = (product, statuses, updated, updated, pk, limit)
            rows = self.read(user_id, FIND_ISSUES_AFTER, params)
        return _records(Issue, ISSUE_COLUMNS, rows)

    def find_detailed(self, user_id: int, product: str, limit: int) -> list[IssueDetail]:
        rows = self.read(user_id, FIND_DETAILED, (product, limit))
        return _records(IssueDetail, DETAIL_COLUMNS, rows)

    def find_detailed_json(self, user_id: int, product: str, limit: int) -> list[IssueDetail]:
        """``find_detailed`` with the page aggregated to one JSON text on the server and
        validated with ``validate_json`` (no per-row JSON decoding in psycopg)."""
        rows = self.read(user_id, FIND_DETAILED_JSON, (product, limit))
        return _DETAILS.validate_json(rows[0][0])

    def search(self, user_id: int, query: str, limit: int) -> list[SearchHit]:
        rows = self.read(user_id, SEARCH, (query, None, limit))
        return _records(SearchHit, SEARCH_COLUMNS, rows)

    def metadata_contains(self, user_id: int, document: Mapping[str, Any]) -> list[CrawlSession]:
        rows = self.read(user_id, METADATA_CONTAINS, (Jsonb(document),))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    def find_by_metadata(
        self, user_id: int, path: Sequence[str], equals: Any
    ) -> list[CrawlSession]:
        document: Any = equals
        for key in reversed(path):
            document = {key: document}
        return self.metadata_contains(user_id, document)

    def with_metadata_key(self, user_id: int, key: str) -> list[CrawlSession]:
        rows = self.read(user_id, METADATA_KEY, (key,))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    def count_by_product(self, user_id: int) -> dict[str, int]:
        return {product: count for product, count in self.read(user_id, COUNT_BY_PRODUCT, ())}

    def duration_stats(self, user_id: int) -> DurationStats:
        avg, low, high = self.read(user_id, DURATION_STATS, ())[0]
        return DurationStats(avg=avg, min=low, max=high)

    def list_for_user(self, user_id: int, owner: int) -> list[CrawlSession]:
        rows = self.read(user_id, LIST_FOR_USER, (owner,))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    def find_sessions(self, user_id: int, status: str, limit: int) -> list[CrawlSession]:
        rows = self.read(user_id, FIND_SESSIONS, (status, limit))
        return _records(CrawlSession, SESSION_COLUMNS, rows)

    # --- writes ------------------------------------------------------------------------------

    def ingest_copy(
        self, user_id: int, items: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
    ) -> int:
        """Fresh issues, validated in batches, streamed with one binary COPY into a
        staging table and inserted with one ``INSERT … SELECT``; one transaction.

        The staging table is needed: PostgreSQL refuses ``COPY FROM`` into a table with
        row-level security for a role subject to it (``ims.issues`` has FORCE RLS)."""
        with self.pool.connection() as conn:
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(_SET_CONTEXT, (str(user_id),))
                conn.execute(CREATE_STAGE)
            _copy_validated(conn, COPY_STAGE, items, batch_size)
            with conn.pipeline():
                inserted = conn.execute(INSERT_STAGED)
                conn.execute("COMMIT")
        return inserted.rowcount

    def ingest_plain(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Fresh issues into the plain table, one connection, one text COPY, no
        validation, no context: the reference of issue 13 (a table and COPY)."""
        count = 0
        with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor().copy(COPY_PLAIN) as copy,
        ):
            for item in items:
                copy.write_row(
                    [*(item.get(f) for f in NEW_ISSUE_FIELDS[:-1]), Jsonb(item["raw_data"])]
                )
                count += 1
        return count

    def ingest_copy_parallel(
        self,
        user_id: int,
        items: Iterable[Mapping[str, Any]],
        *,
        connections: int = 2,
        batch_size: int = 5000,
    ) -> int:
        """``ingest_copy`` over several connections at once (reference: what using both
        cores for the server's parsing and ``to_tsvector`` buys). Batches are dealt out
        to whichever connection is free; each connection stages and inserts per batch
        and commits its own share at the end."""
        lock = threading.Lock()
        iterator = iter(items)
        counts = [0] * connections
        errors: list[BaseException] = []

        def next_batch() -> list[Mapping[str, Any]]:
            with lock:
                return list(islice(iterator, batch_size))

        def worker(index: int) -> None:
            try:
                with self.pool.connection() as conn:
                    with conn.pipeline():
                        conn.execute("BEGIN")
                        conn.execute(_SET_CONTEXT, (str(user_id),))
                        conn.execute(CREATE_STAGE)
                    while batch := next_batch():
                        _copy_validated(conn, COPY_STAGE, batch, batch_size)
                        with conn.pipeline():
                            inserted = conn.execute(INSERT_STAGED)
                            conn.execute("TRUNCATE bench_stage")
                        counts[index] += inserted.rowcount
                    conn.execute("COMMIT")
            except BaseException as error:  # re-raised by the caller
                errors.append(error)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return sum(counts)

    def upsert_plain(
        self, user_id: int, items: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
    ) -> UpsertResult:
        """A re-crawl the plain way: everything COPYed into a staging table, counted
        against the stored rows, then one ``INSERT … ON CONFLICT DO UPDATE`` that
        rewrites every stored row (content, ``last_crawled_at``, ``crawl_count``)."""
        with self.pool.connection() as conn:
            with conn.pipeline():
                conn.execute("BEGIN")
                conn.execute(_SET_CONTEXT, (str(user_id),))
                conn.execute(CREATE_STAGE)
            _copy_validated(conn, COPY_STAGE, items, batch_size)
            with conn.pipeline():
                counted = conn.execute(COUNT_STAGED)
                conn.execute(UPSERT_STAGED)
                conn.execute("COMMIT")
            row = counted.fetchone()
        assert row is not None
        inserted, updated, total = row
        unchanged = total - inserted - updated
        return UpsertResult(inserted=inserted, updated=updated, unchanged=unchanged)


def _copy_validated(
    conn: psycopg.Connection[Any],
    statement: str,
    items: Iterable[Mapping[str, Any]],
    batch_size: int,
) -> int:
    """Validate ``items`` as ``NewIssue`` a batch at a time and stream them with binary
    COPY; the number of rows sent."""
    count = 0
    with conn.cursor().copy(statement) as copy:
        copy.set_types(_NEW_ISSUE_TYPES)
        for batch in _batches(items, batch_size):
            for issue in _NEW_ISSUES.validate_python(batch):
                copy.write_row((*_NEW_VALUES(issue), Jsonb(issue.raw_data)))
                count += 1
    return count


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
