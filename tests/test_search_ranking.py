"""Migrations 0009 and 0011: ``ims.search_issues`` returns exactly the top of ranking every
full-text match by ``ts_rank`` (ties in issue_pk order), while finding it through the bounds
table ``ims.issue_search_bounds`` (refreshed lazily, off the write path: stale issues are
ranked exactly meanwhile); the bounds it relies on; Korean words as word starts."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from ims_repo import Database, Session
from ims_repo.services import migrations

ENGLISH = [
    "server", "connection", "timeout", "memory", "leak", "crash", "hang", "deadlock",
    "database", "replication", "network", "failure", "batch", "job", "disk", "error",
    "login", "cache", "queue", "connections", "connected", "servers",
]  # fmt: skip
KOREAN = [
    "연결", "연결이", "연결을", "시간", "시간이", "오류", "오류가", "서버", "서버에서", "메모리",
    "메모리가", "작업", "작업이", "응답", "응답이", "실패", "설정", "파일", "데이터베이스연결",
]  # fmt: skip

# Words drawn with a skew (the first ones often, a title may repeat one), so that common
# words match most issues and ranks spread and tie; half of the issues are Korean.
# (k.n * 0: the aggregate belongs to the subquery, which runs again for every issue.)
SEED = """
INSERT INTO ims.issues (issue_id, title, description, product)
SELECT 'R-' || g,
       (SELECT string_agg(v.words[k.n * 0 + 1 + floor(cardinality(v.words) * random() ^ 2)::integer], ' ')
        FROM generate_series(1, 2 + g %% 6) AS k(n)),
       (SELECT string_agg(v.words[k.n * 0 + 1 + floor(cardinality(v.words) * random() ^ 1.5)::integer], ' ')
        FROM generate_series(1, 4 + g %% 27) AS k(n)),
       CASE WHEN g %% 3 = 0 THEN 'OpenFrame' ELSE 'Tibero' END
FROM generate_series(1, %(issues)s) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g %% 2 = 0 THEN %(korean)s::text[] ELSE %(english)s::text[] END AS words
) AS v
"""

QUERIES = [
    "server",
    "connection timeout",
    "connections",
    "crash or hang",
    "server -network",
    "timeout -crash",
    "memory leak",
    '"connection timeout"',
    "error or login or cache",
    "database replication failure",
    "deadlock",
    "시간",
    "연결 오류",
    "서버 응답",
    "메모리",
    "시간 or 작업",
]

PLAIN = """
SELECT i.issue_id, ts_rank(i.search_vector, q.tsq) AS rank
FROM ims.issues AS i, (SELECT ims.search_tsquery(%(query)s) AS tsq) AS q
WHERE i.search_vector @@ q.tsq
  AND (%(product)s::text IS NULL OR i.product = %(product)s)
