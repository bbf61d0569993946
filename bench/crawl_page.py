"""The crawler's unit of work (issue 13): one checkout that stores a page of crawled issues
with their comments, history and an attachment each, links them to the crawl session and
logs the search; written three ways, each counting the statements it sends.

- **floor**: one pipeline (one round trip): ``BEGIN``, the context, one statement per
  table (issues upserted from a JSON array, then comments, history, attachments and links
  joined to the issues by ``issue_id``), the search log, ``COMMIT``. It inserts the
  children (a fresh page; it does not compare them with stored lists as ims_repo does),
  which favours it.
- **ims_repo**: ``s.issues.store_page(session_id, items, first_crawl_order=…,
  search=…)``: the page's lock, staged upsert, one statement per child table replacing
  the lists that differ, the links and the search log in one pipeline (one round trip
  with BEGIN and the context), then COMMIT.
- ``ref:ims_repo_import``: ``ims_repo.services.importer.import_file`` on the open session
  with the page as JSON Lines (upsert_many's COPYs, one statement per child table, the
  links; a round trip each), then ``s.search_queries.log``.
- ``ref:ims_repo_per_issue``: the per-table methods (``upsert_many``, then per issue
  ``comments.add_many``, ``history.add_many``, ``attachments.create``, then
  ``link_many``, ``log``): statements grow with the page.
- **ORM**: the usage guide's way: per issue ``query(...).filter_by(issue_id=…).first()``,
  ``session.add`` with its children, ``flush`` for the key, a ``SessionIssue``; then the
  ``SearchQuery``; one commit.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from psycopg.types.json import Jsonb
from pydantic import TypeAdapter
from sqlalchemy import event

from bench import data, orm
from bench.orm import OrmDatabase
from bench.raw import _SET_CONTEXT, NEW_ISSUE_FIELDS, Raw
from ims_repo import Database, NewIssue, NewSearchQuery
from ims_repo.core.records import NewAttachment, NewIssueComment, NewIssueHistory
from ims_repo.services.importer import import_file

PREFIX = "PAGE"
QUERY = "crawl page"

COMMENT_FIELDS = ("author", "content", "commented_at", "comment_order")
HISTORY_FIELDS = ("changed_at", "changed_by", "field_name", "old_value", "new_value")
ATTACHMENT_FIELDS = (
    "session_id",
    "filename",
    "file_type",
    "file_size",
    "storage_path",
    "checksum_sha256",
    "downloaded_at",
)
_CHILDREN = ("comments", "history", "attachments")

_ISSUES = TypeAdapter(list[NewIssue])
_COMMENTS = TypeAdapter(list[NewIssueComment])
_HISTORY = TypeAdapter(list[NewIssueHistory])
_ATTACHMENTS = TypeAdapter(list[NewAttachment])


def page_items(page: int, size: int, session_id: int) -> list[dict[str, Any]]:
    """Page ``page`` of ``size`` fresh issues, each with 0-10 comments (5 on average),
    0-6 history rows (3 on average) and one attachment downloaded by ``session_id``."""
    items = []
    for n in range(page * size, (page + 1) * size):
        item = data.issue_item(n, PREFIX)
        created = item["issue_created_at"]
        item["comments"] = [
            dict(zip(COMMENT_FIELDS, row, strict=True)) for row in data.comments(n, created)
        ]
        item["history"] = [
            dict(zip(HISTORY_FIELDS, row, strict=True)) for row in data.history(n, created)
        ]
        item["attachments"] = [
            {
                "session_id": session_id,
                "filename": f"page_{n}.log",
                "file_type": "text/plain",
                "file_size": 2048 + n % 4096,
                "storage_path": f"/data/pages/{n}/page_{n}.log",
                "checksum_sha256": f"{n:064x}",
                "downloaded_at": created + timedelta(days=1),
            }
        ]
        items.append(item)
    return items


def _issue_fields(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in _CHILDREN}


# --- floor -----------------------------------------------------------------------------------

_UPSERT = f"""
INSERT INTO ims.issues ({", ".join(NEW_ISSUE_FIELDS)})
SELECT {", ".join(NEW_ISSUE_FIELDS)}
FROM jsonb_populate_recordset(NULL::ims.issues, %s)
ON CONFLICT (issue_id) DO UPDATE
SET {", ".join(f"{c} = EXCLUDED.{c}" for c in NEW_ISSUE_FIELDS[1:])}
WHERE ({", ".join(f"ims.issues.{c}" for c in NEW_ISSUE_FIELDS[1:])})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in NEW_ISSUE_FIELDS[1:])})
"""
_COMMENTS_INSERT = """
INSERT INTO ims.issue_comments (issue_pk, author, content, commented_at, comment_order)
SELECT i.issue_pk, c.author, c.content, c.commented_at, c.comment_order
FROM jsonb_to_recordset(%s)
     AS c(issue_id text, author text, content text, commented_at timestamptz,
          comment_order integer)
