"""``s.users``: every method through the public API, as the runtime login."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ims_repo import (
    Database,
    Duplicate,
    ForeignKeyViolation,
    InvalidInput,
    NewUser,
    NotFound,
    PermissionDenied,
)
from tests.seed import crawl, people


def count_users(db: Database) -> int:
    with db.session() as s:
        return len(s.users.find())


def test_create_get_by_key_and_username(ims_db: Database) -> None:
    with ims_db.session() as s:
        user = s.users.create(
            NewUser(
                username="john.doe",
                email="John.Doe@company.com",
                full_name="John Doe",
                department="Engineering",
                preferences={"theme": "dark", "언어": "한국어"},
            )
        )
        assert user.user_id > 0 and user.role == "user" and user.is_active
        assert user.preferences == {"theme": "dark", "언어": "한국어"}
        assert s.users.get(user.user_id) == user
        assert s.users.get_by_username("john.doe") == user
        assert s.users.get(user.user_id + 1000) is None
        assert s.users.get_by_username("nobody") is None


def test_text_is_stored_verbatim(ims_db: Database) -> None:
    name = "  Ünïcödé  \t'; DROP TABLE ims.users; --"
    with ims_db.session() as s:
        user = s.users.create(NewUser(username=name, email="v@example.com", full_name=" x "))
        assert s.users.get_by_username(name) == user
        assert user.full_name == " x "


def test_duplicate_username_or_email_in_any_case_writes_nothing(ims_db: Database) -> None:
    with ims_db.session() as s:
        s.users.create(NewUser(username="ann", email="ann@example.com"))
    for username, email in [("ann", "other@example.com"), ("ann2", "ANN@Example.com")]:
        with pytest.raises(Duplicate, match=r"ims\.users") as raised, ims_db.session() as s:
            s.users.create(NewUser(username=username, email=email))
        assert raised.value.table == "users"
        assert raised.value.__cause__ is not None  # chained to psycopg's error
    assert count_users(ims_db) == 1


@pytest.mark.parametrize(
    "data",
    [
        {"username": "", "email": "e@example.com"},
        {"username": "nul\x00byte", "email": "e@example.com"},
        {"username": "x", "email": "not-an-email"},
        {"username": "x", "email": "e@example.com", "role": "superuser"},
        {"username": "x", "email": "e@example.com", "preferences": {"k": "a\x00"}},
        {"username": "x", "email": "e@example.com", "unknown": 1},
        {"username": 12, "email": "e@example.com"},
    ],
)
def test_bad_input_is_refused_before_any_sql(ims_db: Database, data: dict[str, object]) -> None:
    with ims_db.session() as s:
        with pytest.raises(InvalidInput):
            s.users.create(data)
        assert s.statements_sent == 0
    with pytest.raises(ValueError):  # building the record refuses it too
        NewUser(**data)  # type: ignore[arg-type]
    assert count_users(ims_db) == 0


def test_the_runtime_role_cannot_make_an_admin(ims_db: Database) -> None:
    with pytest.raises(PermissionDenied), ims_db.session() as s:
        s.users.create(NewUser(username="sneaky", email="s@example.com", role="admin"))
    with ims_db.session() as s:
        user = s.users.create(NewUser(username="plain", email="p@example.com"))
        with pytest.raises(InvalidInput, match="cannot update role"):
            s.users.update(user.user_id, role="admin")
        with pytest.raises(PermissionDenied), s.savepoint():
            s.execute(
                "UPDATE ims.users SET role = 'admin' WHERE user_id = %(u)s", {"u": user.user_id}
            )
    with ims_db.session() as s:
        assert s.users.get(user.user_id).role == "user"  # type: ignore[union-attr]


def test_update_changes_only_the_given_fields(ims_db: Database) -> None:
    login = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    with ims_db.session() as s:
        user = s.users.create(
            NewUser(username="yijae.shin", email="y@example.com", full_name="Yijae")
        )
        updated = s.users.update(
            user.user_id,
            department="R&D",
            preferences={"theme": "dark", "language": "ko"},
            last_login_at=login,
        )
        assert (updated.department, updated.full_name, updated.last_login_at) == (
            "R&D",
            "Yijae",
            login,
        )
        assert updated.preferences == {"theme": "dark", "language": "ko"}
        assert updated.updated_at >= user.updated_at
        cleared = s.users.update(user.user_id, full_name=None)
        assert cleared.full_name is None and cleared.department == "R&D"
        with pytest.raises(NotFound, match="user_id=999999"):
            s.users.update(999999, department="x")
        for bad in [{"username": None}, {"email": "bad"}, {"user_id": 5}, {}]:
            with pytest.raises(InvalidInput):
                s.users.update(user.user_id, **bad)


def test_delete_and_no_cascade_through_crawl_data(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.bob, 1)
    with (
        pytest.raises(ForeignKeyViolation, match='table "users"'),
        ims_db.session(user_id=p.alice) as s,
    ):
        s.users.delete(p.bob)  # bob's sessions are invisible to alice, yet protect him
    with ims_db.session(user_id=p.alice) as s:
        assert s.users.delete(p.alice) is True
        assert s.users.delete(p.alice) is False


def test_find_filters_order_and_pages(ims_db: Database) -> None:
    with ims_db.session() as s:
        for n, dept in enumerate(["QA", "R&D", None, "R&D"]):
            s.users.create(NewUser(username=f"u{n}", email=f"u{n}@example.com", department=dept))
        assert [u.username for u in s.users.find(department="R&D")] == ["u1", "u3"]
        assert [u.username for u in s.users.find(department_not="R&D")] == ["u0"]
        assert [u.username for u in s.users.find(has_department=False)] == ["u2"]
        assert [u.username for u in s.users.find(username_in=["u3", "u0"])] == ["u0", "u3"]
        assert [u.username for u in s.users.find(order_by=["-username"], limit=2, offset=1)] == [
            "u2",
            "u1",
        ]
        assert [u.username for u in s.users.find(order_by=["department", "-user_id"])] == [
            "u0",
            "u3",
            "u1",
            "u2",
        ]
        with pytest.raises(InvalidInput, match="unknown filter"):
            s.users.find(password="x")
        with pytest.raises(InvalidInput, match="limit"):
            s.users.find(limit=-1)


def test_with_sessions_is_an_outer_join_in_one_statement(
    ims_db: Database, ims_admin_url: str
) -> None:
    p = people(ims_db, ims_admin_url)
    ids = crawl(ims_db, p.alice, 2)
    crawl(ims_db, p.bob, 1)
    with ims_db.session(user_id=p.alice) as s:
        rows = s.users.with_sessions()
        assert s.statements_sent == 1
    by_user = {row.user.username: [c.session_id for c in row.sessions] for row in rows}
    assert by_user == {"alice": ids, "bob": [], "root.admin": []}  # bob's are hidden by RLS
    with ims_db.session(user_id=p.alice) as s:
        [alice] = s.users.with_sessions(username="alice")
        assert alice.user.user_id == p.alice and len(alice.sessions) == 2


def test_stats_come_from_the_database_function(ims_db: Database, ims_admin_url: str) -> None:
    p = people(ims_db, ims_admin_url)
    crawl(ims_db, p.alice, 2, status="completed", duration_seconds=10, total_issues=3)
    crawl(ims_db, p.alice, 1, status="failed")
    with ims_db.session(user_id=p.alice) as s:
        stats = s.users.stats(p.alice)
    assert (stats.total_sessions, stats.completed_sessions, stats.failed_sessions) == (3, 2, 1)
    assert stats.total_issues == 6 and stats.avg_duration_seconds == 10
    with ims_db.session(user_id=p.bob) as s:
        assert s.users.stats(p.alice).total_sessions == 0  # RLS: bob cannot count alice's
