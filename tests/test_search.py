"""``s.search.issues``: ranked issue search through ``ims.search_issues`` (migrations 0004,
0006 and 0009), as the runtime login."""

from __future__ import annotations

import hashlib

import psycopg
import pytest

from ims_repo import Database, InvalidInput, SearchHit, Session
from tests.seed import people


def add_issue(
    s: Session,
    issue_id: str,
    title: str,
    description: str | None = None,
    product: str = "OpenFrame",
    status: str | None = "Open",
) -> int:
    """A shared issue, inserted as the runtime role; its issue_pk."""
    [row] = s.execute(
        "INSERT INTO ims.issues (issue_id, title, description, product, status) "
        "VALUES (%(issue_id)s, %(title)s, %(description)s, %(product)s, %(status)s) "
        "RETURNING issue_pk",
        {
            "issue_id": issue_id,
            "title": title,
            "description": description,
            "product": product,
            "status": status,
        },
    )
    return int(row["issue_pk"])


def ids(hits: list[SearchHit]) -> list[str]:
    return [hit.issue_id for hit in hits]


def test_title_hits_rank_above_description_hits(ims_db: Database) -> None:
    with ims_db.session() as s:
        add_issue(s, "D-1", "Printing fails", "the job ends with a timeout after 30 s")
        add_issue(s, "T-1", "Timeout while printing", "nothing more", status=None)
        add_issue(s, "N-1", "Unrelated", "nothing here")
    with ims_db.session() as s:
        hits = s.search.issues("timeout")
        assert s.statements_sent == 1  # one statement
    assert ids(hits) == ["T-1", "D-1"]
    title_hit, description_hit = hits
    assert title_hit.rank > description_hit.rank > 0
    assert (title_hit.title, title_hit.product, title_hit.status) == (
        "Timeout while printing",
        "OpenFrame",
        None,
    )
    assert title_hit.issue_pk > 0


def test_english_stemming_and_words_as_typed(ims_db: Database) -> None:
    with ims_db.session() as s:
        add_issue(s, "S-1", "Connection refused by the server")
        add_issue(s, "S-2", "Server connections are dropped")
        add_issue(s, "S-3", "Disk full")
        # stemmed alike, and the word exactly as typed ranks first
        assert ids(s.search.issues("connections")) == ["S-2", "S-1"]
        assert ids(s.search.issues("connection")) == ["S-1", "S-2"]
        assert sorted(ids(s.search.issues("CONNECTING"))) == ["S-1", "S-2"]
        assert sorted(ids(s.search.issues("connection servers"))) == ["S-1", "S-2"]
        assert s.search.issues("connection disk") == []  # every word must match


def test_product_filter_and_limit(ims_db: Database) -> None:
    with ims_db.session() as s:
        for n in range(5):
            add_issue(s, f"OF-{n}", f"Timeout number {n}", product="OpenFrame")
        add_issue(s, "TB-1", "Timeout in Tibero", product="Tibero")
        assert len(s.search.issues("timeout")) == 6
        assert ids(s.search.issues("timeout", product="Tibero")) == ["TB-1"]
        assert ids(s.search.issues("timeout", "OpenFrame")) == [f"OF-{n}" for n in range(5)]
        assert s.search.issues("timeout", product="Nothing") == []
        assert ids(s.search.issues("timeout", limit=2)) == ["OF-0", "OF-1"]  # ties: issue_pk
        assert len(s.search.issues("timeout", limit=1000)) == 6


def test_web_search_syntax_quoted_phrase_minus_word_and_or(ims_db: Database) -> None:
    with ims_db.session() as s:
        add_issue(s, "P-1", "Connection timeout in the pool")
        add_issue(s, "P-2", "Opening a connection hit a timeout")
        add_issue(s, "P-3", "Connection refused")
        assert ids(s.search.issues("connection timeout")) == ["P-1", "P-2"]
        assert ids(s.search.issues('"connection timeout"')) == ["P-1"]
        assert ids(s.search.issues("timeout -pool")) == ["P-2"]
        assert ids(s.search.issues('connection -"connection timeout"')) == ["P-2", "P-3"]
        assert sorted(ids(s.search.issues("refused or opening"))) == ["P-2", "P-3"]
        assert s.search.issues("") == []
        assert s.search.issues("   ") == []


def test_a_quoted_phrase_matches_within_one_part_of_an_issue_never_across_two(
    ims_db: Database,
) -> None:
    """0013: the parts of the search vector (title and description, in english and as
    typed) are numbered apart, so a phrase's words must be neighbours in one part."""
    with ims_db.session() as s:
        # The english title ends with 'connect', the simple title starts with 'timeout'.
        add_issue(s, "W-1", "Timeout while opening a connection")
        # The title ends with 'connection', the description starts with 'timeout'.
        add_issue(s, "W-2", "Login fails with connection", "timeout reported by the server")
        add_issue(s, "W-3", "Connection timeout on login")
        add_issue(s, "W-4", "Login fails", "a connection timeout reported twice")
        assert ids(s.search.issues('"connection timeout"')) == ["W-3", "W-4"]
        assert ids(s.search.issues('"timeout reported"')) == ["W-2", "W-4"]
        # Unquoted, the words match anywhere, as before.
        assert sorted(ids(s.search.issues("connection timeout"))) == ["W-1", "W-2", "W-3", "W-4"]