JOIN ims.issues AS i USING (issue_id)
"""
_HISTORY_INSERT = """
INSERT INTO ims.issue_history (issue_pk, changed_at, changed_by, field_name, old_value,
                               new_value)
SELECT i.issue_pk, h.changed_at, h.changed_by, h.field_name, h.old_value, h.new_value
FROM jsonb_to_recordset(%s)
     AS h(issue_id text, changed_at timestamptz, changed_by text, field_name text,
          old_value text, new_value text)
JOIN ims.issues AS i USING (issue_id)
"""
_ATTACHMENTS_INSERT = """
INSERT INTO ims.attachments (issue_pk, session_id, filename, file_type, file_size,
                             storage_path, checksum_sha256, downloaded_at)
SELECT i.issue_pk, a.session_id, a.filename, a.file_type, a.file_size, a.storage_path,
       a.checksum_sha256, a.downloaded_at
FROM jsonb_to_recordset(%s)
     AS a(issue_id text, session_id bigint, filename text, file_type text,
          file_size bigint, storage_path text, checksum_sha256 text,
          downloaded_at timestamptz)
JOIN ims.issues AS i USING (issue_id)
"""
_LINKS_INSERT = """
INSERT INTO ims.session_issues (session_id, issue_pk, user_id, crawl_order)
SELECT s.session_id, i.issue_pk, s.user_id, l.crawl_order
FROM jsonb_to_recordset(%s) AS l(issue_id text, crawl_order integer)
JOIN ims.issues AS i USING (issue_id)
CROSS JOIN ims.crawl_sessions AS s
WHERE s.session_id = %s
ORDER BY i.issue_pk
ON CONFLICT (session_id, issue_pk) DO UPDATE SET crawl_order = EXCLUDED.crawl_order
"""
_LOG = """
INSERT INTO ims.search_queries (user_id, session_id, query_text, result_count)
VALUES (%s, %s, %s, %s)
"""


def floor_page(
    raw: Raw, user_id: int, session_id: int, items: list[dict[str, Any]]
) -> tuple[int, int]:
    """Store the page the floor's way; (issues stored, statements sent)."""
    issues = _ISSUES.validate_python([_issue_fields(item) for item in items])
    rows = {kind: [] for kind in _CHILDREN}  # type: dict[str, list[dict[str, Any]]]
    for item in items:
        key = item["issue_id"]
        comments = _COMMENTS.validate_python(item["comments"])
        history = _HISTORY.validate_python(item["history"])
        attachments = _ATTACHMENTS.validate_python(
            [{**a, "issue_pk": 0} for a in item["attachments"]]
        )
        rows["comments"] += [{"issue_id": key, **c.model_dump(mode="json")} for c in comments]
        rows["history"] += [{"issue_id": key, **h.model_dump(mode="json")} for h in history]
        rows["attachments"] += [
            {"issue_id": key, **a.model_dump(mode="json", exclude={"issue_pk"})}
            for a in attachments
        ]
    links = [{"issue_id": item["issue_id"], "crawl_order": n} for n, item in enumerate(items, 1)]
    statements = [
        ("BEGIN", None),
        (_SET_CONTEXT, (str(user_id),)),
        (_UPSERT, (Jsonb([issue.model_dump(mode="json") for issue in issues]),)),
        (_COMMENTS_INSERT, (Jsonb(rows["comments"]),)),
        (_HISTORY_INSERT, (Jsonb(rows["history"]),)),
        (_ATTACHMENTS_INSERT, (Jsonb(rows["attachments"]),)),
        (_LINKS_INSERT, (Jsonb(links), session_id)),
        (_LOG, (user_id, session_id, QUERY, len(items))),
        ("COMMIT", None),
    ]
    with raw.pool.connection() as conn, conn.pipeline():
        for statement, params in statements:
            conn.execute(statement, params)
    return len(issues), len(statements)


