"""``s.crawl_sessions``: every method through the public API, as the runtime login."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ims_repo import (
    CrawlSession,
    Database,
    InvalidInput,
    NewCrawlSession,
    NotFound,
    PermissionDenied,
)
from tests.seed import crawl, people

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def new(user_id: int, **fields: object) -> NewCrawlSession:
    base: dict[str, object] = {
        "user_id": user_id,
        "product": "OpenFrame",
        "original_query": "connection timeout",
    }
    return NewCrawlSession(**(base | fields))  # type: ignore[arg-type]


def test_create_with_defaults_and_read_back_by_id_and_uuid(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        created = s.crawl_sessions.create(
            new(
                p.alice,
                parsed_query="+connection +timeout",
                query_language="en",
                max_results=100,
                status="running",
                started_at=T0,
                session_metadata={"crawler_version": "1.0.0"},
            )
        )
        assert created.status == "running" and created.total_issues == 0
        assert isinstance(created.session_uuid, uuid.UUID)
        assert s.crawl_sessions.get(created.session_id) == created
        assert s.crawl_sessions.get_by_uuid(created.session_uuid) == created
        assert s.crawl_sessions.get_by_uuid(str(created.session_uuid)) == created
        assert s.crawl_sessions.get_by_uuid(uuid.uuid4()) is None
        with pytest.raises(InvalidInput, match="not a UUID"):
            s.crawl_sessions.get_by_uuid("nope")
        assert s.crawl_sessions.list_for_user(p.alice) == [created]
    with ims_db.session(user_id=p.bob) as s:
        assert s.crawl_sessions.get(created.session_id) is None
        assert s.crawl_sessions.list_for_user(p.alice) == []


def test_writing_a_session_for_another_user_is_refused(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    with (
        pytest.raises(PermissionDenied, match="crawl_sessions"),
        ims_db.session(user_id=p.alice) as s,
    ):
        s.crawl_sessions.create(new(p.bob))
    with pytest.raises(PermissionDenied), ims_db.session() as s:
        s.crawl_sessions.create(new(p.bob))  # no context: deny by default
    [bobs] = crawl(ims_db, p.bob, 1)
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(NotFound):
            s.crawl_sessions.update(bobs, status="cancelled")
        assert s.crawl_sessions.delete(bobs) is False
    with ims_db.session(user_id=p.admin) as s:  # an admin may change every row
        assert s.crawl_sessions.update(bobs, status="cancelled").status == "cancelled"
        assert s.crawl_sessions.create(new(p.bob)).user_id == p.bob


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "done"},
        {"max_results": 0},
        {"product": ""},
        {"original_query": "a\x00b"},
        {"session_metadata": {"k": "\x00"}},
        {"session_uuid": "not-a-uuid"},
        {"duration_seconds": -1},
    ],
)
def test_bad_input_is_refused_before_any_sql(
    ims_db: Database, ims_admin_url: str, fields: dict[str, object]
) -> None:
    p = people(ims_db, ims_admin_url)
    data = {"user_id": p.alice, "product": "OpenFrame", "original_query": "q"} | fields
    with ims_db.session(user_id=p.alice) as s:
        with pytest.raises(InvalidInput):
            s.crawl_sessions.create(data)
        assert s.statements_sent == 0
        assert s.crawl_sessions.find() == []


def test_update_session_status_the_guide_way(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        crawl = s.crawl_sessions.create(new(p.alice, status="running", started_at=T0))
        done = T0 + timedelta(seconds=95)
        updated = s.crawl_sessions.update(
            crawl.session_id, status="completed", completed_at=done, duration_seconds=95
        )
        assert (updated.status, updated.completed_at, updated.duration_seconds) == (
            "completed",
            done,
            95,
        )
        assert updated.original_query == crawl.original_query
        for bad in [{"status": "nope"}, {"user_id": p.bob}, {"session_uuid": uuid.uuid4()}]:
            with pytest.raises(InvalidInput):
                s.crawl_sessions.update(crawl.session_id, **bad)
        assert s.crawl_sessions.delete(crawl.session_id) is True
        assert s.crawl_sessions.get(crawl.session_id) is None


def test_find_forms_of_the_usage_guide(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    specs = [
        ("OpenFrame", "completed", T0, "/data/1"),
        ("OpenFrame", "failed", T0 + timedelta(hours=1), None),
        ("Tibero", "running", T0 + timedelta(hours=2), "/data/3"),
        ("OpenSQL", "completed", None, None),
    ]
    with ims_db.session(user_id=p.alice) as s:
        ids = [
            s.crawl_sessions.create(
                new(p.alice, product=prod, status=st, started_at=at, data_path=path)
            ).session_id
            for prod, st, at, path in specs
        ]

        def found(**kw: object) -> list[int]:
            return [c.session_id for c in s.crawl_sessions.find(**kw)]  # type: ignore[arg-type]

        assert found(status="completed") == [ids[0], ids[3]]
        assert found(status_not="completed") == [ids[1], ids[2]]
        assert found(product_like="Open%") == [ids[0], ids[1], ids[3]]
        assert found(status_in=["running", "completed"]) == [ids[0], ids[2], ids[3]]
        assert found(has_data_path=True) == [ids[0], ids[2]]
        assert found(
            started_at_from=T0 + timedelta(hours=1), started_at_to=T0 + timedelta(hours=2)
        ) == [ids[1]]
        assert found(order_by=["product", "-started_at"]) == [ids[1], ids[0], ids[3], ids[2]]
        assert found(limit=2, offset=1) == [ids[1], ids[2]]
        assert found(status="completed", product="OpenSQL") == [ids[3]]
        with pytest.raises(InvalidInput, match="order_by"):
            found(order_by=["started_at; DROP TABLE ims.users"])


def test_aggregation_over_visible_sessions(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    for seconds in (10, 20, 60):
        crawl(ims_db, p.alice, 1, duration_seconds=seconds)
    crawl(ims_db, p.bob, 1, duration_seconds=1000)
    with ims_db.session(user_id=p.alice) as s:
        stats = s.crawl_sessions.duration_stats()
    assert (stats.avg, stats.min, stats.max) == (30, 10, 60)
    with ims_db.session() as s:
        assert s.crawl_sessions.duration_stats().avg is None


def test_jsonb_path_key_and_containment(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    metadata = [
        {"crawler_version": "1.0.0", "nl_parsing": {"method": "rule_based", "confidence": 0.9}},
        {"crawler_version": "1.1.0", "nl_parsing": {"method": "llm"}},
        {"tags": ["a", "b"]},
    ]
    with ims_db.session(user_id=p.alice) as s:
        ids = [
            s.crawl_sessions.create(new(p.alice, session_metadata=m)).session_id for m in metadata
        ]
        by_path = s.crawl_sessions.find_by_metadata(
            path=["nl_parsing", "method"], equals="rule_based"
        )
        assert [c.session_id for c in by_path] == [ids[0]]
        assert (
            s.crawl_sessions.find_by_metadata(path=["nl_parsing", "confidence"], equals=0.9)[
                0
            ].session_id
            == ids[0]
        )
        assert [c.session_id for c in s.crawl_sessions.with_metadata_key("crawler_version")] == ids[
            :2
        ]
        assert [
            c.session_id for c in s.crawl_sessions.metadata_contains({"crawler_version": "1.1.0"})
        ] == [ids[1]]
        assert [c.session_id for c in s.crawl_sessions.metadata_contains({"tags": ["b"]})] == [
            ids[2]
        ]
        hostile = "') OR 1=1; --"
        assert s.crawl_sessions.with_metadata_key(hostile) == []
        assert s.crawl_sessions.find_by_metadata(path=[hostile, "$.x"], equals=hostile) == []
        for bad in [
            {"path": [], "equals": 1},
            {"path": "nl_parsing", "equals": 1},
            {"path": ["a\x00"], "equals": 1},
        ]:
            with pytest.raises(InvalidInput):
                s.crawl_sessions.find_by_metadata(**bad)  # type: ignore[arg-type]


def test_records_are_typed_and_immutable(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    with ims_db.session(user_id=p.alice) as s:
        crawl = s.crawl_sessions.create(new(p.alice))
    assert isinstance(crawl, CrawlSession)
    with pytest.raises(ValueError):
        crawl.status = "completed"  # type: ignore[misc]