ORDER BY rank DESC, i.issue_pk
LIMIT %(limit)s
"""


def seed(db: Database, admin_url: str, issues: int, *, refresh: bool = True) -> None:
    with db.session() as s:
        s.execute("SELECT setseed(0.25)")  # the same issues every run
        s.execute(SEED, {"issues": issues, "korean": KOREAN, "english": ENGLISH})
        if refresh:  # the rank bounds, computed off the write path (0011)
            assert s.search.refresh_bounds(issues) == issues
    with psycopg.connect(admin_url, autocommit=True) as conn:
        # the estimate that picks the way; owner only
        conn.execute("ANALYZE ims.issues, ims.issue_search_bounds")


# Small test data: make ims.search_full_text bound every query it can (by default it
# ranks every match of a query the planner expects 10,000 or fewer matches for).
ALWAYS_BOUND = "SET LOCAL ims.search_rank_all_below = 0"


def plain_top(s: Session, query: str, product: str | None, limit: int) -> list[tuple[str, float]]:
    rows = s.execute(PLAIN, {"query": query, "product": product, "limit": limit})
    return [(row["issue_id"], row["rank"]) for row in rows]


def debug_messages(
    app_url: str, query: str, product: str | None, limit: int, threshold: str = "0"
) -> list[str]:
    """What ims.search_full_text reports (RAISE DEBUG) for one search, as the runtime login."""
    messages: list[str] = []
    with psycopg.connect(app_url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: messages.append(diag.message_primary or ""))
        conn.execute("SET client_min_messages = debug1")
        conn.execute("SET ims.search_rank_all_below = " + threshold)
        conn.execute(
            "SELECT issue_pk FROM ims.search_issues(%s, %s, %s)", (query, product, limit)
        ).fetchall()
    return [m for m in messages if m.startswith("ims.search_full_text")]


def test_the_top_is_exactly_that_of_ranking_every_match(
    ims_db: Database, ims_admin_url: str, ims_app_url: str
) -> None:
    seed(ims_db, ims_admin_url, 12000)
    cases = [
        (q, p, n) for q in QUERIES for p, n in [(None, 1), (None, 50), ("Tibero", 50), (None, 300)]
    ]
    proved = []
    for query, product, limit in cases:
        with ims_db.session() as s:
            s.execute(ALWAYS_BOUND)
            hits = s.search.issues(query, product=product, limit=limit)
            expected = plain_top(s, query, product, limit)
        assert len(expected) == limit, (query, product, limit)  # broad: a top to find
        assert [(h.issue_id, h.rank) for h in hits] == expected, (query, product, limit)
        if any("proved" in m for m in debug_messages(ims_app_url, query, product, limit)):
            proved.append((query, product, limit))
    # The bounds found most of them (the others had too few matches to bother: all ranked).
    assert len(proved) >= len(cases) * 3 // 4, proved
    for case in [
        ("server", None, 50),
        ("crash or hang", None, 300),
        ("server -network", None, 1),
        ("시간", "Tibero", 50),
        ("연결 오류", None, 50),
        ('"connection timeout"', None, 50),
    ]:
        assert case in proved, case


PHRASE = '"connection timeout"'


def search_state(db: Database, admin_url: str) -> tuple[dict[str, list[Any]], str, int]:
    """Every query's top 50 (the phrase's every match), a digest of the rank bounds, and
    how many issues are stale."""
    with db.session() as s:
        s.execute(ALWAYS_BOUND)
        tops = {
            query: [(h.issue_id, h.rank) for h in s.search.issues(query, limit=50)]
            for query in QUERIES
        }
        tops[PHRASE] = [(h.issue_id, h.rank) for h in s.search.issues(PHRASE, limit=1000)]
        stale = stale_count(s)
    with psycopg.connect(admin_url) as conn:
        [(bounds,)] = conn.execute(
            "SELECT md5(string_agg(issue_pk || ':' || impacts::text, ',' ORDER BY issue_pk)) "
            "FROM ims.issue_search_bounds"
        ).fetchall()
    return tops, bounds, stale


def test_0013_changes_what_a_phrase_matches_and_no_rank_or_bound(
    ims_db: Database, ims_admin_url: str
) -> None:
    """0013 numbers the parts of the search vector apart: a phrase no longer matches across
    two of them, and nothing else changes (ts_rank of the search's OR query does not weigh
    positions), so the rank bounds stay valid and no issue is marked stale. Its rollback
    restores 0012's matches, and migrating again gives 0013's."""
    seed(ims_db, ims_admin_url, 3000)
    tops, bounds, stale = search_state(ims_db, ims_admin_url)
    assert migrations.rollback(ims_admin_url) == ["0013.phrase_gaps"]
    tops_0012, bounds_0012, stale_0012 = search_state(ims_db, ims_admin_url)
    assert migrations.migrate(ims_admin_url) == ["0013.phrase_gaps"]
    assert search_state(ims_db, ims_admin_url) == (tops, bounds, stale)

    assert bounds == bounds_0012
    assert stale == stale_0012 == 0
    assert {q: t for q, t in tops.items() if q != PHRASE} == {
        q: t for q, t in tops_0012.items() if q != PHRASE
    }
    # The phrase: fewer matches (those across two parts are gone), each with its rank.
    assert set(tops[PHRASE]) < set(tops_0012[PHRASE])
    assert len(tops[PHRASE]) >= 50


STALE_QUERIES = ["server", "crash or hang", "server -network", "시간", "연결 오류", "memory leak"]


def stale_count(s: Session) -> int:
    return int(s.execute("SELECT count(*) AS n FROM ims.issue_search_stale")[0]["n"])


def assert_exact_tops(db: Database, app_url: str) -> int:
    """Every STALE_QUERIES top equals ranking every match; returns how many were proved."""
    proved = 0
    for query in STALE_QUERIES:
        with db.session() as s:
            s.execute(ALWAYS_BOUND)
            hits = s.search.issues(query, limit=50)
            expected = plain_top(s, query, None, 50)
        assert [(h.issue_id, h.rank) for h in hits] == expected, query
        proved += any("proved" in m for m in debug_messages(app_url, query, None, 50))
    return proved


def test_stale_issues_are_ranked_exactly_until_refreshed(
    ims_db: Database, ims_admin_url: str, ims_app_url: str
) -> None:
    seed(ims_db, ims_admin_url, 6000)
    with ims_db.session() as s:
        assert stale_count(s) == 0
        # New issues, and stored ones whose vector changes so that they rank at the top
        # of 'server' and '시간' (their stored bounds say they cannot): all stale now.
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, product) "
            "SELECT 'S-' || g, 'server crash 시간이 연결 오류', 'Tibero' "
            "FROM generate_series(1, 500) AS g"
        )
        s.execute(
            "UPDATE ims.issues SET title = 'server server 시간 시간이 memory leak' "
            "WHERE issue_id IN (SELECT 'R-' || g FROM generate_series(1, 300) AS g)"
        )
        # A change that leaves the vector alone leaves the bounds current.
        s.execute(
            "UPDATE ims.issues SET status = 'Closed' "
            "WHERE issue_id IN (SELECT 'R-' || g FROM generate_series(301, 900) AS g)"
        )
        assert stale_count(s) == 800
    assert assert_exact_tops(ims_db, ims_app_url) >= 4  # bounded, and still exact
    with ims_db.session() as s:
        s.execute("DELETE FROM ims.issues WHERE issue_id = 'S-1'")  # its stale row goes too
        assert stale_count(s) == 799
        s.execute("DELETE FROM ims.issues WHERE issue_id = 'R-5000'")  # and its bounds
        orphans = s.execute(
            "SELECT count(*) AS n FROM ims.issue_search_bounds AS b "
            "WHERE NOT EXISTS (SELECT FROM ims.issues AS i WHERE i.issue_pk = b.issue_pk)"
        )
        assert orphans[0]["n"] == 0
    for _ in range(10):  # refreshed in pieces, as a background job would
        with ims_db.session() as s:
            if s.search.refresh_bounds(300) == 0:
                break
    with ims_db.session() as s:
        assert stale_count(s) == 0
        fresh = s.execute(
            "SELECT count(*) AS n FROM ims.issue_search_bounds AS b "
            "JOIN ims.issues AS i ON i.issue_pk = b.issue_pk "
            "WHERE b.impacts IS DISTINCT FROM ims.search_impacts(i.search_vector)"
        )
        assert fresh[0]["n"] == 0  # every bound describes the issue's current vector
    assert assert_exact_tops(ims_db, ims_app_url) >= 4


def test_a_refresh_skips_an_issue_being_written_and_it_stays_stale(
    ims_db: Database, ims_app_url: str
) -> None:
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, product) "
            "SELECT 'W-' || g, 'server ' || g, 'Tibero' FROM generate_series(1, 3) AS g"
        )
        assert s.search.refresh_bounds() == 3
    with psycopg.connect(ims_app_url) as writer:  # a transaction left open
        writer.execute("UPDATE ims.issues SET title = 'crash' WHERE issue_id = 'W-1'")
        writer.execute("UPDATE ims.issues SET title = 'hang' WHERE issue_id = 'W-2'")
        writer.commit()
        writer.execute("UPDATE ims.issues SET title = 'disk' WHERE issue_id = 'W-1'")
        with ims_db.session() as s:
            # W-2 is refreshed; W-1, locked by the open update, is skipped, not waited for
            assert s.search.refresh_bounds() == 1
            assert stale_count(s) == 1
        writer.commit()
    with ims_db.session() as s:
        assert stale_count(s) == 1
        assert s.search.refresh_bounds() == 1
        rows = s.execute(
            "SELECT i.issue_id FROM ims.issue_search_bounds AS b "
            "JOIN ims.issues AS i ON i.issue_pk = b.issue_pk WHERE b.impacts @@ 'disk'"
        )
    assert [r["issue_id"] for r in rows] == ["W-1"]


def test_a_write_during_a_refresh_leaves_its_issue_stale(
    ims_db: Database, ims_app_url: str, ims_admin_url: str
) -> None:
    """A refresh has taken X's stale row (uncommitted) when a writer changes X's vector:
    the writer waits for the refresh to commit, then marks X stale again."""
    with ims_db.session() as s:
        s.execute("INSERT INTO ims.issues (issue_id, title, product) VALUES ('X', 'server', 'P')")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            with psycopg.connect(ims_app_url, autocommit=True) as writer:
                writer.execute("SET application_name = 'stale-writer'")
                writer.execute("UPDATE ims.issues SET title = 'crash' WHERE issue_id = 'X'")
        except BaseException as error:  # re-raised below
            errors.append(error)

    with ims_db.session() as refresh:
        assert refresh.search.refresh_bounds() == 1  # X's stale row taken, not committed
        thread = threading.Thread(target=write)
        thread.start()
        with psycopg.connect(ims_admin_url, autocommit=True) as watch:
            for _ in range(500):  # up to ~10 s for the writer to queue behind the refresh
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = 'stale-writer' AND wait_event_type = 'Lock'"
                ).fetchone()
                if waiting == (1,):
                    break
                time.sleep(0.02)
            else:
                pytest.fail(f"the writer never waited for the refresh: {errors}")
    thread.join(timeout=30)
    assert not thread.is_alive() and not errors, errors
    with ims_db.session() as s:
        assert stale_count(s) == 1  # marked again after the refresh committed
        assert s.search.refresh_bounds() == 1
        rows = s.execute(
            "SELECT count(*) AS n FROM ims.issue_search_bounds WHERE impacts @@ 'crash'"
        )
    assert rows[0]["n"] == 1


def test_few_matches_are_all_ranked_and_the_title_text_follows(
    ims_db: Database, ims_admin_url: str, ims_app_url: str
) -> None:
    seed(ims_db, ims_admin_url, 300)
    with ims_db.session() as s:
        hits = s.search.issues("deadlock", limit=1000)
        expected = plain_top(s, "deadlock", None, 1000)
    assert 0 < len(expected) < 300
    assert [(h.issue_id, h.rank) for h in hits] == expected
    assert "ims.search_full_text: ranking every match" in debug_messages(
        ims_app_url, "deadlock", None, 1000, threshold="DEFAULT"
    )
    with ims_db.session() as s:
        hits = s.search.issues("베이스연결", limit=1000)  # inside a compound: title text only
        expected = plain_top(s, "베이스연결", None, 1000)
    assert expected == [] and hits
    assert all(h.rank <= 0 and "데이터베이스연결" in h.title for h in hits)


# Vectors whose ranks the bounds must cover: long descriptions, repeated words, every
# weight (the column only has A and B, the function takes any vector), Korean particles.
VECTORS = [
    "setweight(to_tsvector('english', 'crash crash crash report'), 'A') || "
    "setweight(to_tsvector('english', repeat('crash server ', 300)), 'B')",
    "setweight(to_tsvector('simple', 'server'), 'B') || setweight(to_tsvector('simple', "
    "'x server server'), 'A') || setweight(to_tsvector('simple', 'server y'), 'C')",
    "setweight(to_tsvector('simple', 'disk'), 'D') || setweight(to_tsvector('simple', "
    "'a disk'), 'C') || setweight(to_tsvector('simple', 'b c disk'), 'A')",
    "setweight(to_tsvector('simple', '연결이 시간이 초과되었습니다'), 'A') || "
    "setweight(to_tsvector('simple', '연결 연결을 연결이 시간 시간을 시간에 오류가 오류'), 'B')",
    "setweight(to_tsvector('simple', '데이터베이스연결 오류'), 'A') || "
    "setweight(to_tsvector('simple', repeat('데이터베이스가 데이터베이스를 데이터 ', 40)), 'B')",
    "setweight(to_tsvector('simple', '서버'), 'B') || setweight(to_tsvector('simple', "
    "'서버에서 서버가 서버를 서버의 서버도 서버만'), 'B')",
    "$v$'it''s':1A 'c\\\\d':2A,3A 'x':4B 'it':5C$v$::tsvector",  # quotes, backslashes
]

BOUNDS = """
WITH v AS (SELECT {vector} AS vector),
items AS (
    -- every lexeme, and the 2- and 3-syllable prefixes of the Hangul words
    SELECT l AS name, ims.search_quote(l)::tsquery AS q FROM v, unnest(tsvector_to_array(v.vector)) AS l
    UNION
    SELECT left(l, n) || '*', (ims.search_quote(left(l, n)) || ':*')::tsquery
    FROM v, unnest(tsvector_to_array(v.vector)) AS l, generate_series(2, 3) AS n
    WHERE l ~ ('^[가-힣]{{' || n || '}}')
)
SELECT items.name, ts_rank(v.vector, items.q)::double precision AS c,
       (SELECT max(substr(t, length(items.name) + 2)::integer)
        FROM unnest(tsvector_to_array(ims.search_impacts(v.vector))) AS t
        WHERE left(t, length(items.name) + 1) = items.name || '#'
          AND substr(t, length(items.name) + 2) ~ '^[0-9]+$') AS tier,
       items.name = ANY (tsvector_to_array(ims.search_impacts(v.vector))) AS present
