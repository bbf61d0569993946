"""Hostile input through every surface that takes text today.

Each string either works as plain data (stored and read back verbatim, matched only by
itself) or is refused with ``InvalidInput`` before any SQL is sent; afterwards the schema
is unchanged and the tables hold exactly the rows the test wrote. NUL (U+0000), which
PostgreSQL cannot store, is refused everywhere before SQL.

``HOSTILE`` is a module-level list so the other repositories' tests can reuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg import sql

from ims_repo import Database, InvalidInput, Session
from ims_repo.core.records.types import INDEXED_TEXT_MAX
from tests.seed import people

T = TypeVar("T")

HOSTILE: list[str] = [
    # quotes and the classic
    "'",
    "''",
    '"',
    "`",
    "'; DROP TABLE ims.users; --",
    '"; DROP TABLE ims.users; --',
    "x' OR '1'='1",
    "') OR TRUE; --",
    "1; DELETE FROM ims.users",
    "; SELECT pg_sleep(10); --",
    "' UNION SELECT usename, passwd FROM pg_shadow --",
    # comments
    "/* */",
    "*/ DROP TABLE ims.users; /*",
    "-- trailing comment",
    # dollar quoting and placeholders of every layer (PostgreSQL, psycopg, the loader)
    "$$",
    "$$; DROP TABLE ims.users; $$",
    "$tag$ x $tag$",
    "$1",
    "$1; DROP TABLE ims.users",
    "%s",
    "%(x)s",
    "%%",
    "%",
    ":name",
    ":user_id",
    "{filters}",
    "{order_by}",
    "?",
    # sort keys and identifiers
    "user_id DESC, (SELECT 1)",
    "user_id; DROP TABLE ims.users",
    # backslashes and escapes
    "\\",
    "\\'",
    "\\\\'",
    "E'\\x27'",
    "\\x27",
    # Unicode look-alikes and direction marks
    "\uff07 OR \uff071\uff07=\uff071",  # fullwidth apostrophes
    "\u02bc; DROP TABLE ims.users; --",  # modifier letter apostrophe
    "\u2018\u2019\u201c\u201d",  # curly quotes
    "\u202eresu\u202c",  # right-to-left override
    "\u200f\u200e\u200b\ufeff",  # RTL/LTR marks, zero-width space, BOM
    "한국어 '테스트'",
    "😀'--",
    # psql meta-commands
    "\\! rm -rf /",
    "\\c postgres",
    "\\gexec",
    # JSON and JSON-path look-alikes
    "$.a[*] ? (@ > 1)",
    '$.** ? (@ like_regex ".*")',
    '{"a": 1}',
    "[1, 2]",
    "null",
    "NULL",
    "true",
    # whitespace and emptiness
    "\r\n\t",
    " ",
    "",
    # large (compressible, so the btree indexes on username and product accept them)
    "'" * 100_000,
    "'; DROP TABLE ims.users; --" * 4_000,
]

NUL_STRINGS: list[str] = ["\x00", "a\x00b", "'\x00'; DROP TABLE ims.users; --"]

_SCHEMA_FINGERPRINT = """
SELECT 'relation', c.relname, c.relkind::text,
       c.relrowsecurity::text || '/' || c.relforcerowsecurity::text,
       coalesce(c.relacl::text, '')
FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'ims'::regnamespace
UNION ALL
SELECT 'column', c.relname || '.' || a.attname, format_type(a.atttypid, a.atttypmod),
       a.attnotnull::text, coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_catalog.pg_attribute AS a
JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = 'ims'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'policy', c.relname || '.' || p.polname, p.polcmd::text,
       coalesce(pg_get_expr(p.polqual, p.polrelid), ''),
       coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_catalog.pg_policy AS p
JOIN pg_catalog.pg_class AS c ON c.oid = p.polrelid
WHERE c.relnamespace = 'ims'::regnamespace
UNION ALL
SELECT 'function', p.oid::regprocedure::text, md5(p.prosrc), p.prosecdef::text,
       coalesce(p.proacl::text, '')