# --- ims_repo --------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def ims_page(
    db: Database, user_id: int, session_id: int, items: list[dict[str, Any]]
) -> tuple[int, int]:
    """Store the page with ``s.issues.store_page``; (issues stored, statements sent)."""
    search = NewSearchQuery(
        user_id=user_id, session_id=session_id, query_text=QUERY, result_count=len(items)
    )
    with db.session(user_id=user_id) as s:
        done = s.issues.store_page(session_id, items, first_crawl_order=1, search=search)
        return done.inserted + done.updated + done.unchanged, s.statements_sent


def ims_page_import(
    db: Database, user_id: int, session_id: int, items: list[dict[str, Any]]
) -> tuple[int, int]:
    """Store the page through ``import_file`` on one session; (issues stored,
    statements sent)."""
    text = "\n".join(json.dumps(item, default=_json_default) for item in items)
    with db.session(user_id=user_id) as s:
        report = import_file(
            s, io.BytesIO(text.encode()), session_id=session_id, batch_size=len(items)
        )
        s.search_queries.log(
            NewSearchQuery(
                user_id=user_id, session_id=session_id, query_text=QUERY, result_count=len(items)
            )
        )
        return report.issues_stored, s.statements_sent


def ims_page_per_issue(
    db: Database, user_id: int, session_id: int, items: list[dict[str, Any]]
) -> tuple[int, int]:
    """Store the page with the per-table methods; (issues stored, statements sent)."""
    with db.session(user_id=user_id) as s:
        s.issues.upsert_many([_issue_fields(item) for item in items], batch_size=len(items))
        keys = [item["issue_id"] for item in items]
        stored = {
            issue.issue_id: issue.issue_pk
            for issue in s.issues.find(issue_id_in=keys, limit=len(keys))
        }
        for item in items:
            pk = stored[item["issue_id"]]
            s.comments.add_many(pk, item["comments"])
            s.history.add_many(pk, item["history"])
            for attachment in item["attachments"]:
                s.attachments.create({**attachment, "issue_pk": pk})
        s.session_issues.link_many(
            {"session_id": session_id, "issue_pk": stored[item["issue_id"]], "crawl_order": n}
            for n, item in enumerate(items, 1)
        )
        s.search_queries.log(
            NewSearchQuery(
                user_id=user_id, session_id=session_id, query_text=QUERY, result_count=len(items)
            )
        )
        return len(items), s.statements_sent


# --- ORM -------------------------------------------------------------------------------------


class OrmCounter:
    """Counts the statements the ORM's engine sends (``before_cursor_execute``)."""

    def __init__(self, db: OrmDatabase) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def orm_page(
    db: OrmDatabase,
    counter: OrmCounter,
    user_id: int,
    session_id: int,
    items: list[dict[str, Any]],
) -> tuple[int, int]:
    """Store the page the usage guide's way; (issues stored, statements sent, counting
    the guide's context statement and not BEGIN/COMMIT, as ims_repo counts)."""
    before = counter.count
    with db.get_session(user_id=user_id) as session:
        for position, item in enumerate(items, 1):
            fields = _issue_fields(item)
            issue = session.query(orm.Issue).filter_by(issue_id=fields["issue_id"]).first()
            if issue is None:
                issue = orm.Issue(**fields)
                session.add(issue)
            else:
                for key, value in fields.items():
                    setattr(issue, key, value)
            issue.comments = [orm.IssueComment(**c) for c in item["comments"]]
            issue.history = [orm.IssueHistory(**h) for h in item["history"]]
            issue.attachments = [orm.Attachment(**a) for a in item["attachments"]]
            session.flush()
            session.add(
                orm.SessionIssue(
                    session_id=session_id,
                    issue_pk=issue.issue_pk,
                    user_id=user_id,
                    crawl_order=position,
                )
            )
        session.add(
            orm.SearchQuery(
                user_id=user_id, session_id=session_id, query_text=QUERY, result_count=len(items)
            )
        )
    return len(items), counter.count - before


Store = Callable[[int, int, list[dict[str, Any]]], tuple[int, int]]
"""One implementation: (user_id, session_id, page) -> (issues stored, statements sent)."""
