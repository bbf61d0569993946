"""The benchmark's database and its deterministic data.

``BenchDatabase`` creates a fresh database (``ims_bench_<pid>``) on the server named by
``IMS_BENCH_DATABASE_URL`` (a superuser URL; default the local server as ``postgres``),
migrates it with ``ims_repo.services.migrations.migrate``, creates a runtime login with
``ims_repo.services.migrations.grant_login`` and drops both at the end.

``load`` fills it once per run with binary COPY as the superuser (triggers off, so the
load itself writes no audit rows), then ``VACUUM ANALYZE``. Every value is a pure
function of the issue's (or session's) number, so a re-crawl can regenerate exactly
what is stored (``issue_items``) without keeping it in memory, at any size.

Sizes for ``--size N`` issues (``Plan``): the shape of a busy tracker, 0-10 comments (5 on
average) and 0-6 history rows (3 on average) per issue, an attachment on every fifth,
``min(100, max(5, N // 1000))`` users (user 1 an admin), and
``N // 5`` crawl sessions spread over the ordinary users.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from ims_repo.services.migrations import grant_login, migrate, rollback, status

URL_VARIABLE = "IMS_BENCH_DATABASE_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

PRODUCTS = (
    "OpenFrame",
    "OpenFrame Batch",
    "OpenFrame OSC",
    "Tibero",
    "ProObject",
    "JEUS",
    "WebtoB",
    "AnyLink",
    "HyperData",
    "ProFrame",
)
STATUSES = ("New", "Open", "In Progress", "Resolved", "Closed", "Open", "Closed", "Open")
PRIORITIES = ("Low", "Medium", "High", "Critical")
SEVERITIES = ("Minor", "Major", "Critical", "Blocker")
MODULES = ("core", "batch", "online", "security", "network", "storage", "ui", "install")
VERSIONS = ("7.0", "7.1", "7.2", "7.3", "8.0", "8.1")
PEOPLE = tuple(f"dev{n:02d}" for n in range(40))


_PERIOD = 10007


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SESSION_STATUSES = ("completed",) * 6 + ("failed", "running", "pending", "cancelled")

_EN = _words(
    "connection timeout memory leak server database transaction log batch job failure "
    "performance degradation configuration file permission network latency response crash "
    "deadlock query index cache session login upgrade install compile error exception thread "
    "pool socket buffer overflow disk lock replication backup restore encoding charset "
    "scheduler queue dispatcher listener handshake certificate cluster failover heartbeat"
)
_KO = _words(
    "연결 연결이 시간이 초과 초과되었습니다 오류 오류가 발생 메모리 메모리가 누수 서버 "
    "서버에서 데이터베이스 트랜잭션 로그 배치 작업 작업이 실패 실패했습니다 성능 저하 설정 "
    "파일 권한 네트워크 지연 응답 응답이 없음 교착 상태 인덱스 캐시 세션 로그인 업그레이드 설치"
)

SEARCH_EN = (
    "connection timeout",
    "memory leak",
    "deadlock",
    "database replication",
    "crash or hang",
    '"connection pool"',
    "server -network",
    "batch job failure",
    "certificate handshake",
    "disk buffer overflow",
)
SEARCH_KO = (
    "연결 오류",
    "메모리 누수",
    "시간",
    "서버 응답",
    "트랜잭션 교착",
    "배치 작업",
    "네트워크 지연",
    "로그인 실패",
    "설정 파일",
    "성능 저하",
)


# Where the words the search workloads look for sit in the Zipf ranking of their
# language's vocabulary (rank 1 = most frequent): some queries match a large share of the
# issues, others a few dozen, as in a real tracker.
_EN_RANKS = {
    "server": 10,
    "database": 15,
    "connection": 20,
    "network": 30,
    "failure": 35,
    "memory": 40,
    "batch": 50,
    "timeout": 60,
    "job": 70,
    "crash": 80,
    "disk": 90,
    "pool": 120,
    "leak": 150,
    "buffer": 200,
    "hang": 250,
    "deadlock": 300,
    "replication": 400,
    "overflow": 500,
    "certificate": 600,
    "handshake": 800,
}
# "시간" (time) is never a word on its own here, only with its particle ("시간이"): the
# query "시간" finds it by full text as a word start ('시간':*, migration 0009); before
# 0009 it took the title-text path, a scan of every title (too short for trigrams).
_KO_RANKS = {
    "서버": 10,
    "연결": 15,
    "오류": 20,
    "작업": 30,
    "시간이": 40,
    "네트워크": 50,
    "실패": 60,
    "배치": 70,
    "응답": 90,
    "설정": 110,
    "파일": 130,
    "메모리": 150,
    "성능": 180,
    "지연": 220,
    "저하": 260,
    "로그인": 300,
    "누수": 400,
    "트랜잭션": 500,
    "교착": 700,
}
_VOCABULARY = 2000
_SYLLABLES_EN = _words("ka lo mi re tu sa ne vo pi da gu ri xe no bel tor vin mar qua zen")
_SYLLABLES_KO = _words("가 나 다 라 마 바 사 아 자 차 카 타 파 하 고 노 도 로 모 보")


def _vocabulary(words: Sequence[str], ranks: dict[str, int], syllables: Sequence[str]) -> list[str]:
    """``_VOCABULARY`` words in frequency order: ``ranks`` placed where they say, the other
    real ``words`` next, then made-up words of three syllables."""
    filler = [w for w in words if w not in ranks]
    made_up = (a + b + c for a in syllables for b in syllables for c in syllables)
    vocabulary: list[str] = []
    for rank in range(1, _VOCABULARY + 1):
        if rank in ranks.values():
            vocabulary.append(next(w for w, r in ranks.items() if r == rank))
        elif filler:
            vocabulary.append(filler.pop(0))
        else:
            vocabulary.append(next(made_up))
    return vocabulary


def _pools() -> dict[str, list[Any]]:
    """Value pools drawn once from a fixed seed; issue fields index into them. Text is
    drawn from a Zipf distribution (s = 1) over a 2,000-word vocabulary per language."""
    rng = random.Random(20240605)
    weights = list(itertools.accumulate(1 / rank for rank in range(1, _VOCABULARY + 1)))
    english = _vocabulary(_EN, _EN_RANKS, _SYLLABLES_EN)
    korean = _vocabulary(_KO, _KO_RANKS, _SYLLABLES_KO)

    def text(words: Sequence[str], low: int, high: int) -> str:
        return " ".join(rng.choices(words, cum_weights=weights, k=rng.randint(low, high)))

    titles: list[str] = []
    descriptions: list[str] = []
    for n in range(_PERIOD):
        words = korean if n % 5 == 0 else english  # a fifth of the issues are Korean
        titles.append(text(words, 3, 7))
        descriptions.append(text(words, 15, 40))
    comments = [text(korean if n % 5 == 0 else english, 5, 25) for n in range(2003)]
    raw = [
        {
            "source": "ims",
            "labels": rng.sample(["regression", "customer", "p1", "hotfix", "doc", "perf"], 2),
            "custom": {"site": rng.choice(["seoul", "busan", "pangyo"]), "tier": rng.randint(1, 3)},
            **({"lang": "ko"} if n % 5 == 0 else {}),
        }
        for n in range(503)
    ]
    metadata = [
        {
            "crawler_version": "1.0.0",
            "nl_parsing": {"method": "rule_based", "confidence": 0.9},
        },
        {"crawler_version": "1.1.0", "nl_parsing": {"method": "llm", "model": "small"}},
        {"nl_parsing": {"method": "rule_based"}},
        {},
        {"crawler_version": "2.0.0", "retries": 2},
        {"crawler_version": "1.1.0", "nl_parsing": {"method": "rule_based"}, "proxy": True},
        {"retries": 1},
    ]
    return {
        "titles": titles,
        "descriptions": descriptions,
        "comments": comments,
        "raw": raw,
        "metadata": metadata,
    }


POOLS = _pools()
_TITLES: list[str] = POOLS["titles"]
_DESCRIPTIONS: list[str] = POOLS["descriptions"]
_COMMENTS: list[str] = POOLS["comments"]
_RAW: list[dict[str, Any]] = POOLS["raw"]
_METADATA: list[dict[str, Any]] = POOLS["metadata"]
_BASE = datetime(2024, 1, 1, tzinfo=UTC)
_YEAR = 365 * 86400


_TABLES: dict[int, list[int]] = {}


def _pick(n: int, salt: int, length: int) -> int:
    """A value in ``range(length)`` for item ``n``, independent across salts (each salt has
    its own random table), so no two fields of an issue are correlated by arithmetic."""
    table = _TABLES.get(salt)
    if table is None:
        rng = random.Random(salt)
        table = _TABLES[salt] = [rng.getrandbits(31) for _ in range(_PERIOD)]
    return (table[n % _PERIOD] + n // _PERIOD) % length


# --- sizes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What ``--size N`` means: the row counts and the work each workload does."""

    issues: int
    users: int = field(init=False)
    sessions: int = field(init=False)

    def __post_init__(self) -> None:
        if self.issues < 50:
            raise ValueError("--size must be at least 50 issues")
        object.__setattr__(self, "users", min(100, max(5, self.issues // 1000)))
        object.__setattr__(self, "sessions", max(20, self.issues // 5))

    @property
    def admin(self) -> int:
        return 1

    @property
    def ordinary_users(self) -> list[int]:
        return list(range(2, self.users + 1))


# --- issues and their children -------------------------------------------------------------


def issue_id(n: int, prefix: str = "IMS") -> str:
    return f"{prefix}-{n:07d}"


def _column(salt: int, values: Sequence[Any]) -> list[Any]:
    """One field's values for the ``_PERIOD`` slots, drawn by its own random table."""
    return [values[_pick(k, salt, len(values))] for k in range(_PERIOD)]


# Per-field value tables: an issue's fields are a few list lookups (item generation runs
# inside the timed ingest and re-crawl, for all three implementations alike).
_F_TITLE = _column(104729, _TITLES)
_F_DESCRIPTION = _column(104729, _DESCRIPTIONS)  # same salt: the title's own description
_F_PRODUCT = _column(31, PRODUCTS)
_F_MODULE = _column(37, MODULES)
_F_VERSION = _column(41, VERSIONS)
_F_STATUS = _column(43, STATUSES)
_F_PRIORITY = _column(47, PRIORITIES)
_F_SEVERITY = _column(53, SEVERITIES)
_F_REPORTER = _column(59, PEOPLE)
_F_ASSIGNEE = _column(61, (*PEOPLE[:8], None))  # one issue in nine unassigned
_F_CREATED = [_BASE + timedelta(seconds=_pick(k, 7919, _YEAR)) for k in range(_PERIOD)]
_F_UPDATED = [
    created + timedelta(seconds=_pick(k, 65537, 30 * 86400)) for k, created in enumerate(_F_CREATED)
]
_F_RAW = _column(67, _RAW)


def _slot(n: int) -> int:
    return (n + n // _PERIOD) % _PERIOD


def issue_item(n: int, prefix: str = "IMS", revision: int | None = None) -> dict[str, Any]:
    """Issue ``n`` as a crawler hands it over (a mapping of ``NewIssue`` fields).

    ``revision`` marks a changed re-crawl: title and description gain ``[rev N]``.
    """
    key = f"{prefix}-{n:07d}"
    k = _slot(n)
    title = _F_TITLE[k]
    description = _F_DESCRIPTION[k]
    if revision is not None:
        title = f"{title} [rev {revision}]"
        description = f"{description} [rev {revision}]"
    return {
        "issue_id": key,
        "title": title,
        "description": description,
        "product": _F_PRODUCT[k],
        "module": _F_MODULE[k],
        "version": _F_VERSION[k],
        "status": _F_STATUS[k],
        "priority": _F_PRIORITY[k],
        "severity": _F_SEVERITY[k],
        "reporter": _F_REPORTER[k],
        "assignee": _F_ASSIGNEE[k],
        "issue_created_at": _F_CREATED[k],
        "issue_updated_at": _F_UPDATED[k],
        "url": f"https://ims.example.com/issues/{key}",
        "raw_data": {**_F_RAW[k], "seq": n},
    }


def issue_items(
    count: int,
    prefix: str = "IMS",
    *,
    revision: int | None = None,
    changed: int = 0,
) -> Iterator[dict[str, Any]]:
    """Issues ``0 .. count-1`` (streamed). Every ``changed``-th issue (``changed=2``:
    the even ones) carries ``revision``; the others are as first stored."""
    for n in range(count):
        marked = revision if changed and n % changed == 0 else None
        yield issue_item(n, prefix, marked)


def comments(n: int, created: datetime) -> Iterator[tuple[Any, ...]]:
    """Issue ``n``'s comments: (author, content, commented_at, comment_order)."""
    for order in range(_pick(n, 89, 11)):  # 0..10, 5 on average
        yield (
            PEOPLE[_pick(n + order, 71, len(PEOPLE))],
            _COMMENTS[_pick(n * 7 + order, 73, len(_COMMENTS))],
            created + timedelta(hours=order + 1),
            order + 1 if _pick(n + order, 101, 11) else None,
        )


def history(n: int, created: datetime) -> Iterator[tuple[Any, ...]]:
    """Issue ``n``'s field changes: (changed_at, changed_by, field_name, old_value,
    new_value)."""
    for step in range(_pick(n, 97, 7)):  # 0..6, 3 on average
        name = ("status", "priority", "assignee", "severity")[(n + step) % 4]
        yield (
            created + timedelta(hours=2 * step + 1, minutes=n % 60),
            PEOPLE[_pick(n + step, 79, len(PEOPLE))],
            name,
            f"old {name} {step}",
            f"new {name} {step + 1}",
        )


# --- crawl sessions ------------------------------------------------------------------------


def session_owner(plan: Plan, s: int) -> int:
    """The ordinary user who ran session ``s`` (1-based session ids)."""
    return 2 + (s * 7919) % (plan.users - 1)


def session_row(plan: Plan, s: int) -> tuple[Any, ...]:
    status = SESSION_STATUSES[_pick(s, 13, len(SESSION_STATUSES))]
    started = _BASE + timedelta(seconds=_pick(s, 104723, _YEAR))
    finished = status in ("completed", "failed")
    duration = _pick(s, 97, 3600) + 5 if finished else None
    queries = SEARCH_KO if s % 4 == 0 else SEARCH_EN
    query = queries[_pick(s, 17, len(queries))]
    return (
        s,
        session_owner(plan, s),
        PRODUCTS[_pick(s, 19, len(PRODUCTS))],
        query,
        query.replace(" ", " & "),
        "ko" if s % 4 == 0 else "en",
        (50, 100, 200, None)[s % 4],
        status,
        started if status != "pending" else None,
        started + timedelta(seconds=duration) if duration is not None else None,
        duration,
        _pick(s, 23, 200),
        f"/data/crawl/{s}" if s % 3 else None,
        Jsonb(_METADATA[_pick(s, 29, len(_METADATA))]),
    )


# --- the database --------------------------------------------------------------------------


def rollback_to(url: str, last: str) -> list[str]:
    """Roll back every applied migration after ``last`` (an id, ``"0010.lean_writes"``),
    however many later ones there are; the ids rolled back, most recent first."""
    return rollback(url, sum(1 for name, applied in status(url) if applied and name > last))


class BenchDatabase:
    """A fresh, migrated database of its own and a runtime login, dropped by ``drop``."""

    def __init__(self, server_url: str | None = None, *, name: str | None = None) -> None:
        self.server_url = server_url or os.environ.get(URL_VARIABLE) or DEFAULT_URL
        self.name = name or f"ims_bench_{os.getpid()}"
        self.login = self.name
        self.admin_url = make_conninfo(self.server_url, dbname=self.name)
        """Superuser URL of the bench database (setup, cleanup, EXPLAIN; never timed)."""
        app = conninfo_to_dict(self.admin_url)
        app.pop("password", None)  # the runtime login has none (trust, or add it yourself)
        app["user"] = self.login
        self.app_url = make_conninfo("", **app)
        """The runtime login on the bench database: subject to RLS, as a crawler runs."""
        self._created = False

    def create(self) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(self._ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(self._ident))
        self._created = True
        migrate(self.admin_url)
        grant_login(self.admin_url, self.login)

    def drop(self) -> None:
        if not self._created:
            return
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(self._ident))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(self._ident))
        self._created = False

    @property
    def _ident(self) -> sql.Identifier:
        return sql.Identifier(self.name)

    def admin(self) -> psycopg.Connection[Any]:
        """A superuser connection (autocommit) to the bench database."""
        return psycopg.connect(self.admin_url, autocommit=True)

    def server_version(self) -> str:
        with self.admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    types: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier("ims", table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor().copy(statement) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


_ISSUE_COLUMNS = (
    "issue_pk",
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
_ISSUE_TYPES = ("int8", *("text",) * 11, "timestamptz", "timestamptz", "text", "jsonb")


def load(db: BenchDatabase, plan: Plan, *, progress: bool = False) -> None:
    """Fill the bench database: users, issues with comments, history and attachments,
    crawl sessions. Issue ``n`` gets ``issue_pk = n + 1``; session ``s`` has id ``s``."""

    def say(text: str) -> None:
        if progress:
            print(f"  load: {text}", flush=True)

    with db.admin() as conn:
        with conn.transaction():
            conn.execute("SET LOCAL session_replication_role = replica")  # no audit rows
            users = [
                (
                    u,
                    "bench.admin" if u == plan.admin else f"bench.user{u:03d}",
                    f"bench{u}@example.com",
                    "admin" if u == plan.admin else "user",
                )
                for u in range(1, plan.users + 1)
            ]
            _copy(
                conn,
                "users",
                ("user_id", "username", "email", "role"),
                ("int8", "text", "text", "text"),
                users,
            )
            say(f"{plan.issues} issues")
            _copy(conn, "issues", _ISSUE_COLUMNS, _ISSUE_TYPES, _issue_rows(plan.issues))
            say("comments, history, attachments")
            _copy(
                conn,
                "issue_comments",
                ("issue_pk", "author", "content", "commented_at", "comment_order"),
                ("int8", "text", "text", "timestamptz", "int4"),
                _child_rows(plan.issues, comments),
            )
            _copy(
                conn,
                "issue_history",
                ("issue_pk", "changed_at", "changed_by", "field_name", "old_value", "new_value"),
                ("int8", "timestamptz", "text", "text", "text", "text"),
                _child_rows(plan.issues, history),
            )
            _copy(
                conn,
                "attachments",
                (
                    "issue_pk",
                    "session_id",
                    "filename",
                    "file_type",
                    "file_size",
                    "storage_path",
                    "checksum_sha256",
                    "downloaded_at",
                ),
                ("int8", "int8", "text", "text", "int8", "text", "text", "timestamptz"),
                _attachment_rows(plan),
            )
            say(f"{plan.sessions} crawl sessions")
            _copy(
                conn,
                "crawl_sessions",
                (
                    "session_id",
                    "user_id",
                    "product",
                    "original_query",
                    "parsed_query",
                    "query_language",
                    "max_results",
                    "status",
                    "started_at",
                    "completed_at",
                    "duration_seconds",
                    "total_issues",
                    "data_path",
                    "session_metadata",
                ),
                (
                    "int8",
                    "int8",
                    "text",
                    "text",
                    "text",
                    "text",
                    "int4",
                    "text",
                    "timestamptz",
                    "timestamptz",
                    "int4",
                    "int4",
                    "text",
                    "jsonb",
                ),
                (session_row(plan, s) for s in range(1, plan.sessions + 1)),
            )
            for table, key in (
                ("users", "user_id"),
                ("issues", "issue_pk"),
                ("crawl_sessions", "session_id"),
                ("issue_comments", "comment_id"),
                ("issue_history", "history_id"),
                ("attachments", "attachment_id"),
            ):
                conn.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({}, {}), max({})) FROM {}"
                    ).format(
                        sql.Literal(f"ims.{table}"),
                        sql.Literal(key),
                        sql.Identifier(key),
                        sql.Identifier("ims", table),
                    )
                )
        say("rank bounds")  # computed off the write path (migration 0011), as a crawler would
        # The issues were copied as a replica, so the trigger that marks new issues stale
        # (issues_search_stale_insert) did not run: mark them here, or the refresh finds
        # nothing to do and every search ranks all its matches.
        conn.execute(
            "INSERT INTO ims.issue_search_stale (issue_pk)\n"
            "SELECT i.issue_pk\n"
            "FROM ims.issues AS i\n"
            "ORDER BY i.issue_pk"
        )
        row = conn.execute("SELECT ims.refresh_search_bounds(%s)", (plan.issues,)).fetchone()
        if row is None or row[0] != plan.issues:
            raise RuntimeError(f"rank bounds computed for {row and row[0]} of {plan.issues} issues")
        say("vacuum analyze")
        conn.execute("VACUUM ANALYZE")


def _issue_rows(count: int) -> Iterator[tuple[Any, ...]]:
    for n in range(count):
        item = issue_item(n)
        yield (
            n + 1,
            item["issue_id"],
            item["title"],
            item["description"],
            item["product"],
            item["module"],
            item["version"],
            item["status"],
            item["priority"],
            item["severity"],
            item["reporter"],
            item["assignee"],
            item["issue_created_at"],
            item["issue_updated_at"],
            item["url"],
            Jsonb(item["raw_data"]),
        )


def _child_rows(count: int, children: Any) -> Iterator[tuple[Any, ...]]:
    for n in range(count):
        created = _F_CREATED[_slot(n)]
        for child in children(n, created):
            yield (n + 1, *child)


def _attachment_rows(plan: Plan) -> Iterator[tuple[Any, ...]]:
    for n in range(plan.issues):
        if _pick(n, 83, 5):
            continue  # an attachment on one issue in five
        yield (
            n + 1,
            (n % plan.sessions) + 1 if n % 2 else None,
            f"trace_{n}.log",
            "text/plain",
            1024 + n % 65536,
            f"/data/files/{n}/trace_{n}.log",
            hashlib.sha256(str(n).encode()).hexdigest(),
            _BASE + timedelta(seconds=_pick(n, 7907, _YEAR)),
        )