FROM pg_catalog.pg_proc AS p
WHERE p.pronamespace = 'ims'::regnamespace
UNION ALL
SELECT 'trigger', c.relname || '.' || t.tgname, t.tgenabled::text, t.tgfoid::regproc::text, ''
FROM pg_catalog.pg_trigger AS t
JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'ims'::regnamespace AND NOT t.tgisinternal
UNION ALL
SELECT 'role', r.rolname, r.rolsuper::text, r.rolbypassrls::text, r.rolcanlogin::text
FROM pg_catalog.pg_roles AS r
WHERE r.rolname IN ('ims_app', 'ims_owner')
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Snapshot:
    """The schema ``ims`` (tables, columns, policies, functions, triggers, roles) and the
    row count of every table, read by the superuser."""

    schema: list[tuple[Any, ...]]
    rows: dict[str, int]


def snapshot(owner_url: str) -> Snapshot:
    with psycopg.connect(owner_url) as conn:
        schema = conn.execute(_SCHEMA_FINGERPRINT).fetchall()
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT relname FROM pg_catalog.pg_class "
                "WHERE relnamespace = 'ims'::regnamespace AND relkind = 'r' ORDER BY relname"
            )
        ]
        rows: dict[str, int] = {}
        for table in tables:
            query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("ims", table))
            row = conn.execute(query).fetchone()
            assert row is not None
            rows[table] = row[0]
    assert len(schema) > 100 and "users" in rows  # the fingerprint does see the schema
    return Snapshot(schema, rows)


def assert_only_wrote(before: Snapshot, owner_url: str, **added: int) -> None:
    """The schema is as it was, and each table gained exactly ``added[table]`` rows."""
    after = snapshot(owner_url)
    assert after.schema == before.schema
    expected = {table: count + added.get(table, 0) for table, count in before.rows.items()}
    assert after.rows == expected


