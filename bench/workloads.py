"""The workloads of issues 5 and 13, each written three ways on the same data, and the
check that the three return the same results.

A workload is a list of operations (``ops``) and, per implementation, a function that
performs one operation. Every read operation is one pooled checkout with the RLS
context, as a crawler uses the layer. Write workloads have a ``prepare`` step (untimed:
remove what the previous run added, VACUUM, empty the audit log) and a ``verify`` step
(untimed: a digest of the database state they left, compared across implementations).

Implementations: ``floor`` (``bench.raw``), ``ims_repo`` (its public API), ``orm``
(``bench.orm``, the usage guide's way). Names starting with ``ref:`` are reference
variants shown under the table: how far hand-written code can go beyond the floor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, text
from sqlalchemy.orm import joinedload, selectinload

from bench import crawl_page, data, orm
from bench.data import BenchDatabase, Plan
from bench.orm import OrmDatabase
from bench.raw import PLAIN_TABLE, Raw
from ims_repo import (
    Attachment,
    CrawlSession,
    Database,
    DurationStats,
    Issue,
    IssueComment,
    IssueDetail,
    IssueHistory,
    SearchHit,
    UpsertResult,
)
from ims_repo.core.staging import item_digest

IMPLEMENTATIONS = ("floor", "ims_repo", "orm")
PAGE = 50
OPEN_STATUSES = ["New", "Open", "In Progress"]
ORM_BATCH = 5000


@dataclass(frozen=True)
class Target:
    """What issue 5 asks of this workload (ratios of median times)."""

    layer_max: float = 1.15
    """ims_repo / floor must be at most this."""
    orm_min: float | None = None
    """orm / ims_repo must be at least this (None: no target)."""
    note: str = ""


@dataclass
class Workload:
    name: str
    title: str
    ops: list[Any]
    impls: dict[str, Callable[[Any], Any]]
    canon: Callable[[str, list[Any]], Any]
    target: Target = field(default_factory=Target)
    write: bool = False
    prepare: Callable[[], Any] | None = None
    verify: Callable[[Any], Any] | None = None
    per_item: int = 0
    """For bulk workloads: the items one operation handles (for a rate)."""
    own_state: frozenset[str] = frozenset()
    """Reference variants that write somewhere else (their database state is not
    compared with ims_repo's; their results are)."""
    statements: dict[str, int] = field(default_factory=dict)
    """Statements one operation sent, per implementation (last run), where counted."""


class Bench:
    """The three implementations, connected to one bench database."""

    def __init__(self, db: BenchDatabase, plan: Plan) -> None:
        self.db = db
        self.plan = plan
        self.ims = Database(db.app_url, min_size=1, max_size=4, name="bench_ims")
        self.raw = Raw(db.app_url)
        self.orm = OrmDatabase(db.app_url)
        self.revision = 0
        """The revision the changed half of the stored issues carries now (0: none)."""
        self.orm_statements = crawl_page.OrmCounter(self.orm)
        with db.admin() as conn:
            for statement in PLAIN_TABLE.split(";"):
                conn.execute(statement)
            conn.execute(f'GRANT ALL ON public.plain_issues TO "{db.login}"')
            tables = ("issue_comments", "issue_history", "attachments", "crawl_sessions")
            counted = conn.execute(
                "SELECT " + ", ".join(f"(SELECT count(*) FROM ims.{t})" for t in tables)
            ).fetchone()
            self.counts = dict(zip(tables, map(int, counted or ()), strict=True))
            rows = conn.execute(
                "SELECT product, count(*) FROM ims.issues "
                "WHERE status = ANY(%s) GROUP BY product ORDER BY product",
                (OPEN_STATUSES,),
            ).fetchall()
            self.open_by_product = {product: int(count) for product, count in rows}
            rows = conn.execute(
                "SELECT product, count(*) FROM ims.issues GROUP BY product ORDER BY product"
            ).fetchall()
            self.issues_by_product = {product: int(count) for product, count in rows}

    def close(self) -> None:
        self.ims.close()
        self.raw.close()
        self.orm.close()

    def workloads(self) -> list[Workload]:
        return [
            self.point_issue(),
            self.point_session(),
            self.page("page_shallow", deep=False),
            self.page("page_deep", deep=True),
            self.nested(),
            self.search("search_en", data.SEARCH_EN),
            self.search("search_ko", data.SEARCH_KO),
            self.jsonb(),
            self.aggregate(),
            self.rls_list(),
            self.ingest(),
            self.recrawl("recrawl_unchanged", changed=False),
            self.recrawl("recrawl_half_changed", changed=True),
            self.crawl_page(),
        ]

    # --- users -------------------------------------------------------------------------------

    def user(self, i: int) -> int:
        users = self.plan.ordinary_users
        return users[i % len(users)]

    # --- point reads -------------------------------------------------------------------------

    def point_issue(self) -> Workload:
        count = min(2000, self.plan.issues)
        ops = [(self.user(i), 1 + (i * 7919) % self.plan.issues) for i in range(count)]

        def ims(op: tuple[int, int]) -> Issue | None:
            user, pk = op
            with self.ims.session(user_id=user) as s:
                return s.issues.get(pk)

        def peer(op: tuple[int, int]) -> orm.Issue | None:
            user, pk = op
            with self.orm.get_session(user_id=user) as session:
                return session.get(orm.Issue, pk)

        return Workload(
            name="point_issue",
            title="point read of an issue by key, one checkout each",
            ops=ops,
            impls={
                "floor": lambda op: self.raw.get_issue(*op),
                "ims_repo": ims,
                "orm": peer,
                "ref:floor_begin_commit": lambda op: self.raw.get_issue_in_transaction(*op),
            },
            canon=_canon_maybe(issue_record),
            target=Target(orm_min=2.5),
        )

    def point_session(self) -> Workload:
        count = min(2000, self.plan.sessions)
        ops = []
        for i in range(count):
            session_id = 1 + (i * 104729) % self.plan.sessions
            owner = data.session_owner(self.plan, session_id)
            # One read in ten asks for another user's session: RLS hides it (None).
            ops.append((owner if i % 10 else self._other_user(owner), session_id))

        def ims(op: tuple[int, int]) -> CrawlSession | None:
            user, session_id = op
            with self.ims.session(user_id=user) as s:
                return s.crawl_sessions.get(session_id)

        def peer(op: tuple[int, int]) -> orm.CrawlSession | None:
            user, session_id = op
            with self.orm.get_session(user_id=user) as session:
                return session.get(orm.CrawlSession, session_id)

        return Workload(
            name="point_session",
            title="point read of a crawl session (RLS: 1 in 10 another user's)",
            ops=ops,
            impls={
                "floor": lambda op: self.raw.get_session(*op),
                "ims_repo": ims,
                "orm": peer,
            },
            canon=_canon_maybe(session_record),
            target=Target(orm_min=2.5),
        )

    def _other_user(self, owner: int) -> int:
        users = self.plan.ordinary_users
        return users[(users.index(owner) + 1) % len(users)]

    # --- filtered, ordered pages -------------------------------------------------------------

    def page(self, name: str, *, deep: bool) -> Workload:
        """The crawler's newest-first list, the first page or one near the end.

        ims_repo and the floor reach a deep page by keyset (``after`` = the row before
        the ORM's ``OFFSET``, looked up untimed here), the ORM as the guide writes it,
        with ``OFFSET``: the three return the same rows."""
        products = list(self.open_by_product)
        count = 20 if deep else 200
        ops = []
        for i in range(count):
            product = products[i % len(products)]
            matching = self.open_by_product[product]
            # near the end; past the middle at the smoke test's tiny sizes, so the keyset
            # path runs (and is compared) there too
            offset = max(matching - 2 * PAGE, matching // 2) if deep else 0
            ops.append((self.user(i), product, offset, self._row_before(product, offset)))

        def floor(op: tuple[int, str, int, tuple[datetime, int] | None]) -> list[Issue]:
            user, product, offset, after = op
            if after is not None:
                return self.raw.find_issues(user, product, OPEN_STATUSES, PAGE, 0, after)
            return self.raw.find_issues(user, product, OPEN_STATUSES, PAGE, offset)

        def ims(op: tuple[int, str, int, tuple[datetime, int] | None]) -> list[Issue]:
            user, product, offset, after = op
            with self.ims.session(user_id=user) as s:
                if after is not None:
                    return s.issues.find(
                        product=product,
                        status_in=OPEN_STATUSES,
                        order_by=["-issue_updated_at", "issue_pk"],
                        limit=PAGE,
                        after={"issue_updated_at": after[0], "issue_pk": after[1]},
                    )
                return s.issues.find(
                    product=product,
                    status_in=OPEN_STATUSES,
                    order_by=["-issue_updated_at", "issue_pk"],
                    limit=PAGE,
                    offset=offset,
                )

        def peer(op: tuple[int, str, int, tuple[datetime, int] | None]) -> list[orm.Issue]:
            user, product, offset, _ = op
            with self.orm.get_session(user_id=user) as session:
                return (
                    session.query(orm.Issue)
                    .filter(orm.Issue.product == product, orm.Issue.status.in_(OPEN_STATUSES))
                    .order_by(orm.Issue.issue_updated_at.desc(), orm.Issue.issue_pk)
                    .offset(offset)
                    .limit(PAGE)
                    .all()
                )

        where = (
            "the last pages (ims_repo, floor: keyset; ORM: OFFSET ~ all matches)"
            if deep
            else "the first page"
        )
        return Workload(
            name=name,
            title=f"filtered list (product, 3 statuses), ordered, {PAGE} a page: {where}",
            ops=ops,
            impls={"floor": floor, "ims_repo": ims, "orm": peer},
            canon=_canon_list(issue_record),
            target=Target(note="deep pages as cheap as the first" if deep else ""),
        )

    def _row_before(self, product: str, offset: int) -> tuple[datetime, int] | None:
        """The sort key (issue_updated_at, issue_pk) of the row just before ``offset`` in
        the page order: the ``after`` of the keyset page that ``OFFSET`` gives; None for
        the first page."""
        if offset == 0:
            return None
        with self.db.admin() as conn:
            row = conn.execute(
                "SELECT issue_updated_at, issue_pk FROM ims.issues "
                "WHERE product = %s AND status = ANY(%s) "
                "ORDER BY issue_updated_at DESC, issue_pk OFFSET %s LIMIT 1",
                (product, OPEN_STATUSES, offset - 1),
            ).fetchone()
        assert row is not None, f"{product} has fewer than {offset} open issues"
        return row[0], row[1]

    # --- nested eager load -------------------------------------------------------------------

    def nested(self) -> Workload:
        products = list(self.issues_by_product)[:6]
        limit = 1000
        ops = [(self.user(i), product) for i, product in enumerate(products)]

        def ims(op: tuple[int, str]) -> list[IssueDetail]:
            user, product = op
            with self.ims.session(user_id=user) as s:
                return s.issues.find_detailed(product=product, order_by=["issue_pk"], limit=limit)

        def peer(op: tuple[int, str]) -> list[orm.Issue]:
            user, product = op
            with self.orm.get_session(user_id=user) as session:
                return (
                    session.query(orm.Issue)
                    .options(
                        joinedload(orm.Issue.comments),
                        joinedload(orm.Issue.history),
                        selectinload(orm.Issue.attachments),
                    )
                    .filter(orm.Issue.product == product)
                    .order_by(orm.Issue.issue_pk)
                    .limit(limit)
                    .all()
                )

        return Workload(
            name="nested_load",
            title=f"{limit} issues with comments, history, attachments (find_detailed)",
            ops=ops,
            impls={
                "floor": lambda op: self.raw.find_detailed_json(op[0], op[1], limit),
                "ims_repo": ims,
                "orm": peer,
                "ref:floor_row_per_issue": lambda op: self.raw.find_detailed(op[0], op[1], limit),
            },
            canon=_canon_list(detail_record),
            target=Target(orm_min=8.0),
        )

    # --- search ------------------------------------------------------------------------------

    def search(self, name: str, queries: Sequence[str]) -> Workload:
        ops = [(self.user(i), query) for i, query in enumerate(queries)]

        def ims(op: tuple[int, str]) -> list[SearchHit]:
            user, query = op
            with self.ims.session(user_id=user) as s:
                return s.search.issues(query, limit=50)

        def peer(op: tuple[int, str]) -> list[Any]:
            user, query = op
            with self.orm.get_session(user_id=user) as session:
                result = session.execute(
                    text("SELECT * FROM ims.search_issues(:query, :product, :limit)"),
                    {"query": query, "product": None, "limit": 50},
                )
                return list(result)

        language = "Korean" if name.endswith("ko") else "English"
        return Workload(
            name=name,
            title=f"ranked full-text search, top 50, {language} queries",
            ops=ops,
            impls={
                "floor": lambda op: self.raw.search(op[0], op[1], 50),
                "ims_repo": ims,
                "orm": peer,
            },
            canon=_canon_search,
            target=Target(note="top-50 p50 < 50 ms at 10^6 issues"),
        )

    # --- JSONB filters -----------------------------------------------------------------------

    def jsonb(self) -> Workload:
        kinds: list[tuple[str, Any]] = [
            ("path", (["nl_parsing", "method"], "rule_based")),
            ("key", "crawler_version"),
            ("contains", {"crawler_version": "1.0.0"}),
        ]
        users = self.plan.ordinary_users[:20]
        ops = [(user, *kind) for user in users for kind in kinds]

        def floor(op: tuple[int, str, Any]) -> list[CrawlSession]:
            user, kind, arg = op
            if kind == "path":
                return self.raw.find_by_metadata(user, arg[0], arg[1])
            if kind == "key":
                return self.raw.with_metadata_key(user, arg)
            return self.raw.metadata_contains(user, arg)

        def ims(op: tuple[int, str, Any]) -> list[CrawlSession]:
            user, kind, arg = op
            with self.ims.session(user_id=user) as s:
                if kind == "path":
                    return s.crawl_sessions.find_by_metadata(path=arg[0], equals=arg[1])
                if kind == "key":
                    return s.crawl_sessions.with_metadata_key(arg)
                return s.crawl_sessions.metadata_contains(arg)

        def peer(op: tuple[int, str, Any]) -> list[orm.CrawlSession]:
            user, kind, arg = op
            metadata = orm.CrawlSession.session_metadata
            with self.orm.get_session(user_id=user) as session:
                query = session.query(orm.CrawlSession)
                if kind == "path":
                    path, equals = arg
                    query = query.filter(metadata[path[0]][path[1]].astext == equals)
                elif kind == "key":
                    query = query.filter(metadata.has_key(arg))
                else:
                    query = query.filter(metadata.contains(arg))
                return query.order_by(orm.CrawlSession.session_id).all()

        return Workload(
            name="jsonb_filters",
            title="JSONB path / key / containment on crawl sessions, ordinary users",
            ops=ops,
            impls={"floor": floor, "ims_repo": ims, "orm": peer},
            canon=_canon_list(session_record),
        )

    # --- aggregation -------------------------------------------------------------------------

    def aggregate(self) -> Workload:
        ops = ["count_by_product", "duration_stats"] * 5
        admin = self.plan.admin

        def floor(op: str) -> Any:
            if op == "count_by_product":
                return self.raw.count_by_product(admin)
            return self.raw.duration_stats(admin)

        def ims(op: str) -> Any:
            with self.ims.session(user_id=admin) as s:
                if op == "count_by_product":
                    return s.issues.count_by_product()
                return s.crawl_sessions.duration_stats()

        def peer(op: str) -> Any:
            with self.orm.get_session(user_id=admin) as session:
                if op == "count_by_product":
                    return (
                        session.query(orm.Issue.product, func.count(orm.Issue.issue_pk))
                        .group_by(orm.Issue.product)
                        .all()
                    )
                duration = orm.CrawlSession.duration_seconds
                return session.query(
                    func.avg(duration), func.min(duration), func.max(duration)
                ).first()

        return Workload(
            name="aggregation",
            title="count_by_product (all issues) and duration_stats (admin: all sessions)",
            ops=ops,
            impls={"floor": floor, "ims_repo": ims, "orm": peer},
            canon=_canon_aggregate,
        )

    # --- RLS-filtered lists ------------------------------------------------------------------

    def rls_list(self) -> Workload:
        ops = [(user, kind) for user in self.plan.ordinary_users for kind in ("list", "find")]

        def floor(op: tuple[int, str]) -> list[CrawlSession]:
            user, kind = op
            if kind == "list":
                return self.raw.list_for_user(user, user)
            return self.raw.find_sessions(user, "completed", PAGE)

        def ims(op: tuple[int, str]) -> list[CrawlSession]:
            user, kind = op
            with self.ims.session(user_id=user) as s:
                if kind == "list":
                    return s.crawl_sessions.list_for_user(user)
                return s.crawl_sessions.find(
                    status="completed", order_by=["-started_at"], limit=PAGE
                )

        def peer(op: tuple[int, str]) -> list[orm.CrawlSession]:
            user, kind = op
            model = orm.CrawlSession
            with self.orm.get_session(user_id=user) as session:
                if kind == "list":
                    return (
                        session.query(model)
                        .filter_by(user_id=user)
                        .order_by(model.session_id)
                        .all()
                    )
                return (
                    session.query(model)
                    .filter(model.status == "completed")
                    .order_by(model.started_at.desc(), model.session_id)
                    .limit(PAGE)
                    .all()
                )

        return Workload(
            name="rls_list",
            title=f"ordinary user's sessions over {self.plan.sessions} rows of "
            f"{len(self.plan.ordinary_users)} users (list_for_user, find)",
            ops=ops,
            impls={"floor": floor, "ims_repo": ims, "orm": peer},
            canon=_canon_list(session_record),
        )

    # --- bulk writes -------------------------------------------------------------------------

    def ingest(self) -> Workload:
        count = self.plan.issues
        user = self.user(0)
        prefix = "NEW"

        def items() -> Iterator[dict[str, Any]]:
            return data.issue_items(count, prefix)

        def ims(_: Any) -> int:
            return self.ims.upsert_issues(items(), user_id=user, connections=2).inserted

        def ims_then_refresh(_: Any) -> int:
            # The same, then the rank bounds the ingest deferred (migration 0011), which a
            # crawler would compute later, off its write path.
            inserted = self.ims.upsert_issues(items(), user_id=user, connections=2).inserted
            with self.ims.session(user_id=user) as s:
                s.search.refresh_bounds(count)
            return inserted

        def ims_one_connection(_: Any) -> int:
            with self.ims.session(user_id=user) as s:
                return s.issues.upsert_many(items()).inserted

        def peer(_: Any) -> int:
            stored = 0
            for batch in _batches(items(), ORM_BATCH):
                with self.orm.get_session(user_id=user) as session:
                    session.bulk_save_objects([orm.Issue(**item) for item in batch])
                stored += len(batch)
            return stored

        def prepare() -> None:
            self._reset_issues()

        def verify(_: Any) -> Any:
            return self._digest(f"{prefix}-%")

        return Workload(
            name="ingest",
            title=f"fresh bulk ingest of {count} issues "
            "(floor: binary COPY to a stage + INSERT, one connection; "
            "ims_repo: Database.upsert_issues, 2 connections)",
            ops=[None],
            impls={
                "floor": lambda _: self.raw.ingest_copy(user, items()),
                "ims_repo": ims,
                "orm": peer,
                "ref:ims_repo_upsert_many": ims_one_connection,
                "ref:ims_repo_then_refresh": ims_then_refresh,
                "ref:ims_repo_3_connections": lambda _: (
                    self.ims.upsert_issues(items(), user_id=user, connections=3).inserted
                ),
                "ref:floor_copy_2_connections": lambda _: self.raw.ingest_copy_parallel(
                    user, items(), connections=2
                ),
                "ref:floor_stage_upsert": lambda _: self.raw.upsert_plain(user, items()).inserted,
                "ref:plain_table": lambda _: self.raw.ingest_plain(items()),
            },
            canon=lambda impl, results: results,
            target=Target(layer_max=1 / 1.5, note="≥ 1.5x the single-connection COPY rate"),
            write=True,
            prepare=prepare,
            verify=verify,
            per_item=count,
            own_state=frozenset({"ref:plain_table"}),
        )

    def recrawl(self, name: str, *, changed: bool) -> Workload:
        count = self.plan.issues
        user = self.user(1)
        expected = (count + 1) // 2 if changed else 0

        def items() -> Iterator[dict[str, Any]]:
            if changed:
                self.revision += 1
            revision = self.revision or None
            return data.issue_items(count, revision=revision, changed=2 if revision else 0)

        def ims(_: Any) -> UpsertResult:
            with self.ims.session(user_id=user) as s:
                return s.issues.upsert_many(items())

        def peer(_: Any) -> UpsertResult:
            inserted = updated = unchanged = 0
            for batch in _batches(items(), ORM_BATCH):
                now = datetime.now(UTC)
                with self.orm.get_session(user_id=user) as session:
                    keys = [item["issue_id"] for item in batch]
                    stored = {
                        issue.issue_id: issue
                        for issue in session.query(orm.Issue).filter(orm.Issue.issue_id.in_(keys))
                    }
                    for item in batch:
                        issue = stored.get(item["issue_id"])
                        if issue is None:
                            session.add(orm.Issue(**item))
                            inserted += 1
                            continue
                        if any(getattr(issue, key) != value for key, value in item.items()):
                            updated += 1
                            for key, value in item.items():
                                setattr(issue, key, value)
                        else:
                            unchanged += 1
                        issue.last_crawled_at = now
                        issue.crawl_count += 1
            return UpsertResult(inserted=inserted, updated=updated, unchanged=unchanged)

        def prepare() -> Any:
            self._reset_issues()
            self._store_digests()
            with self.db.admin() as conn:
                row = conn.execute(
                    "SELECT clock_timestamp(), sum(crawl_count) FROM ims.issues_with_crawls"
                ).fetchone()
            return row

        def verify(before: Any) -> Any:
            started, crawls = before
            with self.db.admin() as conn:
                row = conn.execute(
                    "SELECT sum(crawl_count) - %s, count(*) FILTER (WHERE last_crawled_at > %s),"
                    " count(*) FILTER (WHERE title LIKE %s)"
                    " FROM ims.issues_with_crawls",
                    (crawls, started, f"%[rev {self.revision}]" if self.revision else "-"),
                ).fetchone()
            assert row is not None
            moved, recrawled, marked = int(row[0]), int(row[1]), int(row[2])
            if (moved, recrawled) != (count, count) or (changed and marked != expected):
                raise AssertionError(
                    f"{name}: crawl_count moved by {moved}, last_crawled_at on {recrawled} "
                    f"rows, {marked} rows of revision {self.revision} (expected {count}, "
                    f"{count}, {expected})"
                )
            # The half never changed must be exactly as first stored, whoever wrote it.
            return (moved, recrawled, marked, self._digest("IMS-%", odd_only=True))

        what = "half of them changed" if changed else "all unchanged"
        return Workload(
            name=name,
            title=f"re-crawl of {count} stored issues, {what} (floor: plain ON CONFLICT DO UPDATE)",
            ops=[None],
            impls={
                "floor": lambda _: self.raw.upsert_plain(user, items()),
                "ims_repo": ims,
                "orm": peer,
                # The digests computed on one thread while the server settles the
                # batches of another connection.
                "ref:ims_repo_2_connections": lambda _: self.ims.upsert_issues(
                    items(), user_id=user, connections=2
                ),
            },
            canon=lambda impl, results: [(r.inserted, r.updated, r.unchanged) for r in results],
            target=Target(
                layer_max=0.1 if not changed else 1.15,
                orm_min=3.0,
                note="≥ 10x faster than plain ON CONFLICT DO UPDATE" if not changed else "",
            ),
            write=True,
            prepare=prepare,
            verify=verify,
            per_item=count,
        )

    # --- the crawler's unit of work ----------------------------------------------------------

    def crawl_page(self) -> Workload:
        """Pages of fresh issues, each stored in one checkout with its children, its
        links to the crawl session and the search log (``bench.crawl_page``)."""
        user = self.user(2)
        session_id = next(
            s for s in range(1, self.plan.sessions + 1) if data.session_owner(self.plan, s) == user
        )
        pages = max(2, min(40, self.plan.issues // 2500))
        ops = [crawl_page.page_items(page, PAGE, session_id) for page in range(pages)]
        sent: dict[str, int] = {}

        def counted(name: str, store: crawl_page.Store) -> Callable[[Any], Any]:
            def run(items: list[dict[str, Any]]) -> int:
                stored, statements = store(user, session_id, items)
                sent[name] = statements
                return stored

            return run

        def prepare() -> None:
            self._reset_issues()

        def verify(_: Any) -> Any:
            return self._digest(f"{crawl_page.PREFIX}-%"), self._page_digest(session_id)

        return Workload(
            name="crawl_page",
            title=f"{pages} crawl pages of {PAGE} fresh issues with comments, history, an "
            "attachment each, session links and the search log; one checkout a page",
            ops=ops,
            impls={
                "floor": counted(
                    "floor", lambda u, s, items: crawl_page.floor_page(self.raw, u, s, items)
                ),
                "ims_repo": counted(
                    "ims_repo", lambda u, s, items: crawl_page.ims_page(self.ims, u, s, items)
                ),
                "orm": counted(
                    "orm",
                    lambda u, s, items: crawl_page.orm_page(
                        self.orm, self.orm_statements, u, s, items
                    ),
                ),
                "ref:ims_repo_import": counted(
                    "ref:ims_repo_import",
                    lambda u, s, items: crawl_page.ims_page_import(self.ims, u, s, items),
                ),
                "ref:ims_repo_per_issue": counted(
                    "ref:ims_repo_per_issue",
                    lambda u, s, items: crawl_page.ims_page_per_issue(self.ims, u, s, items),
                ),
            },
            canon=lambda impl, results: results,
            target=Target(orm_min=3.0, note="statements per page constant"),
            write=True,
            prepare=prepare,
            verify=verify,
            per_item=pages * PAGE,
            statements=sent,
        )

    def _page_digest(self, session_id: int) -> tuple[str, int]:
        """An md5 of the crawl pages' comments, history, attachments and links, and the
        number of searches logged for them."""
        like = f"{crawl_page.PREFIX}-%"
        parts = (
            "SELECT string_agg(concat_ws('|', i.issue_id, c.author, c.content, c.commented_at,"
            " c.comment_order), ',' ORDER BY i.issue_id, c.comment_order, c.commented_at,"
            " c.content) FROM ims.issue_comments AS c JOIN ims.issues AS i USING (issue_pk)"
            " WHERE i.issue_id LIKE %(like)s",
            "SELECT string_agg(concat_ws('|', i.issue_id, h.changed_at, h.changed_by,"
            " h.field_name, h.old_value, h.new_value), ',' ORDER BY i.issue_id, h.changed_at,"
            " h.field_name) FROM ims.issue_history AS h JOIN ims.issues AS i USING (issue_pk)"
            " WHERE i.issue_id LIKE %(like)s",
            "SELECT string_agg(concat_ws('|', i.issue_id, a.session_id, a.filename, a.file_type,"
            " a.file_size, a.storage_path, a.checksum_sha256, a.downloaded_at), ','"
            " ORDER BY i.issue_id, a.filename) FROM ims.attachments AS a"
            " JOIN ims.issues AS i USING (issue_pk) WHERE i.issue_id LIKE %(like)s",
            "SELECT string_agg(concat_ws('|', i.issue_id, l.session_id, l.user_id,"
            " l.crawl_order), ',' ORDER BY i.issue_id) FROM ims.session_issues AS l"
            " JOIN ims.issues AS i USING (issue_pk) WHERE i.issue_id LIKE %(like)s",
        )
        with self.db.admin() as conn:
            conn.execute("SET TimeZone = 'UTC'")
            texts = [
                str((conn.execute(part, {"like": like}).fetchone() or [None])[0]) for part in parts
            ]
            row = conn.execute(
                "SELECT count(*) FROM ims.search_queries WHERE query_text = %s AND session_id = %s",
                (crawl_page.QUERY, session_id),
            ).fetchone()
        logged = int(row[0]) if row else 0
        return "/".join(md5_hex(t) for t in texts), logged

    # --- write helpers (untimed) -------------------------------------------------------------

    def _reset_issues(self) -> None:
        """Remove issues a previous ingest added, empty the audit log, VACUUM: each
        write run starts from the same table state."""
        with self.db.admin() as conn:
            with conn.transaction():
                conn.execute("SET LOCAL session_replication_role = replica")
                # replica: no audit rows, and no ON DELETE CASCADE either (a trigger)
                for table in (
                    "issue_crawls",
                    "issue_search_stale",  # 0011, kept by a trigger the replica role skips
                    "issue_search_bounds",
                    "issue_comments",
                    "issue_history",
                    "attachments",
                    "session_issues",
                    "issues",
                ):
                    conn.execute(
                        f"DELETE FROM ims.{table} WHERE issue_pk > %s", (self.plan.issues,)
                    )
                conn.execute(
                    "DELETE FROM ims.search_queries WHERE query_text = %s", (crawl_page.QUERY,)
                )
                conn.execute("TRUNCATE ims.audit_log, public.plain_issues")
            conn.execute("VACUUM ANALYZE ims.issues")

    def _store_digests(self) -> None:
        """Give every stored issue the digest an ims_repo crawl of its current content
        leaves in ``ims.issue_crawls``: the state of a crawler that stores its issues
        with ims_repo (the bulk load bypasses the layer, and the floor's and the ORM's
        rewrites of every row make the database forget the digests)."""
        revision = self.revision or None
        changed = 2 if revision else 0
        current = data.issue_items(self.plan.issues, revision=revision, changed=changed)
        rows = ((issue["issue_id"], _digest_of(issue)) for issue in current)
        with self.db.admin() as conn:
            with conn.transaction():
                conn.execute(
                    "CREATE TEMP TABLE bench_digests (issue_id text PRIMARY KEY,"
                    " content_hash bytea NOT NULL) ON COMMIT DROP"
                )
                with conn.cursor().copy("COPY bench_digests FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "bytea"])
                    for row in rows:
                        copy.write_row(row)
                conn.execute(
                    "INSERT INTO ims.issue_crawls (issue_pk, last_crawled_at, content_hash)"
                    " SELECT i.issue_pk, i.last_crawled_at, d.content_hash"
                    " FROM bench_digests AS d JOIN ims.issues AS i USING (issue_id)"
                    " ON CONFLICT (issue_pk) DO UPDATE SET content_hash = EXCLUDED.content_hash"
                )
            conn.execute("VACUUM ANALYZE ims.issue_crawls")

    def _digest(self, pattern: str, *, odd_only: bool = False) -> tuple[int, int, str]:
        """Row count, crawl_count total and an md5 of the content of the issues whose
        ``issue_id`` matches ``pattern``."""
        parity = "AND issue_pk %% 2 = 0" if odd_only else ""  # issue n has issue_pk n + 1
        with self.db.admin() as conn:
            conn.execute("SET TimeZone = 'UTC'")
            row = conn.execute(
                "SELECT count(*), coalesce(sum(crawl_count), 0), md5(string_agg("
                "concat_ws('|', issue_id, title, description, product, module, version, status,"
                " priority, severity, reporter, assignee, issue_created_at, issue_updated_at,"
                " url, raw_data::text), ',' ORDER BY issue_id))"
                f" FROM ims.issues_with_crawls WHERE issue_id LIKE %s {parity}",
                (pattern,),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]) if not odd_only else 0, str(row[2])


# --- turning each implementation's results into comparable records ---------------------------


def issue_record(value: Any) -> Issue:
    if isinstance(value, Issue):
        return value
    return Issue.model_validate({name: getattr(value, name) for name in Issue.model_fields})


def session_record(value: Any) -> CrawlSession:
    if isinstance(value, CrawlSession):
        return value
    return CrawlSession.model_validate(
        {name: getattr(value, name) for name in CrawlSession.model_fields}
    )


def detail_record(value: Any) -> IssueDetail:
    if isinstance(value, IssueDetail):
        return value
    fields = {name: getattr(value, name) for name in Issue.model_fields}
    return IssueDetail.model_validate(
        {
            **fields,
            "comments": [_fields(IssueComment, c) for c in value.comments],
            "history": [_fields(IssueHistory, h) for h in value.history],
            "attachments": [_fields(Attachment, a) for a in value.attachments],
        }
    )


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_of(issue: dict[str, Any]) -> bytes:
    identity = item_digest(issue)
    assert identity is not None, "bench items are plain dicts"
    return identity[1]


def _fields(model: Any, value: Any) -> dict[str, Any]:
    return {name: getattr(value, name) for name in model.model_fields}


def _canon_maybe(convert: Callable[[Any], Any]) -> Callable[[str, list[Any]], Any]:
    return lambda impl, results: [None if r is None else convert(r) for r in results]


def _canon_list(convert: Callable[[Any], Any]) -> Callable[[str, list[Any]], Any]:
    return lambda impl, results: [[convert(item) for item in r] for r in results]


def _canon_search(impl: str, results: list[Any]) -> Any:
    return [
        [
            hit if isinstance(hit, SearchHit) else SearchHit.model_validate(dict(hit._mapping))
            for hit in r
        ]
        for r in results
    ]


def _canon_aggregate(impl: str, results: list[Any]) -> Any:
    canon: list[Any] = []
    for result in results:
        if isinstance(result, list):  # the ORM's (product, count) rows
            canon.append({product: int(count) for product, count in result})
        elif isinstance(result, tuple) or hasattr(result, "_mapping"):
            avg, low, high = tuple(result)
            canon.append(DurationStats(avg=avg, min=low, max=high))
        else:
            canon.append(result)
    return canon


def _batches(items: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
