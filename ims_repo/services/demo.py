"""``ims-repo demo``: migrate, load the sample data, and walk through the usage guide.

Each section of the usage guide gets a short titled section here, done through the
public API, printing what it calls and what came back. Everything runs as the runtime
role (``act_as="ims_app"``), so what it prints is what row-level security really shows;
the one admin is made the owner's way (``migrations.set_role``, in ``sample_data``).

Re-runnable: the sample data is loaded idempotently, and every write that would pile up
runs in a transaction that is rolled back, so a second run prints the same walkthrough.

With no server configured (no URL, no ``PG*`` variables), or when the configured one
does not answer, or with ``private_server=True``, the demo starts a private PostgreSQL
from the local binaries (``ims_repo.services.local_server``; data kept in ``.ims-pg/`` in the
current directory when it can be, else in a temporary directory), runs against it and
stops it at the end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ims_repo.core.errors import Duplicate, ImsRepoError, PermissionDenied
from ims_repo.core.records import CrawlSession, NewCrawlSession, NewIssue, NewUser
from ims_repo.db import Database
from ims_repo.services import migrations, sample_data
from ims_repo.services.local_server import (
    LocalServer,
    LocalServerError,
    find_bindir,
    why_unavailable,
)
from ims_repo.services.local_server import reachable_by as _reachable_by
from ims_repo.services.sample_data import Sample

Echo = Callable[[str], None]

#: The database the demo creates on a private server.
PRIVATE_DATABASE = "ims_demo"
#: Where a private server keeps its files, relative to the current directory.
PRIVATE_ROOT = ".ims-pg"
_WIDTH = 100
_LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE")


class DemoError(ImsRepoError):
    """The demo could not find or start a server to run on."""


def run(url: str, echo: Echo = print, *, private_server: bool = False) -> None:
    """Run the demo against the database at ``url`` (a login allowed to migrate).

    ``url`` ``""`` means libpq's ``PG*`` variables. Without any of them, when the server
    does not answer, or with ``private_server=True``, a private server is used instead.
    """
    reason = "asked for (--private-server)" if private_server else _unreachable(url)
    if reason is None:
        _walkthrough(url, echo)
        return
    echo(f"no server to use: {reason}; starting a private PostgreSQL")
    with _private_server(echo) as private_url:
        _walkthrough(private_url, echo)


# --- where to run -------------------------------------------------------------------------


def _unreachable(url: str) -> str | None:
    """Why the demo cannot use ``url``'s server (None when it answers).

    Only "nobody is there" counts (nothing configured, connection refused, no socket):
    a wrong password or a missing database is an error the user should see, not a
    reason to quietly run somewhere else.
    """
    if not url and not any(os.environ.get(name) for name in _LIBPQ_VARIABLES):
        return "no database configured (--database, IMS_DATABASE_URL or PG* variables)"
    try:
        with psycopg.connect(url, connect_timeout=10):
            return None
    except psycopg.OperationalError as error:
        message = str(error)
        if "Connection refused" in message or "No such file or directory" in message:
            return f"nothing answers at {_where(url)} (connection refused)"
        raise


def _where(url: str) -> str:
    params = conninfo_to_dict(url) if url else {}
    host = params.get("host") or os.environ.get("PGHOST") or "the default socket"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"{host}:{port}"


def _private_root() -> Path | None:
    """``./.ims-pg`` when the server can keep its files there, else None (a temp dir)."""
    root = Path.cwd() / PRIVATE_ROOT
    writable = os.access(root if root.exists() else root.parent, os.W_OK)
    server_user = "postgres" if os.geteuid() == 0 else None
    return root if writable and _reachable_by(root, server_user) else None


@contextmanager
def _private_server(echo: Echo) -> Iterator[str]:
    """Start a private server, create the demo database on it; yield its URL; stop."""
    bindir = find_bindir()
    reason = why_unavailable(bindir)
    if reason or bindir is None:
        raise DemoError(f"cannot start a private PostgreSQL either: {reason}")
    root = _private_root()
    server = LocalServer(bindir, root=root)
    began = time.perf_counter()
    try:
        found = server.start()
    except LocalServerError as error:
        raise DemoError(str(error)) from error
    ours = server.started
    try:
        if root is None:
            state = "temporary, deleted at the end"
        elif not server.started:
            state = "a server from an earlier run still runs on it: used and left running"
        else:
            state = "new" if server.initialized else "kept from an earlier run"
        echo(
            f"private server: PostgreSQL at {found.host}:{found.port}, superuser postgres, "
            f"{'started' if ours else 'found'} in {time.perf_counter() - began:.1f} s"
        )
        echo(f"  data: {server.data} ({state})")
        echo(f"  log: {server.log}")
        with psycopg.connect(found.url(), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [PRIVATE_DATABASE]
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(PRIVATE_DATABASE)))
        yield found.url(PRIVATE_DATABASE)
    finally:
        server.stop()
        if ours:
            echo("private server stopped" + (f"; data kept in {root}" if root else ""))


# --- the walkthrough ----------------------------------------------------------------------


def _walkthrough(url: str, echo: Echo) -> None:
    params = conninfo_to_dict(url) if url else {}
    echo(
        f"ims-repo demo: database {params.get('dbname', '(default)')} "
        f"on {_where(url)}, as the runtime role ims_app"
    )
    applied = migrations.migrate(url)
    echo(f"migrate: {len(applied)} migration(s) applied" if applied else "migrate: up to date")
    with Database(url, act_as="ims_app", min_size=1, max_size=2) as db:
        loaded = sample_data.load(db, owner_url=url)
        _report_load(loaded, echo)
        demo = _Demo(db, loaded, echo)
        for section in demo.sections():
            section()
    echo("")
    echo("done: run it again and it prints the same (data reused, demo writes rolled back)")


def _report_load(loaded: Sample, echo: Echo) -> None:
    made = ", ".join(f"{count} {kind}" for kind, count in loaded.created.items() if count)
    echo(f"sample data: {'created ' + made if made else 'already loaded, nothing created'}")
    for note in loaded.notes:
        echo(f"  note: {note}")
    users = ", ".join(f"{name}={user_id}" for name, user_id in loaded.users.items())
    echo(f"  users: {users} ('admin' made an admin by the owner: set_role)")


class _Demo:
    """The sections, in the order of the usage guide; each prints a title, then lines."""

    def __init__(self, db: Database, loaded: Sample, echo: Echo) -> None:
        self.db = db
        self.ids = loaded
        self.echo = echo
        self.names = {user_id: name for name, user_id in loaded.users.items()}
        self.number = 0

    def sections(self) -> list[Callable[[], None]]:
        return [
            self.quick_start,
            self.crud,
            self.relationships,
            self.filters,
            self.aggregation,
            self.joins,
            self.jsonb,
            self.bulk,
            self.transactions,
            self.raw_sql,
            self.search,
            self.analytics,
            self.audit,
            self.rls,
        ]

    def title(self, text: str) -> None:
        self.number += 1
        self.echo("")
        self.echo(f"== {self.number}. {text} ==")

    def show(self, call: str, result: object) -> None:
        """One line ``call  -> result``; two when that would be wider than the page."""
        line = f"{call}  -> {result}"
        if len(line) <= _WIDTH:
            self.echo(line)
        else:
            self.echo(call)
            self.echo(f"    -> {result}")

    # --- the usage guide's sections -------------------------------------------------

    def quick_start(self) -> None:
        self.title("Quick start: db.session(), records, filters")
        with self.db.session() as s:
            users = s.users.find(limit=10)
            self.show(
                "s.users.find(limit=10)", f"{len(users)} users: {_join(u.username for u in users)}"
            )
            admin = s.users.find(role="admin", limit=1)[0]
            self.show('s.users.find(role="admin", limit=1)', f"{admin.username} <{admin.email}>")
        with self.db.session(user_id=admin.user_id) as s:
            mine = s.crawl_sessions.list_for_user(admin.user_id)
            self.show(
                f"as admin: s.crawl_sessions.list_for_user({admin.user_id})",
                _count(len(mine), "session"),
            )

    def crud(self) -> None:
        self.title("CRUD, bulk update and bulk delete (one transaction, rolled back)")
        yijae = self.ids.yijae
        with self.db.session(user_id=yijae) as s:
            created = s.crawl_sessions.create(
                NewCrawlSession(
                    user_id=yijae,
                    product="OpenFrame",
                    original_query="connection timeout",
                    parsed_query="+connection +timeout",
                    query_language="en",
                    max_results=100,
                    status="running",
                    started_at=datetime(2026, 11, 5, 9, 0, tzinfo=UTC),
                )
            )
            self.show(
                f"create: s.crawl_sessions.create(NewCrawlSession(user_id={yijae}, "
                'status="running", …))',
                f"a CrawlSession, status {created.status}, {created.total_issues} issues",
            )
            issue = s.issues.get(self.ids.issues["SAMPLE-001"])
            assert issue is not None
            self.show(f"read: s.issues.get({issue.issue_pk})", f"{issue.issue_id} {issue.title!r}")
            open_ = s.issues.find(product="OpenFrame", status="Open")
            self.show('s.issues.find(product="OpenFrame", status="Open")', _issue_ids(open_))
            user = s.users.update(yijae, department="R&D", preferences={"theme": "dark"})
            self.show(
                f'update: s.users.update({yijae}, department="R&D", '
                'preferences={"theme": "dark"})',
                f"department {user.department}, preferences {user.preferences}",
            )
            changed = s.issues.replace_status("New", "Open")
            self.show('bulk: s.issues.replace_status("New", "Open")', f"{changed} issues")
            first_pk, second_pk = self.ids.issues["SAMPLE-001"], self.ids.issues["SAMPLE-002"]
            rows = [
                {"issue_pk": first_pk, "status": "Closed"},
                {"issue_pk": second_pk, "status": "Closed"},
            ]
            self.show(
                f'bulk: s.issues.update_many([{{"issue_pk": {first_pk}, "status": "Closed"}}, '
                f'{{"issue_pk": {second_pk}, …}}])',
                _count(s.issues.update_many(rows), "issue"),
            )
            first = s.search_queries.find(order_by=["executed_at"], limit=1)[0]
            deleted = s.search_queries.delete(first.query_id)
            self.show(f"delete: s.search_queries.delete({first.query_id})", deleted)
            gone = s.session_errors.delete_by_severity("info")
            self.show('bulk: s.session_errors.delete_by_severity("info")', _count(gone, "row"))
            s.rollback()
            still_new = s.issues.count(status="New")
            self.show("s.rollback(); s.issues.count(status='New')", f"{still_new} (nothing kept)")

    def relationships(self) -> None:
        self.title("Relationships: one-to-many, many-to-many, nested (one statement)")
        yijae = self.ids.yijae
        with self.db.session(user_id=yijae) as s:
            mine = s.crawl_sessions.list_for_user(yijae)
            self.show(
                f"as yijae.shin: s.crawl_sessions.list_for_user({yijae})",
                _count(len(mine), "session"),
            )
            for crawl in mine:
                self.echo(f"  {crawl.session_uuid} {crawl.product} ({crawl.status})")
            first = mine[0].session_id
            crawled = s.crawl_sessions.issues(first)
            self.show(f"s.crawl_sessions.issues({first})", f"{len(crawled)} in crawl order")
            for item in crawled:
                line = f"  {item.crawl_order}. {item.issue.issue_id} ({item.crawl_duration_ms} ms)"
                self.echo(f"{line} {_short(item.issue.title, 50)}")
            sample_001 = self.ids.issues["SAMPLE-001"]
            crawls = s.issues.sessions(sample_001)
            self.show(
                f"s.issues.sessions({sample_001})",
                f"sessions {_join(c.session.session_id for c in crawls)} "
                "(minji.kim's crawl of it is hidden by RLS)",
            )
        with self.db.session() as s:
            detail = s.issues.detail("SAMPLE-001")
            assert detail is not None
            self.show(
                's.issues.detail("SAMPLE-001")',
                f"{detail.issue_id}, {_count(s.statements_sent, 'statement')}: "
                f"{len(detail.comments)} comments, {len(detail.history)} changes, "
                f"{len(detail.attachments)} attachments",
            )
            for comment in detail.comments:
                self.echo(f"  comment {comment.author}: {_short(comment.content, 60)}")
            for change in detail.history:
                self.echo(
                    f"  history {change.changed_at:%Y-%m-%d} {change.field_name}: "
                    f"{change.old_value} -> {change.new_value}"
                )
            for attachment in detail.attachments:
                self.echo(
                    f"  attachment {attachment.filename} ({attachment.file_type}, "
                    f"{attachment.file_size} bytes, sha256 {attachment.checksum_sha256[:12]}…)"
                    if attachment.checksum_sha256
                    else f"  attachment {attachment.filename}"
                )
            before = s.statements_sent
            tibero = s.issues.find_detailed(product="Tibero")
            self.show(
                's.issues.find_detailed(product="Tibero")',
                f"{len(tibero)} issues with "
                f"{_count(sum(len(i.attachments) for i in tibero), 'attachment')}, "
                f"{_count(s.statements_sent - before, 'statement')}",
            )

    def filters(self) -> None:
        self.title("Filters, ordering, pagination (as admin: every user's sessions)")
        with self.db.session(user_id=self.ids.admin) as s:
            counts = [
                ('status="completed"', s.crawl_sessions.find(status="completed")),
                ('status_not="completed"', s.crawl_sessions.find(status_not="completed")),
                ('product_like="Open%"', s.crawl_sessions.find(product_like="Open%")),
                (
                    'status_in=["running", "completed"]',
                    s.crawl_sessions.find(status_in=["running", "completed"]),
                ),
                ("has_data_path=True", s.crawl_sessions.find(has_data_path=True)),
            ]
            for call, found in counts:
                self.show(f"s.crawl_sessions.find({call})", f"sessions {_session_ids(found)}")
            ordered = s.crawl_sessions.find(order_by=["product", "-started_at"])
            self.show(
                's.crawl_sessions.find(order_by=["product", "-started_at"])',
                _join(f"{c.product} {_when(c.started_at)}" for c in ordered[:3]) + ", …",
            )
            page = s.issues.find(order_by=["issue_id"], limit=4, offset=4)
            self.show('s.issues.find(order_by=["issue_id"], limit=4, offset=4)', _issue_ids(page))

    def aggregation(self) -> None:
        self.title("Aggregation")
        with self.db.session(user_id=self.ids.admin) as s:
            self.show("s.issues.count()", s.issues.count())
            self.show(
                's.issues.count(product="Tibero", status_not="Closed")',
                s.issues.count(product="Tibero", status_not="Closed"),
            )
            self.show("s.issues.count_by_product()", s.issues.count_by_product())
            stats = s.crawl_sessions.duration_stats()
            self.show(
                "as admin: s.crawl_sessions.duration_stats()",
                f"avg {stats.avg:.1f} s, min {stats.min} s, max {stats.max} s",
            )

    def joins(self) -> None:
        self.title("Joins: users with their sessions (outer join), a session's issues")
        with self.db.session(user_id=self.ids.admin) as s:
            rows = s.users.with_sessions(order_by=["user_id"])
            self.show(
                'as admin: s.users.with_sessions(order_by=["user_id"])',
                _join(f"{r.user.username}: {len(r.sessions)}" for r in rows),
            )
        john_first = self.ids.sessions["john-1"]
        with self.db.session(user_id=self.ids.john) as s:
            crawled = s.crawl_sessions.issues(john_first)
            self.show(
                f"as john.doe: s.crawl_sessions.issues({john_first})",
                _join(f"{c.issue.issue_id} #{c.crawl_order}" for c in crawled),
            )

    def jsonb(self) -> None:
        self.title("JSONB: path, key exists, containment (as admin)")
        with self.db.session(user_id=self.ids.admin) as s:
            for method in ("rule_based", "llm"):
                found = s.crawl_sessions.find_by_metadata(
                    path=["nl_parsing", "method"], equals=method
                )
                self.show(
                    f'find_by_metadata(path=["nl_parsing", "method"], equals="{method}")',
                    f"sessions {_session_ids(found)}",
                )
            browser = s.crawl_sessions.with_metadata_key("browser")
            self.show('with_metadata_key("browser")', f"sessions {_session_ids(browser)}")
            old = s.crawl_sessions.metadata_contains({"crawler_version": "1.0.0"})
            self.show(
                'metadata_contains({"crawler_version": "1.0.0"})', f"sessions {_session_ids(old)}"
            )

    def bulk(self) -> None:
        self.title("Bulk insert and re-crawl (COPY-based upsert; rolled back)")
        yijae = self.ids.yijae
        with self.db.session(user_id=yijae) as s:
            stored = s.issues.get_by_issue_id("SAMPLE-002")
            assert stored is not None
            crawl: list[NewIssue | dict[str, Any]] = [
                {
                    "issue_id": "SAMPLE-001",
                    "title": "Connection timeout when the batch server is under load",
                    "product": "OpenFrame",
                    "status": "Resolved",
                },
                {"issue_id": "SAMPLE-002", "title": stored.title, "product": "OpenFrame"},
                *(
                    NewIssue(issue_id=f"ISSUE-{n}", title=f"Issue {n}", product="OpenFrame")
                    for n in range(100, 110)
                ),
            ]
            result = s.issues.upsert_many(crawl)
            self.show(
                "s.issues.upsert_many(SAMPLE-001 changed, SAMPLE-002 as stored, 10 new)",
                f"inserted {result.inserted}, updated {result.updated}, "
                f"unchanged {result.unchanged}",
            )
            again = s.issues.get_by_issue_id("SAMPLE-001")
            assert again is not None
            self.show(
                's.issues.get_by_issue_id("SAMPLE-001")',
                f"status {again.status}, crawl_count {again.crawl_count}",
            )
            crawl_session = s.crawl_sessions.create(
                NewCrawlSession(user_id=yijae, product="OpenFrame", original_query="issue")
            )
            new_pks = [i.issue_pk for i in s.issues.find(issue_id_like="ISSUE-%")]
            links = [(crawl_session.session_id, pk, n) for n, pk in enumerate(new_pks, 1)]
            linked = s.session_issues.link_many(links)
            self.show("s.session_issues.link_many([(session_id, issue_pk, order), …])", linked)
            s.rollback()

    def transactions(self) -> None:
        self.title("Transactions: commit on success, rollback on error, savepoints")
        try:
            with self.db.session() as s:
                s.issues.create(NewIssue(issue_id="DEMO-TX", title="t", product="OpenFrame"))
                raise _Undo
        except _Undo:
            pass
        with self.db.session() as s:
            kept = s.issues.get_by_issue_id("DEMO-TX")
            self.show("a block that raises after s.issues.create(DEMO-TX)", f"rolled back: {kept}")
            duplicate = NewUser(username="john.doe", email="someone.else@company.com")
            try:
                with s.savepoint():
                    s.users.create(duplicate)
            except Duplicate as error:
                self.show(
                    'with s.savepoint(): s.users.create(NewUser(username="john.doe", …))',
                    f"Duplicate: {_message(error)}",
                )
            john = s.users.get_by_username("john.doe")
            assert john is not None
            self.show('after it: s.users.get_by_username("john.doe")', f"user {john.user_id}")

    def raw_sql(self) -> None:
        self.title("Raw SQL (s.execute) and stored functions")
        with self.db.session(user_id=self.ids.yijae) as s:
            rows = s.execute(
                "SELECT issue_id, priority, severity FROM ims.issues"
                " WHERE priority = %(priority)s OR severity = %(severity)s ORDER BY issue_id",
                {"priority": "High", "severity": "Critical"},
            )
            self.show(
                's.execute("… WHERE priority = %(priority)s OR severity = %(severity)s …")',
                _join(row["issue_id"] for row in rows),
            )
            stats = s.execute(
                "SELECT total_sessions, total_issues FROM ims.get_user_stats(%(user_id)s)",
                {"user_id": self.ids.yijae},
            )
            self.show('s.execute("… FROM ims.get_user_stats(%(user_id)s)")', stats[0])
            typed = s.users.stats(self.ids.yijae)
            self.show(
                f"s.users.stats({self.ids.yijae})",
                f"{typed.total_sessions} sessions ({typed.completed_sessions} completed, "
                f"{typed.failed_sessions} failed), {typed.total_issues} issues, "
                f"avg {typed.avg_duration_seconds:.1f} s, last {_when(typed.last_session_at)}",
            )

    def search(self) -> None:
        self.title("Full-text search (english stems, Korean as typed) and the search log")
        with self.db.session(user_id=self.ids.yijae) as s:
            for query, product in (
                ("connection timeouts", None),
                ("timeout -batch", "OpenFrame"),
                ("시간 초과", None),
                ("메모리", None),
            ):
                hits = s.search.issues(query, product=product, limit=5)
                args = f"{query!r}" + (f", product={product!r}" if product else "")
                self.show(
                    f"s.search.issues({args})",
                    _join(f"{h.issue_id} ({h.rank:.3f})" for h in hits) or "no hits",
                )
            logged = s.search_queries.find(order_by=["executed_at"])
            self.show(
                'as yijae.shin: s.search_queries.find(order_by=["executed_at"])',
                _join(f"{q.query_text!r}: {q.result_count}" for q in logged),
            )

    def analytics(self) -> None:
        self.title("Analytics: refreshed per UTC day, read by day and by month")
        yijae = self.ids.yijae
        november = (date(2026, 11, 1), date(2026, 11, 30))
        with self.db.session(user_id=yijae) as s:
            s.analytics.refresh(date(2026, 11, 3))
            days = s.analytics.daily(yijae, *november)
            self.show(
                f"as yijae.shin: s.analytics.daily({yijae}, 2026-11-01, 2026-11-30)",
                f"{len(days)} days",
            )
            for day in days:
                self.echo(
                    f"  {day.stat_date}: {_count(day.sessions_count, 'session')} "
                    f"({day.completed_sessions} completed, {day.failed_sessions} failed), "
                    f"{day.issues_crawled} issues, {day.errors_count} errors, "
                    f"avg {day.avg_duration_seconds} s"
                )
            [month] = s.analytics.monthly(yijae, november[0], november[0])
            self.show(
                f"s.analytics.monthly({yijae}, 2026-11-01, 2026-11-01)",
                f"{month.month:%Y-%m}: {month.sessions_count} sessions, {month.issues_crawled} "
                f"issues ({month.unique_issues} unique), {month.errors_count} errors",
            )
        with self.db.session(user_id=self.ids.john) as s:
            hidden = s.analytics.daily(yijae, *november)
            self.show(f"as john.doe: s.analytics.daily({yijae}, …)", _count(len(hidden), "row"))

    def audit(self) -> None:
        self.title("Audit trail (written by triggers; the change is rolled back)")
        first = self.ids.sessions["yijae-1"]
        with self.db.session(user_id=self.ids.yijae) as s:
            s.crawl_sessions.update(first, status="cancelled")
            [row] = s.audit.find(table_name="crawl_sessions", record_id=first, limit=1)
            old, new = row.old_values or {}, row.new_values or {}
            self.show(
                f's.crawl_sessions.update({first}, status="cancelled"); s.audit.find(…)',
                f"{row.action} by user {row.user_id}: status {old.get('status')} -> "
                f"{new.get('status')}",
            )
            before = len(s.audit.find(table_name="crawl_sessions"))
            s.crawl_sessions.update(first, status="cancelled")
            after = len(s.audit.find(table_name="crawl_sessions"))
            self.show("the same update again (changes nothing)", _count(after - before, "new row"))
            s.rollback()
            own = s.audit.find(table_name="crawl_sessions")
            self.show(
                'as yijae.shin: s.audit.find(table_name="crawl_sessions")',
                f"{_count(len(own), 'row')} of her own ({_join(sorted({r.action for r in own}))}); "
                "rows written with no context are the owner's to read",
            )

    def rls(self) -> None:
        self.title("Row-level security: s.crawl_sessions.find() in four contexts")
        for label, user_id in (
            (f"as yijae.shin (user {self.ids.yijae})", self.ids.yijae),
            (f"as john.doe (user {self.ids.john})", self.ids.john),
            ("with no user context", None),
            (f"as admin (user {self.ids.admin})", self.ids.admin),
        ):
            with self.db.session(user_id=user_id) as s:
                found = s.crawl_sessions.find()
                errors = s.session_errors.find()
                owners = _join(sorted({self.names[c.user_id] for c in found}))
                seen = f"sessions {_session_ids(found)} ({owners})" if found else "no sessions"
                self.echo(f"{label:26} {seen}, {_count(len(errors), 'error')}")
        theirs = self.ids.session_uuids["yijae-1"]
        with self.db.session(user_id=self.ids.john) as s:
            self.show(f"as john.doe: s.crawl_sessions.get_by_uuid({theirs})", _found(s, theirs))
            try:
                with s.savepoint():
                    s.crawl_sessions.create(
                        NewCrawlSession(
                            user_id=self.ids.yijae, product="OpenFrame", original_query="x"
                        )
                    )
            except PermissionDenied as error:
                self.show(
                    f"as john.doe: s.crawl_sessions.create({{'user_id': {self.ids.yijae}, …}})",
                    f"PermissionDenied: {_message(error)}",
                )
        with self.db.session() as s:
            s.execute("SELECT ims.set_current_user(%(u)s)", {"u": self.ids.yijae})
            manual = s.crawl_sessions.find()
            self.show(
                f'no context, then s.execute("SELECT ims.set_current_user(%(u)s)", {{"u": '
                f"{self.ids.yijae}}})",
                f"sessions {_session_ids(manual)}",
            )


class _Undo(Exception):
    """Raised inside a session block to show that the block rolls back."""


def _found(s: Any, session_uuid: Any) -> str:
    crawl: CrawlSession | None = s.crawl_sessions.get_by_uuid(session_uuid)
    return "None (hidden by RLS)" if crawl is None else f"session {crawl.session_id}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _join(items: Iterable[object]) -> str:
    return ", ".join(str(item) for item in items)


def _issue_ids(issues: Sequence[Any]) -> str:
    return _join(issue.issue_id for issue in issues) or "none"


def _session_ids(sessions: Sequence[CrawlSession]) -> str:
    return _join(crawl.session_id for crawl in sessions)


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M}"


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _message(error: Exception) -> str:
    """The error's message without the statement's location (kept short for the demo)."""
    return str(error).split(" [", 1)[0]