def outcome(s: Session, call: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``call(…)``'s result, or None when it was refused with InvalidInput before SQL."""
    sent = s.statements_sent
    try:
        return call(*args, **kwargs)
    except InvalidInput:
        assert s.statements_sent == sent, "InvalidInput came from the server, after SQL"
        return None


def is_plain_pattern(text: str) -> bool:
    """A LIKE pattern that matches exactly itself (no wildcards, no escapes)."""
    return not any(char in text for char in "%_\\")


def short(text: str) -> str:
    return repr(text if len(text) < 60 else text[:60] + "…")


def test_the_corpus_is_hostile_enough() -> None:
    assert len(HOSTILE) >= 30
    assert len(set(HOSTILE)) == len(HOSTILE)  # each one makes a distinct user below
    assert max(map(len, HOSTILE)) >= 100_000
    assert not any("\x00" in text for text in HOSTILE)
    assert all("\x00" in text for text in NUL_STRINGS)


def test_users_store_and_find_hostile_text_verbatim(ims_db: Database, ims_admin_url: str) -> None:
    people(ims_db, ims_admin_url)
    before = snapshot(ims_admin_url)
    created = {}
    with ims_db.session() as s:
        for number, text in enumerate(HOSTILE):
            user = outcome(
                s,
                s.users.create,
                {
                    "username": text,
                    "email": f"user{number}@example.com",
                    "full_name": text,
                    "department": text,
                    "preferences": {text: text, "list": [text], "nested": {text: [text]}},
                },
            )
            if user is None:
                # a username needs 1 to INDEXED_TEXT_MAX characters (a B-tree key)
                assert not 0 < len(text) <= INDEXED_TEXT_MAX, short(text)
                continue
            assert (user.username, user.full_name, user.department) == (text, text, text)
            assert user.preferences == {text: text, "list": [text], "nested": {text: [text]}}
            created[text] = user
        mailed = 0
        for number, text in enumerate(HOSTILE):
            email = f"{text}{number}@example.com"
            user = outcome(s, s.users.create, {"username": f"m{number}", "email": email})
            if user is not None:
                assert user.email == email, short(text)
                mailed += 1
        assert 15 <= mailed < len(HOSTILE)  # some are valid addresses, spaces are not

    with ims_db.session() as s:
        everyone = len(s.users.find())
        for text, user in created.items():
            assert s.users.get(user.user_id) == user, short(text)
            assert s.users.get_by_username(text) == user, short(text)
            assert s.users.find(username=text) == [user], short(text)
            assert s.users.find(full_name=text, department=text) == [user], short(text)
            assert s.users.find(username_in=[text, "nobody"]) == [user], short(text)
            others = s.users.find(username_not=text)
            assert len(others) == everyone - 1 and user not in others, short(text)
            if is_plain_pattern(text):  # other patterns: test_like_patterns_are_data
                assert s.users.find(username_like=text) == [user], short(text)
            assert [r.user for r in s.users.with_sessions(username=text)] == [user], short(text)
        for text, user in created.items():  # the update path (a JSON document of changes)
            changed = s.users.update(user.user_id, department="d" + text, full_name=None)
            assert (changed.department, changed.full_name) == ("d" + text, None), short(text)
        assert s.users.get_by_username("") is None

    users = len(created) + mailed
    assert_only_wrote(before, ims_admin_url, users=users, audit_log=users + len(created))


def test_crawl_sessions_store_and_find_hostile_text_verbatim(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    before = snapshot(ims_admin_url)
    created = {}
    with ims_db.session(user_id=p.alice) as s:
        for text in HOSTILE:
            metadata = {text: {text: text}, "k": text, "list": [text]}
            crawled = outcome(
                s,
                s.crawl_sessions.create,
                {
                    "user_id": p.alice,
                    "product": text,
                    "original_query": text,
                    "parsed_query": text,
                    "query_language": text,
                    "data_path": text,
                    "session_metadata": metadata,
                },
            )
            if crawled is None:
                # a product needs 1 to INDEXED_TEXT_MAX characters (a B-tree key)
                assert not 0 < len(text) <= INDEXED_TEXT_MAX, short(text)
                continue
            assert (crawled.product, crawled.original_query, crawled.parsed_query) == (
                text,
                text,
                text,
            )
            assert (crawled.query_language, crawled.data_path) == (text, text)
            assert crawled.session_metadata == metadata
            created[text] = crawled

    with ims_db.session(user_id=p.alice) as s:
        for text, crawled in created.items():
            found = [crawled]
            assert s.crawl_sessions.get(crawled.session_id) == crawled, short(text)
            assert s.crawl_sessions.find(product=text) == found, short(text)
            assert s.crawl_sessions.find(original_query=text, data_path=text) == found
            assert s.crawl_sessions.find(query_language=text) == found, short(text)
            assert s.crawl_sessions.find(product_in=[text, "nothing"]) == found, short(text)
            if is_plain_pattern(text):
                assert s.crawl_sessions.find(original_query_like=text) == found, short(text)
            crawls = s.crawl_sessions
            assert crawls.find_by_metadata(path=[text, text], equals=text) == found
            assert crawls.find_by_metadata(path=["list"], equals=[text]) == found
            assert crawls.find_by_metadata(path=["missing", text], equals=text) == []
            assert crawls.with_metadata_key(text) == found, short(text)
            assert crawls.metadata_contains({"k": text}) == found, short(text)
            assert crawls.metadata_contains({text: {text: text}}) == found, short(text)
        for text, crawled in created.items():  # the update path
            changed = s.crawl_sessions.update(crawled.session_id, data_path="/d/" + text)
            assert changed.data_path == "/d/" + text, short(text)
    with ims_db.session(user_id=p.bob) as s:  # still someone else's rows
        assert s.crawl_sessions.find(product=HOSTILE[4]) == []
        assert s.crawl_sessions.with_metadata_key(HOSTILE[4]) == []

    n = len(created)
    assert_only_wrote(before, ims_admin_url, crawl_sessions=n, audit_log=2 * n)


def test_hostile_filter_names_order_keys_and_keys_are_refused_before_sql(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    before = snapshot(ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        for text in [*HOSTILE, *NUL_STRINGS]:
            for repo, key in ((s.users, "user_id"), (s.crawl_sessions, "session_id")):
                for name in (text, f"{text}_like", f"{text}_in", f"has_{text}", f"{key} {text}"):
                    with pytest.raises(InvalidInput, match="unknown filter"):
                        repo.find(**{name: "x"})  # type: ignore[arg-type]
                for order_by in ([text], [f"-{text}"], [key, text], text):
                    with pytest.raises(InvalidInput, match="order_by"):
                        repo.find(order_by=order_by)
            with pytest.raises(InvalidInput):
                s.users.with_sessions(**{text: 1})  # type: ignore[arg-type]
            with pytest.raises(InvalidInput, match="not a UUID"):
                s.crawl_sessions.get_by_uuid(text)
            with pytest.raises(InvalidInput, match="user_id must be an int"):
                s.set_user(text)  # type: ignore[arg-type]
            with pytest.raises(InvalidInput):
                s.users.update(p.alice, **{text: "x"})
        assert s.statements_sent == 0
    with pytest.raises(InvalidInput), ims_db.session(user_id=HOSTILE[4]):  # type: ignore[arg-type]
        pass
    assert_only_wrote(before, ims_admin_url)


def ends_in_escape(text: str) -> bool:
    """Whether a LIKE pattern ends in an unpaired backslash (its escape character)."""
    return (len(text) - len(text.rstrip("\\"))) % 2 == 1


def test_like_patterns_are_data(ims_db: Database, ims_admin_url: str) -> None:
    """Every string is a LIKE pattern and nothing more: wildcards may widen the match
    (``%`` matches every name), but no pattern is ever read as SQL."""
    p = people(ims_db, ims_admin_url)
    before = snapshot(ims_admin_url)
    names = {"alice", "bob", "root.admin"}
    with ims_db.session(user_id=p.alice) as s:
        for text in HOSTILE:
            if ends_in_escape(text):
                continue  # test_like_pattern_ending_in_an_escape_is_refused_before_sql
            found = {user.username for user in s.users.find(username_like=text)}
            assert found <= names, short(text)
            assert (found == names) == (text in ("%", "%%")), short(text)
            sessions = s.crawl_sessions.find(product_like=text, original_query_like=text)
            assert sessions == [], short(text)
        assert s.statements_sent == 2 * len([t for t in HOSTILE if not ends_in_escape(t)])
    assert_only_wrote(before, ims_admin_url)


def test_like_pattern_ending_in_an_escape_is_refused_before_sql(
    ims_db: Database, ims_admin_url: str
) -> None:
    # The server complains only when it evaluates the pattern against a row, so the
    # outcome depends on the plan: email has no index of its own, every row is compared.
    people(ims_db, ims_admin_url)
    patterns = [text for text in HOSTILE if ends_in_escape(text)]
    assert patterns == ["\\"]
    with ims_db.session() as s:
        for text in patterns:
            with pytest.raises(InvalidInput, match="cannot end with the escape character"):
                s.users.find(email_like=text)
        assert s.statements_sent == 0


# --- NUL ------------------------------------------------------------------------------

Call = Callable[[Session, int, str], object]


def new_user(**fields: Any) -> dict[str, Any]:
    return {"username": "u", "email": "u@example.com"} | fields


def new_crawl(user_id: int, **fields: Any) -> dict[str, Any]:
    return {"user_id": user_id, "product": "OpenFrame", "original_query": "q"} | fields


NUL_SURFACES: dict[str, Call] = {
    "users.find value": lambda s, u, t: s.users.find(username=t),
    "users.find _not": lambda s, u, t: s.users.find(full_name_not=t),
    "users.find _in": lambda s, u, t: s.users.find(username_in=["a", t]),
    "users.find _like": lambda s, u, t: s.users.find(email_like=t),
    "users.with_sessions value": lambda s, u, t: s.users.with_sessions(department=t),
    "users.get_by_username": lambda s, u, t: s.users.get_by_username(t),
    "NewUser.username": lambda s, u, t: s.users.create(new_user(username=t)),
    "NewUser.email": lambda s, u, t: s.users.create(new_user(email=f"a{t}@example.com")),
    "NewUser.full_name": lambda s, u, t: s.users.create(new_user(full_name=t)),
    "NewUser.department": lambda s, u, t: s.users.create(new_user(department=t)),
    "NewUser.preferences key": lambda s, u, t: s.users.create(new_user(preferences={t: 1})),
    "NewUser.preferences value": lambda s, u, t: s.users.create(
        new_user(preferences={"a": [{"b": t}]})
    ),
    "users.update": lambda s, u, t: s.users.update(u, full_name=t),
    "crawl_sessions.find value": lambda s, u, t: s.crawl_sessions.find(product=t),
    "crawl_sessions.find _like": lambda s, u, t: s.crawl_sessions.find(data_path_like=t),
    "NewCrawlSession.product": lambda s, u, t: s.crawl_sessions.create(new_crawl(u, product=t)),
    "NewCrawlSession.original_query": lambda s, u, t: s.crawl_sessions.create(
        new_crawl(u, original_query=t)
    ),
    "NewCrawlSession.parsed_query": lambda s, u, t: s.crawl_sessions.create(
        new_crawl(u, parsed_query=t)
    ),
    "NewCrawlSession.query_language": lambda s, u, t: s.crawl_sessions.create(
        new_crawl(u, query_language=t)
    ),
    "NewCrawlSession.data_path": lambda s, u, t: s.crawl_sessions.create(new_crawl(u, data_path=t)),
    "NewCrawlSession.session_metadata key": lambda s, u, t: s.crawl_sessions.create(
        new_crawl(u, session_metadata={t: 1})
    ),
    "NewCrawlSession.session_metadata value": lambda s, u, t: s.crawl_sessions.create(
        new_crawl(u, session_metadata={"a": t})
    ),
    "crawl_sessions.update": lambda s, u, t: s.crawl_sessions.update(1, parsed_query=t),
    "find_by_metadata path": lambda s, u, t: s.crawl_sessions.find_by_metadata(
        path=["a", t], equals=1
    ),
    "find_by_metadata equals": lambda s, u, t: s.crawl_sessions.find_by_metadata(
        path=["a"], equals={"b": t}
    ),
    "with_metadata_key": lambda s, u, t: s.crawl_sessions.with_metadata_key(t),
    "metadata_contains key": lambda s, u, t: s.crawl_sessions.metadata_contains({t: 1}),
    "metadata_contains value": lambda s, u, t: s.crawl_sessions.metadata_contains({"a": [t]}),
    "crawl_sessions.get_by_uuid": lambda s, u, t: s.crawl_sessions.get_by_uuid(t),
}


def refuse_nul(db: Database, user_id: int, surfaces: list[str]) -> None:
    for surface in surfaces:
        call = NUL_SURFACES[surface]
        with db.session(user_id=user_id) as s:
            for text in NUL_STRINGS:
                with pytest.raises(InvalidInput):
                    call(s, user_id, text)
            assert s.statements_sent == 0, surface


def test_nul_is_refused_before_sql(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    before = snapshot(ims_admin_url)
    refuse_nul(ims_db, p.alice, list(NUL_SURFACES))
    assert_only_wrote(before, ims_admin_url)