FROM v, items
"""


@pytest.mark.parametrize("vector", VECTORS, ids=range(len(VECTORS)))
def test_the_index_tokens_bound_every_contribution(ims_db: Database, vector: str) -> None:
    with ims_db.session() as s:
        rows = s.execute(BOUNDS.format(vector=vector))
    assert rows
    for row in rows:
        name, c, tier = row["name"], row["c"], row["tier"]
        assert row["present"], name  # every lexeme and Hangul prefix is a token
        if tier is None:
            assert c < 0.4, (name, c)
        elif tier == 30:
            assert c >= 1.5, (name, c)
        else:
            assert tier / 20 <= c < (tier + 1) / 20, (name, c, tier)
    assert any(row["tier"] is not None for row in rows)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("시간", "'시간':* | '시간':*"),
        ("시 간이", "'시' & '간이':* | '시' & '간이':*"),  # one syllable stays exact
        ("crash", "'crash' | 'crash'"),
        ("connections", "'connect' | 'connections'"),
        ("-시간 or x", "'x' | 'x' | !'시간':* | !'시간':*"),
    ],
)
def test_hangul_words_are_word_starts(ims_db: Database, query: str, expected: str) -> None:
    with ims_db.session() as s:
        [row] = s.execute("SELECT ims.search_tsquery(%(q)s)::text AS text", {"q": query})
    assert row["text"] == expected


@pytest.mark.parametrize(
    "query",
    [
        "the a",  # english stop words only: an AND at the top, ranked by proximity
        'crash -"connection timeout"',  # a phrase under a negation
        "one two three four five six seven",  # more lexemes than patterns are tried for
    ],
)
def test_queries_the_bounds_do_not_cover_are_ranked_whole(ims_db: Database, query: str) -> None:
    with ims_db.session() as s:
        [row] = s.execute(
            "SELECT o.lexemes FROM ims.search_operands(ims.search_tsquery(%(q)s)) AS o",
            {"q": query},
        )
    assert row["lexemes"] is None


def test_patterns_are_the_sets_of_lexemes_that_match(ims_db: Database) -> None:
    with ims_db.session() as s:
        [row] = s.execute(
            "SELECT o.* FROM ims.search_operands(ims.search_tsquery('server -network')) AS o"
        )
        assert (row["lexemes"], row["patterns"]) == (["server", "network"], [1])
        [row] = s.execute(
            "SELECT o.* FROM ims.search_operands(ims.search_tsquery('crash or 시간')) AS o"
        )
        assert (row["lexemes"], row["prefixes"]) == (["crash", "시간"], [False, True])
        assert row["patterns"] == [1, 2, 3]


# --- migration 0012: what a backlog of stale issues costs a search; after a refresh ---

# What the planner expects a statement to return (EXPLAIN), as the owner would see it.
EXPECTED_ROWS = "EXPLAIN (FORMAT JSON) SELECT FROM ims.issue_search_stale"


def expected_stale(admin: psycopg.Connection[Any]) -> float:
    row = admin.execute(EXPECTED_ROWS).fetchone()
    assert row is not None
    return float(row[0][0]["Plan"]["Plan Rows"])


def analyze_count(admin: psycopg.Connection[Any], table: str) -> int:
    """How often ``table`` was analyzed (ANALYZE reports to the statistics at once)."""
    admin.execute("SELECT pg_stat_clear_snapshot()")
    row = admin.execute(
        "SELECT analyze_count FROM pg_stat_user_tables WHERE relid = %s::regclass", (table,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_stale_matches_that_fill_a_round_leave_the_bounds_to_prove_the_top(
    ims_db: Database, ims_admin_url: str, ims_app_url: str
) -> None:
    """A backlog whose matches alone fill the first round: 400 stale issues that match
    only in their descriptions (each ranks below 0.4). 0011 set the next threshold just
    below their last rank, at 0.4 or less, and gave up: it ranked every match. 0012 goes
    on down the listed thresholds, so the bounds prove the top, which is still exact."""
    seed(ims_db, ims_admin_url, 6000)
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, description, product) "
            "SELECT 'D-' || g, 'note ' || g, 'server crash 시간이 연결 오류 memory leak', 'Tibero' "
            "FROM generate_series(1, 400) AS g"
        )
        assert stale_count(s) == 400
    for query in ["server", "crash or hang", "시간", "연결 오류", "memory leak"]:
        with ims_db.session() as s:
            s.execute(ALWAYS_BOUND)
            hits = s.search.issues(query, limit=50)
            expected = plain_top(s, query, None, 50)
            stale_ranks = s.execute(
                "SELECT ts_rank(i.search_vector, ims.search_tsquery(%(q)s)) AS rank "
                "FROM ims.issues AS i WHERE i.issue_id LIKE 'D-%%'",
                {"q": query},
            )
        assert [(h.issue_id, h.rank) for h in hits] == expected, query
        assert max(r["rank"] for r in stale_ranks) < 0.4  # they fill a round, below 0.4
        messages = debug_messages(ims_app_url, query, None, 50)
        assert "ims.search_full_text: ranking every match" not in messages, (query, messages)
        assert any("proved" in m for m in messages), (query, messages)
        assert "ims.search_full_text: 50 stale matches kept" in messages, (query, messages)


def test_the_stale_matches_are_ranked_once_per_search(
    ims_db: Database, ims_admin_url: str, ims_app_url: str
) -> None:
    """0011 ranked the stale matches again in every round; 0012 once per call: the stale
    table is read by one statement of a search that takes several rounds. (Counted by
    the server for the transaction: the scans of ims.issue_search_stale; no nested loop,
    so that each statement scans it once.)"""
    seed(ims_db, ims_admin_url, 6000)
    with ims_db.session() as s:
        s.execute(
            "UPDATE ims.issues SET title = title || ' server' "
            "WHERE issue_id IN (SELECT 'R-' || g FROM generate_series(1, 600) AS g)"
        )
        assert stale_count(s) == 600
    messages: list[str] = []
    scans = "SELECT pg_stat_get_xact_numscans('ims.issue_search_stale'::regclass)"
    with psycopg.connect(ims_app_url) as conn:  # one transaction: the counts are its own
        conn.add_notice_handler(lambda diag: messages.append(diag.message_primary or ""))
        conn.execute("SET ims.search_rank_all_below = 0")
        conn.execute("SET enable_nestloop = off")
        conn.execute("SET client_min_messages = debug1")
        for query in ["server", "crash or hang", "시간"]:
            messages.clear()
            before = conn.execute(scans).fetchone()
            conn.execute("SELECT issue_pk FROM ims.search_issues(%s, NULL, 50)", (query,))
            after = conn.execute(scans).fetchone()
            rounds = sum(1 for m in messages if m.startswith("ims.search_full_text: threshold"))
            assert rounds >= 2, (query, messages)  # several rounds ...
            assert before is not None and after is not None
            assert after[0] - before[0] == 1, (query, rounds)  # ... one scan of the stale set
        conn.rollback()


def test_a_refresh_that_drains_the_backlog_leaves_the_tables_as_autovacuum_would(
    ims_db: Database, ims_admin_url: str
) -> None:
    """After 0011's refresh the planner still expected the backlog in the stale table
    until something analyzed it (autovacuum may be off), and the new bounds waited in the
    GIN index's pending list, which every lookup scans, until a VACUUM. 0012's refresh,
    when it drains the stale set, merges the list and analyzes the stale table, as the
    tables' owner (the runtime role may not); and it analyzes the bounds table when that
    has never been analyzed or has grown by a tenth since."""
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, product) "
            "SELECT 'A-' || g, 'server crash ' || g, 'Tibero' FROM generate_series(1, 3000) AS g"
        )
    with psycopg.connect(ims_admin_url, autocommit=True) as admin:
        admin.execute("ANALYZE ims.issue_search_stale")  # the planner knows the backlog
        assert expected_stale(admin) == 3000
        stale_analyzed = analyze_count(admin, "ims.issue_search_stale")
        assert analyze_count(admin, "ims.issue_search_bounds") == 0
        for _ in range(3):  # batches that take all they ask for: more may be left
            with ims_db.session() as s:
                assert s.search.refresh_bounds(1000) == 1000
        assert analyze_count(admin, "ims.issue_search_stale") == stale_analyzed
        assert expected_stale(admin) >= 1000  # still the backlog's statistics
        # The first batch found the bounds table never analyzed, the next two found it
        # grown by more than a tenth since (2,000 rows against 1,000, 3,000 against 2,000).
        assert analyze_count(admin, "ims.issue_search_bounds") == 3
        with ims_db.session() as s:
            assert s.search.refresh_bounds(1000) == 0  # a short batch: the set is drained
        assert analyze_count(admin, "ims.issue_search_stale") == stale_analyzed + 1
        assert expected_stale(admin) <= 1
        merged = "SELECT gin_clean_pending_list('ims.issue_search_bounds_impacts_idx')"
        assert admin.execute(merged).fetchone() == (0,)  # nothing left in the list
        row = admin.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'ims.issue_search_bounds'::regclass"
        ).fetchone()
        assert row is not None and 2000 <= row[0] <= 3000
        with ims_db.session() as s:  # nothing changed: nothing analyzed again
            assert s.search.refresh_bounds(1000) == 0
        assert analyze_count(admin, "ims.issue_search_stale") == stale_analyzed + 1
        assert analyze_count(admin, "ims.issue_search_bounds") == 3


def test_a_refresh_never_waits_to_analyze(ims_db: Database, ims_admin_url: str) -> None:
    """The analyze's lock is only tried (NOWAIT): a table another transaction is
    analyzing or vacuuming (here: holds that lock) is left unanalyzed, and the refresh
    neither waits nor fails."""
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, product) "
            "SELECT 'N-' || g, 'server ' || g, 'Tibero' FROM generate_series(1, 500) AS g"
        )
    with psycopg.connect(ims_admin_url, autocommit=True) as admin:
        admin.execute("ANALYZE ims.issue_search_stale")
        assert expected_stale(admin) == 500
        stale_analyzed = analyze_count(admin, "ims.issue_search_stale")
        with psycopg.connect(ims_admin_url) as holder:
            holder.execute("LOCK TABLE ims.issue_search_stale IN SHARE UPDATE EXCLUSIVE MODE")
            with ims_db.session() as s:
                s.execute("SET LOCAL lock_timeout = '5s'")  # a wait would fail the test
                tick = time.perf_counter()
                assert s.search.refresh_bounds() == 500
                assert time.perf_counter() - tick < 4
            holder.rollback()
        assert analyze_count(admin, "ims.issue_search_stale") == stale_analyzed
        assert expected_stale(admin) == 500
        with ims_db.session() as s:  # the next refresh that finds it drained analyzes it
            assert s.search.refresh_bounds() == 0
        assert analyze_count(admin, "ims.issue_search_stale") == stale_analyzed + 1
        assert expected_stale(admin) <= 1