def test_korean_words_glued_to_particles_are_found(ims_db: Database) -> None:
    with ims_db.session() as s:
        add_issue(s, "K-1", "연결 시간이 초과되었습니다")  # '시간' + particle '이'
        add_issue(s, "K-2", "응답 시간 지연", product="Tibero")  # '시간' as a word
        add_issue(s, "K-3", "데이터베이스연결 오류")  # compound written as one word
        add_issue(s, "K-4", "로그인 실패", "세션 시간 초과 후 다시 로그인")  # in the description
        add_issue(s, "K-5", "Connection timeout")

        hits = s.search.issues("시간")
        # a Hangul word is a full-text word start (0009): with its particle it ranks as
        # the bare word (both in a title, ties in issue_pk order), the description after
        assert ids(hits) == ["K-1", "K-2", "K-4"]
        assert hits[0].rank == hits[1].rank > hits[2].rank > 0
        assert ids(s.search.issues("시간", limit=2)) == ["K-1", "K-2"]
        assert ids(s.search.issues("시간", product="OpenFrame")) == ["K-1", "K-4"]
        # full text takes the words in any order, each with its particles
        assert ids(s.search.issues("시간 초과")) == ["K-1", "K-4"]
        assert ids(s.search.issues("초과 시간")) == ["K-1", "K-4"]
        # a word inside a compound is no word start: the title text finds it, after
        hits = s.search.issues("연결")
        assert ids(hits) == ["K-1", "K-3"]
        assert hits[0].rank > 0 >= hits[1].rank
        assert ids(s.search.issues("오류")) == ["K-3"]
        assert ids(s.search.issues("연결 오류")) == ["K-3"]
        # with a web-search operator the query means exactly what full text says: K-2
        # holds '지연'; no title text is added
        assert ids(s.search.issues("시간 -지연")) == ["K-1", "K-4"]
        assert ids(s.search.issues('"시간"')) == ["K-1", "K-2", "K-4"]
        assert s.search.issues('"연결 오류"') == []


def test_title_text_match_takes_like_metacharacters_literally(ims_db: Database) -> None:
    with ims_db.session() as s:
        add_issue(s, "M-1", "abc%def")
        add_issue(s, "M-2", "abcXdef")
        add_issue(s, "M-3", "abc_def")
        add_issue(s, "M-4", r"path C:\tmp\x failed")
        assert ids(s.search.issues("c%d")) == ["M-1"]
        assert ids(s.search.issues("c_d")) == ["M-3"]
        assert ids(s.search.issues(r"p\x")) == ["M-4"]
        assert ids(s.search.issues("%")) == ["M-1"]
        assert ids(s.search.issues("_")) == ["M-3"]
        assert ids(s.search.issues("\\")) == ["M-4"]


HOSTILE = [
    "'); DROP TABLE ims.issues; --",
    "'",
    "''",
    "\\",
    '"',
    '"unterminated phrase',
    ":param",
    ":query::text",
    "%s",
    "%(query)s",
    "%%",
    "$$",
    "$1",
    "$$; DELETE FROM ims.issues; $$",
    "&|!()",
    "!!! ((( ))) <-> <2> :* & |",
    "-",
    "--",
    "or",
    "OR or -or",
    "*",
    "a:*",
    "/* comment */",
    "\t\n\r",
    "😀 emoji",
    "x" * 10_000,
    " ".join(f"word{n}" for n in range(1_200)),
    "-" + "-".join("abc" for _ in range(2_400)),
]


@pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
def test_any_text_is_a_valid_query_and_changes_nothing(
    ims_db: Database, ims_admin_url: str, query: str
) -> None:
    people(ims_db, ims_admin_url)
    with ims_db.session() as s:
        add_issue(s, "H-1", "Connection timeout", "50% of the jobs")
        add_issue(s, "H-2", "연결 시간이 초과되었습니다")
        before = s.execute(
            "SELECT count(*) AS n, string_agg(issue_id || title, ',' ORDER BY issue_pk) AS t "
            "FROM ims.issues"
        )
    with ims_db.session() as s:
        hits = s.search.issues(query)
        assert all(isinstance(hit, SearchHit) for hit in hits)
        assert s.search.issues(query, product="OpenFrame", limit=1) == hits[:1]
    with psycopg.connect(ims_admin_url) as conn:
        after = conn.execute(
            "SELECT count(*) AS n, string_agg(issue_id || title, ',' ORDER BY issue_pk) AS t "
            "FROM ims.issues"
        ).fetchone()
        users = conn.execute("SELECT count(*) FROM ims.users").fetchone()
    assert after == (before[0]["n"], before[0]["t"])
    assert users == (3,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"query": "x" * 10_001},  # longer than any search box (MAX_QUERY_LENGTH)
        {"query": "a\x00b"},
        {"query": None},
        {"query": 42},
        {"query": "ok", "product": "Open\x00Frame"},
        {"query": "ok", "product": 1},
        {"query": "ok", "limit": 0},
        {"query": "ok", "limit": 1001},
        {"query": "ok", "limit": -1},
        {"query": "ok", "limit": True},
        {"query": "ok", "limit": "50"},
        {"query": "ok", "limit": 2.0},
    ],
)
def test_bad_arguments_are_refused_before_any_sql(
    ims_db: Database, kwargs: dict[str, object]
) -> None:
    with ims_db.session() as s:
        with pytest.raises(InvalidInput):
            s.search.issues(**kwargs)  # type: ignore[arg-type]
        assert s.statements_sent == 0


def explain(s: Session, sql: str, query: str) -> str:
    return "\n".join(row["QUERY PLAN"] for row in s.execute("EXPLAIN " + sql, {"q": query}))


def test_both_parts_of_the_search_can_use_their_index(ims_db: Database, ims_admin_url: str) -> None:
    with ims_db.session() as s:
        s.execute(
            "INSERT INTO ims.issues (issue_id, title, description, product) "
            "SELECT 'GEN-' || g, "
            "       CASE WHEN g % 2 = 0 THEN 'Report ' || md5(g::text) "
            "            ELSE md5(g::text) || ' 데이터베이스연결 오류 ' || g END, "
            "       'Description ' || md5((g * 3)::text), 'OpenFrame' "
            "FROM generate_series(1, 3000) AS g"
        )
        assert s.search.refresh_bounds() == 3000  # the rank bounds, off the write path (0011)
    with psycopg.connect(ims_admin_url, autocommit=True) as conn:
        conn.execute("ANALYZE ims.issues, ims.issue_search_bounds")  # only the owner may
    with ims_db.session() as s:
        # A table this small is cheaper to scan; make the planner show what the index
        # can serve (a condition it cannot serve would still be a sequential scan).
        s.execute("SET LOCAL enable_seqscan = off")
        s.execute("SET LOCAL enable_indexscan = off")
        query = "데이터베이스연결 오류 2999"
        # the title text, in ims.search_title_text (0009; its conditions): trigrams
        # (here inside the md5 of 2999), and for Hangul words of two syllables (no
        # trigram) pairs of syllables
        title_text = (
            "SELECT issue_pk FROM ims.issues WHERE title ILIKE '%%' || %(q)s || '%%' "
            "AND ims.search_bigrams(title) @> ims.search_bigrams(%(q)s)"
        )
        plan = explain(s, title_text, hashlib.md5(b"2999").hexdigest()[5:15])
        assert "Bitmap Index Scan on issues_title_trgm_idx" in plan
        assert "Seq Scan" not in plan
        plan = explain(s, title_text, "스연")
        assert "Bitmap Index Scan on issues_title_bigrams_idx" in plan
        assert "Seq Scan" not in plan
        # the full text, in ims.search_full_text (0009): every match, ...
        plan = explain(
            s,
            "SELECT issue_pk FROM ims.issues WHERE search_vector @@ ims.search_tsquery(%(q)s)",
            query,
        )
        assert "Bitmap Index Scan on issues_search_vector_idx" in plan
        assert "Seq Scan" not in plan
        # ... or the candidates for the top, through the bounds index
        plan = explain(
            s,
            "SELECT issue_pk FROM ims.issue_search_bounds "
            "WHERE impacts @@ ("
            "    SELECT ims.search_candidates(o.lexemes, o.prefixes, o.patterns, 0.5)::tsquery"
            "    FROM ims.search_operands(ims.search_tsquery(%(q)s)) AS o)",
            query,
        )
        assert "Bitmap Index Scan on issue_search_bounds_impacts_idx" in plan
        assert "Seq Scan" not in plan
        hits = s.search.issues("데이터베이스연결 오류 2999")
    assert ids(hits) == ["GEN-2999"]  # the whole word '데이터베이스연결' is a full-text hit
    with ims_db.session() as s:
        hits = s.search.issues("베이스연결 오류 2999")
        assert ids(hits) == ["GEN-2999"] and hits[0].rank <= 0  # found by the title text
        hits = s.search.issues("스연 오류 2999")
        assert ids(hits) == ["GEN-2999"] and hits[0].rank <= 0  # two-syllable words too
        hits = s.search.issues(hashlib.md5(b"2999").hexdigest()[5:15])
    assert ids(hits) == ["GEN-2999"] and hits[0].rank <= 0
